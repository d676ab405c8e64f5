//! The webhooks' progress in PostgreSQL: one row per webhook, shared by the cluster's nodes, whose
//! lease lets one node at a time deliver it.

use super::{audit, PostgresBackend};
use crate::store::{LogPosition, StoreError, WebhookClaim, WebhookStore};

/// Takes the lease when the webhook is new, its lease ran out or is the holder's own; the row
/// lock of the upsert makes two nodes' claims take turns.
const CLAIM: &str = "INSERT INTO webhook_deliveries (webhook, holder, leased_until_us) \
     VALUES ($1, $2, $4) ON CONFLICT (webhook) DO UPDATE SET holder = $2, leased_until_us = $4 \
     WHERE webhook_deliveries.holder = $2 OR webhook_deliveries.leased_until_us <= $3 \
     RETURNING delivered_commit_xid::text, delivered_id";

const DELIVERED: &str = "UPDATE webhook_deliveries \
     SET delivered_commit_xid = $3::text::xid8, delivered_id = $4 \
     WHERE webhook = $1 AND holder = $2";

#[async_trait::async_trait]
impl WebhookStore for PostgresBackend {
    async fn claim_webhook(
        &self,
        webhook: &str,
        holder: &str,
        now_us: i64,
        until_us: i64,
    ) -> Result<WebhookClaim, StoreError> {
        let Some(row) = self
            .query_opt(CLAIM, &[&webhook, &holder, &now_us, &until_us])
            .await?
        else {
            return Ok(WebhookClaim::Busy);
        };
        let delivered = match (row.get::<_, Option<&str>>(0), row.get(1)) {
            (Some(commit), Some(id)) => Some(audit::position(commit, id)?),
            _ => None,
        };
        Ok(WebhookClaim::Held { delivered })
    }

    async fn webhook_delivered(
        &self,
        webhook: &str,
        holder: &str,
        position: LogPosition,
    ) -> Result<bool, StoreError> {
        let commit = position.commit.to_string();
        let updated = self
            .execute(DELIVERED, &[&webhook, &holder, &commit, &position.id])
            .await?;
        Ok(updated == 1)
    }
}
