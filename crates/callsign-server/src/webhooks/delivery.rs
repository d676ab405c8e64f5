//! One webhook's deliverer: follows the stored log after the position its receiver last
//! acknowledged, POSTs each matching event signed, retries a failure with backoff until it is
//! acknowledged, and records the new position durably after every acknowledgement.
//!
//! The log is the outbox: an event is stored in its change's transaction, so a server killed
//! between the commit and the delivery finds it again when it restarts. What can repeat is a
//! delivery acknowledged but not yet recorded when the server died: receivers deduplicate by the
//! event id (docs/webhooks.md).

use super::config::WebhookConfig;
use crate::audit::{AuditError, AuditLog, LogSignal, LoggedEvent};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{LogPosition, StoreError, WebhookClaim, WebhookStore};
use backon::BackoffBuilder;
use callsign_common::webhook_signature;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a claim on a webhook lasts; the holder renews it once less than half is left, so a
/// node that died is replaced within this time (PostgreSQL; a data dir has one process).
pub const LEASE: Duration = Duration::from_secs(30);

/// The longest one delivery attempt may take: well inside half the lease.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the log is read for events stored by other processes (nodes, admin commands);
/// this server's own events wake the deliverer at once.
const POLL: Duration = Duration::from_secs(1);

/// Events read from the log at a time.
const PAGE: usize = 100;

/// A round of delivery stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Why a round ended before the log did.
enum Stop {
    /// The server is shutting down.
    Closing,
    /// Another node holds the lease now.
    LostLease,
}

/// What every deliverer of a server shares.
pub(crate) struct Context {
    /// The stored log: the outbox.
    pub(crate) log: Arc<AuditLog>,
    /// Where progress and leases are kept.
    pub(crate) store: Arc<dyn WebhookStore>,
    /// The server's clock (leases, signature timestamps).
    pub(crate) clock: Arc<dyn Clock>,
    /// No redirects, no proxy, bounded time (see [`super::client`]).
    pub(crate) http: reqwest::Client,
    /// Where attempts are counted.
    pub(crate) metrics: Arc<Metrics>,
    /// This server's name in leases.
    pub(crate) holder: String,
}

/// Delivers one webhook.
pub(crate) struct Deliverer {
    webhook: WebhookConfig,
    context: Arc<Context>,
    /// The lease this server holds, as far as it knows.
    lease: Option<Lease>,
}

/// A lease held on a webhook.
#[derive(Debug, Clone, Copy)]
struct Lease {
    /// When it runs out.
    until: DateTime<Utc>,
    /// The position stored as delivered.
    delivered: LogPosition,
}

impl Deliverer {
    pub(crate) fn new(webhook: WebhookConfig, context: Arc<Context>) -> Self {
        Self {
            webhook,
            context,
            lease: None,
        }
    }

    /// Claims the webhook; a webhook never delivered starts after the newest event stored now:
    /// it receives what happens from its first start on. `None`: another node holds it.
    pub(crate) async fn claim(&mut self) -> Result<Option<LogPosition>, DeliveryError> {
        let now = self.context.clock.now();
        let until = now + chrono::Duration::from_std(LEASE).expect("a short lease");
        let claim = self
            .context
            .store
            .claim_webhook(
                self.webhook.key(),
                &self.context.holder,
                now.timestamp_micros(),
                until.timestamp_micros(),
            )
            .await?;
        let WebhookClaim::Held { delivered } = claim else {
            self.lease = None;
            return Ok(None);
        };
        let delivered = match delivered {
            Some(delivered) => delivered,
            None => {
                let start = self.context.log.latest_position().await?;
                self.context
                    .store
                    .webhook_delivered(self.webhook.key(), &self.context.holder, start)
                    .await?;
                start
            }
        };
        self.lease = Some(Lease { until, delivered });
        Ok(Some(delivered))
    }

    /// The stored position while this server holds the lease, renewed once less than half of it
    /// is left (so an idle webhook costs a write per half lease, not per round); `None` when
    /// another node holds it.
    async fn holding(&mut self) -> Result<Option<LogPosition>, DeliveryError> {
        let half = chrono::Duration::from_std(LEASE / 2).expect("a short lease");
        match self.lease {
            Some(lease) if lease.until - self.context.clock.now() > half => {
                Ok(Some(lease.delivered))
            }
            _ => self.claim().await,
        }
    }

    /// Records durably that the receiver has everything through `position`; `false` when the
    /// lease was lost meanwhile.
    async fn record(&mut self, position: LogPosition) -> Result<bool, DeliveryError> {
        let kept = self
            .context
            .store
            .webhook_delivered(self.webhook.key(), &self.context.holder, position)
            .await?;
        self.lease = match (kept, self.lease) {
            (true, Some(lease)) => Some(Lease {
                delivered: position,
                ..lease
            }),
            _ => None,
        };
        Ok(kept)
    }

