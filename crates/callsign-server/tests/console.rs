//! The web console (issue 15) against a real server on loopback: a session is needed for every
//! page and action, every change needs the session's CSRF token, the cookie's flags (`Secure`
//! over TLS), expiry and sign-out by the injected clock, the sign-in rate limit, the CSP header
//! on every response, no access key on any page but the Keys page, escaping of user values, and
//! the console's changes made by the API's code and recorded with the console as the actor.

use callsign_server::audit::{AuditConfig, SinkConfig};
use callsign_server::clock::ManualClock;
use callsign_server::TlsMode;
use callsign_testkit::{raw, Reply, TestServer};
use serde_json::Value;
use std::sync::Arc;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// A browser without a cookie jar or redirects: the test sees every header.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self::with(base, reqwest::Client::builder())
    }

    fn with(base: &str, builder: reqwest::ClientBuilder) -> Self {
        Self {
            http: builder
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request
    }

    async fn get(&self, path: &str) -> Reply {
        let reply = raw(self.request(reqwest::Method::GET, path)).await;
        assert_eq!(reply.header("content-security-policy"), Some(CSP), "{path}");
        reply
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.post_with(path, fields, &[]).await
    }

    async fn post_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let reply = raw(request).await;
        assert_eq!(reply.header("content-security-policy"), Some(CSP), "{path}");
        reply
    }

    /// Signs in with `key`; keeps the session cookie when one is set.
    async fn sign_in(&mut self, key: &str) -> Reply {
        let reply = self.post("/console/sign-in", &[("key", key)]).await;
        if let Some(set) = reply.header("set-cookie") {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        reply
    }

    /// The CSRF token of the session, from a page's forms.
    async fn csrf(&self) -> String {
        let page = self.get("/console/identities").await;
        assert_eq!(page.status, 200, "{}", page.text());
        csrf_of(&page.text())
    }
}

