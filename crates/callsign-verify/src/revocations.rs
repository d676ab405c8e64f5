//! Revocation-aware verification: the issuer's revocation and deletion stamps, kept in memory
//! by following its change feed (docs/protocol.md §7.10), so that a token revoked on the server
//! is refused here within moments, without a call per token.
//!
//! The follower reads the snapshot (`GET /callsign/revocations`, every page), then long-polls the
//! feed (`GET /callsign/events`) from the snapshot's cursor, applying `identity.tokensRevoked`
//! (`revokedBeforeMicros`), `identity.deleted` and `data.reset`; after `data.imported` or a
//! 410 (the cursor fell behind the retention) it starts again from the snapshot. Until the first
//! snapshot is read, and while it cannot reach the issuer for longer than the allowed staleness,
//! verification fails closed.

use callsign_common::hmac::{host_header, sign_request};
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How long a feed request waits for an event before the server answers empty.
const WAIT_SECONDS: u64 = 30;

/// The pause before trying the issuer again after a failed request.
const RECONNECT: Duration = Duration::from_secs(1);

/// What is known of one identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    /// Tokens issued at or before this (µs) are revoked.
    RevokedBefore(i64),
    /// The identity is deleted: every token of it is refused.
    Deleted,
}

/// The revocation state: per identity, and a reset's cut-off for every identity.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    stamps: HashMap<String, Stamp>,
    /// Tokens issued at or before a reset (µs) are refused: their identities are gone.
    reset_before: Option<i64>,
    /// When the state was last confirmed current with the issuer.
    synced_at: Option<tokio::time::Instant>,
}

/// Why the revocation state refuses a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Revoked,
    Deleted,
    Unsynchronised,
}

impl Revocations {
    fn revoke(&mut self, id: &str, before: i64) {
        let stamp = self
            .stamps
            .entry(id.to_owned())
            .or_insert(Stamp::RevokedBefore(before));
        if let Stamp::RevokedBefore(current) = stamp {
            *current = (*current).max(before);
        }
    }

    fn delete(&mut self, id: &str) {
        self.stamps.insert(id.to_owned(), Stamp::Deleted);
    }

    /// Whether a token of `user` issued at `issued_us` stands, given state at most
    /// `max_staleness` old.
    pub(crate) fn check(
        &self,
        user: &str,
        issued_us: i64,
        max_staleness: Duration,
    ) -> Result<(), Refusal> {
        match self.synced_at {
            Some(at) if at.elapsed() <= max_staleness => {}
            _ => return Err(Refusal::Unsynchronised),
        }
        if self.reset_before.is_some_and(|reset| issued_us <= reset) {
            return Err(Refusal::Revoked);
        }
        match self.stamps.get(user) {
            Some(Stamp::Deleted) => Err(Refusal::Deleted),
            Some(Stamp::RevokedBefore(before)) if issued_us <= *before => Err(Refusal::Revoked),
            _ => Ok(()),
        }
    }
}

/// Follows one issuer's feed into shared [`Revocations`] until dropped.
pub(crate) struct Follower {
    base: reqwest::Url,
    host: String,
    key: AccessKey,
    client: reqwest::Client,
    state: Arc<RwLock<Revocations>>,
    /// Counts applied snapshots and events, for waiters ([`crate::TokenVerifier::synchronised`]).
    progress: watch::Sender<u64>,
}

#[derive(Deserialize)]
struct SnapshotPage {
    value: Vec<Stamped>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
    cursor: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stamped {
    id: String,
    revoked_before_micros: Option<i64>,
    deleted_at_micros: Option<i64>,
}

#[derive(Deserialize)]
struct FeedPage {
    value: Vec<FeedEvent>,
    cursor: String,
}

#[derive(Deserialize)]
struct FeedEvent {
    #[serde(rename = "type")]
    event_type: String,
    subject: Option<String>,
    /// RFC 3339, the server's clock.
    time: String,
    #[serde(default)]
    details: serde_json::Value,
}

/// Why the follower starts again from the snapshot.
enum Resync {
    /// The cursor is behind the retention, or the data was imported.
    Needed,
    /// A request failed; try again after a pause.
    Failed(String),
}

impl Follower {
    pub(crate) fn new(
        base: reqwest::Url,
        key: AccessKey,
        client: reqwest::Client,
        state: Arc<RwLock<Revocations>>,
        progress: watch::Sender<u64>,
    ) -> Option<Self> {
        let host = host_header(&base)?;
        Some(Self {
            base,
            host,
            key,
            client,
            state,
            progress,
        })
    }

