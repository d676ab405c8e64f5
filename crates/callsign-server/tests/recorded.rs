//! Replays the exchanges recorded against the real ACS Identity service
//! (`fixtures/recorded_exchanges.json`, one entry per recording, named `X..`) against a callsign
//! server, and checks that callsign answers like the service did: the same status; a body with the
//! same keys in the same order at every level (the property order is part of the contract), the
//! same error code, message and target, and values of the same form where the recording holds
//! sanitized ids and tokens; and the same response headers.
//!
//! Every recording is replayed against a fresh server, so that no recording depends on another.
//! Ids in recorded paths are sanitized: the replay puts the id of another resource there where the
//! service answered `IdentityNotOwned`, and otherwise an identity it creates first (with the
//! recording's `customId`, and a token issued for it, where the recorded answer shows the identity
//! already had tokens).
//!
//! Teams user exchanges run against servers that trust a local test issuer. Their sanitized Entra
//! token is replaced by one of that issuer's where the recording tells what it was: a valid token for
//! a success (with the token's own `appId` and `userId` for sanitized ones), an empty, invalid
//! (foreign-signed) or expired one where the recording's case names it; otherwise the request goes
//! as recorded, sanitized token and all.

use callsign_common::time_format;
use callsign_server::clock::SystemClock;
use callsign_testkit::issuer::{TestIssuer, APP_ID, USER_OID};
use callsign_testkit::{encode, Client, Reply, TestServer};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

const FIXTURE: &str = include_str!("fixtures/recorded_exchanges.json");
/// How many recordings the fixture holds.
const FIXTURE_ENTRIES: usize = 61;
/// The id of another resource that the SDK live tests used for the `IdentityNotOwned` cases.
const FOREIGN_ID: &str =
    "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000000";
/// Recordings made before September 2022, when the `ExpiresInMinutes` message was shorter:
/// callsign's (newer) message must start with theirs.
const SHORT_WORDING: [&str; 2] = ["X47", "X48"];
const PREVIEW: &str = "2025-03-02-preview";
/// Versions that do not read `expiresInMinutes`: tokens last the default 1440 minutes.
const WITHOUT_TOKEN_LIFETIME: [&str; 5] = [
    "2020-07-20-preview2",
    "2021-03-07",
    "2021-03-31-preview1",
    "2021-10-31-preview",
    "2022-06-01",
];
/// The operation of the Teams user exchange recordings.
const TEAMS_EXCHANGE: &str = "exchange_teams_token";
/// How the sanitizers wrote a value they removed.
const SANITIZED: [&str; 3] = ["sanitized", "Sanitized", "REDACTED"];
/// `expiresOn`: exactly seven fractional digits and `+00:00` (`d` is any digit).
const EXPIRES_ON_FORM: &str = "dddd-dd-ddTdd:dd:dd.ddddddd+00:00";
/// `lastTokenIssuedAt`: whole seconds and `+00:00`.
const LAST_TOKEN_ISSUED_AT_FORM: &str = "dddd-dd-ddTdd:dd:dd+00:00";

fn fixture() -> Vec<Value> {
    serde_json::from_str(FIXTURE).expect("the fixture is a JSON array")
}

/// One recorded exchange.
struct Recording<'a> {
    id: &'a str,
    operation: &'a str,
    case: &'a str,
    api_version: &'a str,
    method: &'a str,
    path: &'a str,
    /// `null` means no body.
    request: &'a Value,
    status: u16,
    headers: &'a Map<String, Value>,
    /// `null` means an empty body.
    response: &'a Value,
}

impl<'a> Recording<'a> {
    fn new(entry: &'a Value) -> Self {
        let id = entry["id"].as_str().expect("every recording has an id");
        let text = |field: &str| {
            entry[field]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: no {field}"))
        };
        Self {
            id,
            operation: text("operation"),
            case: text("case"),
            api_version: text("api_version"),
            method: text("method"),
            path: text("path"),
            request: &entry["request_body"],
            status: entry["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or_else(|| panic!("{id}: no status")),
            headers: entry["response_headers"]
                .as_object()
                .unwrap_or_else(|| panic!("{id}: no response_headers")),
            response: &entry["response_body"],
        }
    }

    /// A recorded response header; names compare case-insensitively.
    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    }

