//! What the identity operations take and return.

use crate::error::{IdentityError, Result};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Serde for a service enum with an `UnknownValue(String)`: known values by their `as_str`, read
/// in any case; anything else kept verbatim.
macro_rules! string_enum {
    ($name:ident, [$($known:ident),*]) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Ok([$($name::$known),*]
                    .into_iter()
                    .find(|known| known.as_str().eq_ignore_ascii_case(&text))
                    .unwrap_or($name::UnknownValue(text)))
            }
        }
    };
}
pub(crate) use string_enum;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenScope {
    /// Full access to chat.
    Chat,
    /// Full access to calling.
    Voip,
    /// Join existing chats only (api-version 2023-10-01 and later).
    ChatJoin,
    /// Join chats without managing participants (2023-10-01 and later).
    ChatJoinLimited,
    /// Join existing calls only (2023-10-01 and later).
    VoipJoin,
}

impl TokenScope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Chat => "chat",
            TokenScope::Voip => "voip",
            TokenScope::ChatJoin => "chat.join",
            TokenScope::ChatJoinLimited => "chat.join.limited",
            TokenScope::VoipJoin => "voip.join",
        }
    }
}

impl std::str::FromStr for TokenScope {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self> {
        [
            TokenScope::Chat,
            TokenScope::Voip,
            TokenScope::ChatJoin,
            TokenScope::ChatJoinLimited,
            TokenScope::VoipJoin,
        ]
        .into_iter()
        .find(|scope| scope.as_str() == s)
        .ok_or_else(|| IdentityError::InvalidArgument(format!("unknown scope '{s}'")))
    }
}

impl serde::Serialize for TokenScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A token lifetime: whole minutes from one hour to 24 hours, checked before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenExpiry(u16);

impl TokenExpiry {
    /// The shortest lifetime the service issues.
    pub const MIN: Duration = Duration::from_secs(3600);
    /// The longest lifetime, and the service's default.
    pub const MAX: Duration = Duration::from_secs(86_400);

    /// A lifetime of `duration`, which must be whole minutes within [1 h, 24 h].
    pub fn new(duration: Duration) -> Result<Self> {
        let secs = duration.as_secs();
        if duration.subsec_nanos() != 0 || !secs.is_multiple_of(60) {
            return Err(IdentityError::InvalidArgument(format!(
                "expires_in must be whole minutes, got {duration:?}"
            )));
        }
        if !(Self::MIN..=Self::MAX).contains(&duration) {
            return Err(IdentityError::InvalidArgument(format!(
                "expires_in must be within [1 h, 24 h], got {} minutes",
                secs / 60
            )));
        }
        Ok(Self((secs / 60) as u16))
    }

    /// The lifetime in minutes, as sent (`expiresInMinutes`).
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl TryFrom<Duration> for TokenExpiry {
    type Error = IdentityError;
    fn try_from(d: Duration) -> Result<Self> {
        Self::new(d)
    }
}

/// A communication user as `get_user` (preview) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommunicationUserDetails {
    /// The raw id.
    pub id: String,
    /// The custom id given at creation.
    pub custom_id: Option<String>,
    /// When a token was last issued.
    pub last_token_issued_at: Option<DateTime<Utc>>,
}

/// What a Teams extension assignment names. A value this client does not know is kept as
/// [`UnknownValue`](Self::UnknownValue) and sent back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TeamsExtensionPrincipalType {
    /// A Teams user.
    User,
    /// A Teams resource account (a call queue or auto attendant).
    ResourceAccount,
    /// Any other value, verbatim.
    UnknownValue(String),
}

impl TeamsExtensionPrincipalType {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User => "user",
            Self::ResourceAccount => "resourceAccount",
            Self::UnknownValue(value) => value,
        }
    }
}

string_enum!(TeamsExtensionPrincipalType, [User, ResourceAccount]);