    /// Runs until the verifier is dropped (the task is aborted then).
    pub(crate) async fn run(self) {
        loop {
            let outcome = match self.snapshot().await {
                Ok(cursor) => self.follow(cursor).await,
                Err(e) => Resync::Failed(e),
            };
            if let Resync::Failed(reason) = outcome {
                tracing::warn!(%reason, "following the issuer's revocations failed; trying again");
                tokio::time::sleep(RECONNECT).await;
            }
        }
    }

    /// One signed GET of `path_and_query` on the issuer.
    async fn get(&self, path_and_query: &str) -> Result<reqwest::Response, String> {
        let url = self
            .base
            .join(path_and_query.trim_start_matches('/'))
            .map_err(|e| e.to_string())?;
        let signed = sign_request(
            &self.key,
            "GET",
            path_and_query,
            &self.host,
            b"",
            Utc::now(),
        );
        self.client
            .get(url)
            .header("x-ms-date", signed.date)
            .header("x-ms-content-sha256", signed.content_hash)
            .header("authorization", signed.authorization)
            .timeout(Duration::from_secs(WAIT_SECONDS + 15))
            .send()
            .await
            .map_err(|e| format!("{path_and_query}: {e}"))
    }

    /// Reads every page of the snapshot into a fresh state; returns the cursor to follow from.
    async fn snapshot(&self) -> Result<String, String> {
        let mut fresh = Revocations::default();
        let mut next = Some("/callsign/revocations?maxpagesize=1000".to_owned());
        let mut cursor = String::new();
        while let Some(path) = next {
            let response = self.get(&path).await?;
            if !response.status().is_success() {
                return Err(format!("{path}: {}", response.status()));
            }
            let page: SnapshotPage = response.json().await.map_err(|e| e.to_string())?;
            for stamped in page.value {
                if stamped.deleted_at_micros.is_some() {
                    fresh.delete(&stamped.id);
                } else if let Some(before) = stamped.revoked_before_micros {
                    fresh.revoke(&stamped.id, before);
                }
            }
            cursor = page.cursor;
            next = page.next_link;
        }
        fresh.synced_at = Some(tokio::time::Instant::now());
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        self.progress.send_modify(|n| *n += 1);
        Ok(cursor)
    }

    /// Long-polls the feed from `cursor`, applying each event, until a resynchronisation is due.
    async fn follow(&self, mut cursor: String) -> Resync {
        loop {
            let path =
                format!("/callsign/events?after={cursor}&wait={WAIT_SECONDS}&maxpagesize=1000");
            let response = match self.get(&path).await {
                Ok(response) => response,
                Err(e) => return Resync::Failed(e),
            };
            if response.status() == reqwest::StatusCode::GONE {
                return Resync::Needed;
            }
            if !response.status().is_success() {
                return Resync::Failed(format!("/callsign/events: {}", response.status()));
            }
            let page: FeedPage = match response.json().await {
                Ok(page) => page,
                Err(e) => return Resync::Failed(e.to_string()),
            };
            let mut resync = false;
            {
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                for event in &page.value {
                    resync |= apply(&mut state, event);
                }
                state.synced_at = Some(tokio::time::Instant::now());
            }
            self.progress.send_modify(|n| *n += 1);
            if resync {
                return Resync::Needed;
            }
            cursor = page.cursor;
        }
    }
}

/// Applies one event; true when the state must be read again from the snapshot.
fn apply(state: &mut Revocations, event: &FeedEvent) -> bool {
    let subject = event.subject.as_deref().unwrap_or_default();
    match event.event_type.as_str() {
        "identity.tokensRevoked" => {
            if let Some(before) = event.details["revokedBeforeMicros"].as_i64() {
                state.revoke(subject, before);
            }
            false
        }
        "identity.deleted" => {
            state.delete(subject);
            false
        }
        "data.reset" => {
            state.stamps.clear();
            match DateTime::parse_from_rfc3339(&event.time) {
                Ok(time) => {
                    let at = time.with_timezone(&Utc).timestamp_micros();
                    state.reset_before = Some(state.reset_before.map_or(at, |r| r.max(at)));
                    false
                }
                // Without the reset's time, the snapshot is the only safe state.
                Err(_) => true,
            }
        }
        "data.imported" => true,
        _ => false,
    }
}

/// Counts the bytes the test process holds allocated, to weigh what a test builds.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

#[cfg(test)]
mod tests {
    use super::*;

