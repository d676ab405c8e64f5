//! The audit trail (docs/protocol.md §9): one durable log of every state change — who did what
//! to which identity or object, when, from where — written before the change's response is
//! sent. The same events are what the change feed and webhooks will serve.
//!
//! A change's events are stored in the change's own transaction ([`PendingEvents`], handed down
//! through the domain to the store); events that change nothing (an exchange, an issued token)
//! are appended on their own ([`AuditLog::record`]). Either way the store ([`crate::store::AuditStore`]:
//! the data dir's SQLite file, the cluster's PostgreSQL table, or memory) is the log, and the
//! configured sinks ([`sink`]) are its mirror: a task follows the stored log and writes each
//! event, with the id the store gave it, to every sink — so the admin commands' events reach a
//! running server's files too.

pub mod cursor;
pub mod event;
pub mod pending;
pub mod sink;

pub use cursor::Cursor;
pub use event::{Actor, AuditEvent, EventType, KeySlot, RequestOrigin};
pub use pending::PendingEvents;
pub use sink::{SinkConfig, SinkError};

use crate::clock::Clock;
use crate::keys::LiveKeys;
use crate::store::{AuditStore, LogPosition, StoreError};
use sink::Sink;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// The `[audit]` section of the configuration file, and `--audit-log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Where events are written besides the store.
    pub sinks: Vec<SinkConfig>,
    /// Whether each issued token is an event (`token.issued`): off by default, since tokens are
    /// issued far more often than anything else changes.
    pub token_issued: bool,
    /// How long stored events are kept; `None` keeps them forever.
    pub retention: Option<chrono::Duration>,
}

/// Stored events are kept this long unless `[audit] retention_days` says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// How often events older than the retention are deleted.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);

/// How often the sinks look for events appended by another process (an admin command, another
/// node of a cluster); this server's own changes wake them at once.
pub const SINK_POLL: Duration = Duration::from_secs(1);

/// The most events read from the store for the sinks at a time.
const SINK_BATCH: usize = 512;

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            token_issued: false,
            retention: Some(chrono::Duration::days(DEFAULT_RETENTION_DAYS.into())),
        }
    }
}

/// An event could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store did not take it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event is not valid JSON (reading back).
    #[error("a stored audit event is malformed: {0}")]
    Malformed(String),
}

/// Where an event's resource id comes from.
enum Resource {
    /// A server's keys in force (a cluster's nodes share them).
    Live(Arc<LiveKeys>),
    /// Read once by an admin command.
    Fixed(String),
}

/// A stored event read back, with the id the store gave it.
fn event_of(record: &crate::store::AuditRecord) -> Result<AuditEvent, AuditError> {
    let mut event: AuditEvent =
        serde_json::from_str(&record.json).map_err(|e| AuditError::Malformed(e.to_string()))?;
    event.id = record.id;
    Ok(event)
}

/// The audit trail of one server: the store, the sinks and what to record.
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    resource: Resource,
    clock: Arc<dyn Clock>,
    sinks: Vec<Sink>,
    config: AuditConfig,
    /// The position of the last stored event written to the sinks; `None` until they start.
    sunk: Mutex<Option<LogPosition>>,
    /// Tells the sinks' task and the change feed's waiting readers that this server stored
    /// events, or is shutting down.
    signal: watch::Sender<LogSignal>,
}

/// What readers of the log wait for ([`AuditLog::subscribe`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogSignal {
    /// Counts the times this server stored events.
    pub appended: u64,
    /// The server is shutting down: waiting readers answer now.
    pub closing: bool,
}

/// A stored event and its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Where it is: continue after it to see what follows.
    pub position: LogPosition,
    /// The event, with its id.
    pub event: AuditEvent,
}

impl LoggedEvent {
    /// The event as readers of the log get it (the change feed's pages, webhook deliveries): the
    /// audit event's fields and the cursor to continue after it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(&self.event).expect("an event always serialises");
        if let Some(fields) = json.as_object_mut() {
            fields.insert("cursor".into(), Cursor(self.position).encode().into());
        }
        json
    }
}

