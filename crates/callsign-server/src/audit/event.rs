//! One audit event: what changed, when, on which resource, to what, and who asked
//! (docs/protocol.md §9). The JSON shape is the same in every sink and in the stored log, so
//! that the change feed and webhooks can later serve these events unchanged.
//!
//! An event never holds a secret: no access key, token or signature, only which key signed
//! and a bearer's `oid`/`appid`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The stable type names of events. Consumers match on these strings: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// An identity was created (`subject`: its id).
    #[serde(rename = "identity.created")]
    IdentityCreated,
    /// An identity was deleted (`subject`: its id).
    #[serde(rename = "identity.deleted")]
    IdentityDeleted,
    /// An identity's tokens were revoked (`subject`: its id).
    #[serde(rename = "identity.tokensRevoked")]
    IdentityTokensRevoked,
    /// A token was issued for an identity (`subject`: its id); only with `[audit] token_issued`.
    #[serde(rename = "token.issued")]
    TokenIssued,
    /// A Teams token was exchanged for an ACS token (`subject`: the Teams user's id).
    #[serde(rename = "exchange.granted")]
    ExchangeGranted,
    /// An exchange was refused (`subject`: the Teams user's id when known).
    #[serde(rename = "exchange.refused")]
    ExchangeRefused,
    /// A Teams extension or Entra assignment was put, changed or deleted.
    #[serde(rename = "assignment.changed")]
    AssignmentChanged,
    /// An access key was regenerated (`subject`: `primary` or `secondary`).
    #[serde(rename = "accessKey.regenerated")]
    AccessKeyRegenerated,
    /// The signing key was rotated (`subject`: the new key's `kid`).
    #[serde(rename = "signingKey.rotated")]
    SigningKeyRotated,
    /// Every identity and assignment was wiped (`POST /callsign/:reset`).
    #[serde(rename = "data.reset")]
    DataReset,
    /// Identities and assignments were imported (`callsign import`, `serve --seed`).
    #[serde(rename = "data.imported")]
    DataImported,
}

impl EventType {
    /// Every type, in the order of the issue's list.
    pub const ALL: [EventType; 11] = [
        Self::IdentityCreated,
        Self::IdentityDeleted,
        Self::IdentityTokensRevoked,
        Self::TokenIssued,
        Self::ExchangeGranted,
        Self::ExchangeRefused,
        Self::AssignmentChanged,
        Self::AccessKeyRegenerated,
        Self::SigningKeyRotated,
        Self::DataReset,
        Self::DataImported,
    ];

    /// The stable name (`identity.created`, …), as stored and as queried.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdentityCreated => "identity.created",
            Self::IdentityDeleted => "identity.deleted",
            Self::IdentityTokensRevoked => "identity.tokensRevoked",
            Self::TokenIssued => "token.issued",
            Self::ExchangeGranted => "exchange.granted",
            Self::ExchangeRefused => "exchange.refused",
            Self::AssignmentChanged => "assignment.changed",
            Self::AccessKeyRegenerated => "accessKey.regenerated",
            Self::SigningKeyRotated => "signingKey.rotated",
            Self::DataReset => "data.reset",
            Self::DataImported => "data.imported",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of the two access keys signed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeySlot {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

impl KeySlot {
    /// Its name as events write it: `primary` or `secondary`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySlot::Primary => "primary",
            KeySlot::Secondary => "secondary",
        }
    }
}

impl From<crate::keys::access::KeyKind> for KeySlot {
    fn from(kind: crate::keys::access::KeyKind) -> Self {
        match kind {
            crate::keys::access::KeyKind::Primary => Self::Primary,
            crate::keys::access::KeyKind::Secondary => Self::Secondary,
        }
    }
}

/// Who caused an event: the answer to "who revoked user X".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Actor {
    /// A request signed (HMAC) with one of the resource's access keys.
    AccessKey {
        /// Which key.
        which: KeySlot,
    },
    /// A request with a trusted issuer's bearer token: the caller's object id and client app.
    Bearer {
        /// The token's `oid`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        oid: Option<String>,
        /// The token's `appid` (v1) or `azp` (v2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        appid: Option<String>,
    },
    /// The `callsign` CLI on the server's machine (import, key regeneration and rotation).
    Operator,
    /// The web console (`/console`), in a session signed in with one of the access keys.
    Console {
        /// The key the session was signed in with.
        which: KeySlot,
    },
    /// A caller whose credentials did not verify (a refused exchange).
    Unauthenticated,
}

/// One event of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Its position in the log, assigned when it is stored: increasing, never reused. 0 before.
    #[serde(default)]
    pub id: i64,
    /// When it happened, by the server's clock (RFC 3339, UTC, to the microsecond at most).
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The resource's id (`callsign keys show` prints it), as a cluster's nodes share it.
    pub resource: String,
    /// The identity or object changed: an identity's id, an assignment's object id, a key's
    /// name; absent for whole-store events (`data.reset`, `data.imported`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Who asked.
    pub actor: Actor,
    /// The request's `x-ms-client-request-id`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// The client's address (`ip:port`), for requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    /// Type-specific fields (an assignment's `kind` and `tenantId`, a refusal's `reason`, …);
    /// never a secret.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Event times as RFC 3339 strings (`2026-01-02T03:04:05.123456Z`).
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Who sent a request and from where: what every event caused by a request records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The authenticated caller.
    pub actor: Actor,
    /// `x-ms-client-request-id`.
    pub client_request_id: Option<String>,
    /// The peer address of the connection.
    pub remote_address: Option<SocketAddr>,
}