    /// What one tracked revocation costs in memory, with identifiers as the server makes them
    /// (`8:acs:<resource>_<uuid>`, 78 characters): printed for BENCHMARKS.md, and bounded so
    /// that a change that bloats it fails here.
    #[test]
    fn a_tracked_revocation_costs_under_two_hundred_bytes() {
        const N: usize = 100_000;
        let resource = "d8b0e3f6-6a4f-4b43-9f3a-6a6f1c1c8c2e";
        let ids: Vec<String> = (0..N)
            .map(|i| format!("8:acs:{resource}_00000000-0000-4000-8000-{i:012}"))
            .collect();
        let region = stats_alloc::Region::new(ALLOCATOR);
        let mut state = Revocations::default();
        for (i, id) in ids.iter().enumerate() {
            if i % 10 == 0 {
                state.delete(id);
            } else {
                state.revoke(id, i as i64);
            }
        }
        // Other tests allocate meanwhile, a few kilobytes next to the megabytes weighed here.
        let change = region.change();
        let held = change.bytes_allocated as isize - change.bytes_deallocated as isize
            + change.bytes_reallocated;
        let per_revocation = held as f64 / N as f64;
        println!("memory per tracked revocation: {per_revocation:.1} bytes ({N} identities)");
        assert!(per_revocation < 200.0, "{per_revocation:.1} bytes each");
        drop(state);
    }

    fn event(event_type: &str, subject: &str, details: serde_json::Value) -> FeedEvent {
        FeedEvent {
            event_type: event_type.into(),
            subject: Some(subject.into()),
            time: "2026-01-02T03:04:05.000006Z".into(),
            details,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stamps_decide_at_or_before_and_stale_state_refuses() {
        let mut state = Revocations::default();
        let staleness = Duration::from_secs(90);
        assert_eq!(state.check("u", 1, staleness), Err(Refusal::Unsynchronised));
        state.synced_at = Some(tokio::time::Instant::now());
        let revoked = serde_json::json!({"revokedBeforeMicros": 100});
        assert!(!apply(
            &mut state,
            &event("identity.tokensRevoked", "u", revoked)
        ));
        assert_eq!(state.check("u", 100, staleness), Err(Refusal::Revoked));
        assert_eq!(state.check("u", 101, staleness), Ok(()));
        assert_eq!(state.check("v", 1, staleness), Ok(()));
        // An older stamp arriving late does not undo a newer one.
        state.revoke("u", 50);
        assert_eq!(state.check("u", 100, staleness), Err(Refusal::Revoked));
        apply(
            &mut state,
            &event("identity.deleted", "u", serde_json::json!({})),
        );
        assert_eq!(state.check("u", 1_000, staleness), Err(Refusal::Deleted));
        // A reset: every token issued at or before it, whoever its user.
        apply(&mut state, &event("data.reset", "", serde_json::json!({})));
        let reset = 1_767_323_045_000_006;
        assert_eq!(state.check("v", reset, staleness), Err(Refusal::Revoked));
        assert_eq!(state.check("v", reset + 1, staleness), Ok(()));
        assert!(apply(
            &mut state,
            &event("data.imported", "", serde_json::json!({}))
        ));

        tokio::time::advance(staleness + Duration::from_secs(1)).await;
        assert_eq!(
            state.check("v", reset + 1, staleness),
            Err(Refusal::Unsynchronised),
            "not confirmed by the issuer for too long"
        );
    }
}
