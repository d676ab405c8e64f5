//! Signed webhooks (docs/webhooks.md): every configured receiver gets the audit trail's events
//! as signed JSON POSTs, at least once, in the log's order.
//!
//! Each `[[webhooks]]` entry has a deliverer task (`delivery.rs`) that follows the stored log —
//! the durable outbox — and stores how far its receiver has acknowledged. Only the configured
//! URLs are contacted: redirects are not followed and no proxy is used, so a delivery never
//! reaches a host the operator did not name.

pub mod config;
mod delivery;

pub use config::{EventFilter, WebhookConfig, WebhookConfigError, WebhookSecret};
pub use delivery::{ATTEMPT_TIMEOUT, LEASE};

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::WebhookStore;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use delivery::{Context, Deliverer, DeliveryError};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The webhooks could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The HTTP client could not be built.
    #[error("the webhooks' HTTP client: {0}")]
    Client(String),
    /// A webhook's progress could not be read or started.
    #[error("starting the webhook {url}: {reason}")]
    Start {
        /// The webhook.
        url: String,
        /// Why.
        reason: String,
    },
}

/// The running deliverers of one server; they stop when the server's log closes, or when this
/// is dropped.
#[derive(Default)]
pub struct Webhooks {
    tasks: Vec<JoinHandle<()>>,
}

impl Webhooks {
    /// Starts a deliverer per webhook. Each claims its webhook now, so that one configured for
    /// the first time starts after the events already stored when the server started.
    pub async fn start(
        webhooks: &[WebhookConfig],
        log: Arc<AuditLog>,
        store: Arc<dyn WebhookStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, WebhookError> {
        if webhooks.is_empty() {
            return Ok(Self::default());
        }
        let context = Arc::new(Context {
            log,
            store,
            clock,
            http: client()?,
            metrics,
            holder: holder_name(),
        });
        let mut tasks = Vec::with_capacity(webhooks.len());
        for webhook in webhooks {
            let url = webhook.url.to_string();
            context.metrics.webhook_configured(&url);
            let mut deliverer = Deliverer::new(webhook.clone(), context.clone());
            // Subscribed before the first read: nothing stored from here on goes unnoticed.
            let signal = context.log.subscribe();
            deliverer
                .claim()
                .await
                .map_err(|e: DeliveryError| WebhookError::Start {
                    url,
                    reason: e.to_string(),
                })?;
            tasks.push(tokio::spawn(deliverer.run(signal)));
        }
        Ok(Self { tasks })
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The client every delivery uses: no redirects, no proxy from the environment, bounded time.
fn client() -> Result<reqwest::Client, WebhookError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(ATTEMPT_TIMEOUT / 2)
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("callsign-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| WebhookError::Client(e.to_string()))
}

/// A name for this server in the webhooks' leases: unique to this process.
fn holder_name() -> String {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness is available");
    format!("{}-{}", std::process::id(), URL_SAFE_NO_PAD.encode(bytes))
}