    fn error_code(&self) -> Option<&'a str> {
        self.response["error"]["code"].as_str()
    }

    /// The identity object of the recorded answer: wrapped (create) or flat (GET).
    fn identity(&self) -> Option<&'a Value> {
        identity_of(self.response)
    }

    /// The `customId` the exchange is about: the request's, or for a GET the answer's.
    fn custom_id(&self) -> Option<&'a str> {
        self.request
            .get("customId")
            .or_else(|| self.identity().and_then(|i| i.get("customId")))
            .and_then(Value::as_str)
    }

    /// The identity segment of the path, if the path names one.
    fn path_id(&self) -> Option<&'a str> {
        let path = self.path.split('?').next().unwrap_or_default();
        path.strip_prefix("/identities/")
            .and_then(|rest| rest.split('/').next())
            .filter(|segment| !segment.is_empty())
    }

    /// The path with its (sanitized) identity segment replaced by `id`, percent-encoded.
    fn path_with(&self, id: &str) -> String {
        let segment = self.path_id().expect("the path names an identity");
        let rest = &self.path["/identities/".len() + segment.len()..];
        format!("/identities/{}{rest}", encode(id))
    }
}

/// The identity object of an answer: `{"identity": {...}}` or a flat `{..., "id"}`.
fn identity_of(body: &Value) -> Option<&Value> {
    body.get("identity")
        .or_else(|| body.get("id").map(|_| body))
}

/// The token object of an answer: `{"accessToken": {...}}` or a flat `{"token", "expiresOn"}`.
fn token_of(body: &Value) -> Option<&Value> {
    body.get("accessToken")
        .or_else(|| body.get("token").map(|_| body))
}

/// Collects mismatches, each named after the recording it concerns.
struct Report<'o> {
    name: String,
    out: &'o mut Vec<String>,
}

impl Report<'_> {
    fn fail(&mut self, what: impl std::fmt::Display) {
        self.out.push(format!("{}: {what}", self.name));
    }
}

/// What the replay prepared on the server before sending the recorded request.
#[derive(Default)]
struct Setup {
    /// The id put in the path in place of the sanitized one.
    path_id: Option<String>,
    /// The identity that the recorded `customId` already named before the replay.
    existing: Option<String>,
    /// The `iat` of the token issued for it before the replay.
    last_iat: Option<i64>,
    /// The `exp` of the valid Entra token a Teams exchange sends.
    entra_exp: Option<i64>,
}

/// What the sanitized Entra token of a recorded Teams exchange stood for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntraToken {
    Valid,
    Empty,
    Invalid,
    Expired,
    /// Nothing the recording tells: the request goes as recorded.
    AsRecorded,
}

impl EntraToken {
    /// A success needs a valid token; an error's case may name the token's kind.
    fn of(rec: &Recording<'_>) -> Self {
        let case = rec.case.to_ascii_lowercase();
        if rec.status == 200 {
            EntraToken::Valid
        } else if case.contains("empty token") {
            EntraToken::Empty
        } else if case.contains("invalid token") {
            EntraToken::Invalid
        } else if case.contains("expired token") {
            EntraToken::Expired
        } else {
            EntraToken::AsRecorded
        }
    }
}

/// A server trusting `issuer`, for the Teams user exchanges.
async fn server_trusting(issuer: &TestIssuer) -> TestServer {
    let config = issuer.config();
    TestServer::start_with(Arc::new(SystemClock), move |c| {
        c.trusted_issuers = vec![config];
    })
    .await
}

