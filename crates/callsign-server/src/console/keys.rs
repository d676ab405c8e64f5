//! Keys: the access keys and connection strings (masked, revealed and copied by the script),
//! regenerating one (after a confirmation); the signing keys, rotating (after a confirmation);
//! the JWKS. The only page that shows a key. Changes are recorded in the audit trail as the
//! CLI's are (`accessKey.regenerated`, `signingKey.rotated`), with the console as the actor.

use super::html::{self, copy_button, esc, time, Section};
use super::identities::{param, query};
use super::{error_page, html as page, redirect, signed_form, signed_page, Signed};
use crate::audit::{EventType, KeySlot};
use crate::http::AppState;
use crate::keys::signing::RETIRED_KEY_RETENTION;
use crate::keys::KeyKind;
use axum::extract::{Request, State};
use axum::http::{request::Parts, StatusCode};
use axum::response::Response;
use std::fmt::Write as _;
use std::sync::Arc;

/// A secret shown masked, with reveal and copy buttons (which the script shows).
fn masked(id: &str, label: &str, value: &str) -> String {
    format!(
        r#"<div class="secret"><label for="{id}">{label}</label>
<div class="secret-row"><input type="password" id="{id}" readonly value="{}" spellcheck="false" autocomplete="off">
<button type="button" class="reveal" data-reveal="{id}" aria-pressed="false" hidden>Reveal</button>{}</div></div>"#,
        esc(value),
        copy_button(id, &label.to_lowercase())
    )
}

/// `GET /console/keys[?done=regenerated|rotated]`
pub async fn show(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let query = query(&parts);
    let notice = match param(&query, "done") {
        Some("regenerated") => html::notice(
            "ok",
            "The key was regenerated: clients using the old one are refused from now on.",
        ),
        Some("rotated") => html::notice(
            "ok",
            "New tokens are signed with the new key; the previous one stays published for 25 hours.",
        ),
        _ => String::new(),
    };
    let keys = signed.console.keys.live().get();
    let endpoint = &signed.console.endpoint;
    let connection =
        |key: &callsign_common::AccessKey| crate::server::connection_string(endpoint, key);
    let mut signing = String::new();
    // A key's creation is not stored; the current key took over when the last one retired.
    let since = keys
        .ring
        .retired
        .iter()
        .map(|r| r.retired_at)
        .max()
        .map_or_else(
            || "since the resource was set up".to_owned(),
            |t| format!("since {}", time(t)),
        );
    let _ = write!(
        signing,
        r#"<tr><td class="id">{}</td><td>{}</td><td>Current: signs new tokens {since}</td><td>while current, then 25 h</td></tr>"#,
        esc(keys.ring.current.kid()),
        keys.ring.current.alg().jws_name()
    );
    for retired in &keys.ring.retired {
        let _ = write!(
            signing,
            r#"<tr><td class="id">{}</td><td>{}</td><td>Retired {}</td><td>{}</td></tr>"#,
            esc(retired.key.kid()),
            retired.key.alg().jws_name(),
            time(retired.retired_at),
            time(retired.retired_at + RETIRED_KEY_RETENTION),
        );
    }
    let main = format!(
        r#"<h1>Keys</h1>
{notice}
<section class="card" aria-labelledby="access-title"><h2 id="access-title">Access keys</h2>
<p>Requests signed with either key are accepted. You are signed in with the <strong>{signed_with}</strong> key: regenerating it signs you out.</p>
{primary}
<p><a href="/console/keys/regenerate?which=primary">Regenerate the primary key…</a></p>
{secondary}
<p><a href="/console/keys/regenerate?which=secondary">Regenerate the secondary key…</a></p>
</section>
<section class="card" aria-labelledby="cs-title"><h2 id="cs-title">Connection strings</h2>
{cs_primary}
{cs_secondary}
</section>
<section class="card" aria-labelledby="signing-title"><h2 id="signing-title">Signing keys</h2>
<p>Tokens carry the signing key's id as <code>kid</code>; the JWKS publishes every key still valid: <a href="/.well-known/jwks.json">/.well-known/jwks.json</a>.</p>
<div class="table-wrap"><table><thead><tr><th scope="col">kid</th><th scope="col">Algorithm</th><th scope="col">State</th><th scope="col">Published until</th></tr></thead><tbody>{signing}</tbody></table></div>
<p><a href="/console/keys/rotate">Rotate the signing key…</a></p>
</section>"#,
        signed_with = signed.session.slot.as_str(),
        primary = masked(
            "key-primary",
            "Primary key",
            &keys.access.primary.to_base64()
        ),
        secondary = masked(
            "key-secondary",
            "Secondary key",
            &keys.access.secondary.to_base64()
        ),
        cs_primary = masked(
            "cs-primary",
            "Primary connection string",
            &connection(&keys.access.primary)
        ),
        cs_secondary = masked(
            "cs-secondary",
            "Secondary connection string",
            &connection(&keys.access.secondary)
        ),
    );
    page(
        StatusCode::OK,
        html::page("Keys", Section::Keys, Some(signed.csrf()), &main),
    )
}

