//! What a verified token says, typed.

use callsign_common::identifier::CommunicationUserIdentifier;
use chrono::{DateTime, Utc};

/// A scope a token grants (ACS's names); one this crate does not know is kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// `chat`
    Chat,
    /// `chat.join`
    ChatJoin,
    /// `chat.join.limited`
    ChatJoinLimited,
    /// `voip`
    Voip,
    /// `voip.join`
    VoipJoin,
    /// A scope of a newer service.
    UnknownValue(String),
}

impl Scope {
    /// The scope of its wire name.
    pub fn parse(name: &str) -> Self {
        match name {
            "chat" => Scope::Chat,
            "chat.join" => Scope::ChatJoin,
            "chat.join.limited" => Scope::ChatJoinLimited,
            "voip" => Scope::Voip,
            "voip.join" => Scope::VoipJoin,
            other => Scope::UnknownValue(other.to_owned()),
        }
    }
}

/// A token whose signature, issuer resource and expiry checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedToken {
    /// The user it was issued for.
    pub user: CommunicationUserIdentifier,
    /// What it allows.
    pub scopes: Vec<Scope>,
    /// When it was issued, to the microsecond where the token says (`iatMicros`), else the second.
    pub issued_at: DateTime<Utc>,
    /// When it stops being valid.
    pub expires_on: DateTime<Utc>,
    /// The resource that issued it.
    pub resource_id: String,
    /// Its id (`jti`), when it has one.
    pub token_id: Option<String>,
}

/// The claims a verifier reads, borrowed from the decoded payload (the others are skipped):
/// the token's own claims type would allocate every string of it.
#[derive(serde::Deserialize)]
pub(crate) struct Claims<'a> {
    #[serde(borrow)]
    skypeid: &'a str,
    exp: i64,
    iat: i64,
    #[serde(rename = "iatMicros", default)]
    iat_micros: Option<i64>,
    #[serde(rename = "acsScope", default, borrow)]
    acs_scope: &'a str,
    #[serde(rename = "resourceId", default, borrow)]
    resource_id: &'a str,
    #[serde(default, borrow)]
    jti: Option<&'a str>,
}

impl VerifiedToken {
    /// The claims, typed; `None` when a time is out of range.
    pub(crate) fn from_claims(claims: Claims<'_>) -> Option<Self> {
        let issued_at = match claims.iat_micros {
            Some(micros) => DateTime::from_timestamp_micros(micros)?,
            None => DateTime::from_timestamp(claims.iat, 0)?,
        };
        Some(Self {
            user: CommunicationUserIdentifier::new(format!("8:{}", claims.skypeid)),
            scopes: claims
                .acs_scope
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Scope::parse)
                .collect(),
            issued_at,
            expires_on: DateTime::from_timestamp(claims.exp, 0)?,
            resource_id: claims.resource_id.to_owned(),
            token_id: claims.jti.map(str::to_owned),
        })
    }
}
