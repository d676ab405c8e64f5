//! Checking callsign's webhook deliveries in a receiver (docs/webhooks.md): the signature over
//! the timestamp and the body, and the timestamp's age, before the body is trusted.
//!
//! ```
//! use axum::http::{HeaderMap, StatusCode};
//!
//! /// An axum handler for `POST /callsign-events`.
//! async fn receive(headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
//!     let secret = b"the webhook's secret from the config";
//!     let Ok(delivery) = callsign_verify::webhook::verify_delivery(secret, &headers, &body) else {
//!         return StatusCode::BAD_REQUEST;
//!     };
//!     // Deliveries come at least once: skip an event id already handled.
//!     println!("event {}: {}", delivery.event_id, String::from_utf8_lossy(&body));
//!     StatusCode::NO_CONTENT
//! }
//! ```

use axum::http::HeaderMap;
pub use callsign_common::webhook_signature::{
    verify, SignatureError, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, TOLERANCE,
};

/// A delivery whose signature and timestamp checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The event's id: the same on a retry, so a receiver can skip one it has handled.
    pub event_id: String,
    /// When the server signed this attempt (Unix seconds).
    pub timestamp: i64,
}

/// A delivery is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// A callsign webhook header is missing or not text.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// The signature or the timestamp did not check out.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Checks a delivery's headers and body with `secret`, by this machine's clock.
pub fn verify_delivery(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Delivery, DeliveryError> {
    verify_delivery_at(secret, headers, body, chrono::Utc::now().timestamp())
}

/// [`verify_delivery`] at `now` (Unix seconds): for tests, and receivers with a clock of their own.
pub fn verify_delivery_at(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Delivery, DeliveryError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .ok_or(DeliveryError::MissingHeader(name))
    };
    let timestamp = header(TIMESTAMP_HEADER)?;
    verify(secret, timestamp, header(SIGNATURE_HEADER)?, body, now)?;
    Ok(Delivery {
        event_id: header(ID_HEADER)?.to_owned(),
        timestamp: timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use callsign_common::webhook_signature::sign;

    fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ID_HEADER, id.parse().unwrap());
        headers.insert(TIMESTAMP_HEADER, timestamp.to_string().parse().unwrap());
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    #[test]
    fn a_signed_delivery_checks_out_and_a_changed_one_does_not() {
        let secret = b"0123456789abcdef";
        let body = br#"{"id":3,"type":"identity.deleted"}"#;
        let signed = headers("3", 1_800_000_000, &sign(secret, 1_800_000_000, body));
        let delivery = verify_delivery_at(secret, &signed, body, 1_800_000_001).unwrap();
        assert_eq!(delivery.event_id, "3");
        assert_eq!(delivery.timestamp, 1_800_000_000);
        assert_eq!(
            verify_delivery_at(secret, &signed, b"{}", 1_800_000_001),
            Err(DeliveryError::Signature(SignatureError::Mismatch))
        );
        assert_eq!(
            verify_delivery_at(secret, &HeaderMap::new(), body, 1_800_000_001),
            Err(DeliveryError::MissingHeader(TIMESTAMP_HEADER))
        );
    }
}