fn which_of(value: Option<&str>) -> Option<(KeyKind, KeySlot)> {
    match value {
        Some("primary") => Some((KeyKind::Primary, KeySlot::Primary)),
        Some("secondary") => Some((KeyKind::Secondary, KeySlot::Secondary)),
        _ => None,
    }
}

fn confirm(
    signed: &Signed<'_>,
    title: &str,
    text: &str,
    action: &str,
    which: &str,
    button: &str,
) -> Response {
    let which_field = if which.is_empty() {
        String::new()
    } else {
        format!(
            r#"<input type="hidden" name="which" value="{}">"#,
            esc(which)
        )
    };
    let main = format!(
        r#"<h1>{}</h1><section class="card danger"><p>{text}</p>
<form method="post" action="{action}"><input type="hidden" name="csrf" value="{}">{which_field}
<button type="submit" class="danger">{button}</button> <a href="/console/keys">Cancel</a></form></section>"#,
        esc(title),
        esc(signed.csrf())
    );
    page(
        StatusCode::OK,
        html::page(title, Section::Keys, Some(signed.csrf()), &main),
    )
}

/// `GET /console/keys/regenerate?which=primary|secondary`: the confirmation.
pub async fn confirm_regenerate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let query = query(&parts);
    let Some((_, slot)) = which_of(param(&query, "which")) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(signed.csrf()),
            "Say which key: primary or secondary.",
        );
    };
    let name = slot.as_str();
    let mut text = format!(
        "Regenerate the {name} key? Every client using it (and its connection string) is refused from then on; the other key keeps working."
    );
    if slot == signed.session.slot {
        text.push_str(" You are signed in with this key: you will be signed out.");
    }
    confirm(
        &signed,
        &format!("Regenerate the {name} key?"),
        &text,
        "/console/keys/regenerate",
        name,
        &format!("Regenerate the {name} key"),
    )
}

/// Records a key change as the session's, then puts the stored keys in force at once.
async fn recorded(
    state: &AppState,
    signed: &Signed<'_>,
    parts: &Parts,
    event_type: EventType,
    subject: String,
) -> Result<(), Response> {
    let event = state
        .audit
        .event(event_type, Some(subject), &signed.origin(parts));
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "recording an audit event failed");
        return Err(error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(signed.csrf()),
            "The change was made but could not be recorded in the audit trail.",
        ));
    }
    if let Err(e) = signed.console.keys.poll(true).await {
        // The watcher's next poll (within a second) tries again.
        tracing::warn!(error = %crate::error_chain::error_chain(&e), "reloading the keys failed");
    }
    Ok(())
}

/// `POST /console/keys/regenerate`
pub async fn regenerate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (signed, form) = match signed_form(&state, &parts, body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let Some((kind, slot)) = which_of(form.get("which")) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(signed.csrf()),
            "Say which key: primary or secondary.",
        );
    };
    if let Err(e) = signed.console.backend.regenerate_access_key(kind).await {
        tracing::error!(error = %crate::error_chain::error_chain(&e), "console: regenerating an access key failed");
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(signed.csrf()),
            "The key could not be regenerated; the server's log says why.",
        );
    }
    let subject = slot.as_str().to_owned();
    if let Err(response) = recorded(
        &state,
        &signed,
        &parts,
        EventType::AccessKeyRegenerated,
        subject,
    )
    .await
    {
        return response;
    }
    if slot == signed.session.slot {
        signed.console.sessions.end(&signed.id);
        return redirect("/console/sign-in");
    }
    redirect("/console/keys?done=regenerated")
}

/// `GET /console/keys/rotate`: the confirmation.
pub async fn confirm_rotate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    confirm(
        &signed,
        "Rotate the signing key?",
        "New tokens will be signed with a new key. Tokens signed so far stay valid: the current key stays published in the JWKS for 25 hours.",
        "/console/keys/rotate",
        "",
        "Rotate the signing key",
    )
}

/// `POST /console/keys/rotate`
pub async fn rotate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (signed, _) = match signed_form(&state, &parts, body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let now = signed.console.clock.now();
    let kid = match signed.console.backend.rotate_signing_key(now).await {
        Ok(kid) => kid,
        Err(e) => {
            tracing::error!(error = %crate::error_chain::error_chain(&e), "console: rotating the signing key failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(signed.csrf()),
                "The signing key could not be rotated; the server's log says why.",
            );
        }
    };
    if let Err(response) =
        recorded(&state, &signed, &parts, EventType::SigningKeyRotated, kid).await
    {
        return response;
    }
    redirect("/console/keys?done=rotated")
}
