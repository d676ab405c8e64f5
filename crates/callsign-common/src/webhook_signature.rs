//! Webhook signatures (docs/webhooks.md): the server signs each delivery with the webhook's
//! secret, and a receiver checks it before trusting the body.
//!
//! The signature is HMAC-SHA256, keyed with the secret's UTF-8 bytes, over the timestamp header's
//! text, a `.`, and the body's bytes exactly as received; it travels as `v1=<base64>`. The
//! timestamp is signed so that a captured delivery cannot be replayed later: a receiver refuses
//! one whose timestamp is further than [`TOLERANCE`] from its clock.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The event's id: the same on every attempt, so a receiver can tell a retry from a new event.
pub const ID_HEADER: &str = "callsign-webhook-id";
/// When this attempt was signed, in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "callsign-webhook-timestamp";
/// `v1=<base64 HMAC-SHA256>`; a receiver accepts the delivery if any `v1=` value matches.
pub const SIGNATURE_HEADER: &str = "callsign-webhook-signature";

/// How far a delivery's timestamp may be from the receiver's clock, in seconds.
pub const TOLERANCE: i64 = 300;

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_bytes(&timestamp.to_string(), body));
    format!("v1={}", STANDARD.encode(tag.as_ref()))
}

/// Why a delivery is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The timestamp header is not a number of seconds.
    #[error("the webhook timestamp is not a number")]
    BadTimestamp,
    /// The timestamp is further than [`TOLERANCE`] from now: stale, or replayed.
    #[error("the webhook timestamp is {0} s away from now")]
    OutsideTolerance(i64),
    /// No `v1=` signature matches the body.
    #[error("no webhook signature matches")]
    Mismatch,
}

/// Checks a delivery: `timestamp` and `signature` are the headers' values, `body` the bytes
/// received, `now` the receiver's time in Unix seconds. Signatures are compared in constant time.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now.saturating_sub(sent);
    if skew.abs() > TOLERANCE {
        return Err(SignatureError::OutsideTolerance(skew));
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signed = signed_bytes(timestamp.trim(), body);
    let matches = signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|tag| STANDARD.decode(tag).ok())
        .any(|tag| hmac::verify(&key, &signed, &tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `<timestamp>.<body>`.
fn signed_bytes(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    signed
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-a-test-secret-of-some-length";

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let body = br#"{"id":7,"type":"identity.created"}"#;
        let signature = sign(SECRET, 1_700_000_000, body);
        assert!(signature.starts_with("v1="));
        assert_eq!(
            verify(SECRET, "1700000000", &signature, body, 1_700_000_010),
            Ok(())
        );
        let tampered = br#"{"id":8,"type":"identity.created"}"#;
        assert_eq!(
            verify(SECRET, "1700000000", &signature, tampered, 1_700_000_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, "1700000001", &signature, body, 1_700_000_010),
            Err(SignatureError::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(
            verify(
                b"another-secret-entirely",
                "1700000000",
                &signature,
                body,
                1_700_000_010
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_malformed_deliveries_are_refused() {
        let body = b"{}";
        let signature = sign(SECRET, 1_700_000_000, body);
        assert_eq!(
            verify(SECRET, "1700000000", &signature, body, 1_700_000_301),
            Err(SignatureError::OutsideTolerance(301))
        );
        assert_eq!(
            verify(SECRET, "soon", &signature, body, 1_700_000_000),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(SECRET, "1700000000", "v1=not base64!", body, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn one_matching_signature_among_several_is_enough() {
        let body = b"{}";
        let good = sign(SECRET, 1_700_000_000, body);
        let other = sign(b"the-previous-secret-value", 1_700_000_000, body);
        let both = format!("{other}, {good}");
        assert_eq!(
            verify(SECRET, "1700000000", &both, body, 1_700_000_000),
            Ok(())
        );
    }
}