/// A Teams extension assignment (api-version 2025-06-30): the Entra principal `object_id` of
/// `tenant_id` may exchange its tokens, from any client or only from `client_ids`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TeamsExtensionAssignment {
    /// The user's or resource account's object id.
    pub object_id: String,
    /// The Entra tenant.
    pub tenant_id: String,
    /// What `object_id` names.
    pub principal_type: TeamsExtensionPrincipalType,
    /// Client application ids allowed to exchange; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ids: Option<Vec<String>>,
}

/// What `set_teams_extension_assignment` creates or replaces.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TeamsExtensionAssignmentRequest {
    /// What the object id names.
    pub principal_type: TeamsExtensionPrincipalType,
    /// Client application ids allowed to exchange; `None`: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ids: Option<Vec<String>>,
}

impl TeamsExtensionAssignmentRequest {
    /// An assignment of `principal_type`, for the client applications `client_ids` (`None`: any).
    pub fn new(
        principal_type: TeamsExtensionPrincipalType,
        client_ids: Option<Vec<String>>,
    ) -> Self {
        Self {
            principal_type,
            client_ids,
        }
    }
}

/// callsign's answer to token introspection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[non_exhaustive]
pub struct TokenIntrospection {
    /// Whether the token is valid now.
    pub active: bool,
    /// The raw id it was issued for (active tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Its scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Expires at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Why an inactive token is inactive: `expired`, `revoked`, `identityNotFound`,
    /// `unknownKey`, `badSignature`, `otherResource` or `malformed` (servers may add others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One event of callsign's change feed (`read_events`, a callsign extension): what changed, when,
/// to what and who asked — the server's audit event.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChangeEvent {
    /// Its id: increasing in the order events were stored, never reused.
    pub id: i64,
    /// Its stable type name: `identity.created`, `identity.deleted`, `identity.tokensRevoked`,
    /// `assignment.changed`, `accessKey.regenerated`, `signingKey.rotated`, `data.reset`,
    /// `data.imported`, … (servers may add others).
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened.
    #[serde(with = "event_time")]
    pub time: DateTime<Utc>,
    /// The resource it happened on.
    pub resource: String,
    /// The identity or object it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Who asked (`{"kind": "accessKey", "which": "primary"}`, …).
    pub actor: serde_json::Value,
    /// Type-specific facts, such as a revocation's `revokedBeforeMicros`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Continue after this event with this cursor.
    pub cursor: String,
}

/// An event's time on the wire: RFC 3339, to the microsecond.
mod event_time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        callsign_common::time_format::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a time: {text:?}")))
    }
}

/// One page of the change feed.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[non_exhaustive]
pub struct EventsPage {
    /// The events after the cursor asked for, in the order they were committed.
    pub value: Vec<ChangeEvent>,
    /// Continue from here: the last event's cursor, or the one asked for when there was none.
    pub cursor: String,
}

/// A user as callsign's identity list reports it (`list_users`, a callsign extension).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "ListedUserWire")]
#[non_exhaustive]
pub struct ListedUser {
    /// The raw id.
    pub id: String,
    /// The custom id given at creation.
    pub custom_id: Option<String>,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When a token was last issued.
    pub last_token_issued_at: Option<DateTime<Utc>>,
    /// The user's revocation cut-off: tokens issued before it are revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One page of `list_users`: what the pager's items come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ListUsersPage {
    /// The users of the page, ordered by id.
    pub value: Vec<ListedUser>,
    /// Where the next page is (a path on the same endpoint), while more may follow.
    #[serde(default)]
    pub next_link: Option<String>,
}

crate::paging::value_page!(ListUsersPage, ListedUser);

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedUserWire {
    id: String,
    #[serde(default)]
    custom_id: Option<String>,
    created_at: String,
    #[serde(default)]
    last_token_issued_at: Option<String>,
    #[serde(default)]
    revoked_at: Option<String>,
}

