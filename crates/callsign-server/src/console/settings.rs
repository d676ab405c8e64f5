//! Settings, read-only: the trusted issuers (`[[trusted_issuers]]`), who may manage identities
//! with a bearer token (`[management]`), and the request limits in force. Changed in the
//! configuration file (README, "Trusting Entra ID"), never here.

use super::html::{self, esc, Section};
use super::{html as page, signed_page};
use crate::http::api_version::VersionPolicy;
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::fmt::Write as _;
use std::sync::Arc;

/// `GET /console/settings`
pub async fn show(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let mut main = String::from(
        r#"<h1>Settings</h1><p class="hint">Read-only: these come from the configuration file and the flags of <code>callsign serve</code>.</p>
<section class="card" aria-labelledby="issuers-title"><h2 id="issuers-title">Trusted issuers</h2>"#,
    );
    let issuers = &signed.console.issuers;
    if issuers.is_empty() {
        main.push_str(r#"<p class="empty">No trusted issuers: Teams and Entra token exchanges and bearer management calls are refused. Add <code>[[trusted_issuers]]</code> to the configuration file (README, “Trusting Entra ID”).</p>"#);
    } else {
        main.push_str(r#"<div class="table-wrap"><table><thead><tr><th scope="col">Issuer</th><th scope="col">Keys from</th><th scope="col">Tenant</th></tr></thead><tbody>"#);
        for issuer in issuers {
            let keys = match (&issuer.jwks_uri, &issuer.jwks_file) {
                (Some(uri), _) => esc(uri),
                (None, Some(file)) => esc(&file.display().to_string()),
                (None, None) => "its OpenID configuration".to_owned(),
            };
            let _ = write!(
                main,
                "<tr><td>{}</td><td>{keys}</td><td>{}</td></tr>",
                esc(&issuer.issuer),
                issuer
                    .tenant_id
                    .as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "any".into())
            );
        }
        main.push_str("</tbody></table></div>");
    }
    main.push_str("</section>");
    let management = &state.management;
    let oids = if management.allowed_object_ids.is_empty() {
        "none".to_owned()
    } else {
        management
            .allowed_object_ids
            .iter()
            .map(|o| format!("<code>{}</code>", esc(o)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let config = &state.config;
    let _ = write!(
        main,
        r#"<section class="card" aria-labelledby="management-title"><h2 id="management-title">Management with bearer tokens</h2>
<dl><dt>Allowed object ids</dt><dd>{oids}</dd><dt>Required app role</dt><dd>{}</dd></dl></section>
<section class="card" aria-labelledby="server-title"><h2 id="server-title">Server</h2>
<dl><dt>Unknown api-versions</dt><dd>{}</dd>
<dt><code>POST /callsign/:reset</code></dt><dd>{}</dd>
<dt>Shortest token lifetime</dt><dd>{} minutes</dd>
<dt>Largest request body</dt><dd>{} bytes</dd>
<dt>Accepted clock skew</dt><dd>{} s</dd></dl></section>"#,
        management
            .required_role
            .as_deref()
            .map(|r| format!("<code>{}</code>", esc(r)))
            .unwrap_or_else(|| "none".into()),
        match config.api_versions {
            VersionPolicy::Strict => "refused (strict)",
            VersionPolicy::Lenient => "newer ones served as the newest known (lenient)",
        },
        if config.allow_reset {
            "served"
        } else {
            "not served"
        },
        state.identities.min_lifetime().get(),
        config.max_body_bytes,
        config.max_clock_skew.num_seconds(),
    );
    page(
        StatusCode::OK,
        html::page("Settings", Section::Settings, Some(signed.csrf()), &main),
    )
}
