//! How far each configured webhook has been delivered ([`crate::webhooks`]), and which server
//! delivers it.
//!
//! A webhook's deliveries follow the audit log in its order; what is stored per webhook is the
//! [`LogPosition`] of the last event its receiver acknowledged, so that a restarted server — even
//! one killed with `kill -9` — carries on after it. The servers sharing a storage (the nodes of a
//! cluster, or of one [`super::MemoryStorage`]) take turns through a lease: one holder at a time
//! delivers a webhook, so that two nodes do not post the same event.

use super::{LogPosition, StoreError};

/// What [`WebhookStore::claim_webhook`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookClaim {
    /// The caller holds the lease until the time it asked for.
    Held {
        /// The last event delivered; `None` for a webhook never delivered (the caller decides
        /// where it starts and records it with [`WebhookStore::webhook_delivered`]).
        delivered: Option<LogPosition>,
    },
    /// Another holder's lease has not run out.
    Busy,
}

/// The webhooks' delivery progress and leases.
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Takes, or renews, the lease on delivering `webhook` for `holder` until `until_us`, unless
    /// another holder's lease lasts beyond `now_us` (microseconds since the epoch). A data dir
    /// serves one process at a time, so there the claim always succeeds.
    async fn claim_webhook(
        &self,
        webhook: &str,
        holder: &str,
        now_us: i64,
        until_us: i64,
    ) -> Result<WebhookClaim, StoreError>;

    /// Records durably that `webhook` is delivered through `position`, if `holder` still holds
    /// its lease; says whether it did.
    async fn webhook_delivered(
        &self,
        webhook: &str,
        holder: &str,
        position: LogPosition,
    ) -> Result<bool, StoreError>;
}