impl TryFrom<ListedUserWire> for ListedUser {
    type Error = String;
    fn try_from(w: ListedUserWire) -> std::result::Result<Self, String> {
        let time = |field: &str, value: &str| {
            callsign_common::time_format::parse(value)
                .ok_or_else(|| format!("{field} is not an RFC 3339 time: {value:?}"))
        };
        let optional =
            |field: &str, value: Option<String>| value.map(|v| time(field, &v)).transpose();
        Ok(Self {
            created_at: time("createdAt", &w.created_at)?,
            last_token_issued_at: optional("lastTokenIssuedAt", w.last_token_issued_at)?,
            revoked_at: optional("revokedAt", w.revoked_at)?,
            id: w.id,
            custom_id: w.custom_id,
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdentityWire {
    pub id: String,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub last_token_issued_at: Option<String>,
}

impl From<IdentityWire> for CommunicationUserDetails {
    fn from(w: IdentityWire) -> Self {
        Self {
            id: w.id,
            custom_id: w.custom_id,
            last_token_issued_at: w
                .last_token_issued_at
                .as_deref()
                .and_then(callsign_common::time_format::parse),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenWire {
    pub token: String,
    pub expires_on: String,
}

impl TokenWire {
    pub fn into_access_token(self) -> Result<callsign_common::AccessToken> {
        let expires_on =
            callsign_common::time_format::parse(&self.expires_on).ok_or_else(|| {
                IdentityError::Transport(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::DataConversion,
                    "expiresOn is not an RFC 3339 time",
                ))
            })?;
        Ok(callsign_common::AccessToken {
            token: self.token,
            expires_on,
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateWire {
    pub identity: IdentityWire,
    #[serde(default)]
    pub access_token: Option<TokenWire>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_bounds_are_checked_before_sending() {
        assert_eq!(
            TokenExpiry::new(Duration::from_secs(3600))
                .unwrap()
                .minutes(),
            60
        );
        assert_eq!(
            TokenExpiry::new(Duration::from_secs(86_400))
                .unwrap()
                .minutes(),
            1440
        );
        assert_eq!(
            TokenExpiry::new(Duration::from_secs(5400))
                .unwrap()
                .minutes(),
            90
        );
        for bad in [3540, 86_460, 0, 3601] {
            assert!(matches!(
                TokenExpiry::new(Duration::from_secs(bad)),
                Err(IdentityError::InvalidArgument(_))
            ));
        }
    }

    #[test]
    fn listed_users_read_the_wire_times() {
        let page: ListUsersPage = serde_json::from_str(
            r#"{"value":[
                {"id":"8:acs:r_1","createdAt":"2025-04-14T15:32:35+00:00"},
                {"id":"8:acs:r_2","customId":"bob","createdAt":"2025-04-14T15:32:35+00:00",
                 "lastTokenIssuedAt":"2025-04-14T15:33:00Z","revokedAt":"2025-04-14T15:34:00+00:00"}
            ],"nextLink":"/callsign/identities?continuationToken=x"}"#,
        )
        .unwrap();
        assert_eq!(page.value[0].custom_id, None);
        assert_eq!(page.value[0].created_at.timestamp(), 1_744_644_755);
        assert_eq!(page.value[0].last_token_issued_at, None);
        let second = &page.value[1];
        assert_eq!(second.custom_id.as_deref(), Some("bob"));
        assert_eq!(
            second.last_token_issued_at.unwrap().timestamp(),
            1_744_644_780
        );
        assert_eq!(second.revoked_at.unwrap().timestamp(), 1_744_644_840);
        assert!(page.next_link.is_some());
        let bad = serde_json::from_str::<ListedUser>(r#"{"id":"x","createdAt":"yesterday"}"#);
        assert!(bad.unwrap_err().to_string().contains("createdAt"));
    }

    #[test]
    fn scopes_parse_from_wire_names() {
        assert_eq!(
            "chat.join.limited".parse::<TokenScope>().unwrap(),
            TokenScope::ChatJoinLimited
        );
        assert!("email".parse::<TokenScope>().is_err());
    }
}
