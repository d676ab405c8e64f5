//! The change feed's snapshot, `GET /callsign/revocations` (docs/protocol.md §7.10): every
//! identity's revocation or deletion stamp, paged by id, with the feed cursor to continue from.
//! A follower starting out, or one whose cursor expired, reads it and then follows the feed.

use super::error::ApiError;
use super::events::decode_cursor;
use super::identities::json;
use super::paging;
use crate::audit::AuditLog;
use crate::audit::Cursor;
use crate::domain::IdentityService;
use crate::store::IdentityRecord;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

/// One identity's stamps, in microseconds as tokens' `iatMicros` count them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stamped {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_before_micros: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at_micros: Option<i64>,
}

impl From<IdentityRecord> for Stamped {
    fn from(r: IdentityRecord) -> Self {
        Self {
            id: r.id,
            revoked_before_micros: r.revoked_before_us,
            deleted_at_micros: r.deleted_at_us,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    value: Vec<Stamped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    cursor: String,
}

/// What a snapshot request asks for.
struct SnapshotQuery {
    page_size: u32,
    after: Option<String>,
    /// The feed cursor of the snapshot's first page, carried along its pages.
    at: Option<Cursor>,
}

impl SnapshotQuery {
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut parsed = SnapshotQuery {
            page_size: paging::DEFAULT_PAGE_SIZE,
            after: None,
            at: None,
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "maxpagesize" => parsed.page_size = paging::page_size(&value)?,
                "continuationToken" => parsed.after = Some(paging::continued_after(&value)?),
                "cursor" => parsed.at = Some(Cursor(decode_cursor(&value, "cursor")?)),
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// `GET /callsign/revocations[?maxpagesize=n][&continuationToken=t]`: the revoked or deleted
/// identities, live or not, by id, with a `nextLink` while more may follow, and the feed
/// `cursor` of the moment the snapshot began (the same on every page of one walk).
pub async fn list(
    service: &IdentityService,
    log: &AuditLog,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let query = SnapshotQuery::parse(query)?;
    // Where the feed stands before anything is read: a change made while the pages are read
    // comes again in the feed, and applying a stamp twice changes nothing.
    let at = match query.at {
        Some(at) => at,
        None => Cursor(log.latest_position().await.map_err(|e| {
            tracing::error!(error = %e, "reading the change feed's position failed");
            ApiError::unavailable()
        })?),
    };
    let mut found = service
        .revocations(query.after.clone(), query.page_size + 1)
        .await?;
    let more = found.len() > query.page_size as usize;
    found.truncate(query.page_size as usize);
    let cursor = at.encode();
    let next_link = more
        .then(|| {
            found.last().map(|last| {
                let mut next = url::form_urlencoded::Serializer::new(String::new());
                next.append_pair("maxpagesize", &query.page_size.to_string());
                next.append_pair("continuationToken", &paging::continuation_token(&last.id));
                next.append_pair("cursor", &cursor);
                format!("/callsign/revocations?{}", next.finish())
            })
        })
        .flatten();
    Ok(json(
        StatusCode::OK,
        &Page {
            value: found.into_iter().map(Stamped::from).collect(),
            next_link,
            cursor,
        },
    ))
}
