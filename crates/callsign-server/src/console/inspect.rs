//! The token inspector: a pasted token's header and claims decoded, and its verdict from the
//! introspection the API serves (`POST /callsign/tokens/:introspect`, docs/protocol.md §7.2),
//! with the reason of an inactive one. A read: nothing is recorded, the token is not kept.

use super::html::{self, esc, time_secs, Section};
use super::{error_page, html as page, signed_form, signed_page};
use crate::domain::{InactiveReason, Introspection};
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Arc;

fn form_html(csrf: &str, token: &str) -> String {
    format!(
        r#"<form method="post" action="/console/inspect" class="card">
<input type="hidden" name="csrf" value="{}">
<label for="token">Access token</label>
<textarea id="token" name="token" rows="6" required spellcheck="false" placeholder="eyJ…">{}</textarea>
<button type="submit">Inspect</button>
</form>"#,
        esc(csrf),
        esc(token)
    )
}

/// `GET /console/inspect`
pub async fn form(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let main = format!(
        "<h1>Token inspector</h1><p>Paste an access token to see its header, its claims and whether this server accepts it now.</p>{}",
        form_html(signed.csrf(), "")
    );
    page(
        StatusCode::OK,
        html::page(
            "Token inspector",
            Section::Inspect,
            Some(signed.csrf()),
            &main,
        ),
    )
}

/// One base64url JSON segment of a JWT, if it is one.
fn segment(token: &str, index: usize) -> Option<Value> {
    let part = token.split('.').nth(index)?;
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What an inactive verdict means, for a developer reading it.
fn explain(reason: InactiveReason) -> &'static str {
    use crate::domain::tokens::Rejection;
    match reason {
        InactiveReason::Rejected(Rejection::Malformed) => {
            "Not a JWT: three base64url parts with a JSON header and claims."
        }
        InactiveReason::Rejected(Rejection::UnknownKey) => {
            "Its kid names no signing key this resource publishes (rotated out more than 25 h ago, or never ours)."
        }
        InactiveReason::Rejected(Rejection::BadSignature) => {
            "The signature does not match: the token was altered or signed by someone else."
        }
        InactiveReason::Rejected(Rejection::OtherResource) => {
            "Issued for another resource: its claims name another resource id."
        }
        InactiveReason::Rejected(Rejection::Expired) => "Its expiry (exp) has passed.",
        InactiveReason::Revoked => {
            "Issued before its identity's tokens were revoked."
        }
        InactiveReason::IdentityNotFound => "Its identity was deleted, or never existed here.",
    }
}

/// Claims shown as times, beside their number.
const TIME_CLAIMS: [&str; 3] = ["iat", "exp", "nbf"];

/// A JSON object as a table of its members; `what` names them (`Claim`, `Parameter`).
fn claims_table(claims: &Value, what: &str) -> String {
    let Some(map) = claims.as_object() else {
        return format!("<pre>{}</pre>", esc(&claims.to_string()));
    };
    let mut out = format!(
        r#"<div class="table-wrap"><table><thead><tr><th scope="col">{what}</th><th scope="col">Value</th></tr></thead><tbody>"#
    );
    for (name, value) in map {
        let text = match value {
            Value::String(s) => esc(s),
            other => esc(&other.to_string()),
        };
        let when = match (TIME_CLAIMS.contains(&name.as_str()), value.as_i64()) {
            (true, Some(secs)) => format!(" ({})", time_secs(secs)),
            _ => String::new(),
        };
        let _ = write!(
            out,
            r#"<tr><th scope="row"><code>{}</code></th><td><code>{text}</code>{when}</td></tr>"#,
            esc(name)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `POST /console/inspect`
pub async fn inspect(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (signed, form) = match signed_form(&state, &parts, body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let token = form.get("token").unwrap_or("").trim().to_owned();
    let verdict = match state.identities.introspect(&token).await {
        Ok(verdict) => verdict,
        Err(e) => {
            tracing::error!(error = %e, "console: introspecting a token failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(signed.csrf()),
                "The storage did not answer; try again.",
            );
        }
    };
    let verdict_html = match verdict {
        Introspection::Active {
            sub, scopes, exp, ..
        } => format!(
            r#"<p class="verdict active" role="status"><strong>Active</strong>: this server accepts it now.</p>
<dl><dt>Identity</dt><dd class="id"><a href="{}">{}</a></dd><dt>Scopes</dt><dd>{}</dd><dt>Expires</dt><dd>{}</dd></dl>"#,
            esc(&format!("/console/identity?id={}", html::query_value(&sub))),
            esc(&sub),
            esc(&scopes.join(", ")),
            time_secs(exp)
        ),
        Introspection::Inactive(reason) => format!(
            r#"<p class="verdict inactive" role="status"><strong>Inactive: {}</strong>. {}</p>"#,
            reason.as_str(),
            explain(reason)
        ),
    };
    let mut main = format!(
        r#"<h1>Token inspector</h1><section class="card" aria-labelledby="verdict-title"><h2 id="verdict-title">Verdict</h2>{verdict_html}</section>"#
    );
    match (segment(&token, 0), segment(&token, 1)) {
        (Some(header), Some(claims)) => {
            let _ = write!(
                main,
                r#"<section class="card" aria-labelledby="header-title"><h2 id="header-title">Header</h2>{}</section>
<section class="card" aria-labelledby="claims-title"><h2 id="claims-title">Claims</h2>{}</section>"#,
                claims_table(&header, "Parameter"),
                claims_table(&claims, "Claim")
            );
        }
        _ => main.push_str(
            r#"<p class="empty">The header and claims could not be decoded: a token is three base64url parts separated by dots, the first two JSON.</p>"#,
        ),
    }
    main += &form_html(signed.csrf(), &token);
    page(
        StatusCode::OK,
        html::page(
            "Token inspector",
            Section::Inspect,
            Some(signed.csrf()),
            &main,
        ),
    )
}