fn csrf_of(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a csrf token")
        + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn location(reply: &Reply) -> &str {
    reply.header("location").unwrap_or("")
}

const PAGES: [&str; 11] = [
    "/console/identities",
    "/console/identities/new",
    "/console/identity?id=8:acs:x",
    "/console/identity/delete?id=8:acs:x",
    "/console/inspect",
    "/console/keys",
    "/console/keys/regenerate?which=secondary",
    "/console/keys/rotate",
    "/console/activity",
    "/console/settings",
    "/console",
];

const ACTIONS: [&str; 8] = [
    "/console/identities",
    "/console/identity/token",
    "/console/identity/revoke",
    "/console/identity/delete",
    "/console/inspect",
    "/console/keys/regenerate",
    "/console/keys/rotate",
    "/console/sign-out",
];

async fn api_identities(server: &TestServer) -> Vec<Value> {
    let reply = server
        .client()
        .send("GET", "/callsign/identities", None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["value"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_page_and_action_needs_a_session() {
    let server = TestServer::start().await;
    let user = server.client().create_user().await;
    let mut browser = Browser::new(&server.base);
    for cookie in [None, Some("callsign-console=forged")] {
        browser.cookie = cookie.map(str::to_owned);
        for page in PAGES {
            let reply = browser.get(page).await;
            assert_eq!(reply.status, 303, "{page}");
            let to = location(&reply);
            assert!(
                to == "/console/sign-in" || page == "/console",
                "{page} → {to}"
            );
            assert!(!reply.text().contains(&user), "{page}");
        }
        for action in ACTIONS {
            let fields = [("id", user.as_str()), ("which", "secondary"), ("csrf", "x")];
            let reply = browser.post(action, &fields).await;
            assert_eq!(reply.status, 401, "{action}: {}", reply.text());
        }
    }
    // Nothing happened: the user is there, not revoked, the keys are the same.
    let listed = api_identities(&server).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("revokedAt").is_none());
    assert_eq!(server.keys.get().access.secondary, server.secondary);
    // The assets need no session (the sign-in page uses them), and carry the policy too.
    for asset in ["/console/assets/console.css", "/console/assets/console.js"] {
        let reply = browser.get(asset).await;
        assert_eq!(reply.status, 200, "{asset}");
    }
    assert_eq!(
        browser
            .get("/console/assets/console.js")
            .await
            .header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
}

#[tokio::test]
async fn every_change_needs_the_sessions_csrf_token() {
    let server = TestServer::start().await;
    let user = server.client().create_user().await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.sign_in(&server.key.to_base64()).await.status, 303);
    let csrf = browser.csrf().await;
    // Another session's token is no better than none.
    let mut other = Browser::new(&server.base);
    other.sign_in(&server.key.to_base64()).await;
    let foreign = other.csrf().await;
    assert_ne!(csrf, foreign);
    for action in ACTIONS {
        for token in [None, Some("wrong"), Some(foreign.as_str())] {
            let mut fields = vec![
                ("id", user.as_str()),
                ("which", "secondary"),
                ("token", "a.b.c"),
            ];
            if let Some(token) = token {
                fields.push(("csrf", token));
            }
            let reply = browser.post(action, &fields).await;
            assert_eq!(
                reply.status,
                403,
                "{action} with {token:?}: {}",
                reply.text()
            );
        }
        // The right token, but a form of another site (the browser says so in Origin).
        let fields = [
            ("id", user.as_str()),
            ("which", "secondary"),
            ("csrf", &csrf),
        ];
        let reply = browser
            .post_with(action, &fields, &[("origin", "https://evil.example")])
            .await;
        assert_eq!(reply.status, 403, "{action} cross-origin");
    }
    let listed = api_identities(&server).await;
    assert_eq!(listed.len(), 1, "nothing created or deleted");
    assert!(listed[0].get("revokedAt").is_none(), "not revoked");
    assert_eq!(server.keys.get().access.secondary, server.secondary);
    assert!(
        browser.get("/console/keys").await.status == 200,
        "still signed in"
    );

    // With the token (and this origin), the same revoke works.
    let origin = server.base.clone();
    let reply = browser
        .post_with(
            "/console/identity/revoke",
            &[("id", &user), ("csrf", &csrf)],
            &[("origin", &origin)],
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    assert!(api_identities(&server).await[0].get("revokedAt").is_some());
}

#[tokio::test]
async fn the_cookie_is_strict_http_only_and_expires_with_the_clock() {
    let clock = ManualClock::new(chrono::Utc::now());
    let server = TestServer::start_manual(clock.clone()).await;
    let mut browser = Browser::new(&server.base);
    let reply = browser.sign_in(&server.secondary.to_base64()).await;
    assert_eq!(
        (reply.status, location(&reply)),
        (303, "/console/identities")
    );
    let cookie = reply.header("set-cookie").unwrap();
    let attributes: Vec<&str> = cookie.split("; ").collect();
    assert!(attributes[0].starts_with("callsign-console="));
    assert!(
        attributes[0].len() > "callsign-console=".len() + 40,
        "a long random id"
    );
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(attributes.contains(&flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // Another sign-in gets another session.
    let mut again = Browser::new(&server.base);
    again.sign_in(&server.key.to_base64()).await;
    assert_ne!(again.cookie, browser.cookie);

    clock.advance(chrono::Duration::hours(8) - chrono::Duration::seconds(1));
    assert_eq!(browser.get("/console/keys").await.status, 200);
    clock.advance(chrono::Duration::seconds(1));
    let reply = browser.get("/console/keys").await;
    assert_eq!((reply.status, location(&reply)), (303, "/console/sign-in"));

    // Sign-out ends the session on the server: the old cookie is worth nothing.
    let mut again = Browser::new(&server.base);
    again.sign_in(&server.key.to_base64()).await;
    let csrf = again.csrf().await;
    let reply = again.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(reply.status, 303);
    assert!(reply.header("set-cookie").unwrap().contains("Max-Age=0"));
    let reply = again.get("/console/identities").await;
    assert_eq!((reply.status, location(&reply)), (303, "/console/sign-in"));
    let page = again.get("/console/sign-in?signed-out=1").await;
    assert!(page.text().contains("You are signed out."));
}

#[tokio::test]
async fn over_tls_the_cookie_is_secure() {
    let server = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), |c| {
        c.tls = TlsMode::Dev;
    })
    .await;
    let ca = std::fs::read(server.data.path().join("data/tls/ca.pem")).unwrap();
    let builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
    let port = server.host.rsplit(':').next().unwrap();
    let mut browser = Browser::with(&format!("https://localhost:{port}"), builder);
    let reply = browser.sign_in(&server.key.to_base64()).await;
    assert_eq!(reply.status, 303);
    let cookie = reply.header("set-cookie").unwrap();
    assert!(cookie.split("; ").any(|a| a == "Secure"), "{cookie}");
    assert_eq!(browser.get("/console/identities").await.status, 200);
}

#[tokio::test]
async fn a_wrong_key_shows_an_error_and_no_data() {
    let server = TestServer::start().await;
    let user = server.client().create_user().await;
    let mut browser = Browser::new(&server.base);
    for wrong in [
        "",
        "not a key",
        &callsign_server::keys::access::random_key().to_base64(),
    ] {
        let reply = browser.sign_in(wrong).await;
        assert_eq!(reply.status, 401, "{wrong:?}");
        assert!(reply.header("set-cookie").is_none());
        let text = reply.text();
        assert!(
            text.contains("That is not an access key of this resource"),
            "{text}"
        );
        assert!(!text.contains(&user));
        assert!(!text.contains("<nav"), "no navigation without a session");
        if !wrong.is_empty() {
            assert!(!text.contains(wrong), "the typed key is not echoed");
        }
    }
    // Counted as refused authentications, under a reason of their own.
    let metrics = server.client().send("GET", "/metrics", None).await.text();
    assert!(
        metrics.contains(r#"callsign_auth_failures_total{reason="console_sign_in"} 3"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address() {
    let clock = ManualClock::new(chrono::Utc::now());
    let server = TestServer::start_manual(clock.clone()).await;
    let mut browser = Browser::new(&server.base);
    for _ in 0..10 {
        assert_eq!(browser.sign_in("guess").await.status, 401);
    }
    // The eleventh attempt is refused, even with the right key.
    let reply = browser.sign_in(&server.key.to_base64()).await;
    assert_eq!(reply.status, 429, "{}", reply.text());
    assert!(reply.header("retry-after").is_some());
    assert!(reply.header("set-cookie").is_none());
    clock.advance(chrono::Duration::seconds(60));
    assert_eq!(browser.sign_in(&server.key.to_base64()).await.status, 303);
}

#[tokio::test]
async fn no_access_key_on_any_page_but_the_keys_page() {
    let server = TestServer::start().await;
    let client = server.client();
    let user = client.create_user().await;
    let token = client.issue_token(&user, &["chat"]).await;
    let keys = [server.key.to_base64(), server.secondary.to_base64()];
    let mut browser = Browser::new(&server.base);
    let mut pages = vec![browser.get("/console/sign-in").await];
    browser.sign_in(&keys[0]).await;
    let csrf = browser.csrf().await;
    let encoded_user: String = url::form_urlencoded::byte_serialize(user.as_bytes()).collect();
    for page in PAGES.into_iter().filter(|p| *p != "/console/keys") {
        let page = page.replace("8:acs:x", &encoded_user);
        let reply = browser.get(&page).await;
        assert!(
            matches!(reply.status, 200 | 303),
            "{page}: {}",
            reply.status
        );
        pages.push(reply);
    }
    for (path, fields) in [
        ("/console/inspect", vec![("token", token.as_str())]),
        (
            "/console/identities",
            vec![
                ("customId", "c1"),
                ("token", "1"),
                ("scope", "chat"),
                ("minutes", "60"),
            ],
        ),
        (
            "/console/identity/token",
            vec![("id", user.as_str()), ("scope", "voip"), ("minutes", "60")],
        ),
        (
            "/console/identity/token",
            vec![("id", "8:acs:nobody"), ("scope", "voip")],
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf", &csrf));
        let reply = browser.post(path, &fields).await;
        assert!(reply.status < 500, "{path}: {}", reply.text());
        pages.push(reply);
    }
    pages.push(browser.get("/console/activity").await);
    for reply in &pages {
        for key in &keys {
            assert!(
                !reply.text().contains(key.as_str()),
                "a key on a page: {}",
                reply.text()
            );
        }
        // No cache may keep a page.
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let keys_page = browser.get("/console/keys").await.text();
    for (slot, key) in ["primary", "secondary"].iter().zip(&keys) {
        // Masked: only in a password field, revealed by the script.
        let field = format!(r#"<input type="password" id="key-{slot}" readonly value="{key}""#);
        assert!(keys_page.contains(&field), "{keys_page}");
    }
    assert!(keys_page.contains(&format!("endpoint={}/;accesskey={}", server.base, keys[0])));
    assert!(keys_page.contains(server.keys.get().ring.current.kid()));
}

#[tokio::test]
async fn user_values_are_escaped() {
    let server = TestServer::start().await;
    let nasty = r#"<script>alert("x")</script>'&"#;
    let created = server
        .client()
        .post(
            "/identities?api-version=2025-03-02-preview",
            &serde_json::json!({"customId": nasty}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let user = created.json()["identity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut browser = Browser::new(&server.base);
    browser.sign_in(&server.key.to_base64()).await;
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;";
    let encoded: String = url::form_urlencoded::byte_serialize(user.as_bytes()).collect();
    let filter: String = url::form_urlencoded::byte_serialize(nasty.as_bytes()).collect();
    for page in [
        "/console/identities".to_owned(),
        format!("/console/identities?customId={filter}"),
        format!("/console/identity?id={encoded}"),
        format!("/console/identity/delete?id={encoded}"),
    ] {
        let text = browser.get(&page).await.text();
        assert!(text.contains(escaped), "{page}: {text}");
        assert!(!text.contains("<script>alert"), "{page}");
    }
    // A reflected value: an id that is not one.
    let text = browser
        .get(&format!("/console/identity?id={filter}"))
        .await
        .text();
    assert!(
        text.contains(escaped) && !text.contains("<script>alert"),
        "{text}"
    );
    // A pasted "token" shown back in the inspector.
    let csrf = browser.csrf().await;
    let text = browser
        .post("/console/inspect", &[("token", nasty), ("csrf", &csrf)])
        .await
        .text();
    assert!(text.contains("Inactive: malformed"), "{text}");
    assert!(!text.contains("<script>alert"), "{text}");
    // The only scripts are the console's own file.
    assert_eq!(text.matches("<script").count(), 1);
    assert!(text.contains(r#"<script src="/console/assets/console.js" defer></script>"#));
}

#[tokio::test]
async fn console_changes_go_through_the_api_and_are_audited_as_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let sink = log.clone();
    let server = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), move |c| {
        c.audit = AuditConfig {
            sinks: vec![SinkConfig::File(sink)],
            token_issued: true,
            ..AuditConfig::default()
        };
    })
    .await;
    let client = server.client();
    let mut browser = Browser::new(&server.base);
    browser.sign_in(&server.key.to_base64()).await;
    let csrf = browser.csrf().await;

    // Create with a token: shown once, valid for the API's introspection.
    let reply = browser
        .post(
            "/console/identities",
            &[
                ("customId", "alice"),
                ("token", "1"),
                ("scope", "chat"),
                ("scope", "voip"),
                ("minutes", "90"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let text = reply.text();
    assert!(text.contains("Shown once"));
    let token = text
        .split(r#"<textarea id="token-value" readonly rows="6" spellcheck="false">"#)
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let introspected = client.introspect(&token).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["scopes"], serde_json::json!(["chat", "voip"]));
    let user = introspected["sub"].as_str().unwrap().to_owned();
    assert_eq!(
        introspected["exp"].as_i64().unwrap() - introspected["iat"].as_i64().unwrap(),
        90 * 60
    );

    // The API's validation applies: 59 minutes is under the minimum.
    let reply = browser
        .post(
            "/console/identity/token",
            &[
                ("id", &user),
                ("scope", "chat"),
                ("minutes", "59"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .text()
            .contains("ExpiresInMinutes value 59 is invalid"),
        "{}",
        reply.text()
    );

    // Issue, then the inspector sees it active; revoke, then revoked.
    let reply = browser
        .post(
            "/console/identity/token",
            &[
                ("id", &user),
                ("scope", "chat"),
                ("minutes", "60"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let inspected = browser
        .post("/console/inspect", &[("token", &token), ("csrf", &csrf)])
        .await
        .text();
    assert!(inspected.contains("<strong>Active</strong>"), "{inspected}");
    let reply = browser
        .post(
            "/console/identity/revoke",
            &[("id", &user), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(reply.status, 303);
    assert_eq!(client.introspect(&token).await["reason"], "revoked");
    let inspected = browser
        .post("/console/inspect", &[("token", &token), ("csrf", &csrf)])
        .await
        .text();
    assert!(inspected.contains("Inactive: revoked"), "{inspected}");

    // Delete after the confirmation page.
    let encoded: String = url::form_urlencoded::byte_serialize(user.as_bytes()).collect();
    let confirm = browser
        .get(&format!("/console/identity/delete?id={encoded}"))
        .await;
    assert!(confirm.text().contains("cannot be undone"));
    let reply = browser
        .post(
            "/console/identity/delete",
            &[("id", &user), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        (reply.status, location(&reply)),
        (303, "/console/identities?deleted=1")
    );
    assert_eq!(
        client.introspect(&token).await["reason"],
        "identityNotFound"
    );
    assert_eq!(
        browser
            .get(&format!("/console/identity?id={encoded}"))
            .await
            .status,
        404
    );

    // Keys: regenerate the secondary (the session is the primary's), rotate.
    let reply = browser
        .post(
            "/console/keys/regenerate",
            &[("which", "secondary"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        (reply.status, location(&reply)),
        (303, "/console/keys?done=regenerated")
    );
    assert_ne!(
        server.keys.get().access.secondary,
        server.secondary,
        "in force at once"
    );
    let old_kid = server.keys.get().ring.current.kid().to_owned();
    let reply = browser
        .post("/console/keys/rotate", &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (reply.status, location(&reply)),
        (303, "/console/keys?done=rotated")
    );
    assert_ne!(server.keys.get().ring.current.kid(), old_kid);
    let keys_page = browser.get("/console/keys?done=rotated").await.text();
    let retired = keys_page
        .split(&old_kid)
        .nth(1)
        .expect("the old key still listed");
    assert!(retired.contains("Retired <time"), "{keys_page}");
    assert!(keys_page.contains("Current: signs new tokens since <time"));

    // The activity page lists them, newest first.
    let activity = browser.get("/console/activity").await.text();
    let rotated = activity.find("signingKey.rotated").unwrap();
    let created = activity.find("identity.created").unwrap();
    assert!(rotated < created, "newest first");
    assert!(activity.contains("console (primary key)"));

    // The audit trail: every change, the console (primary key) as the actor, no secret.
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "identity.created",
            "token.issued",
            "token.issued",
            "identity.tokensRevoked",
            "identity.deleted",
            "accessKey.regenerated",
            "signingKey.rotated"
        ]
    );
    for event in &events {
        assert_eq!(
            event["actor"],
            serde_json::json!({"kind": "console", "which": "primary"}),
            "{event}"
        );
        assert!(event["remoteAddress"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
    }
    for secret in [
        server.key.to_base64(),
        server.secondary.to_base64(),
        server.keys.get().access.secondary.to_base64(),
        token,
    ] {
        assert!(!text.contains(&secret));
    }
}

#[tokio::test]
async fn regenerating_the_sessions_own_key_signs_it_out() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server.base);
    browser.sign_in(&server.secondary.to_base64()).await;
    let csrf = browser.csrf().await;
    let confirm = browser
        .get("/console/keys/regenerate?which=secondary")
        .await
        .text();
    assert!(confirm.contains("you will be signed out"), "{confirm}");
    let reply = browser
        .post(
            "/console/keys/regenerate",
            &[("which", "secondary"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!((reply.status, location(&reply)), (303, "/console/sign-in"));
    let reply = browser.get("/console/identities").await;
    assert_eq!((reply.status, location(&reply)), (303, "/console/sign-in"));
    // Signing in again with the new key works; the old one is refused.
    let new_key = server.keys.get().access.secondary.to_base64();
    assert_eq!(
        browser.sign_in(&server.secondary.to_base64()).await.status,
        401
    );
    assert_eq!(browser.sign_in(&new_key).await.status, 303);
    assert_eq!(browser.get("/console/identities").await.status, 200);
}

#[tokio::test]
async fn the_list_pages_and_filters() {
    let server = TestServer::start().await;
    let client = server.client();
    for i in 0..30 {
        let reply = client
            .post(
                "/identities?api-version=2025-03-02-preview",
                &serde_json::json!({"customId": format!("user-{i}")}),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    let mut browser = Browser::new(&server.base);
    browser.sign_in(&server.key.to_base64()).await;
    let first = browser.get("/console/identities").await.text();
    assert_eq!(
        first
            .matches("<tr><td class=\"id\" data-label=\"Id\">")
            .count(),
        25
    );
    let next = first.split(r#"rel="next""#).next().unwrap();
    let href = next
        .rsplit(r#"<a href=""#)
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let second = browser.get(&href.replace("&amp;", "&")).await.text();
    assert_eq!(
        second
            .matches("<tr><td class=\"id\" data-label=\"Id\">")
            .count(),
        5
    );
    assert!(!second.contains(r#"rel="next""#));
    assert!(second.contains("First page"));
    let filtered = browser
        .get("/console/identities?customId=user-7")
        .await
        .text();
    assert_eq!(
        filtered
            .matches("<tr><td class=\"id\" data-label=\"Id\">")
            .count(),
        1
    );
    assert!(filtered.contains("user-7"));
    let none = browser
        .get("/console/identities?customId=nobody")
        .await
        .text();
    assert!(none.contains("No live identity has this customId"));
}

#[tokio::test]
async fn an_empty_console_explains_what_to_do() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server.base);
    browser.sign_in(&server.key.to_base64()).await;
    let list = browser.get("/console/identities").await.text();
    assert!(list.contains("No identities yet"), "{list}");
    let settings = browser.get("/console/settings").await.text();
    assert!(settings.contains("No trusted issuers"), "{settings}");
}

#[tokio::test]
async fn without_the_console_its_routes_do_not_exist() {
    let server = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), |c| {
        c.console.enabled = false;
    })
    .await;
    let browser = Browser::new(&server.base);
    for path in ["/console", "/console/sign-in", "/console/assets/console.js"] {
        let reply = raw(browser.request(reqwest::Method::GET, path)).await;
        reply.assert_error(
            404,
            "NotFound",
            "The requested resource was not found.",
            None,
        );
    }
}

#[tokio::test]
async fn under_dev_the_well_known_key_is_filled_in_and_only_then() {
    use callsign_server::keys::access::{dev_access_key, DEV_ACCESS_KEY};
    let dev = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), |c| {
        c.access_key_seed = Some(dev_access_key());
        c.console.prefill_dev_key = true;
    })
    .await;
    let page = Browser::new(&dev.base).get("/console/sign-in").await.text();
    assert!(
        page.contains(&format!(r#"value="{DEV_ACCESS_KEY}""#)),
        "{page}"
    );
    // Asked to, but the primary key is another (a data dir's own): nothing is filled in.
    let other = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), |c| {
        c.console.prefill_dev_key = true;
    })
    .await;
    let page = Browser::new(&other.base)
        .get("/console/sign-in")
        .await
        .text();
    assert!(!page.contains("value="), "{page}");
    assert!(!page.contains(&other.key.to_base64()));
}

#[tokio::test]
async fn activity_shows_the_newest_events_and_the_last_minute() {
    let clock = ManualClock::new(chrono::Utc::now());
    let server = TestServer::start_manual(clock.clone()).await;
    let client = server.client();
    let mut users = Vec::new();
    for _ in 0..57 {
        users.push(client.create_user().await);
    }
    client.issue_token(&users[0], &["chat"]).await;
    let mut browser = Browser::new(&server.base);
    browser.sign_in(&server.key.to_base64()).await;
    let page = browser.get("/console/activity").await.text();
    let rows: Vec<&str> = page
        .split(r#"<tr><td data-label="Time">"#)
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 50, "the latest 50");
    assert!(rows[0].contains(users.last().unwrap()), "newest first");
    assert!(rows[49].contains(&users[7]), "the 50th newest");
    assert!(!page.contains(&users[6]));
    assert!(rows[0].contains("access key (primary)"));
    // 57 creates, an issue, the sign-in: requests and one token in the last minute.
    assert!(
        page.contains(r#"<p class="figure">1</p><p>tokens issued"#),
        "{page}"
    );
    clock.advance(chrono::Duration::seconds(61));
    let page = browser.get("/console/activity").await.text();
    assert!(
        page.contains(r#"<p class="figure">0</p><p>tokens issued"#),
        "{page}"
    );
}

#[tokio::test]
async fn an_exchanged_users_page_shows_its_assignment() {
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OBJECT: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";
    const APP: &str = "1fd5118e-2576-4263-8130-9503064c837a";
    let server = TestServer::start().await;
    let client = server.client();
    let put = client
        .send(
            "PUT",
            &format!("/access/teamsExtension/tenants/{TENANT}/assignments/{OBJECT}?api-version=2025-06-30"),
            Some(br#"{"principalType":"user"}"#),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text());
    let entra =
        serde_json::json!({"tenantId": TENANT, "principalType": "user", "clientIds": [APP]});
    let put = client
        .send(
            "PUT",
            &format!("/access/entra/assignments/{OBJECT}?api-version=2025-03-02-preview"),
            Some(entra.to_string().as_bytes()),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text());
    let mut browser = Browser::new(&server.base);
    browser.sign_in(&server.key.to_base64()).await;
    let resource = &server.resource_id;
    let page = |id: String| {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        format!("/console/identity?id={encoded}")
    };
    let teams = browser
        .get(&page(format!("8:acs:{resource}_{TENANT}_{OBJECT}")))
        .await;
    assert_eq!(teams.status, 200, "{}", teams.text());
    let text = teams.text();
    assert!(
        text.contains("Teams extension user") && text.contains("<dd>user</dd>"),
        "{text}"
    );
    assert!(
        text.contains("<dt>Client applications</dt><dd>any</dd>"),
        "{text}"
    );
    let entra = browser
        .get(&page(format!("8:acs:{resource}_wf_{TENANT}_{OBJECT}")))
        .await
        .text();
    assert!(
        entra.contains("Entra user") && entra.contains(&format!("<code>{APP}</code>")),
        "{entra}"
    );
    let unassigned = browser
        .get(&page(format!("8:acs:{resource}_{TENANT}_{APP}")))
        .await
        .text();
    assert!(unassigned.contains("No assignment"), "{unassigned}");
    // Another resource's id is no user of this one.
    let other = browser
        .get(&page(format!(
            "8:acs:00000000-0000-0000-0000-000000000001_{TENANT}_{OBJECT}"
        )))
        .await;
    assert_eq!(other.status, 404);
}

#[tokio::test]
async fn the_console_is_throttled_with_the_api() {
    let clock = ManualClock::new(chrono::Utc::now());
    let server = TestServer::start_with(Arc::new(clock.clone()), |c| {
        c.throttling = callsign_server::throttling::ThrottleConfig {
            window_seconds: 30,
            issue: Some(2),
            revoke: None,
            exchange: None,
        };
    })
    .await;
    // The API uses one of the window's two creates, the console the other…
    server.client().create_user().await;
    let mut browser = Browser::new(&server.base);
    browser.sign_in(&server.key.to_base64()).await;
    let csrf = browser.csrf().await;
    let reply = browser
        .post("/console/identities", &[("csrf", &csrf)])
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    // …and the third, from either, is refused with the API's status and message.
    let reply = browser
        .post("/console/identities", &[("csrf", &csrf)])
        .await;
    assert_eq!(reply.status, 429);
    assert!(
        reply.text().contains("Too many requests."),
        "{}",
        reply.text()
    );
    assert_eq!(api_identities(&server).await.len(), 2);
}
