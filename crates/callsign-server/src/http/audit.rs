//! Which audit event each successful request makes (docs/protocol.md §9), and recording it
//! before the response is sent. The operations are known from the route. A change's events are
//! drafted here ([`pending`]) and stored by the store in the change's own transaction; the
//! domain fills in what only it knows (a new identity's id). Events without a change (an
//! issued token, an exchange) are recorded here once the outcome is known ([`record`]); what
//! only the handler knows of those (whose token was exchanged) it leaves in the response's
//! extensions.

use super::error::ApiError;
use super::routes::AcsOperation;
use super::AppState;
use crate::audit::{Actor, EventType, PendingEvents, RequestOrigin};
use crate::auth::EntraClaims;
use axum::response::Response;
use serde_json::{json, Map, Value};

/// Whose token an exchange granted an ACS token for.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The Teams or Entra user's object id.
    pub oid: Option<String>,
    /// The client application the token was issued to.
    pub appid: Option<String>,
    /// The ACS identity the token is for, when the exchange answers with one.
    pub identity: Option<String>,
}

impl Granted {
    /// What the audit trail records of an exchanged token's claims: never the token.
    pub fn of(claims: &EntraClaims, identity: Option<String>) -> Self {
        Self {
            oid: claims.oid.clone(),
            appid: claims.appid.clone().or_else(|| claims.azp.clone()),
            identity,
        }
    }

    /// The audit trail's actor for a bearer exchange: the token's own user and client app.
    fn actor(&self) -> Actor {
        Actor::Bearer {
            oid: self.oid.clone(),
            appid: self.appid.clone(),
        }
    }
}

/// A bearer exchange refused although its token verified (no assignment, say): whose token it
/// was, and the error code the client got.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The token's caller.
    pub caller: Granted,
    /// The ACS error code of the answer.
    pub code: &'static str,
}

/// What an operation records when it succeeds: its type, subject and details.
pub(super) struct Planned {
    event_type: EventType,
    subject: Option<String>,
    details: Map<String, Value>,
}

impl Planned {
    /// Whether the event is stored with the operation's change rather than after it.
    fn stored_with_change(&self) -> bool {
        matches!(
            self.event_type,
            EventType::IdentityCreated
                | EventType::IdentityDeleted
                | EventType::IdentityTokensRevoked
                | EventType::AssignmentChanged
        )
    }
}

/// The events to store with `planned`'s change: its own, and for a create that issues a token
/// (when issued tokens are recorded) `token.issued` after it. None for other operations.
pub(super) fn pending(
    state: &AppState,
    planned: Option<&Planned>,
    origin: &RequestOrigin,
) -> PendingEvents {
    let Some(planned) = planned.filter(|p| p.stored_with_change()) else {
        return PendingEvents::none();
    };
    let mut event = state
        .audit
        .event(planned.event_type, planned.subject.clone(), origin);
    event.details = planned.details.clone();
    let mut events = vec![event];
    if planned.event_type == EventType::IdentityCreated && state.audit.records_token_issued() {
        events.push(state.audit.event(EventType::TokenIssued, None, origin));
    }
    PendingEvents::new(events)
}

fn planned(event_type: EventType, subject: Option<&str>, details: Value) -> Option<Planned> {
    Some(Planned {
        event_type,
        subject: subject.map(str::to_owned),
        details: match details {
            Value::Object(map) => map,
            _ => Map::new(),
        },
    })
}