/// The request body to send: the recorded one, with the sanitized values of a Teams exchange
/// replaced by what they stood for (see the module comment).
fn request_body(rec: &Recording<'_>, issuer: &TestIssuer, setup: &mut Setup) -> Value {
    let mut body = rec.request.clone();
    let sanitized = |v: &Value| v.as_str().is_some_and(|s| SANITIZED.contains(&s));
    if rec.operation != TEAMS_EXCHANGE || !body.get("token").is_some_and(sanitized) {
        return body;
    }
    let now = chrono::Utc::now().timestamp();
    let claims = issuer.teams_claims(now);
    let kind = EntraToken::of(rec);
    let token = match kind {
        EntraToken::AsRecorded => return body,
        EntraToken::Valid => {
            setup.entra_exp = claims["exp"].as_i64();
            issuer.token(&claims)
        }
        EntraToken::Empty => String::new(),
        EntraToken::Invalid => issuer.forged(&claims),
        EntraToken::Expired => {
            let mut expired = issuer.teams_claims(now - 7200);
            expired["exp"] = (now - 3600).into();
            issuer.token(&expired)
        }
    };
    body["token"] = token.into();
    if kind == EntraToken::Valid {
        for (field, value) in [("appId", APP_ID), ("userId", USER_OID)] {
            if body.get(field).is_some_and(sanitized) {
                body[field] = value.into();
            }
        }
    }
    body
}

/// Replays one recording on `server` and records every difference from it. `prepare_custom_id`:
/// whether an identity with the recorded `customId` is created (and given a token) first when the
/// recorded answer shows it had tokens. Returns the reply, or `None` if the request could not be
/// replayed.
async fn replay(
    server: &TestServer,
    issuer: &TestIssuer,
    rec: &Recording<'_>,
    prepare_custom_id: bool,
    report: &mut Report<'_>,
) -> Option<Reply> {
    let client = server.client();
    let mut setup = set_up(&client, rec, prepare_custom_id, report).await?;
    let path = match &setup.path_id {
        Some(id) => rec.path_with(id),
        None => rec.path.to_owned(),
    };
    let request = request_body(rec, issuer, &mut setup);
    let body = (!request.is_null())
        .then(|| serde_json::to_vec(&request).expect("request bodies serialize"));
    let request_id = format!("callsign-replay-{}", rec.id.to_ascii_lowercase());
    let reply = client
        .send_with(
            rec.method,
            &path,
            body.as_deref(),
            &[("x-ms-client-request-id", &request_id)],
        )
        .await;
    if reply.status != rec.status {
        report.fail(format!(
            "status {} (recorded {}) for {} {path}; body: {}",
            reply.status,
            rec.status,
            rec.method,
            reply.text()
        ));
        return Some(reply);
    }
    compare_headers(rec, &reply, &request_id, report);
    compare_body(server, rec, &setup, &reply, report);
    Some(reply)
}

/// Creates what the recording presupposes: the identity its path names, or the identity its
/// `customId` already named, with a token where the recorded answer shows `lastTokenIssuedAt`.
async fn set_up(
    client: &Client,
    rec: &Recording<'_>,
    prepare_custom_id: bool,
    report: &mut Report<'_>,
) -> Option<Setup> {
    let mut setup = Setup::default();
    let names_identity = rec.path_id().is_some();
    if names_identity && rec.error_code() == Some("IdentityNotOwned") {
        setup.path_id = Some(FOREIGN_ID.to_owned());
        return Some(setup);
    }
    let custom_id = rec.custom_id();
    let had_tokens = rec
        .identity()
        .is_some_and(|i| i.get("lastTokenIssuedAt").is_some());
    let custom_id_existed = custom_id.is_some() && had_tokens && prepare_custom_id;
    if !names_identity && !custom_id_existed {
        return Some(setup);
    }
    let create = match custom_id {
        Some(custom_id) => json!({ "customId": custom_id }),
        None => json!({}),
    };
    let created = client
        .post(&format!("/identities?api-version={PREVIEW}"), &create)
        .await;
    let Some(id) = (created.status == 201)
        .then(|| created.json()["identity"]["id"].as_str().map(str::to_owned))
        .flatten()
    else {
        report.fail(format!(
            "setup: creating {create} answered {}: {}",
            created.status,
            created.text()
        ));
        return None;
    };
    if had_tokens {
        setup.last_iat = Some(issue_and_await_last_token(client, &id, report).await?);
    }
    if names_identity {
        setup.path_id = Some(id.clone());
    }
    if custom_id.is_some() {
        setup.existing = Some(id);
    }
    Some(setup)
}

