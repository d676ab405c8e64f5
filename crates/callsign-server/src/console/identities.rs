//! Identities: the paged, filterable list; an identity's page; create (optionally with a
//! token), issue a token, revoke, delete (after a confirmation). Changes go through the API's
//! own code ([`super::call`]); reads through the same domain calls as `GET /callsign/identities`.

use super::html::{self, copy_button, esc, query_value, time_us, Section};
use super::{call, error_page, html as page, redirect, signed_form, signed_page, with_token, Form};
use crate::domain::identities::CustomId;
use crate::domain::ids::Guid;
use crate::domain::{DomainError, Minutes, Scope};
use crate::http::routes::AcsOperation;
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::{request::Parts, StatusCode};
use axum::response::Response;
use callsign_common::identifier::CommunicationIdentifier;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::Arc;

/// Identities on one page of the list.
pub const PAGE_SIZE: u32 = 25;

/// The query string's parameters.
pub(crate) fn query(parts: &Parts) -> Vec<(String, String)> {
    url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The first value of `name` in `query`, if not empty.
pub(crate) fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(n, v)| n == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The link to an identity's page.
fn identity_href(id: &str) -> String {
    format!("/console/identity?id={}", query_value(id))
}

/// `GET /console/identities[?customId=…][&after=…]`
pub async fn list(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let query = query(&parts);
    let filter = param(&query, "customId");
    let after = param(&query, "after");
    let mut notices = String::new();
    if param(&query, "deleted").is_some() {
        notices += &html::notice("ok", "The identity was deleted; its tokens no longer work.");
    }
    let custom_id = match filter.map(CustomId::new) {
        Some(None) => {
            notices += &html::notice(
                "error",
                &format!(
                    "A customId is 1 to {} characters; showing every identity.",
                    CustomId::MAX_CHARS
                ),
            );
            None
        }
        Some(Some(c)) => Some(c),
        None => None,
    };
    let found = state
        .identities
        .list(after.map(str::to_owned), PAGE_SIZE + 1, custom_id)
        .await;
    let mut found = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "console: listing identities failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(signed.csrf()),
                "The storage did not answer; try again.",
            );
        }
    };
    let more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);
    let filter_value = filter.map(esc).unwrap_or_default();
    let mut main = format!(
        r#"<div class="title-row"><h1>Identities</h1><a class="button" href="/console/identities/new">New identity</a></div>
{notices}
<form method="get" action="/console/identities" class="filter" role="search">
<label for="customId">Filter by customId</label>
<input id="customId" name="customId" value="{filter_value}" placeholder="exact customId">
<button type="submit">Filter</button>{}
</form>"#,
        if filter.is_some() {
            r#" <a href="/console/identities">Clear</a>"#
        } else {
            ""
        }
    );
    if found.is_empty() {
        let text = match (filter, after) {
            (Some(_), _) => "No live identity has this customId. Clear the filter to see every identity.".to_owned(),
            (None, Some(_)) => "No more identities. <a href=\"/console/identities\">Back to the first page</a>.".to_owned(),
            (None, None) => "No identities yet. Create one with <a href=\"/console/identities/new\">New identity</a>, with an SDK (<code>create_user()</code>), or with <code>callsign user create</code>.".to_owned(),
        };
        let _ = write!(main, r#"<p class="empty">{text}</p>"#);
    } else {
        main.push_str(
            r#"<div class="table-wrap"><table class="cards"><caption class="visually-hidden">Live identities, by id</caption>
<thead><tr><th scope="col">Id</th><th scope="col">customId</th><th scope="col">Created</th><th scope="col">Last token issued</th><th scope="col">Tokens revoked</th></tr></thead><tbody>"#,
        );
        for r in &found {
            let _ = write!(
                main,
                r#"<tr><td class="id" data-label="Id"><a href="{}">{}</a></td><td data-label="customId">{}</td><td data-label="Created">{}</td><td data-label="Last token issued">{}</td><td data-label="Tokens revoked">{}</td></tr>"#,
                esc(&identity_href(&r.id)),
                esc(&r.id),
                r.custom_id
                    .as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "—".into()),
                time_us(Some(r.created_at_us)),
                time_us(r.last_token_issued_at_us),
                time_us(r.revoked_before_us),
            );
        }
        main.push_str("</tbody></table></div>");
    }
    let mut pager = String::new();
    if after.is_some() {
        let first = match filter {
            Some(f) => format!("/console/identities?customId={}", query_value(f)),
            None => "/console/identities".to_owned(),
        };
        let _ = write!(pager, r#"<a href="{}">First page</a>"#, esc(&first));
    }
    if let (true, Some(last)) = (more, found.last()) {
        let mut next = format!("/console/identities?after={}", query_value(&last.id));
        if let Some(f) = filter {
            let _ = write!(next, "&customId={}", query_value(f));
        }
        let _ = write!(
            pager,
            r#"<a href="{}" rel="next">Next page</a>"#,
            esc(&next)
        );
    }
    if !pager.is_empty() {
        let _ = write!(
            main,
            r#"<nav class="pager" aria-label="Pages">{pager}</nav>"#
        );
    }
    page(
        StatusCode::OK,
        html::page(
            "Identities",
            Section::Identities,
            Some(signed.csrf()),
            &main,
        ),
    )
}