    /// Delivers until the server shuts down: a round whenever events may have been stored.
    pub(crate) async fn run(mut self, mut signal: watch::Receiver<LogSignal>) {
        loop {
            match self.round(&mut signal).await {
                Ok(Some(Stop::Closing)) => return,
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    webhook = %self.webhook.url, error = %e,
                    "reading events for a webhook failed"
                ),
            }
            if pause(&mut signal, POLL, Wake::OnEvents).await {
                return;
            }
        }
    }

    /// Delivers every matching event after the recorded position, a page at a time.
    async fn round(
        &mut self,
        signal: &mut watch::Receiver<LogSignal>,
    ) -> Result<Option<Stop>, DeliveryError> {
        let Some(mut delivered) = self.holding().await? else {
            return Ok(Some(Stop::LostLease));
        };
        loop {
            let forgotten = self.context.log.forgotten_through().await?;
            if delivered < forgotten {
                tracing::error!(
                    webhook = %self.webhook.url,
                    "events were deleted by the retention before this webhook received them"
                );
                delivered = forgotten;
            }
            let events = self.context.log.list_after(delivered, PAGE).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(None);
            };
            for logged in &events {
                if !self.webhook.events.matches(logged.event.event_type) {
                    continue;
                }
                if let Some(stop) = self.deliver(logged, signal).await? {
                    return Ok(Some(stop));
                }
                if !self.record(logged.position).await? {
                    return Ok(Some(Stop::LostLease));
                }
            }
            // Past the events this webhook does not receive, too.
            let recorded = self.lease.map(|lease| lease.delivered);
            if recorded != Some(last) && !self.record(last).await? {
                return Ok(Some(Stop::LostLease));
            }
            delivered = last;
        }
    }

    /// POSTs `logged` until its receiver acknowledges it; `Some` when it stopped trying.
    async fn deliver(
        &mut self,
        logged: &LoggedEvent,
        signal: &mut watch::Receiver<LogSignal>,
    ) -> Result<Option<Stop>, DeliveryError> {
        let body = serde_json::to_vec(&logged.to_json()).expect("an event always serialises");
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.webhook.min_retry)
            .with_max_delay(self.webhook.max_retry)
            .with_jitter()
            .without_max_times()
            .build();
        for attempt in 1u32.. {
            if self.holding().await?.is_none() {
                return Ok(Some(Stop::LostLease));
            }
            let outcome = self.attempt(logged.event.id, &body).await;
            self.context
                .metrics
                .webhook_attempt(self.webhook.url.as_str(), outcome.is_ok());
            let Err(failure) = outcome else {
                return Ok(None);
            };
            let delay = delays.next().unwrap_or(self.webhook.max_retry);
            tracing::warn!(
                webhook = %self.webhook.url, event = logged.event.id, attempt,
                retry_in_ms = delay.as_millis() as u64, reason = %failure,
                "a webhook delivery failed"
            );
            if pause(signal, delay, Wake::OnClosingOnly).await {
                return Ok(Some(Stop::Closing));
            }
        }
        unreachable!("attempts are counted without end")
    }

    /// One signed POST; a 2xx answer is the receiver's acknowledgement.
    async fn attempt(&self, event_id: i64, body: &[u8]) -> Result<(), String> {
        let timestamp = self.context.clock.now().timestamp();
        let signature = webhook_signature::sign(self.webhook.secret.as_bytes(), timestamp, body);
        let response = self
            .context
            .http
            .post(self.webhook.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(webhook_signature::ID_HEADER, event_id.to_string())
            .header(webhook_signature::TIMESTAMP_HEADER, timestamp.to_string())
            .header(webhook_signature::SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| crate::error_chain::error_chain(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

/// What ends a [`pause`] early.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// This server stored events, or is shutting down.
    OnEvents,
    /// Only shutting down (a retry's backoff is not cut short by new events).
    OnClosingOnly,
}

/// Waits up to `delay`; says whether the server is shutting down.
async fn pause(signal: &mut watch::Receiver<LogSignal>, delay: Duration, wake: Wake) -> bool {
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        if signal.borrow_and_update().closing {
            return true;
        }
        match tokio::time::timeout_at(deadline, signal.changed()).await {
            Err(_elapsed) => return false,
            // The log is gone: so is the server.
            Ok(Err(_closed)) => return true,
            Ok(Ok(())) if wake == Wake::OnEvents => return signal.borrow().closing,
            Ok(Ok(())) => {}
        }
    }
}