/// Issues a token for `id` and waits (up to 2 s: the service may write `lastTokenIssuedAt` up to
/// 1 s late) until reading the identity shows `lastTokenIssuedAt`. Returns the token's `iat`.
async fn issue_and_await_last_token(
    client: &Client,
    id: &str,
    report: &mut Report<'_>,
) -> Option<i64> {
    let issued = client
        .post(
            &format!(
                "/identities/{}/:issueAccessToken?api-version={PREVIEW}",
                encode(id)
            ),
            &json!({"scopes": ["chat"]}),
        )
        .await;
    let iat = (issued.status == 200)
        .then(|| issued.json()["token"].as_str().and_then(claims))
        .flatten()
        .and_then(|c| c["iat"].as_i64());
    let Some(iat) = iat else {
        report.fail(format!(
            "setup: issuing a token answered {}: {}",
            issued.status,
            issued.text()
        ));
        return None;
    };
    let get = format!("/identities/{}?api-version={PREVIEW}", encode(id));
    for _ in 0..20 {
        let read = client.send("GET", &get, None).await;
        if read.status == 200 && read.json().get("lastTokenIssuedAt").is_some() {
            return Some(iat);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report.fail("setup: lastTokenIssuedAt did not appear within 2 s of issuing a token");
    Some(iat)
}

/// The JWT payload of a token, without panicking on a malformed one.
fn claims(token: &str) -> Option<Value> {
    let bytes = callsign_common::claims::decode_payload(token).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn compare_headers(rec: &Recording<'_>, reply: &Reply, request_id: &str, report: &mut Report<'_>) {
    for name in [
        "x-ms-client-request-id",
        "content-type",
        "api-supported-versions",
        "ms-cv",
        "x-processing-time",
    ] {
        let count = reply.headers.get_all(name).iter().count();
        if count > 1 {
            report.fail(format!("{count} {name} headers"));
        }
    }

    let echoed = reply.header("x-ms-client-request-id");
    if echoed != Some(request_id) {
        report.fail(format!(
            "x-ms-client-request-id {echoed:?}, sent {request_id:?}"
        ));
    }

    let content_type = reply.header("content-type");
    let recorded = rec.header("content-type");
    if content_type != recorded {
        report.fail(format!(
            "content-type {content_type:?}, recorded {recorded:?}"
        ));
    }
    let by_rule = match rec.status {
        204 => None,
        200..=299 => Some("application/json; charset=utf-8"),
        // The one recorded refusal without a body (X53, X54) has no content type either.
        _ if rec.response.is_null() => None,
        _ => Some("application/json"),
    };
    if content_type != by_rule {
        report.fail(format!(
            "content-type {content_type:?}, expected {by_rule:?} for a {}",
            rec.status
        ));
    }

    match (
        rec.header("api-supported-versions"),
        reply.header("api-supported-versions"),
    ) {
        (Some(_), None) => report.fail("no api-supported-versions header; the recording has one"),
        (None, Some(value)) => report.fail(format!(
            "api-supported-versions {value:?}; the recording has none"
        )),
        (Some(_), Some(value)) => {
            if !value.split(", ").any(|v| v == rec.api_version) {
                report.fail(format!(
                    "api-supported-versions {value:?} does not list {}",
                    rec.api_version
                ));
            }
        }
        (None, None) => {}
    }

    match reply.header("ms-cv") {
        Some(cv) if is_correlation_vector(cv) => {}
        other => report.fail(format!("MS-CV {other:?} is not a correlation vector")),
    }
    match reply.header("x-processing-time") {
        Some(t) if t.strip_suffix("ms").is_some_and(is_digits) => {}
        other => report.fail(format!("X-Processing-Time {other:?} is not <n>ms")),
    }
}

fn compare_body(
    server: &TestServer,
    rec: &Recording<'_>,
    setup: &Setup,
    reply: &Reply,
    report: &mut Report<'_>,
) {
    if rec.response.is_null() {
        if !reply.body.is_empty() {
            report.fail(format!("body {:?}; the recording has none", reply.text()));
        }
        return;
    }
    let body: Value = match serde_json::from_slice(&reply.body) {
        Ok(body) => body,
        Err(e) => {
            report.fail(format!("body is not JSON ({e}): {:?}", reply.text()));
            return;
        }
    };
    if serde_json::to_vec(&body).ok().as_deref() != Some(&reply.body[..]) {
        report.fail(format!("body is not compact JSON: {}", reply.text()));
    }
    compare_shape(rec.response, &body, "body", report);
    match rec.response.get("error") {
        Some(recorded) => compare_error(rec, recorded, &body["error"], report),
        None => compare_success(server, rec, setup, &body, report),
    }
}

/// The same keys, in the same order, at every level, and values of the same JSON types.
fn compare_shape(recorded: &Value, actual: &Value, at: &str, report: &mut Report<'_>) {
    match (recorded, actual) {
        (Value::Object(r), Value::Object(a)) => {
            let recorded_keys: Vec<&String> = r.keys().collect();
            let actual_keys: Vec<&String> = a.keys().collect();
            if recorded_keys != actual_keys {
                report.fail(format!(
                    "{at} has keys {actual_keys:?}, recorded {recorded_keys:?}"
                ));
                return;
            }
            for (key, value) in r {
                compare_shape(value, &a[key], &format!("{at}.{key}"), report);
            }
        }
        (r, a) => {
            if kind(r) != kind(a) {
                report.fail(format!("{at} is {a}, recorded {r}"));
            }
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Error bodies compare exactly (code, message, target), except the pre-September-2022 wording.
fn compare_error(rec: &Recording<'_>, recorded: &Value, actual: &Value, report: &mut Report<'_>) {
    let Some(fields) = recorded.as_object() else {
        report.fail("the recorded error is not an object");
        return;
    };
    for (key, value) in fields {
        let got = &actual[key];
        let same = match (key.as_str(), value.as_str(), got.as_str()) {
            ("message", Some(recorded), Some(got)) if SHORT_WORDING.contains(&rec.id) => {
                got.starts_with(recorded)
            }
            _ => got == value,
        };
        if !same {
            report.fail(format!("error.{key} {got}, recorded {value}"));
        }
    }
}

/// Success bodies hold sanitized values: compare their forms, and what the request determines.
fn compare_success(
    server: &TestServer,
    rec: &Recording<'_>,
    setup: &Setup,
    body: &Value,
    report: &mut Report<'_>,
) {
    let token = token_of(body);
    let token_claims = token.and_then(|t| t["token"].as_str()).and_then(claims);
    let mut subject = setup.path_id.clone();

    if let Some(identity) = identity_of(body) {
        match identity["id"].as_str() {
            Some(id) => {
                if !is_acs_id(id, &server.resource_id) {
                    report.fail(format!(
                        "id {id:?} is not 8:acs:{}_<8-4-4-4-12 hex>",
                        server.resource_id
                    ));
                }
                if let Some(path_id) = &setup.path_id {
                    if id != path_id {
                        report.fail(format!("id {id:?}, but the path named {path_id:?}"));
                    }
                }
                if let Some(existing) = &setup.existing {
                    if id != existing {
                        report.fail(format!(
                            "id {id:?}, but the customId already named {existing:?}"
                        ));
                    }
                }
                subject = Some(id.to_owned());
            }
            None => report.fail(format!("identity id {} is not a string", identity["id"])),
        }
        if let Some(custom_id) = identity.get("customId") {
            if custom_id.as_str() != rec.custom_id() {
                report.fail(format!(
                    "customId {custom_id}, requested {:?}",
                    rec.custom_id()
                ));
            }
        }
        if let Some(value) = identity.get("lastTokenIssuedAt") {
            // The token this request issued, else the one issued before it.
            let expected = match &token_claims {
                Some(c) => c["iat"].as_i64(),
                None => setup.last_iat,
            };
            compare_last_token_issued_at(value, expected, report);
        }
    }

    if let Some(token) = token {
        let expected = if rec.operation == TEAMS_EXCHANGE {
            ExpectedToken::exchanged(setup)
        } else {
            ExpectedToken::issued(rec, subject.as_deref())
        };
        compare_token(token, token_claims.as_ref(), &expected, report);
    }
}

/// What the token of an answer must hold.
struct ExpectedToken {
    /// `skypeid`, when the replay knows the subject.
    skype_id: Option<String>,
    /// `acsScope`.
    acs_scope: Option<String>,
    /// `exp - iat` in seconds, for a token issued for an identity.
    lifetime: Option<i64>,
    /// `exp`, for a token exchanged for an Entra token: the Entra token's.
    exp: Option<i64>,
}

impl ExpectedToken {
    /// A token issued for an identity: the requested scopes and lifetime.
    fn issued(rec: &Recording<'_>, subject: Option<&str>) -> Self {
        let minutes = if WITHOUT_TOKEN_LIFETIME.contains(&rec.api_version) {
            1440
        } else {
            rec.request["expiresInMinutes"].as_i64().unwrap_or(1440)
        };
        let requested = rec
            .request
            .get("createTokenWithScopes")
            .or_else(|| rec.request.get("scopes"))
            .and_then(Value::as_array)
            .map(|scopes| {
                scopes
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            });
        Self {
            skype_id: subject.map(|s| s.strip_prefix("8:").unwrap_or(s).to_owned()),
            acs_scope: requested,
            lifetime: Some(minutes * 60),
            exp: None,
        }
    }

    /// A Teams user's token: `8:orgid:<oid>`, `chat,voip`, expiring with the Entra token.
    fn exchanged(setup: &Setup) -> Self {
        Self {
            skype_id: Some(format!("orgid:{USER_OID}")),
            acs_scope: Some("chat,voip".to_owned()),
            lifetime: None,
            exp: setup.entra_exp,
        }
    }
}

fn compare_last_token_issued_at(value: &Value, expected_iat: Option<i64>, report: &mut Report<'_>) {
    let text = value.as_str().unwrap_or_default();
    let parsed = time_format::parse(text);
    if !has_form(text, LAST_TOKEN_ISSUED_AT_FORM) || parsed.is_none() {
        report.fail(format!(
            "lastTokenIssuedAt {value} is not {LAST_TOKEN_ISSUED_AT_FORM}"
        ));
    }
    if let (Some(at), Some(iat)) = (parsed, expected_iat) {
        if (at.timestamp() - iat).abs() > 1 {
            report.fail(format!(
                "lastTokenIssuedAt {text} is not the last token's iat {iat}"
            ));
        }
    }
}

fn compare_token(
    token: &Value,
    token_claims: Option<&Value>,
    expected: &ExpectedToken,
    report: &mut Report<'_>,
) {
    let Some(token_claims) = token_claims else {
        report.fail(format!(
            "token {} is not a JWT with a JSON payload",
            token["token"]
        ));
        return;
    };
    let (Some(iat), Some(exp)) = (token_claims["iat"].as_i64(), token_claims["exp"].as_i64())
    else {
        report.fail(format!("token claims lack iat/exp: {token_claims}"));
        return;
    };

    let expires_on = token["expiresOn"].as_str().unwrap_or_default();
    if !has_form(expires_on, EXPIRES_ON_FORM) {
        report.fail(format!("expiresOn {expires_on:?} is not {EXPIRES_ON_FORM}"));
    }
    let exp_time = chrono::DateTime::from_timestamp(exp, 0);
    if time_format::parse(expires_on) != exp_time {
        report.fail(format!(
            "expiresOn {expires_on:?} is not the token's exp {exp}"
        ));
    }
    if let Some(lifetime) = expected.lifetime {
        if exp - iat != lifetime {
            report.fail(format!(
                "token lifetime {} s, expected {lifetime} s",
                exp - iat
            ));
        }
    }
    if let Some(expected_exp) = expected.exp {
        if exp != expected_exp {
            report.fail(format!(
                "token exp {exp}, expected the Entra token's {expected_exp}"
            ));
        }
    }
    for (claim, value) in [
        ("skypeid", &expected.skype_id),
        ("acsScope", &expected.acs_scope),
    ] {
        if let Some(value) = value {
            if token_claims[claim].as_str() != Some(value) {
                report.fail(format!(
                    "token {claim} {}, expected {value:?}",
                    token_claims[claim]
                ));
            }
        }
    }
}

/// Whether `text` has `form`, where `d` stands for any ASCII digit and other characters for
/// themselves.
fn has_form(text: &str, form: &str) -> bool {
    text.len() == form.len()
        && text.bytes().zip(form.bytes()).all(|(c, f)| match f {
            b'd' => c.is_ascii_digit(),
            _ => c == f,
        })
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit())
}

/// `8:acs:<resource id>_<8-4-4-4-12 hex>`.
fn is_acs_id(id: &str, resource_id: &str) -> bool {
    id.strip_prefix("8:acs:")
        .and_then(|rest| rest.strip_prefix(resource_id))
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(is_guid)
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// The service's correlation vector: 22 base64 characters, then `.`-separated numbers
/// (`Y+vlxDCFp0eMl9frhHnyvQ.0`, `mc/LXoQxLEq2/r4ClD7GGw.2.0`).
fn is_correlation_vector(cv: &str) -> bool {
    let mut parts = cv.split('.');
    let base = parts.next().unwrap_or_default();
    let counters: Vec<&str> = parts.collect();
    base.len() == 22
        && base
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        && !counters.is_empty()
        && counters.iter().all(|c| is_digits(c))
}

fn assert_no_mismatches(mismatches: &[String], summary: &str) {
    assert!(
        mismatches.is_empty(),
        "{summary}\n{} difference(s) from the recorded service:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[tokio::test]
async fn callsign_answers_like_the_recorded_service() {
    let entries = fixture();
    assert_eq!(entries.len(), FIXTURE_ENTRIES, "recordings in the fixture");
    let mut ids: Vec<&str> = entries.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), entries.len(), "recording ids are unique");

    let issuer = TestIssuer::start().await;
    let mut mismatches = Vec::new();
    let mut replayed = 0;
    let mut differing = Vec::new();
    for entry in &entries {
        let rec = Recording::new(entry);
        let server = server_trusting(&issuer).await;
        let before = mismatches.len();
        let mut report = Report {
            name: rec.id.to_owned(),
            out: &mut mismatches,
        };
        if replay(&server, &issuer, &rec, true, &mut report)
            .await
            .is_some()
        {
            replayed += 1;
        }
        if mismatches.len() > before {
            differing.push(rec.id);
        }
    }
    let summary = format!(
        "{} of {} recordings answered as recorded; differing: {differing:?}",
        entries.len() - differing.len(),
        entries.len()
    );
    eprintln!("{summary}");

    // A create with a customId and a token answers with lastTokenIssuedAt also when the customId
    // is new (the recording does not tell whether it was).
    let mut fresh = 0;
    for entry in &entries {
        let rec = Recording::new(entry);
        if rec.request.get("customId").is_none()
            || rec.request.get("createTokenWithScopes").is_none()
        {
            continue;
        }
        let server = TestServer::start().await;
        let mut report = Report {
            name: format!("{} (customId not created before)", rec.id),
            out: &mut mismatches,
        };
        if replay(&server, &issuer, &rec, false, &mut report)
            .await
            .is_some()
        {
            fresh += 1;
        }
    }

    assert_no_mismatches(&mismatches, &summary);
    assert_eq!(replayed, entries.len(), "recordings replayed");
    assert!(
        fresh > 0,
        "no recording creates with a customId and a token"
    );
}

/// X17 then X18 on one server: the same customId twice is 201 both times, with the same identity.
#[tokio::test]
async fn a_repeated_custom_id_answers_like_the_recorded_sequence() {
    let entries = fixture();
    let find = |id: &str| {
        entries
            .iter()
            .find(|e| e["id"] == id)
            .map(Recording::new)
            .unwrap_or_else(|| panic!("{id} is in the fixture"))
    };
    let (first, second) = (find("X17"), find("X18"));
    assert!(first.request.get("customId").is_some());
    assert_eq!(first.request, second.request, "X18 repeats X17's request");

    let issuer = TestIssuer::start().await;
    let server = TestServer::start().await;
    let mut mismatches = Vec::new();
    let mut ids = Vec::new();
    for rec in [&first, &second] {
        let mut report = Report {
            name: format!("{} (sequence X17, X18)", rec.id),
            out: &mut mismatches,
        };
        let reply = replay(&server, &issuer, rec, true, &mut report).await;
        let id = reply
            .filter(|r| r.status == 201)
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|body| body["identity"]["id"].as_str().map(str::to_owned));
        ids.push(id);
    }
    assert_no_mismatches(&mismatches, "sequence X17, X18");
    assert!(ids[0].is_some(), "X17 created an identity");
    assert_eq!(ids[0], ids[1], "X18 answers with X17's identity");
}