impl AuditLog {
    /// Opens the configured sinks (a file is created if missing, appended to if not).
    pub fn open(
        config: AuditConfig,
        store: Arc<dyn AuditStore>,
        keys: Arc<LiveKeys>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SinkError> {
        let sinks = config
            .sinks
            .iter()
            .map(Sink::open)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            store,
            resource: Resource::Live(keys),
            clock,
            sinks,
            config,
            sunk: Mutex::new(None),
            signal: watch::Sender::new(LogSignal::default()),
        })
    }

    /// The log as an admin command on the machine writes to it (`callsign import`, key
    /// regeneration and rotation): the store only, for the resource `resource_id`. A running
    /// server on the same storage finds them there: its sinks and the change feed serve them.
    pub fn for_operator(
        store: Arc<dyn AuditStore>,
        resource_id: String,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            resource: Resource::Fixed(resource_id),
            clock,
            sinks: Vec::new(),
            config: AuditConfig::default(),
            sunk: Mutex::new(None),
            signal: watch::Sender::new(LogSignal::default()),
        }
    }

    /// Records an operator's change (actor [`Actor::Operator`]) with `details`.
    pub async fn record_operator(
        &self,
        event_type: EventType,
        subject: Option<String>,
        details: serde_json::Value,
    ) -> Result<AuditEvent, AuditError> {
        let mut event = self.event(event_type, subject, &RequestOrigin::operator());
        if let serde_json::Value::Object(details) = details {
            event.details = details;
        }
        self.record(event).await
    }

    /// Whether `token.issued` events are recorded.
    pub fn records_token_issued(&self) -> bool {
        self.config.token_issued
    }

    /// A new event of `event_type` about `subject`, caused by `origin`, timed by the server's
    /// clock, of this server's resource: for [`Self::record`], or a change's [`PendingEvents`].
    pub fn event(
        &self,
        event_type: EventType,
        subject: Option<String>,
        origin: &RequestOrigin,
    ) -> AuditEvent {
        let mut event = AuditEvent::new(self.clock.now(), event_type, subject, origin);
        event.resource = match &self.resource {
            Resource::Live(keys) => keys.get().resource_id.to_string(),
            Resource::Fixed(id) => id.clone(),
        };
        event
    }

    /// Stores an event that comes with no change of its own (an exchange, an issued token)
    /// durably; returns it with its id. The sinks get it from the store.
    pub async fn record(&self, mut event: AuditEvent) -> Result<AuditEvent, AuditError> {
        event.id = self.store.append_event(event.to_record()).await?;
        self.appended();
        Ok(event)
    }

    /// Tells the sinks and waiting readers that this server stored events (with a change,
    /// through the store).
    pub fn appended(&self) {
        self.signal.send_modify(|signal| signal.appended += 1);
    }

    /// Tells waiting readers that the server is shutting down.
    pub fn close(&self) {
        self.signal.send_modify(|signal| signal.closing = true);
    }

    /// A receiver that sees [`Self::appended`] and [`Self::close`] from now on: subscribe before
    /// reading, then wait for a change, and no event stored in between goes unnoticed.
    pub fn subscribe(&self) -> watch::Receiver<LogSignal> {
        self.signal.subscribe()
    }

    /// The newest `limit` stored events, newest first.
    pub async fn newest(&self, limit: usize) -> Result<Vec<AuditEvent>, AuditError> {
        self.store
            .newest_events(limit)
            .await?
            .iter()
            .map(event_of)
            .collect()
    }

    /// Up to `limit` stored events after `after`, in commit order.
    pub async fn list_after(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, AuditError> {
        self.store
            .events_after(after, limit)
            .await?
            .into_iter()
            .map(|record| {
                Ok(LoggedEvent {
                    position: record.position(),
                    event: event_of(&record)?,
                })
            })
            .collect()
    }

    /// Where the stored log ends now, for readers that start there.
    pub async fn latest_position(&self) -> Result<LogPosition, AuditError> {
        Ok(self.store.latest_position().await?)
    }

    /// The position behind which stored events were forgotten (the retention): a reader there
    /// has missed some.
    pub async fn forgotten_through(&self) -> Result<LogPosition, AuditError> {
        Ok(self.store.forgotten_through().await?)
    }

    /// Writes every stored event the sinks have not seen to every sink, oldest first, a page at
    /// a time; returns how many. The first call only notes where the log ends: the sinks carry what happens while
    /// this server runs. A sink that fails is logged, not fatal: the store holds the event.
    pub async fn sink_new_events(&self) -> Result<usize, AuditError> {
        let mut sunk = self.sunk.lock().await;
        let Some(after) = *sunk else {
            *sunk = Some(self.store.latest_position().await?);
            return Ok(0);
        };
        let mut after = after;
        let mut written = 0;
        loop {
            let events = self.list_after(after, SINK_BATCH).await?;
            for logged in &events {
                let line = logged.event.to_json_line();
                for sink in &self.sinks {
                    if let Err(e) = sink.write_line(&line) {
                        tracing::error!(error = %e, "writing an audit event failed");
                    }
                }
                after = logged.position;
                *sunk = Some(after);
            }
            written += events.len();
            if events.len() < SINK_BATCH {
                return Ok(written);
            }
        }
    }

    /// Brings the sinks up to date with the store (at shutdown: nothing stored stays unwritten).
    pub async fn drain(&self) {
        if self.sinks.is_empty() {
            return;
        }
        if let Err(e) = self.sink_new_events().await {
            tracing::warn!(error = %e, "writing the last audit events failed");
        }
    }

    /// Reopens the file sinks by their paths: after logrotate moved a file, new events go to a
    /// new one (SIGHUP).
    pub fn reopen(&self) {
        for sink in &self.sinks {
            if let Err(e) = sink.reopen() {
                tracing::error!(error = %e, "reopening an audit log failed");
            }
        }
    }

    /// Whether any sink is a file (and SIGHUP should reopen it).
    pub fn has_files(&self) -> bool {
        self.sinks.iter().any(Sink::is_file)
    }

    /// Deletes the stored events older than the retention, by the server's clock; returns how
    /// many.
    pub async fn expire(&self) -> Result<u64, AuditError> {
        let Some(retention) = self.config.retention else {
            return Ok(0);
        };
        let before = self.clock.now() - retention;
        Ok(self
            .store
            .delete_events_before(before.timestamp_micros())
            .await?)
    }

    /// Runs [`Self::expire`] now and every [`EXPIRY_INTERVAL`], the sinks (woken by this
    /// server's events, and every [`SINK_POLL`] for other processes'), and [`Self::reopen`] on
    /// every SIGHUP when there are file sinks, until the log is dropped by everyone else.
    pub async fn spawn_upkeep(self: &Arc<Self>) -> Result<(), AuditError> {
        if !self.sinks.is_empty() {
            // Where the log ends now: what follows is this run's.
            self.sink_new_events().await?;
            let weak = Arc::downgrade(self);
            let mut appended = self.subscribe();
            tokio::spawn(async move {
                loop {
                    let Some(log) = weak.upgrade() else { return };
                    let sunk = log.sink_new_events().await;
                    drop(log);
                    if let Err(e) = sunk {
                        tracing::warn!(error = %e, "reading audit events for the sinks failed");
                    }
                    let _ = tokio::time::timeout(SINK_POLL, appended.changed()).await;
                }
            });
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
            loop {
                tick.tick().await;
                let Some(log) = weak.upgrade() else { return };
                match log.expire().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "expired audit events"),
                    Err(e) => tracing::warn!(error = %e, "expiring audit events failed"),
                }
            }
        });
        if !self.has_files() {
            return Ok(());
        }
        let weak = Arc::downgrade(self);
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hangups) => {
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        let Some(log) = weak.upgrade() else { return };
                        log.reopen();
                        tracing::info!("reopened the audit log files");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot reopen the audit log on SIGHUP"),
        }
        Ok(())
    }
}