/// The scope checkboxes and lifetime of a token form.
fn token_fields(state: &AppState, prefix: &str) -> String {
    let mut out = String::from(r#"<fieldset><legend>Scopes</legend>"#);
    for scope in Scope::ALL {
        let name = scope.as_str();
        let checked = if scope == Scope::Chat { " checked" } else { "" };
        let _ = write!(
            out,
            r#"<label class="check"><input type="checkbox" name="scope" value="{name}"{checked}> {name}</label>"#
        );
    }
    let min = state.identities.min_lifetime().get();
    let max = Minutes::MAX.get();
    let _ = write!(
        out,
        r#"</fieldset><label for="{prefix}minutes">Expires in (minutes, {min}–{max})</label>
<input type="number" id="{prefix}minutes" name="minutes" min="{min}" max="{max}" value="{max}" required>"#
    );
    out
}

/// `GET /console/identities/new`
pub async fn new_form(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    page(
        StatusCode::OK,
        create_form_page(&state, signed.csrf(), "", None),
    )
}

fn create_form_page(state: &AppState, csrf: &str, notice: &str, custom_id: Option<&str>) -> String {
    let main = format!(
        r#"<h1>New identity</h1>
{notice}
<form method="post" action="/console/identities" class="card">
<input type="hidden" name="csrf" value="{}">
<label for="customId">customId (optional)</label>
<input id="customId" name="customId" maxlength="{}" value="{}" aria-describedby="customId-hint">
<p class="hint" id="customId-hint">Your own id for the user. A live identity with the same customId is returned instead of a new one.</p>
<label class="check"><input type="checkbox" name="token" value="1"> Also issue a token</label>
{}
<button type="submit">Create</button>
</form>"#,
        esc(csrf),
        CustomId::MAX_CHARS,
        custom_id.map(esc).unwrap_or_default(),
        token_fields(state, "")
    );
    html::page("New identity", Section::Identities, Some(csrf), &main)
}

/// The request body of a token: the form's scopes and lifetime (the API validates them).
fn token_body(form: &Form) -> (Vec<String>, Value) {
    let scopes: Vec<String> = form.all("scope").map(str::to_owned).collect();
    let minutes = form
        .get("minutes")
        .and_then(|m| m.trim().parse::<i64>().ok())
        .map_or(Value::Null, Value::from);
    (scopes, minutes)
}

/// A token shown once, with its copy button.
fn token_block(token: &str, expires_on: &str) -> String {
    let expires = chrono::DateTime::parse_from_rfc3339(expires_on)
        .map(|t| html::time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| esc(expires_on));
    format!(
        r#"<section class="card token" aria-labelledby="token-title">
<h2 id="token-title">Access token</h2>
<p class="warning">Shown once: copy it now. It is not stored and cannot be shown again.</p>
<label for="token-value">Token (expires {expires})</label>
<textarea id="token-value" readonly rows="6" spellcheck="false">{}</textarea>
{}
</section>"#,
        esc(token),
        copy_button("token-value", "token")
    )
}

/// `POST /console/identities`: creates an identity, and a token when asked.
pub async fn create(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (signed, form) = match signed_form(&state, &parts, body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let custom_id = form.get("customId").filter(|c| !c.is_empty());
    let mut body = json!({});
    if let Some(custom_id) = custom_id {
        body["customId"] = custom_id.into();
    }
    if form.get("token").is_some() {
        let (scopes, minutes) = token_body(&form);
        body["createTokenWithScopes"] = scopes.into();
        body["expiresInMinutes"] = minutes;
    }
    let answer = match call(&state, &signed, &parts, AcsOperation::CreateIdentity, body).await {
        Ok(answer) => answer,
        Err(refusal) => {
            let notice = html::notice("error", &esc(&refusal.message));
            return page(
                refusal.status,
                create_form_page(&state, signed.csrf(), &notice, custom_id),
            );
        }
    };
    let id = answer.body["identity"]["id"].as_str().unwrap_or_default();
    let token = &answer.body["accessToken"];
    let mut main = format!(
        r#"<h1>Identity created</h1>
<section class="card"><label for="identity-id">Id</label>
<input id="identity-id" readonly value="{}">
{}
<p><a href="{}">Open the identity</a> · <a href="/console/identities/new">Create another</a></p></section>"#,
        esc(id),
        copy_button("identity-id", "id"),
        esc(&identity_href(id)),
    );
    if let (Some(t), Some(e)) = (token["token"].as_str(), token["expiresOn"].as_str()) {
        main += &token_block(t, e);
    }
    with_token(
        answer.token,
        page(
            StatusCode::CREATED,
            html::page(
                "Identity created",
                Section::Identities,
                Some(signed.csrf()),
                &main,
            ),
        ),
    )
}

/// `GET /console/identity?id=…[&done=revoked]`
pub async fn show(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let query = query(&parts);
    let id = param(&query, "id").unwrap_or("");
    let record = match state.identities.record(id).await {
        Ok(record) => record,
        Err(e) => {
            return match exchanged(&state, &signed, id).await {
                Some(response) => response,
                None => missing(&signed, id, e),
            }
        }
    };
    let notice = match param(&query, "done") {
        Some("revoked") => html::notice(
            "ok",
            "Every token issued so far for this identity is revoked.",
        ),
        _ => String::new(),
    };
    let csrf = esc(signed.csrf());
    let main = format!(
        r#"<h1>Identity</h1>
{notice}
<section class="card"><dl>
<dt>Id</dt><dd><span id="identity-id" class="id">{id}</span> {copy}</dd>
<dt>customId</dt><dd>{custom}</dd>
<dt>Created</dt><dd>{created}</dd>
<dt>Last token issued</dt><dd>{last}</dd>
<dt>Tokens revoked</dt><dd>{revoked}</dd>
</dl>
<p class="hint">Assignments belong to the Teams extension and Entra users of exchanged tokens (their ids name the tenant and the user), not to identities created here: this identity has none.</p></section>
<section class="card" aria-labelledby="issue-title"><h2 id="issue-title">Issue a token</h2>
<form method="post" action="/console/identity/token">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="id" value="{id}">
{fields}
<button type="submit">Issue token</button>
</form></section>
<section class="card" aria-labelledby="revoke-title"><h2 id="revoke-title">Revoke tokens</h2>
<p>Every token issued for this identity so far stops working; new ones can be issued.</p>
<form method="post" action="/console/identity/revoke">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="id" value="{id}">
<button type="submit">Revoke all tokens</button>
</form></section>
<section class="card danger" aria-labelledby="delete-title"><h2 id="delete-title">Delete</h2>
<p>The identity and its tokens stop working at once.</p>
<a class="button danger" href="{delete}">Delete identity…</a></section>"#,
        id = esc(&record.id),
        copy = copy_button("identity-id", "id"),
        custom = record
            .custom_id
            .as_deref()
            .map(esc)
            .unwrap_or_else(|| "—".into()),
        created = time_us(Some(record.created_at_us)),
        last = time_us(record.last_token_issued_at_us),
        revoked = time_us(record.revoked_before_us),
        fields = token_fields(&state, ""),
        delete = esc(&format!(
            "/console/identity/delete?id={}",
            query_value(&record.id)
        )),
    );
    page(
        StatusCode::OK,
        html::page("Identity", Section::Identities, Some(signed.csrf()), &main),
    )
}

/// Who an exchanged token's user is and the assignment that lets them exchange, read from an
/// id of the Teams extension (`8:acs:<resource>_<tenant>_<object>`) or Entra
/// (`8:acs:<resource>_wf_<tenant>_<object>`) form: no identity is stored for them.
enum Exchanged {
    TeamsExtension { tenant: Guid, object: Guid },
    Entra { tenant: Guid, object: Guid },
}

fn exchanged_user(raw: &str, resource: &str) -> Option<Exchanged> {
    let guids = |tenant: &str, object: &str| Some((Guid::parse(tenant)?, Guid::parse(object)?));
    if let Some(rest) = raw.strip_prefix(&format!("8:acs:{resource}_wf_")) {
        let (tenant, object) = rest.split_once('_')?;
        let (tenant, object) = guids(tenant, object)?;
        return Some(Exchanged::Entra { tenant, object });
    }
    match CommunicationIdentifier::from_raw_id(raw) {
        CommunicationIdentifier::TeamsExtensionUser(user) if user.resource_id() == resource => {
            let (tenant, object) = guids(user.tenant_id(), user.user_id())?;
            Some(Exchanged::TeamsExtension { tenant, object })
        }
        _ => None,
    }
}

/// The page of an exchanged token's user, with the assignment that lets them exchange; `None`
/// when `id` is not such a user's.
async fn exchanged(state: &AppState, signed: &super::Signed<'_>, id: &str) -> Option<Response> {
    let resource = state.identities.keys().get().resource_id.to_string();
    let user = exchanged_user(id, &resource)?;
    let (kind, tenant, object, assignment) = match &user {
        Exchanged::TeamsExtension { tenant, object } => {
            let found = state.access.get(tenant, object).await.map(|a| {
                a.map(|a| {
                    (
                        a.principal_type.as_str().to_owned(),
                        a.client_ids.unwrap_or_default(),
                    )
                })
            });
            ("Teams extension", tenant, object, found)
        }
        Exchanged::Entra { tenant, object } => {
            let found = state
                .entra
                .get(object)
                .await
                .map(|a| a.map(|a| (a.principal_type.as_str().to_owned(), a.client_ids)));
            ("Entra", tenant, object, found)
        }
    };
    let assignment = match assignment {
        Ok(Some((principal, clients))) => format!(
            r#"<dl><dt>Principal type</dt><dd>{}</dd><dt>Client applications</dt><dd>{}</dd></dl>"#,
            esc(&principal),
            if clients.is_empty() {
                "any".to_owned()
            } else {
                clients.iter().map(|c| format!("<code>{}</code>", esc(c))).collect::<Vec<_>>().join(", ")
            }
        ),
        Ok(None) => r#"<p class="empty">No assignment: this user cannot exchange tokens here (any token it holds still works until it expires). Assignments are made with the API (<code>PUT …/assignments/{objectId}</code>).</p>"#.to_owned(),
        Err(e) => {
            tracing::error!(error = %e, "console: reading an assignment failed");
            return Some(error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(signed.csrf()),
                "The storage did not answer; try again.",
            ));
        }
    };
    let main = format!(
        r#"<h1>{kind} user</h1>
<section class="card"><dl>
<dt>Id</dt><dd class="id">{}</dd><dt>Tenant</dt><dd class="id">{}</dd><dt>Object</dt><dd class="id">{}</dd>
</dl><p class="hint">The user of an exchanged token: no identity is stored for it, and its tokens expire with the Entra token they were exchanged for (they cannot be revoked).</p></section>
<section class="card" aria-labelledby="assignment-title"><h2 id="assignment-title">Assignment</h2>{assignment}</section>"#,
        esc(id),
        esc(tenant.as_str()),
        esc(object.as_str()),
    );
    Some(page(
        StatusCode::OK,
        html::page(
            &format!("{kind} user"),
            Section::Identities,
            Some(signed.csrf()),
            &main,
        ),
    ))
}

/// The page of an identity that does not exist (or an id that is not one).
fn missing(signed: &super::Signed<'_>, id: &str, e: DomainError) -> Response {
    let (status, message) = match e {
        DomainError::NotFound => (
            StatusCode::NOT_FOUND,
            format!(
                "No live identity has the id {}: it may have been deleted.",
                id
            ),
        ),
        DomainError::MalformedId | DomainError::NotOwned => (
            StatusCode::NOT_FOUND,
            format!("{id} is not an identity id of this resource."),
        ),
        DomainError::Store(e) => {
            tracing::error!(error = %e, "console: reading an identity failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The storage did not answer; try again.".to_owned(),
            )
        }
    };
    error_page(status, Some(signed.csrf()), &message)
}

/// `POST /console/identity/token`
pub async fn issue(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (signed, form) = match signed_form(&state, &parts, body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let id = form.get("id").unwrap_or("").to_owned();
    let (scopes, minutes) = token_body(&form);
    let body = json!({"scopes": scopes, "expiresInMinutes": minutes});
    let op = AcsOperation::IssueToken(id.clone());
    let answer = match call(&state, &signed, &parts, op, body).await {
        Ok(answer) => answer,
        Err(refusal) => {
            return error_page(refusal.status, Some(signed.csrf()), &refusal.message);
        }
    };
    let main = format!(
        r#"<h1>Token issued</h1><p>For <a href="{}">{}</a>.</p>{}"#,
        esc(&identity_href(&id)),
        esc(&id),
        token_block(
            answer.body["token"].as_str().unwrap_or_default(),
            answer.body["expiresOn"].as_str().unwrap_or_default()
        )
    );
    with_token(
        answer.token,
        page(
            StatusCode::OK,
            html::page(
                "Token issued",
                Section::Identities,
                Some(signed.csrf()),
                &main,
            ),
        ),
    )
}

/// `POST /console/identity/revoke`
pub async fn revoke(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (signed, form) = match signed_form(&state, &parts, body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let id = form.get("id").unwrap_or("").to_owned();
    let op = AcsOperation::RevokeTokens(id.clone());
    match call(&state, &signed, &parts, op, json!({})).await {
        Ok(_) => redirect(&format!("{}&done=revoked", identity_href(&id))),
        Err(refusal) => error_page(refusal.status, Some(signed.csrf()), &refusal.message),
    }
}

/// `GET /console/identity/delete?id=…`: the confirmation.
pub async fn confirm_delete(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let signed = match signed_page(&state, &parts) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let query = query(&parts);
    let id = param(&query, "id").unwrap_or("");
    let record = match state.identities.record(id).await {
        Ok(record) => record,
        Err(e) => return missing(&signed, id, e),
    };
    let main = format!(
        r#"<h1>Delete this identity?</h1>
<section class="card danger"><p>Deleting <strong class="id">{id}</strong>{custom} cannot be undone: its tokens stop working at once and no new ones can be issued for it.</p>
<form method="post" action="/console/identity/delete">
<input type="hidden" name="csrf" value="{}"><input type="hidden" name="id" value="{id}">
<button type="submit" class="danger">Delete identity</button> <a href="{}">Cancel</a>
</form></section>"#,
        esc(signed.csrf()),
        esc(&identity_href(&record.id)),
        id = esc(&record.id),
        custom = record
            .custom_id
            .as_deref()
            .map(|c| format!(" (customId {})", esc(c)))
            .unwrap_or_default(),
    );
    page(
        StatusCode::OK,
        html::page(
            "Delete identity",
            Section::Identities,
            Some(signed.csrf()),
            &main,
        ),
    )
}

/// `POST /console/identity/delete`
pub async fn delete(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (signed, form) = match signed_form(&state, &parts, body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let id = form.get("id").unwrap_or("").to_owned();
    match call(
        &state,
        &signed,
        &parts,
        AcsOperation::DeleteIdentity(id),
        json!({}),
    )
    .await
    {
        Ok(_) => redirect("/console/identities?deleted=1"),
        Err(refusal) => error_page(refusal.status, Some(signed.csrf()), &refusal.message),
    }
}
