//! Signing in with an access key, and out.

use super::html::{self, esc, Section};
use super::session::{self, COOKIE};
use super::{console_of, html as page_response, redirect, same_origin, session_of, Form};
use crate::audit::KeySlot;
use crate::http::AppState;
use crate::keys::access::DEV_ACCESS_KEY;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The sign-in form, with `error` above it; the well-known key pre-filled under `--dev`.
fn sign_in_page(state: &AppState, status: StatusCode, notice: &str) -> Response {
    let prefill = state.console.as_deref().is_some_and(|c| {
        c.prefill_dev_key && c.keys.live().get().access.primary.to_base64() == DEV_ACCESS_KEY
    });
    let value = if prefill {
        format!(r#" value="{}""#, esc(DEV_ACCESS_KEY))
    } else {
        String::new()
    };
    let hint = if prefill {
        "<p class=\"hint\">This is a development instance (<code>--dev</code>): the well-known development key is filled in.</p>"
    } else {
        "<p class=\"hint\">Use the primary or secondary access key: <code>callsign connection-string</code> prints the primary one.</p>"
    };
    let main = format!(
        r#"<h1>Sign in to the callsign console</h1>
{notice}
<form method="post" action="/console/sign-in" class="card">
<label for="key">Access key</label>
<input type="password" id="key" name="key" required autocomplete="current-password" spellcheck="false"{value}>
{hint}
<button type="submit">Sign in</button>
</form>"#
    );
    page_response(status, html::page("Sign in", Section::None, None, &main))
}

/// `GET /console/sign-in`
pub async fn form(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if let Err(response) = console_of(&state) {
        return *response;
    }
    let (parts, _) = request.into_parts();
    if session_of(&state, &parts).is_some() {
        return redirect("/console/identities");
    }
    let notice = match parts.uri.query() {
        Some(q) if q.contains("signed-out") => html::notice("ok", "You are signed out."),
        _ => String::new(),
    };
    sign_in_page(&state, StatusCode::OK, &notice)
}

fn remote_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// `POST /console/sign-in`: rate-limited per address; the key is compared with both access
/// keys in constant time, and never logged or echoed.
pub async fn sign_in(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let console = match console_of(&state) {
        Ok(console) => console,
        Err(response) => return *response,
    };
    let (parts, body): (Parts, Body) = request.into_parts();
    let now = console.clock.now();
    if let Err(retry_after) = console.limiter.admit(remote_ip(&parts), now) {
        let notice = html::notice(
            "error",
            &format!("Too many sign-in attempts from your address. Try again in {retry_after} s."),
        );
        let mut response = sign_in_page(&state, StatusCode::TOO_MANY_REQUESTS, &notice);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }
    let bytes = match crate::http::read_body(body, &parts, &state.config).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    if !same_origin(&parts) {
        let notice = html::notice("error", "This sign-in form came from another site.");
        return sign_in_page(&state, StatusCode::FORBIDDEN, &notice);
    }
    let form = Form::parse(&bytes);
    let typed = form.get("key").unwrap_or("").trim().as_bytes().to_vec();
    let keys = console.keys.live().get();
    let matches = |key: &callsign_common::AccessKey| {
        verify_slices_are_equal(key.to_base64().as_bytes(), &typed).is_ok()
    };
    // Both compared, whichever matches: the time taken does not say which.
    let (primary, secondary) = (
        matches(&keys.access.primary),
        matches(&keys.access.secondary),
    );
    let slot = match (primary, secondary) {
        (true, _) => KeySlot::Primary,
        (false, true) => KeySlot::Secondary,
        (false, false) => {
            state.metrics.auth_failure("console_sign_in");
            tracing::info!("console sign-in refused: not an access key of this resource");
            let notice = html::notice(
                "error",
                "That is not an access key of this resource. Nothing is shown without one.",
            );
            return sign_in_page(&state, StatusCode::UNAUTHORIZED, &notice);
        }
    };
    let key = match slot {
        KeySlot::Primary => &keys.access.primary,
        KeySlot::Secondary => &keys.access.secondary,
    };
    let (id, _) = console.sessions.start(slot, key.as_bytes(), now);
    tracing::info!(key = ?slot, "console signed in");
    let secure = if console.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        session::LIFETIME.num_seconds()
    );
    let mut response = redirect("/console/identities");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /console/sign-out`: the session ends on the server, the cookie in the browser.
pub async fn sign_out(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (signed, _) = match super::signed_form(&state, &parts, body).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    signed.console.sessions.end(&signed.id);
    let secure = if signed.console.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    let mut response = redirect("/console/sign-in?signed-out=1");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