impl RequestOrigin {
    /// The operator at the machine: no request id, no address.
    pub fn operator() -> Self {
        Self {
            actor: Actor::Operator,
            client_request_id: None,
            remote_address: None,
        }
    }
}

impl AuditEvent {
    /// An event of `event_type` on `subject`, caused by `origin`, at `time`; the resource is
    /// filled in by [`super::AuditLog`].
    pub fn new(
        time: DateTime<Utc>,
        event_type: EventType,
        subject: Option<String>,
        origin: &RequestOrigin,
    ) -> Self {
        Self {
            id: 0,
            time,
            event_type,
            resource: String::new(),
            subject,
            actor: origin.actor.clone(),
            client_request_id: origin.client_request_id.clone(),
            remote_address: origin.remote_address.map(|a| a.to_string()),
            details: serde_json::Map::new(),
        }
    }

    /// Adds a type-specific field.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The event as the store keeps it: its JSON without the id, which the store assigns.
    pub fn to_record(&self) -> crate::store::AuditRecord {
        let mut json = self.to_json_line();
        // `id` is the first field and 0 until stored: cut it from the text rather than building
        // a `Value` to remove it from (a tenth of a revoke's time on the runtime thread).
        const UNNUMBERED: &str = r#"{"id":0,"#;
        if json.starts_with(UNNUMBERED) {
            json.replace_range(1..UNNUMBERED.len(), "");
        } else {
            let mut value = serde_json::to_value(self).expect("an event always serialises");
            if let Some(fields) = value.as_object_mut() {
                fields.remove("id");
            }
            json = value.to_string();
        }
        crate::store::AuditRecord {
            id: 0,
            commit: 0,
            time_us: self.time.timestamp_micros(),
            event_type: self.event_type.as_str().to_owned(),
            subject: self.subject.clone(),
            json,
        }
    }

    /// The event as one JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an event always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_the_stable_ones() {
        for t in EventType::ALL {
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, serde_json::Value::String(t.as_str().into()));
            assert_eq!(serde_json::from_value::<EventType>(json).unwrap(), t);
        }
        assert_eq!(
            EventType::IdentityTokensRevoked.as_str(),
            "identity.tokensRevoked"
        );
    }

    #[test]
    fn the_json_shape_is_the_documented_one() {
        let origin = RequestOrigin {
            actor: Actor::AccessKey {
                which: KeySlot::Secondary,
            },
            client_request_id: Some("req-1".into()),
            remote_address: Some("127.0.0.1:4000".parse().unwrap()),
        };
        let mut event = AuditEvent::new(
            "2026-01-02T03:04:05Z".parse().unwrap(),
            EventType::AssignmentChanged,
            Some("oid-1".into()),
            &origin,
        )
        .with("kind", "entra");
        event.id = 7;
        event.resource = "res".into();
        let json: serde_json::Value = serde_json::from_str(&event.to_json_line()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": 7,
                "time": "2026-01-02T03:04:05Z",
                "type": "assignment.changed",
                "resource": "res",
                "subject": "oid-1",
                "actor": {"kind": "accessKey", "which": "secondary"},
                "clientRequestId": "req-1",
                "remoteAddress": "127.0.0.1:4000",
                "details": {"kind": "entra"}
            })
        );
        let bearer = serde_json::to_value(Actor::Bearer {
            oid: Some("o".into()),
            appid: None,
        })
        .unwrap();
        assert_eq!(bearer, serde_json::json!({"kind": "bearer", "oid": "o"}));
        assert_eq!(
            serde_json::to_value(Actor::Operator).unwrap(),
            serde_json::json!({"kind": "operator"})
        );
        let back: AuditEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_record_holds_the_event_without_its_id() {
        let origin = RequestOrigin::operator();
        let time = "2026-01-02T03:04:05Z".parse().unwrap();
        let event = AuditEvent::new(
            time,
            EventType::IdentityTokensRevoked,
            Some("8:acs:a".into()),
            &origin,
        )
        .with("stamp", 5);
        let mut numbered = event.clone();
        numbered.id = 7;
        for event in [event, numbered] {
            let mut expected: serde_json::Value =
                serde_json::from_str(&event.to_json_line()).unwrap();
            expected.as_object_mut().unwrap().remove("id");
            let record = event.to_record();
            let stored: serde_json::Value = serde_json::from_str(&record.json).unwrap();
            assert_eq!(stored, expected, "{}", record.json);
            assert_eq!(record.subject.as_deref(), Some("8:acs:a"));
        }
    }
}
