//! Activity: the latest events of the audit trail (docs/protocol.md §9), newest first, and the
//! requests and tokens of the last minute, per second (kept by the metrics,
//! [`crate::metrics::recent`]).

use super::html::{self, esc, time, Section};
use super::{error_page, html as page, signed_page};
use crate::audit::{Actor, AuditError, AuditEvent, AuditLog};
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::fmt::Write as _;
use std::sync::Arc;

/// Events shown.
pub const LATEST: usize = 50;

/// The last `n` stored events, newest first.
pub async fn latest(audit: &AuditLog, n: usize) -> Result<Vec<AuditEvent>, AuditError> {
    audit.newest(n).await
}

fn actor(actor: &Actor) -> String {
    match actor {
        Actor::AccessKey { which } => format!("access key ({})", which.as_str()),
        Actor::Console { which } => format!("console ({} key)", which.as_str()),
        Actor::Bearer { oid, appid } => format!(
            "bearer oid {}{}",
            esc(oid.as_deref().unwrap_or("?")),
            appid
                .as_deref()
                .map(|a| format!(", app {}", esc(a)))
                .unwrap_or_default()
        ),
        Actor::Operator => "operator (CLI)".to_owned(),
        Actor::Unauthenticated => "unauthenticated".to_owned(),
    }
}

/// A bar per second of the last minute, scaled to the busiest second.
fn sparkline(values: &[u64], label: &str) -> String {
    let peak = values.iter().copied().max().unwrap_or(0).max(1);
    let mut bars = String::new();
    for (i, v) in values.iter().enumerate() {
        let h = (*v * 40).div_ceil(peak);
        let _ = write!(
            bars,
            r#"<rect x="{}" y="{}" width="3" height="{h}"/>"#,
            i * 4,
            40 - h
        );
    }
    format!(
        r#"<svg class="spark" viewBox="0 0 240 40" width="240" height="40" role="img" aria-label="{}">{bars}</svg>"#,
        esc(label)
    )
}

/// `GET /console/activity`
pub async fn show(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let events = match latest(&state.audit, LATEST).await {
        Ok(events) => events,
        Err(e) => {
            tracing::error!(error = %e, "console: reading the audit trail failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(signed.csrf()),
                "The audit trail could not be read; try again.",
            );
        }
    };
    let counts = state.metrics.recent();
    let (requests, tokens) = (counts.total_requests(), counts.total_tokens());
    let mut main = format!(
        r#"<div class="title-row"><h1>Activity</h1><a class="button" href="/console/activity">Refresh</a></div>
<section class="card" aria-labelledby="rates-title"><h2 id="rates-title">Last minute</h2>
<div class="rates">
<div><p class="figure">{requests}</p><p>requests ({:.2}/s)</p>{}</div>
<div><p class="figure">{tokens}</p><p>tokens issued ({:.2}/s)</p>{}</div>
</div></section>
<section class="card" aria-labelledby="events-title"><h2 id="events-title">Latest changes</h2>"#,
        requests as f64 / 60.0,
        sparkline(&counts.requests, "Requests per second over the last minute"),
        tokens as f64 / 60.0,
        sparkline(&counts.tokens, "Tokens per second over the last minute"),
    );
    if events.is_empty() {
        main.push_str(r#"<p class="empty">No changes recorded yet. Creating, revoking or deleting an identity — here or with an SDK — adds an event.</p>"#);
    } else {
        main.push_str(r#"<div class="table-wrap"><table class="cards"><thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Subject</th><th scope="col">Actor</th><th scope="col">From</th></tr></thead><tbody>"#);
        for e in &events {
            let _ = write!(
                main,
                r#"<tr><td data-label="Time">{}</td><td data-label="Event"><code>{}</code></td><td class="id" data-label="Subject">{}</td><td data-label="Actor">{}</td><td data-label="From">{}</td></tr>"#,
                time(e.time),
                e.event_type.as_str(),
                e.subject.as_deref().map(esc).unwrap_or_else(|| "—".into()),
                actor(&e.actor),
                e.remote_address
                    .as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "—".into()),
            );
        }
        main.push_str("</tbody></table></div>");
    }
    main.push_str("</section>");
    page(
        StatusCode::OK,
        html::page("Activity", Section::Activity, Some(signed.csrf()), &main),
    )
}