/// The event `op` makes if it succeeds; `None` for reads. `body` is the request's (a PATCH of
/// Entra assignments names its objects there).
pub(super) fn plan(state: &AppState, op: &AcsOperation, body: &[u8]) -> Option<Planned> {
    use AcsOperation as Op;
    match op {
        Op::CreateIdentity => planned(EventType::IdentityCreated, None, json!({})),
        Op::DeleteIdentity(id) => planned(EventType::IdentityDeleted, Some(id), json!({})),
        Op::RevokeTokens(id) => planned(EventType::IdentityTokensRevoked, Some(id), json!({})),
        Op::IssueToken(id) | Op::IssueTokenLegacy(id) if state.audit.records_token_issued() => {
            planned(EventType::TokenIssued, Some(id), json!({}))
        }
        Op::TeamsUserExchange => planned(
            EventType::ExchangeGranted,
            None,
            json!({"exchange": "teamsUser"}),
        ),
        Op::TeamsExtensionExchange => planned(
            EventType::ExchangeGranted,
            None,
            json!({"exchange": "teamsExtension"}),
        ),
        Op::EntraExchange => planned(
            EventType::ExchangeGranted,
            None,
            json!({"exchange": "entra"}),
        ),
        Op::PutTeamsExtensionAssignment(tenant, object) => planned(
            EventType::AssignmentChanged,
            Some(object),
            json!({"kind": "teamsExtension", "tenantId": tenant, "change": "put"}),
        ),
        Op::DeleteTeamsExtensionAssignment(tenant, object) => planned(
            EventType::AssignmentChanged,
            Some(object),
            json!({"kind": "teamsExtension", "tenantId": tenant, "change": "delete"}),
        ),
        Op::PutEntraAssignment(object) => planned(
            EventType::AssignmentChanged,
            Some(object),
            json!({"kind": "entra", "change": "put"}),
        ),
        Op::DeleteEntraAssignment(object) => planned(
            EventType::AssignmentChanged,
            Some(object),
            json!({"kind": "entra", "change": "delete"}),
        ),
        Op::UpdateEntraAssignments => {
            // The handler accepted the body, so it is an object keyed by object id.
            let objects: Vec<String> = serde_json::from_slice::<Map<String, Value>>(body)
                .map(|map| map.keys().cloned().collect())
                .unwrap_or_default();
            planned(
                EventType::AssignmentChanged,
                None,
                json!({"kind": "entra", "change": "patch", "objectIds": objects}),
            )
        }
        Op::GetIdentity(_)
        | Op::IssueToken(_)
        | Op::IssueTokenLegacy(_)
        | Op::GetTeamsExtensionAssignment(..)
        | Op::ListEntraAssignments
        | Op::GetEntraAssignment(_) => None,
    }
}

/// Records the event of an operation's outcome, before its response goes out: the planned one
/// when it succeeded (unless the change stored it), `exchange.refused` when an exchange was
/// refused. A failure to record turns the answer into a 503: nothing goes unrecorded without
/// the client hearing of it.
pub(super) async fn record(
    state: &AppState,
    planned: Option<Planned>,
    mut origin: RequestOrigin,
    outcome: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let Some(planned) = planned else {
        return outcome;
    };
    if planned.stored_with_change() {
        if matches!(&outcome, Ok(response) if response.status().is_success()) {
            state.audit.appended();
        }
        return outcome;
    }
    let exchange = planned.event_type == EventType::ExchangeGranted;
    let (event_type, mut subject, mut details) =
        (planned.event_type, planned.subject, planned.details);
    // What the response tells, taken out before awaiting: a response is not `Sync`.
    let succeeded = match &outcome {
        Ok(response) if response.status().is_success() => {
            Some(response.extensions().get::<Granted>().cloned())
        }
        _ => None,
    };
    if let Some(granted) = succeeded {
        if let Some(granted) = granted {
            subject = granted.oid.clone();
            if let Some(identity) = granted.identity.clone() {
                details.insert("identity".into(), identity.into());
            }
            // A bearer exchange is authorised by the user's own token: they are the actor.
            if matches!(origin.actor, Actor::Unauthenticated) {
                origin.actor = granted.actor();
            } else if let Some(appid) = granted.appid {
                details.insert("appId".into(), appid.into());
            }
        }
        let mut event = state.audit.event(event_type, subject, &origin);
        event.details = details;
        state.audit.record(event).await.map_err(|e| {
            tracing::error!(error = %e, "recording an audit event failed");
            ApiError::unavailable()
        })?;
        return outcome;
    }
    let refused = match &outcome {
        Err(error) if exchange && error.status.is_client_error() => {
            Some((error.status.as_u16(), error.code, None))
        }
        Ok(response) if exchange && response.status().is_client_error() => {
            let refused = response.extensions().get::<Refused>().cloned();
            refused.map(|r| (response.status().as_u16(), r.code, Some(r.caller)))
        }
        _ => None,
    };
    if let Some((status, code, caller)) = refused {
        details.insert("status".into(), status.into());
        details.insert("code".into(), code.into());
        // A token that verified names who was refused.
        let subject = caller.as_ref().and_then(|c| c.oid.clone());
        if let Some(caller) = caller {
            origin.actor = caller.actor();
        }
        let mut event = state
            .audit
            .event(EventType::ExchangeRefused, subject, &origin);
        event.details = details;
        if let Err(e) = state.audit.record(event).await {
            // The refusal stands either way; the client hears it.
            tracing::error!(error = %e, "recording an audit event failed");
        }
    }
    outcome
}
