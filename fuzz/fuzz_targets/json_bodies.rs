//! The JSON bodies of every route, through the real router: path, api-version, authentication,
//! `JsonBody` and each handler's reading of its fields, down to a SQLite data dir (on tmpfs when
//! the machine has one). Properties: no panic, no 5xx answer (a body the service cannot use is a
//! 4xx), and every error body is the ACS JSON error shape.
//!
//! Input: NUL-separated `method, target, auth, body`.
//! - `auth` empty: HMAC-signed with the primary access key; `raw <value>`: that Authorization
//!   value as is; `none`: no Authorization; `bearer <payload>`: a JWT with that payload signed by
//!   the trusted issuer's key (`$ISS`, `$TID`, `$NOW`, `$EXP`, `$OID`, `$AUD_*` are filled in),
//!   sent as the bearer token; `jwt <payload>`: HMAC-signed, and that JWT is `$JWT` in the body.
//! - In the target and the body, `$ID` is a live identity and `$TOKEN` a valid token for it.

#![no_main]
#![forbid(unsafe_code)]

use axum::body::Body;
use axum::Router;
use callsign_common::hmac::sign_request;
use callsign_fuzz::{
    access_keys, clock, issuer_key, now, resource_keys, runtime, scratch_dir, sign_jws,
    trusted_issuers, Fields, ISSUER, NOW_SECS, TENANT,
};
use callsign_server::audit::{AuditConfig, AuditLog, PendingEvents};
use callsign_server::auth::entra::{ENTRA_CLIENTS_AUDIENCE, MANAGEMENT_AUDIENCE, TEAMS_AUDIENCE};
use callsign_server::auth::ManagementConfig;
use callsign_server::clock::Stamps;
use callsign_server::domain::access::AccessService;
use callsign_server::domain::entra::EntraAccessService;
use callsign_server::domain::{IdentityService, Minutes, Scope, Scopes};
use callsign_server::http::{router, AppState, HttpConfig};
use callsign_server::keys::LiveKeys;
use callsign_server::metrics::Metrics;
use callsign_server::readiness::Readiness;
use callsign_server::store::{self, OpenMode, StorageConfig};
use callsign_server::throttling::{Throttle, ThrottleConfig};
use http::{HeaderValue, Method, Request};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

const HOST: &str = "callsign.fuzz";
/// The management caller allow-listed by object id.
const OID: &str = "0b5f3bb4-8b0a-4a50-8d4e-3a0c2e1f9d21";

struct State {
    runtime: tokio::runtime::Runtime,
    router: Router,
    id: String,
    token: String,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let runtime = runtime();
        let dir = scratch_dir("data");
        let (router, id, token) = runtime.block_on(async {
            let backend = store::open(&StorageConfig::DataDir(dir), OpenMode::Create)
                .await
                .expect("a data dir");
            let keys = Arc::new(LiveKeys::new(resource_keys().clone()));
            let audit = AuditLog::open(
                AuditConfig::default(),
                backend.clone(),
                keys.clone(),
                clock(),
            )
            .expect("an audit log without sinks");
            let identities =
                IdentityService::new(backend.clone(), keys, Arc::new(Stamps::new(clock())));
            let scopes = Scopes::new([Scope::Chat, Scope::Voip]).unwrap();
            let (view, token) = identities
                .create(
                    None,
                    Some((scopes, Minutes::default())),
                    &PendingEvents::none(),
                )
                .await
                .expect("an identity");
            let state = AppState {
                identities,
                config: HttpConfig::default(),
                issuers: Arc::new(trusted_issuers()),
                management: ManagementConfig {
                    allowed_object_ids: vec![OID.to_owned()],
                    required_role: Some("Identity.Manage".to_owned()),
                },
                access: AccessService::new(backend.clone()),
                entra: EntraAccessService::new(backend.clone()),
                throttle: Throttle::new(ThrottleConfig::off(), backend.clone(), clock()),
                metrics: Arc::new(Metrics::new(backend.clone())),
                readiness: Readiness::start(backend).await,
                audit: Arc::new(audit),
                console: None,
            };
            (router(Arc::new(state)), view.id, token.unwrap().token)
        });
        State {
            runtime,
            router,
            id,
            token,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = state();
    let mut f = Fields::new(data);
    let (method, target, auth) = (f.bytes(), f.text(), f.text());
    // `bearer <payload>` and `jwt <payload>`: a JWT of the trusted issuer with that payload.
    let jwt = auth
        .strip_prefix("bearer ")
        .or_else(|| auth.strip_prefix("jwt "))
        .map(issuer_token);
    let fill = |text: &str| {
        text.replace("$ID", &s.id)
            .replace("$TOKEN", &s.token)
            .replace("$JWT", jwt.as_deref().unwrap_or_default())
    };
    let target = fill(&target);
    let body = fill(&String::from_utf8_lossy(f.bytes())).into_bytes();

    let Ok(method) = Method::from_bytes(method) else {
        return;
    };
    let Ok(mut request) = Request::builder()
        .method(method.clone())
        .uri(target.as_str())
        .header("host", HOST)
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
    else {
        return;
    };
    let authorization = if let Some(value) = auth.strip_prefix("raw ") {
        Some(value.to_owned())
    } else if auth.starts_with("bearer ") {
        jwt.map(|token| format!("Bearer {token}"))
    } else if auth == "none" {
        None
    } else {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let signed = sign_request(
            &access_keys().primary,
            method.as_str(),
            &path,
            HOST,
            &body,
            now(),
        );
        let headers = request.headers_mut();
        headers.insert("x-ms-date", HeaderValue::from_str(&signed.date).unwrap());
        headers.insert(
            "x-ms-content-sha256",
            HeaderValue::from_str(&signed.content_hash).unwrap(),
        );
        Some(signed.authorization)
    };
    if let Some(value) = authorization.and_then(|v| HeaderValue::from_str(&v).ok()) {
        request.headers_mut().insert("authorization", value);
    }

    let (status, content_type, bytes) = s.runtime.block_on(async {
        let response = s.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a response body");
        (status, content_type, bytes)
    });
    if callsign_fuzz::debug() {
        eprintln!(
            "{method} {target} -> {status} {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    assert!(
        !status.is_server_error(),
        "{status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() {
        assert!(
            content_type.starts_with("application/json"),
            "{status} {content_type}"
        );
        let error: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON error body");
        assert!(error["error"]["code"].is_string(), "{error}");
        assert!(error["error"]["message"].is_string(), "{error}");
    }
});

/// A token of the trusted issuer with `payload` (`$ISS`, `$TID`, `$NOW`, `$EXP`, `$OID` and
/// `$AUD_MANAGEMENT`, `$AUD_TEAMS`, `$AUD_ENTRA` filled in).
fn issuer_token(payload: &str) -> String {
    let payload = payload
        .replace("$ISS", ISSUER)
        .replace("$TID", TENANT)
        .replace("$NOW", &NOW_SECS.to_string())
        .replace("$EXP", &(NOW_SECS + 3600).to_string())
        .replace("$OID", OID)
        .replace("$AUD_MANAGEMENT", MANAGEMENT_AUDIENCE)
        .replace("$AUD_TEAMS", TEAMS_AUDIENCE)
        .replace("$AUD_ENTRA", ENTRA_CLIENTS_AUDIENCE);
    let header = serde_json::json!({"alg": "RS256", "kid": issuer_key().kid(), "typ": "JWT"});
    sign_jws(
        issuer_key(),
        header.to_string().as_bytes(),
        payload.as_bytes(),
    )
}
