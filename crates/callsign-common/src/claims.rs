//! The claims of an ACS access token, and reading them without verifying the signature.
//!
//! Clients only need `exp` (and .NET reads `acsScope`); the server mints these claims and adds a
//! token id and a microsecond issue time so that revocation can be exact.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The payload of an ACS access token (docs/protocol.md §4). Field order is the service's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The raw id without its `8:` prefix (`acs:<resource>_<suffix>`).
    pub skypeid: String,
    /// An opaque service value; the real service sends 1792.
    #[serde(default)]
    pub scp: u32,
    /// `iat` as a string.
    #[serde(default)]
    pub csi: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Region code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rgn: Option<String>,
    /// Comma-joined scopes.
    #[serde(rename = "acsScope", default)]
    pub acs_scope: String,
    /// The resource that issued the token.
    #[serde(rename = "resourceId", default)]
    pub resource_id: String,
    /// The resource's data location.
    #[serde(
        rename = "resourceLocation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_location: Option<String>,
    /// Issue time, whole seconds since the epoch.
    pub iat: i64,
    /// callsign: a unique token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// callsign: the issue time in microseconds, so that a revocation in the same second is exact.
    #[serde(rename = "iatMicros", default, skip_serializing_if = "Option::is_none")]
    pub iat_micros: Option<i64>,
}

impl TokenClaims {
    /// The raw communication id the token was issued for (`8:` + `skypeid`).
    pub fn raw_id(&self) -> String {
        format!("8:{}", self.skypeid)
    }

    /// The scopes, split out of `acsScope`.
    pub fn scopes(&self) -> Vec<&str> {
        self.acs_scope
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The expiry as a time.
    pub fn expires_on(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.exp, 0)
    }

    /// Serializes the claims as a JWT payload segment that the official Python client can decode.
    ///
    /// That client decodes with the standard base64 alphabet, so the segment must hold no `-` or `_`.
    /// For ASCII input only the bytes `>`, `?`, `~` and DEL (at every third position) can produce
    /// those characters, so the JSON is made ASCII and those characters are written as `\uXXXX`
    /// escapes: the encoding is then clean by construction, with no retry loop.
    pub fn to_payload_segment(&self) -> String {
        let json = serde_json::to_string(self).expect("claims always serialize");
        URL_SAFE_NO_PAD.encode(escape_for_standard_base64(&json))
    }
}

/// Escapes every character that could make a URL-safe base64 encoding differ from the standard one.
fn escape_for_standard_base64(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !matches!(c, '>' | '?' | '~' | '\x7f') {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Why a token's claims could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenDecodeError {
    /// Not three dot-separated segments.
    #[error("the token is not a JWT (expected three dot-separated segments)")]
    NotAJwt,
    /// The payload segment is not base64url.
    #[error("the token payload is not valid base64url")]
    Base64,
    /// The payload is not the expected JSON.
    #[error("the token payload is not valid JSON claims: {0}")]
    Json(String),
}

/// The payload bytes of a JWT, decoded but not verified.
pub fn decode_payload(token: &str) -> Result<Vec<u8>, TokenDecodeError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenDecodeError::NotAJwt);
    };
    URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .or_else(|_| STANDARD_NO_PAD.decode(payload.trim_end_matches('=')))
        .map_err(|_| TokenDecodeError::Base64)
}

/// Reads a token's ACS claims without verifying its signature (what clients do to learn `exp`).
///
/// ```
/// use callsign_common::claims::decode_claims;
///
/// // header.payload.signature; only the payload is read.
/// let payload = r#"{"skypeid":"acs:r_u","scp":1792,"csi":"1767081769","exp":1767168169,"acsScope":"chat,voip","resourceId":"r","iat":1767081769}"#;
/// let token = format!("e30.{}.c2ln", base64_url(payload));
/// let claims = decode_claims(&token).unwrap();
/// assert_eq!(claims.raw_id(), "8:acs:r_u");
/// assert_eq!(claims.scopes(), ["chat", "voip"]);
/// assert_eq!(claims.expires_on().unwrap().timestamp(), 1767168169);
/// # fn base64_url(s: &str) -> String {
/// #     use base64::Engine;
/// #     base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
/// # }
/// ```
pub fn decode_claims(token: &str) -> Result<TokenClaims, TokenDecodeError> {
    serde_json::from_slice(&decode_payload(token)?)
        .map_err(|e| TokenDecodeError::Json(e.to_string()))
}

/// The expiry (`exp`) of any JWT, ACS or not, without verifying it.
pub fn decode_expiry(token: &str) -> Result<DateTime<Utc>, TokenDecodeError> {
    #[derive(Deserialize)]
    struct Exp {
        exp: i64,
    }
    let exp: Exp = serde_json::from_slice(&decode_payload(token)?)
        .map_err(|e| TokenDecodeError::Json(e.to_string()))?;
    DateTime::from_timestamp(exp.exp, 0).ok_or(TokenDecodeError::Json("exp out of range".into()))
}

/// A communication access token and its expiry. Debug never prints the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token.
    pub token: String,
    /// When it stops being valid.
    pub expires_on: DateTime<Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_on", &self.expires_on)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims(skypeid: &str) -> TokenClaims {
        TokenClaims {
            skypeid: skypeid.into(),
            scp: 1792,
            csi: "1767081769".into(),
            exp: 1_767_168_169,
            rgn: Some("amer".into()),
            acs_scope: "chat,voip".into(),
            resource_id: "bbbcbc1e-9f06-482a-b5d8-20e3f26ef0cd".into(),
            resource_location: Some("unitedstates".into()),
            iat: 1_767_081_769,
            jti: Some("j".into()),
            iat_micros: Some(1_767_081_769_000_001),
        }
    }

    #[test]
    fn payload_round_trips_and_reads_scopes() {
        let c = claims("acs:bbbcbc1e-9f06-482a-b5d8-20e3f26ef0cd_x");
        let token = format!("h.{}.s", c.to_payload_segment());
        let back = decode_claims(&token).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.scopes(), vec!["chat", "voip"]);
        assert_eq!(
            back.raw_id(),
            "8:acs:bbbcbc1e-9f06-482a-b5d8-20e3f26ef0cd_x"
        );
        assert_eq!(decode_expiry(&token).unwrap().timestamp(), 1_767_168_169);
    }

    #[test]
    fn decode_rejects_non_jwts() {
        assert_eq!(decode_claims("abc"), Err(TokenDecodeError::NotAJwt));
        assert_eq!(decode_claims("a.b.c.d"), Err(TokenDecodeError::NotAJwt));
        assert_eq!(decode_claims("a.!!!.c"), Err(TokenDecodeError::Base64));
        assert!(matches!(
            decode_claims("a.e30.c"),
            Err(TokenDecodeError::Json(_))
        ));
    }

    #[test]
    fn debug_hides_token() {
        let t = AccessToken {
            token: "secret.token.value".into(),
            expires_on: Utc::now(),
        };
        assert!(!format!("{t:?}").contains("secret"));
    }

    proptest! {
        #[test]
        fn payload_segment_is_standard_base64_safe(id in any::<String>(), scope in "[ -~]{0,40}") {
            let mut c = claims(&id);
            c.acs_scope = scope;
            let segment = c.to_payload_segment();
            prop_assert!(!segment.contains('-') && !segment.contains('_'));
            let raw = STANDARD_NO_PAD.decode(&segment).unwrap();
            prop_assert!(raw.is_ascii());
            let back: TokenClaims = serde_json::from_slice(&raw).unwrap();
            prop_assert_eq!(back, c);
        }
    }
}
