//! callsign's own management routes beyond ACS (docs/protocol.md §7): listing identities and
//! resetting a development instance. Like every `/callsign/…` route they take no api-version.

use super::error::ApiError;
use super::identities::json;
use super::paging;
use crate::domain::identities::CustomId;
use crate::domain::IdentityService;
use crate::store::IdentityRecord;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callsign_common::time_format;
use chrono::DateTime;
use serde::Serialize;

/// One identity of the list.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedIdentity {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_id: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_token_issued_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

fn stamp(us: i64) -> Option<String> {
    DateTime::from_timestamp_micros(us).map(time_format::last_token_issued_at)
}

impl From<IdentityRecord> for ListedIdentity {
    fn from(r: IdentityRecord) -> Self {
        Self {
            created_at: stamp(r.created_at_us).unwrap_or_default(),
            last_token_issued_at: r.last_token_issued_at_us.and_then(stamp),
            revoked_at: r.revoked_before_us.and_then(stamp),
            custom_id: r.custom_id,
            id: r.id,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    value: Vec<ListedIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

/// What a list request asks for.
struct ListQuery {
    page_size: u32,
    after: Option<String>,
    custom_id: Option<CustomId>,
}

impl ListQuery {
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut parsed = ListQuery {
            page_size: paging::DEFAULT_PAGE_SIZE,
            after: None,
            custom_id: None,
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "maxpagesize" => parsed.page_size = paging::page_size(&value)?,
                "continuationToken" => parsed.after = Some(paging::continued_after(&value)?),
                "customId" => {
                    parsed.custom_id = Some(CustomId::new(&value).ok_or_else(|| {
                        ApiError::validation("Provided customId is not valid.", "customId")
                    })?)
                }
                // Like the service, parameters it does not know (api-version among them) are
                // ignored.
                _ => {}
            }
        }
        Ok(parsed)
    }

    fn next_link(&self, last: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("maxpagesize", &self.page_size.to_string());
        if let Some(custom_id) = &self.custom_id {
            query.append_pair("customId", custom_id.as_str());
        }
        query.append_pair("continuationToken", &paging::continuation_token(last));
        format!("/callsign/identities?{}", query.finish())
    }
}

/// `GET /callsign/identities[?maxpagesize=n][&customId=c][&continuationToken=t]`: live identities
/// in a stable order, with a `nextLink` while more may follow.
pub async fn list(service: &IdentityService, query: Option<&str>) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query)?;
    // One more than the page tells whether a next page exists.
    let mut found = service
        .list(
            query.after.clone(),
            query.page_size + 1,
            query.custom_id.clone(),
        )
        .await?;
    let more = found.len() > query.page_size as usize;
    found.truncate(query.page_size as usize);
    let next_link = more
        .then(|| found.last().map(|last| query.next_link(&last.id)))
        .flatten();
    let page = Page {
        value: found.into_iter().map(ListedIdentity::from).collect(),
        next_link,
    };
    Ok(json(StatusCode::OK, &page))
}

/// `POST /callsign/:reset`: every identity and assignment goes, and `events` are stored; keys
/// stay.
pub async fn reset(
    service: &IdentityService,
    events: &crate::audit::PendingEvents,
) -> Result<Response, ApiError> {
    service.reset(events).await?;
    tracing::info!("reset: every identity and assignment removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
