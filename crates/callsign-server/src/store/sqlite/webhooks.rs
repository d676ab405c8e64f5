//! The webhooks' progress in the data dir's SQLite file, written through the group-commit writer
//! (durable before the deliverer moves on).

use super::SqliteBackend;
use crate::store::{LogPosition, StoreError, WebhookClaim, WebhookStore};

/// Takes the lease whoever held it: one process serves a data dir at a time (it holds the data
/// dir's lock), so a holder it finds is this process's own or one that died — a server restarted
/// after `kill -9` carries on at once instead of waiting for the dead one's lease to run out.
const CLAIM: &str = "INSERT INTO webhook_deliveries (webhook, holder, leased_until_us) \
     VALUES (?1, ?2, ?3) ON CONFLICT (webhook) DO UPDATE SET holder = ?2, leased_until_us = ?3 \
     RETURNING delivered_id";

#[async_trait::async_trait]
impl WebhookStore for SqliteBackend {
    async fn claim_webhook(
        &self,
        webhook: &str,
        holder: &str,
        _now_us: i64,
        until_us: i64,
    ) -> Result<WebhookClaim, StoreError> {
        let (webhook, holder) = (webhook.to_owned(), holder.to_owned());
        self.write(move |conn| {
            let mut claim = conn.prepare_cached(CLAIM)?;
            let mut rows = claim.query(rusqlite::params![webhook, holder, until_us])?;
            Ok(match rows.next()? {
                Some(row) => WebhookClaim::Held {
                    // One writer commits events in id order: the id is the position.
                    delivered: row
                        .get::<_, Option<i64>>(0)?
                        .map(|id| LogPosition { commit: 0, id }),
                },
                None => WebhookClaim::Busy,
            })
        })
        .await
    }

    async fn webhook_delivered(
        &self,
        webhook: &str,
        holder: &str,
        position: LogPosition,
    ) -> Result<bool, StoreError> {
        let (webhook, holder) = (webhook.to_owned(), holder.to_owned());
        self.write(move |conn| {
            let updated = conn.prepare_cached(
                "UPDATE webhook_deliveries SET delivered_id = ?3 WHERE webhook = ?1 AND holder = ?2",
            )?
            .execute(rusqlite::params![webhook, holder, position.id])?;
            Ok(updated == 1)
        })
        .await
    }
}
