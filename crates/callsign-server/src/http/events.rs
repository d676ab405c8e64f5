//! The change feed, `GET /callsign/events` (docs/protocol.md §7.10): the audit trail's stored
//! events in commit order after an opaque cursor, answered at once or, with `wait`, as soon as
//! there is one (long poll).

use super::error::ApiError;
use super::identities::json;
use super::paging;
use crate::audit::{AuditLog, LoggedEvent};
use crate::store::LogPosition;
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use std::time::Duration;

/// The longest a reader may ask to wait.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// How often a waiting reader looks for events stored by other processes (the CLI, other
/// nodes); this server's own wake it at once.
const POLL: Duration = Duration::from_millis(250);

/// A cursor: where a reader is in the log, opaque to it. Version 1 is the position's two numbers,
/// 16 bytes big-endian, in URL-safe base64.
pub struct Cursor(pub LogPosition);

impl Cursor {
    /// The cursor's text.
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 17];
        bytes[0] = 1;
        bytes[1..9].copy_from_slice(&self.0.commit.to_be_bytes());
        bytes[9..].copy_from_slice(&self.0.id.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor this server made, given as the query parameter `parameter`; anything else
    /// is a 400 naming it.
    pub fn decode(text: &str, parameter: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::validation("Provided cursor is not valid.", parameter);
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let bytes: [u8; 17] = bytes.try_into().map_err(|_| invalid())?;
        if bytes[0] != 1 {
            return Err(invalid());
        }
        let commit = u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let id = i64::from_be_bytes(bytes[9..].try_into().expect("8 bytes"));
        Ok(Self(LogPosition { commit, id }))
    }
}

/// What a feed request asks for.
struct FeedQuery {
    after: Option<LogPosition>,
    page_size: usize,
    wait: Duration,
}

impl FeedQuery {
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut parsed = FeedQuery {
            after: None,
            page_size: paging::DEFAULT_PAGE_SIZE as usize,
            wait: Duration::ZERO,
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "after" => parsed.after = Some(Cursor::decode(&value, "after")?.0),
                "maxpagesize" => parsed.page_size = paging::page_size(&value)? as usize,
                "wait" => {
                    let seconds = value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s <= MAX_WAIT_SECONDS)
                        .ok_or_else(|| {
                            ApiError::validation(
                                format!(
                                    "wait must be within the [0, {MAX_WAIT_SECONDS}] interval."
                                ),
                                "wait",
                            )
                        })?;
                    parsed.wait = Duration::from_secs(seconds);
                }
                // As on the other routes, unknown parameters are ignored.
                _ => {}
            }
        }
        Ok(parsed)
    }
}

#[derive(Serialize)]
struct FeedPage {
    value: Vec<serde_json::Value>,
    cursor: String,
}

/// An event as the feed shows it: the audit event's fields and its cursor.
fn feed_event(logged: LoggedEvent) -> serde_json::Value {
    let mut json = serde_json::to_value(&logged.event).expect("an event always serialises");
    if let Some(fields) = json.as_object_mut() {
        fields.insert("cursor".into(), Cursor(logged.position).encode().into());
    }
    json
}

/// `GET /callsign/events[?after=cursor][&maxpagesize=n][&wait=s]`.
pub async fn feed(log: &AuditLog, query: Option<&str>) -> Result<Response, ApiError> {
    let query = FeedQuery::parse(query)?;
    // A reader whose cursor is behind what the retention deleted has missed events; one without
    // a cursor starts at the oldest event kept (and its cursor, even on an empty page, is past
    // the forgotten ones).
    let forgotten = log.forgotten_through().await.map_err(unavailable)?;
    let after = match query.after {
        Some(after) if after < forgotten => return Err(ApiError::cursor_expired()),
        Some(after) => after,
        None => forgotten,
    };
    let deadline = tokio::time::Instant::now() + query.wait;
    // Subscribed before reading: an event stored meanwhile wakes the wait below.
    let mut signal = log.subscribe();
    loop {
        let events = log
            .list_after(after, query.page_size)
            .await
            .map_err(unavailable)?;
        let now = tokio::time::Instant::now();
        if !events.is_empty() || now >= deadline || signal.borrow_and_update().closing {
            return Ok(page(after, events));
        }
        let wake = deadline.min(now + POLL);
        let _ = tokio::time::timeout_at(wake, signal.changed()).await;
    }
}

fn page(after: LogPosition, events: Vec<LoggedEvent>) -> Response {
    let last = events.last().map_or(after, |e| e.position);
    json(
        StatusCode::OK,
        &FeedPage {
            value: events.into_iter().map(feed_event).collect(),
            cursor: Cursor(last).encode(),
        },
    )
}

fn unavailable(e: crate::audit::AuditError) -> ApiError {
    tracing::error!(error = %e, "reading the change feed failed");
    ApiError::unavailable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_this_server_did_not_make() {
        let position = LogPosition {
            commit: 123_456_789,
            id: 42,
        };
        let text = Cursor(position).encode();
        assert_eq!(Cursor::decode(&text, "after").unwrap().0, position);
        for bad in ["", "x", "AAAA", &URL_SAFE_NO_PAD.encode([2u8; 17])] {
            let error = Cursor::decode(bad, "after").err().expect(bad);
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn wait_is_bounded() {
        assert!(FeedQuery::parse(Some("wait=61")).is_err());
        assert!(FeedQuery::parse(Some("wait=-1")).is_err());
        let query = FeedQuery::parse(Some("wait=60&maxpagesize=5")).unwrap();
        assert_eq!(query.wait, Duration::from_secs(60));
        assert_eq!(query.page_size, 5);
        assert!(query.after.is_none());
    }
}
