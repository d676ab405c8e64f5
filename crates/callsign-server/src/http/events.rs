//! The change feed, `GET /callsign/events` (docs/protocol.md §7.10): the audit trail's stored
//! events in commit order after an opaque cursor, answered at once or, with `wait`, as soon as
//! there is one (long poll).

use super::error::ApiError;
use super::identities::json;
use super::paging;
use crate::audit::{AuditLog, Cursor, LoggedEvent};
use crate::store::LogPosition;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use std::time::Duration;

/// The longest a reader may ask to wait.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// How often a waiting reader looks for events stored by other processes (the CLI, other
/// nodes); this server's own wake it at once.
const POLL: Duration = Duration::from_millis(250);

/// Reads the cursor given as the query parameter `parameter`; anything this server did not make
/// is a 400 naming it.
pub(super) fn decode_cursor(text: &str, parameter: &str) -> Result<LogPosition, ApiError> {
    Cursor::decode(text)
        .map(|cursor| cursor.0)
        .ok_or_else(|| ApiError::validation("Provided cursor is not valid.", parameter))
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
                "after" => parsed.after = Some(decode_cursor(&value, "after")?),
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
            value: events.iter().map(LoggedEvent::to_json).collect(),
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
    fn a_bad_cursor_is_a_400_naming_the_parameter() {
        let error = decode_cursor("AAAA", "after").err().unwrap();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
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
