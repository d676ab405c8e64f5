//! The webhooks' progress in memory: the servers sharing one [`crate::store::MemoryStorage`] take
//! turns through the lease, as the nodes of a cluster do.

use super::MemoryBackend;
use crate::store::{LogPosition, StoreError, WebhookClaim, WebhookStore};

/// One webhook's row.
pub(super) struct Progress {
    delivered: Option<LogPosition>,
    holder: String,
    leased_until_us: i64,
}

#[async_trait::async_trait]
impl WebhookStore for MemoryBackend {
    async fn claim_webhook(
        &self,
        webhook: &str,
        holder: &str,
        now_us: i64,
        until_us: i64,
    ) -> Result<WebhookClaim, StoreError> {
        let mut state = self.state();
        let progress = state
            .webhooks
            .entry(webhook.to_owned())
            .or_insert_with(|| Progress {
                delivered: None,
                holder: holder.to_owned(),
                leased_until_us: until_us,
            });
        if progress.holder != holder && progress.leased_until_us > now_us {
            return Ok(WebhookClaim::Busy);
        }
        holder.clone_into(&mut progress.holder);
        progress.leased_until_us = until_us;
        Ok(WebhookClaim::Held {
            delivered: progress.delivered,
        })
    }

    async fn webhook_delivered(
        &self,
        webhook: &str,
        holder: &str,
        position: LogPosition,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.webhooks.get_mut(webhook) {
            Some(progress) if progress.holder == holder => {
                progress.delivered = Some(position);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
