//! The store, timed: a [`Backend`] wrapper that records each operation's latency and failures
//! (`callsign_store_operation_duration_seconds`, `callsign_store_errors_total`, labelled by
//! backend and operation). A wrapper rather than code in each backend: one place, every backend
//! alike, and the backends stay unaware of metrics.

use super::Metrics;
use crate::domain::ids::ResourceId;
use crate::keys::{KeyError, KeyKind, ResourceKeys, SigningAlg, TransferredKeys};
use crate::store::{
    AssignmentStore, AuditRecord, AuditStore, Backend, EntraAssignment, HealthStore,
    IdentityRecord, IdentityStore, Imported, KeyStore, KeyVersion, LogPosition, PoolStatus,
    Snapshot, StoreError, StoreStats, TeamsExtensionAssignment, ThrottleStore, TokenState,
    TransferStore, WebhookClaim, WebhookStore,
};
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};
use prometheus_client::metrics::histogram::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A backend whose operations are counted in [`Metrics`].
pub struct Metered {
    inner: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    /// Whether operations made while serving a request are spans (request tracing is on).
    spans: bool,
}

/// The target of the store operations' spans (children of `crate::http::trace::SPAN_TARGET`'s).
pub const STORE_SPAN_TARGET: &str = "callsign_server::request::store";

impl Metered {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            metrics,
            spans: false,
        }
    }

    /// With `spans`, each operation made inside a request's span is a child span of it, named
    /// after the operation (docs/tracing.md); operations outside requests (readiness checks,
    /// upkeep) never are.
    pub fn with_spans(mut self, spans: bool) -> Self {
        self.spans = spans;
        self
    }

    async fn timed<T, E>(
        &self,
        operation: &'static str,
        op: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = if self.spans && in_request() {
            let span = tracing::info_span!(
                target: STORE_SPAN_TARGET,
                "store",
                otel.name = operation,
                otel.kind = "client",
                db.system.name = self.metrics.backend_name,
                db.operation.name = operation,
            );
            tracing::Instrument::instrument(op, span).await
        } else {
            op.await
        };
        self.metrics
            .store_operation(operation, started.elapsed(), result.is_err());
        result
    }
}

/// Whether the current span is a request's.
fn in_request() -> bool {
    tracing::Span::current()
        .metadata()
        .is_some_and(|m| m.target() == crate::http::trace::SPAN_TARGET)
}

#[async_trait::async_trait]
impl IdentityStore for Metered {
    async fn create_identity_with_events(
        &self,
        record: IdentityRecord,
        events: Vec<AuditRecord>,
    ) -> Result<IdentityRecord, StoreError> {
        self.timed(
            "create_identity",
            self.inner.create_identity_with_events(record, events),
        )
        .await
    }

    async fn get_identity(&self, id: String) -> Result<Option<IdentityRecord>, StoreError> {
        self.timed("get_identity", self.inner.get_identity(id))
            .await
    }

    async fn stamp_token(&self, id: &str, at_us: i64) -> Result<Option<i64>, StoreError> {
        self.timed("stamp_token", self.inner.stamp_token(id, at_us))
            .await
    }

    async fn token_state(&self, id: &str) -> Result<Option<TokenState>, StoreError> {
        self.timed("token_state", self.inner.token_state(id)).await
    }

    async fn record_token_issued(&self, id: String, at_us: i64) -> Result<(), StoreError> {
        self.timed(
            "record_token_issued",
            self.inner.record_token_issued(id, at_us),
        )
        .await
    }

    async fn revoke_tokens_with_events(
        &self,
        id: String,
        before_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "revoke_tokens",
            self.inner.revoke_tokens_with_events(id, before_us, events),
        )
        .await
    }

    async fn delete_identity_with_events(
        &self,
        id: String,
        at_us: i64,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "delete_identity",
            self.inner.delete_identity_with_events(id, at_us, events),
        )
        .await
    }

    async fn list_identities(
        &self,
        after: Option<String>,
        limit: u32,
        custom_id: Option<String>,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        self.timed(
            "list_identities",
            self.inner.list_identities(after, limit, custom_id),
        )
        .await
    }

    async fn list_revocations(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        self.timed(
            "list_revocations",
            self.inner.list_revocations(after, limit),
        )
        .await
    }

    async fn reset_with_events(&self, events: Vec<AuditRecord>) -> Result<(), StoreError> {
        self.timed("reset", self.inner.reset_with_events(events))
            .await
    }
}

#[async_trait::async_trait]
impl AssignmentStore for Metered {
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: String,
        object_id: String,
    ) -> Result<Option<TeamsExtensionAssignment>, StoreError> {
        self.timed(
            "get_teams_extension_assignment",
            self.inner
                .get_teams_extension_assignment(tenant_id, object_id),
        )
        .await
    }

    async fn put_teams_extension_assignment_with_events(
        &self,
        assignment: TeamsExtensionAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "put_teams_extension_assignment",
            self.inner
                .put_teams_extension_assignment_with_events(assignment, events),
        )
        .await
    }

    async fn delete_teams_extension_assignment_with_events(
        &self,
        tenant_id: String,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "delete_teams_extension_assignment",
            self.inner
                .delete_teams_extension_assignment_with_events(tenant_id, object_id, events),
        )
        .await
    }

    async fn get_entra_assignment(
        &self,
        object_id: String,
    ) -> Result<Option<EntraAssignment>, StoreError> {
        self.timed(
            "get_entra_assignment",
            self.inner.get_entra_assignment(object_id),
        )
        .await
    }

    async fn find_entra_assignments(
        &self,
        object_ids: Vec<String>,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        self.timed(
            "find_entra_assignments",
            self.inner.find_entra_assignments(object_ids),
        )
        .await
    }

    async fn list_entra_assignments(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<EntraAssignment>, StoreError> {
        self.timed(
            "list_entra_assignments",
            self.inner.list_entra_assignments(after, limit),
        )
        .await
    }

    async fn put_entra_assignment_with_events(
        &self,
        assignment: EntraAssignment,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "put_entra_assignment",
            self.inner
                .put_entra_assignment_with_events(assignment, events),
        )
        .await
    }

    async fn update_entra_assignments_with_events(
        &self,
        put: Vec<EntraAssignment>,
        remove: Vec<String>,
        events: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        self.timed(
            "update_entra_assignments",
            self.inner
                .update_entra_assignments_with_events(put, remove, events),
        )
        .await
    }

    async fn delete_entra_assignment_with_events(
        &self,
        object_id: String,
        events: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "delete_entra_assignment",
            self.inner
                .delete_entra_assignment_with_events(object_id, events),
        )
        .await
    }
}

#[async_trait::async_trait]
impl KeyStore for Metered {
    async fn init_keys(&self, seed: Option<AccessKey>, now: DateTime<Utc>) -> Result<(), KeyError> {
        self.timed("init_keys", self.inner.init_keys(seed, now))
            .await
    }

    async fn load_keys(&self, now: DateTime<Utc>) -> Result<ResourceKeys, KeyError> {
        self.timed("load_keys", self.inner.load_keys(now)).await
    }

    async fn key_version(&self) -> Result<KeyVersion, KeyError> {
        self.timed("key_version", self.inner.key_version()).await
    }

    async fn regenerate_access_key(&self, which: KeyKind) -> Result<(), KeyError> {
        self.timed(
            "regenerate_access_key",
            self.inner.regenerate_access_key(which),
        )
        .await
    }

    async fn rotate_signing_key(&self, now: DateTime<Utc>) -> Result<String, KeyError> {
        self.timed("rotate_signing_key", self.inner.rotate_signing_key(now))
            .await
    }

    async fn adopt_keys(
        &self,
        resource_id: ResourceId,
        keys: Option<TransferredKeys>,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        self.timed("adopt_keys", self.inner.adopt_keys(resource_id, keys, now))
            .await
    }

    async fn ensure_signing_alg(
        &self,
        alg: SigningAlg,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        self.timed(
            "ensure_signing_alg",
            self.inner.ensure_signing_alg(alg, now),
        )
        .await
    }
}

#[async_trait::async_trait]
impl TransferStore for Metered {
    async fn export_data(&self) -> Result<Snapshot, StoreError> {
        self.timed("export_data", self.inner.export_data()).await
    }

    async fn import_data(&self, snapshot: Snapshot) -> Result<Imported, StoreError> {
        self.timed("import_data", self.inner.import_data(snapshot))
            .await
    }
}

#[async_trait::async_trait]
impl ThrottleStore for Metered {
    async fn count_request(&self, group: &str, window_start: i64) -> Result<u64, StoreError> {
        self.timed(
            "count_request",
            self.inner.count_request(group, window_start),
        )
        .await
    }
}

#[async_trait::async_trait]
impl AuditStore for Metered {
    async fn append_event(&self, record: AuditRecord) -> Result<i64, StoreError> {
        self.timed("append_event", self.inner.append_event(record))
            .await
    }

    async fn latest_position(&self) -> Result<LogPosition, StoreError> {
        self.timed("latest_position", self.inner.latest_position())
            .await
    }

    async fn events_after(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.timed("events_after", self.inner.events_after(after, limit))
            .await
    }

    async fn newest_events(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.timed("newest_events", self.inner.newest_events(limit))
            .await
    }

    async fn forgotten_through(&self) -> Result<LogPosition, StoreError> {
        self.timed("forgotten_through", self.inner.forgotten_through())
            .await
    }

    async fn delete_events_before(&self, before_us: i64) -> Result<u64, StoreError> {
        self.timed(
            "delete_events_before",
            self.inner.delete_events_before(before_us),
        )
        .await
    }
}

#[async_trait::async_trait]
impl WebhookStore for Metered {
    async fn claim_webhook(
        &self,
        webhook: &str,
        holder: &str,
        now_us: i64,
        until_us: i64,
    ) -> Result<WebhookClaim, StoreError> {
        self.timed(
            "claim_webhook",
            self.inner.claim_webhook(webhook, holder, now_us, until_us),
        )
        .await
    }

    async fn webhook_delivered(
        &self,
        webhook: &str,
        holder: &str,
        position: LogPosition,
    ) -> Result<bool, StoreError> {
        self.timed(
            "webhook_delivered",
            self.inner.webhook_delivered(webhook, holder, position),
        )
        .await
    }
}

#[async_trait::async_trait]
impl HealthStore for Metered {
    async fn check_writable(&self) -> Result<(), StoreError> {
        self.timed("check_writable", self.inner.check_writable())
            .await
    }
}

#[async_trait::async_trait]
impl StoreStats for Metered {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    async fn count_identities(&self) -> Result<u64, StoreError> {
        self.timed("count_identities", self.inner.count_identities())
            .await
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        self.inner.pool_status()
    }

    fn group_commit_batches(&self) -> Option<Histogram> {
        self.inner.group_commit_batches()
    }
}
