//! `callsign serve --otlp-endpoint` (docs/tracing.md), as a process, against a fake OTLP/HTTP
//! collector on loopback: one span per request with the operation name and the correlation
//! headers, the caller's W3C trace continued, everything exported by the time SIGTERM's shutdown
//! ends, never a key, token, signature or id; nothing exported without the flag; a failing
//! collector logged once and never felt by a response. These run with the `otlp` feature
//! (`cargo nextest run -p callsign --features otlp --test otlp`, as test.sh does); without it,
//! only the check that the flag then is a usage error.

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

#[cfg(not(feature = "otlp"))]
#[test]
fn without_the_feature_the_endpoint_is_a_usage_error() {
    let output = std::process::Command::new(BIN)
        .env_remove("CALLSIGN_CONFIG")
        .args(["serve", "--in-memory", "--addr", "127.0.0.1:0"])
        .args(["--otlp-endpoint", "http://127.0.0.1:4318"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`otlp` feature"), "{stderr}");
    assert!(output.stdout.is_empty(), "it did not start: {output:?}");
}

#[cfg(feature = "otlp")]
mod export {
    use super::BIN;
    use axum::body::Bytes;
    use axum::http::StatusCode;
    use callsign_testkit::process::ServeProcess;
    use serde_json::Value;
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
    const PARENT_SPAN_ID: &str = "b7ad6b7169203331";
    const REQUEST_ID: &str = "6f0d2f7e-request-id-of-the-test";
    const INCOMING_CV: &str = "ZXhhbXBsZWNvcnJlbGF0aW9u.1";

    /// A fake OTLP/HTTP collector: keeps the body of every `POST /v1/traces` and answers `status`.
    struct Collector {
        endpoint: String,
        bodies: Arc<Mutex<Vec<Vec<u8>>>>,
        /// Every request, as `<path> <content type>`.
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl Collector {
        async fn start(status: StatusCode) -> Self {
            let bodies = Arc::new(Mutex::new(Vec::new()));
            let requests = Arc::new(Mutex::new(Vec::new()));
            let (kept, seen) = (bodies.clone(), requests.clone());
            let app = axum::Router::new()
                .route(
                    "/v1/traces",
                    axum::routing::post(move |body: Bytes| async move {
                        kept.lock().unwrap().push(body.to_vec());
                        status
                    }),
                )
                .layer(axum::middleware::from_fn(
                    move |request: axum::extract::Request, next: axum::middleware::Next| {
                        let content_type = request
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("none");
                        let seen_request = format!("{} {content_type}", request.uri().path());
                        seen.lock().unwrap().push(seen_request);
                        next.run(request)
                    },
                ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let endpoint = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Self {
                endpoint,
                bodies,
                requests,
            }
        }

        fn bodies(&self) -> Vec<Vec<u8>> {
            self.bodies.lock().unwrap().clone()
        }

        fn spans(&self) -> Vec<Span> {
            self.bodies()
                .iter()
                .flat_map(|body| decode(body).1)
                .collect()
        }
    }

    fn serve(extra: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("CALLSIGN_ACCESS_KEY")
            .env_remove("CALLSIGN_CONFIG")
            .env_remove("CALLSIGN_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_RESOURCE_ATTRIBUTES")
            .env("RUST_LOG", "warn")
            .args(["serve", "--addr", "127.0.0.1:0", "--in-memory"])
            .args(extra)
            .stderr(Stdio::piped());
        for (name, value) in env {
            cmd.env(name, value);
        }
        ServeProcess::spawn(&mut cmd, false)
    }

    /// SIGTERM, then the process's exit (success) and its stderr.
    async fn stop(mut server: ServeProcess) -> String {
        let mut stderr = server.child.stderr.take().unwrap();
        server.signal("-TERM");
        let status = tokio::task::spawn_blocking(move || server.wait())
            .await
            .unwrap();
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        assert!(status.success(), "{status}: {text}");
        text
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        !needle.is_empty()
            && haystack
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_request_is_a_span_with_its_operation_correlation_headers_and_callers_trace() {
        let collector = Collector::start(StatusCode::OK).await;
        let server = serve(&["--otlp-endpoint", &collector.endpoint], &[]);
        let client = server.client();
        let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");

        let created = client
            .send_with(
                "POST",
                "/identities?api-version=2023-10-01",
                Some(br#"{"createTokenWithScopes":["chat"]}"#),
                &[
                    ("x-ms-client-request-id", REQUEST_ID),
                    ("ms-cv", INCOMING_CV),
                    ("traceparent", &traceparent),
                    ("tracestate", "vendor=value"),
                ],
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let created_cv = created.header("ms-cv").unwrap().to_owned();
        let body: Value = created.json();
        let user = body["identity"]["id"].as_str().unwrap().to_owned();
        let first_token = body["accessToken"]["token"].as_str().unwrap().to_owned();

        // No traceparent: a trace of its own.
        let issued = client
            .send_with(
                "POST",
                &format!("/identities/{user}/:issueAccessToken?api-version=2023-10-01"),
                Some(br#"{"scopes":["voip"]}"#),
                &[("x-ms-client-request-id", "second-request")],
            )
            .await;
        assert_eq!(issued.status, 200, "{}", issued.text());
        let second_token = issued.json()["token"].as_str().unwrap().to_owned();

        // Refused: a 401 is the client's error, not the span's.
        let forged = reqwest::Client::new()
            .post(format!(
                "{}identities?api-version=2023-10-01",
                server.endpoint
            ))
            .header("authorization", "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=Zm9yZ2VkLXNpZ25hdHVyZQ==")
            .header("traceparent", &traceparent)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401);

        let key = server
            .connection_string
            .split("accesskey=")
            .nth(1)
            .unwrap()
            .to_owned();
        let stderr = stop(server).await;
        assert!(
            !stderr.contains("exporting spans failed"),
            "the collector took every export: {stderr}"
        );

        // Everything was exported before the process exited: no waiting for the next batch.
        let bodies = collector.bodies();
        assert!(!bodies.is_empty(), "nothing exported");
        let (resources, _) = decode(&bodies[0]);
        assert_eq!(
            resources[0].get("service.name"),
            Some(&Attr::Str("callsign".into()))
        );
        let spans = collector.spans();
        let create = only(&spans, "CreateIdentity", "/identities", 201);
        assert_eq!(hex(&create.trace_id), TRACE_ID, "the caller's trace");
        assert_eq!(hex(&create.parent_span_id), PARENT_SPAN_ID);
        assert_eq!(create.kind, 2, "SPAN_KIND_SERVER");
        assert_eq!(create.status_code, 0, "unset: not an error");
        assert_eq!(create.str("az.client_request_id"), Some(REQUEST_ID));
        assert_eq!(create.str("ms_cv.request"), Some(INCOMING_CV));
        assert_eq!(
            create.str("ms_cv"),
            Some(created_cv.as_str()),
            "the response's"
        );
        assert_eq!(create.str("http.request.method"), Some("POST"));
        assert_eq!(create.str("callsign.operation"), Some("CreateIdentity"));
        // The store operations it made are its children.
        let children: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == create.span_id)
            .collect();
        let store = children
            .iter()
            .find(|s| s.name == "create_identity")
            .unwrap_or_else(|| panic!("no create_identity child in {children:#?}"));
        assert_eq!(store.trace_id, create.trace_id);
        assert_eq!(store.kind, 3, "SPAN_KIND_CLIENT");
        assert_eq!(store.str("db.system.name"), Some("memory"));
        assert_eq!(store.str("db.operation.name"), Some("create_identity"));
        // Every span is a request's or a child of one (none for readiness checks or upkeep).
        let requests: Vec<&Vec<u8>> = spans
            .iter()
            .filter(|s| s.int("http.response.status_code").is_some())
            .map(|s| &s.span_id)
            .collect();
        for span in &spans {
            assert!(
                span.int("http.response.status_code").is_some()
                    || requests.contains(&&span.parent_span_id),
                "{span:#?}"
            );
        }

        let issue = only(
            &spans,
            "IssueAccessToken",
            "/identities/{id}/:issueAccessToken",
            200,
        );
        assert_ne!(hex(&issue.trace_id), TRACE_ID, "a trace of its own");
        assert_eq!(issue.trace_id.len(), 16);
        assert!(issue.parent_span_id.is_empty(), "a root span");
        assert_eq!(issue.str("az.client_request_id"), Some("second-request"));
        assert_eq!(issue.str("ms_cv.request"), None);

        let refused = spans
            .iter()
            .find(|s| s.int("http.response.status_code") == Some(401))
            .expect("the refused request's span");
        assert_eq!(refused.name, "CreateIdentity");
        assert_eq!(hex(&refused.trace_id), TRACE_ID);
        assert_eq!(refused.status_code, 0);

        // Nothing secret, and no id: not the access key, the tokens (nor their signatures),
        // the Authorization header, the user's id.
        for body in &bodies {
            for secret in [
                key.as_str(),
                first_token.as_str(),
                first_token.rsplit('.').next().unwrap(),
                second_token.as_str(),
                second_token.rsplit('.').next().unwrap(),
                "Signature=",
                "HMAC-SHA256",
                "Zm9yZ2VkLXNpZ25hdHVyZQ",
                user.as_str(),
                user.trim_start_matches("8:acs:"),
            ] {
                assert!(!contains(body, secret), "{secret:?} was exported");
            }
        }
        assert!(
            collector
                .requests
                .lock()
                .unwrap()
                .iter()
                .all(|r| r == "/v1/traces application/x-protobuf"),
            "only the traces path, in protobuf"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_an_endpoint_nothing_is_exported() {
        let collector = Collector::start(StatusCode::OK).await;
        // The SDK's own variable alone does not turn the export on.
        let server = serve(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)]);
        let client = server.client();
        let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
        let reply = client
            .send_with(
                "POST",
                "/identities?api-version=2023-10-01",
                Some(b"{}"),
                &[
                    ("traceparent", &traceparent),
                    ("x-ms-client-request-id", REQUEST_ID),
                ],
            )
            .await;
        assert_eq!(reply.status, 201);
        stop(server).await;
        assert!(collector.requests.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_config_file_turns_the_export_on() {
        let collector = Collector::start(StatusCode::OK).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("callsign.toml");
        std::fs::write(
            &config,
            format!("[tracing]\notlp_endpoint = \"{}/\"\n", collector.endpoint),
        )
        .unwrap();
        let server = serve(&["--config", config.to_str().unwrap()], &[]);
        assert_eq!(
            reqwest::get(format!("{}healthz", server.endpoint))
                .await
                .unwrap()
                .status(),
            200
        );
        stop(server).await;
        let spans = collector.spans();
        only(&spans, "Healthz", "/healthz", 200);
    }

    /// A collector that refuses every export: each request is still answered, and the failure is
    /// logged once, not once per export.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_collector_is_logged_once_and_never_felt_by_a_response() {
        let collector = Collector::start(StatusCode::BAD_REQUEST).await;
        let server = serve(
            &["--otlp-endpoint", &collector.endpoint],
            // Export every 50 ms instead of 5 s, so that several exports fail quickly.
            &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
        );
        let client = server.client();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut requests = 0;
        while collector.bodies().len() < 3 {
            assert!(Instant::now() < deadline, "the exports did not arrive");
            let reply = client
                .post("/identities?api-version=2023-10-01", &serde_json::json!({}))
                .await;
            assert_eq!(reply.status, 201);
            requests += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stderr = stop(server).await;
        let failures = stderr.matches("exporting spans failed").count();
        assert_eq!(failures, 1, "after {requests} requests: {stderr}");
        assert!(stderr.contains("400"), "{stderr}");
    }

    /// The one span named `name` for `route`, answered `status`.
    fn only<'a>(spans: &'a [Span], name: &str, route: &str, status: i64) -> &'a Span {
        let found: Vec<&Span> = spans
            .iter()
            .filter(|s| s.name == name && s.int("http.response.status_code") == Some(status))
            .collect();
        assert_eq!(found.len(), 1, "{name} {status} in {spans:#?}");
        assert_eq!(found[0].str("http.route"), Some(route));
        found[0]
    }

    // --- a small decoder of the OTLP protobuf (opentelemetry/proto/trace/v1/trace.proto): the
    // test reads what a collector would, not what the exporter meant to send.

    #[derive(Debug, PartialEq)]
    enum Attr {
        Str(String),
        Int(i64),
        Other,
    }

    #[derive(Debug)]
    struct Span {
        trace_id: Vec<u8>,
        span_id: Vec<u8>,
        parent_span_id: Vec<u8>,
        name: String,
        kind: u64,
        status_code: u64,
        attributes: BTreeMap<String, Attr>,
    }

    impl Span {
        fn str(&self, key: &str) -> Option<&str> {
            match self.attributes.get(key) {
                Some(Attr::Str(s)) => Some(s),
                _ => None,
            }
        }

        fn int(&self, key: &str) -> Option<i64> {
            match self.attributes.get(key) {
                Some(Attr::Int(n)) => Some(*n),
                _ => None,
            }
        }
    }

    enum Field<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Fixed,
    }

    fn varint(buf: &mut &[u8]) -> u64 {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let byte = buf[0];
            *buf = &buf[1..];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }

    /// A message's fields, by number.
    fn fields(mut buf: &[u8]) -> Vec<(u64, Field<'_>)> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            let field = match key & 7 {
                0 => Field::Varint(varint(&mut buf)),
                1 | 5 => {
                    buf = &buf[if key & 7 == 1 { 8 } else { 4 }..];
                    Field::Fixed
                }
                2 => {
                    let len = varint(&mut buf) as usize;
                    let (value, rest) = buf.split_at(len);
                    buf = rest;
                    Field::Bytes(value)
                }
                other => panic!("wire type {other}"),
            };
            out.push((key >> 3, field));
        }
        out
    }

    fn submessages(buf: &[u8], number: u64) -> Vec<&[u8]> {
        fields(buf)
            .into_iter()
            .filter_map(|(n, f)| match f {
                Field::Bytes(b) if n == number => Some(b),
                _ => None,
            })
            .collect()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// `KeyValue`s: key 1, `AnyValue` 2 (string 1, int 3).
    fn attributes(buf: &[u8], number: u64) -> BTreeMap<String, Attr> {
        submessages(buf, number)
            .into_iter()
            .map(|kv| {
                let key = text(submessages(kv, 1)[0]);
                let value = submessages(kv, 2)
                    .first()
                    .and_then(|any| fields(any).into_iter().next())
                    .map(|(n, f)| match (n, f) {
                        (1, Field::Bytes(s)) => Attr::Str(text(s)),
                        (3, Field::Varint(i)) => Attr::Int(i as i64),
                        _ => Attr::Other,
                    })
                    .unwrap_or(Attr::Other);
                (key, value)
            })
            .collect()
    }

    /// An `ExportTraceServiceRequest`: each resource's attributes, and every span.
    fn decode(body: &[u8]) -> (Vec<BTreeMap<String, Attr>>, Vec<Span>) {
        let mut resources = Vec::new();
        let mut spans = Vec::new();
        for resource_spans in submessages(body, 1) {
            for resource in submessages(resource_spans, 1) {
                resources.push(attributes(resource, 1));
            }
            for scope_spans in submessages(resource_spans, 2) {
                for span in submessages(scope_spans, 2) {
                    let mut decoded = Span {
                        trace_id: Vec::new(),
                        span_id: Vec::new(),
                        parent_span_id: Vec::new(),
                        name: String::new(),
                        kind: 0,
                        status_code: 0,
                        attributes: attributes(span, 9),
                    };
                    for (number, field) in fields(span) {
                        match (number, field) {
                            (1, Field::Bytes(b)) => decoded.trace_id = b.to_vec(),
                            (2, Field::Bytes(b)) => decoded.span_id = b.to_vec(),
                            (4, Field::Bytes(b)) => decoded.parent_span_id = b.to_vec(),
                            (5, Field::Bytes(b)) => decoded.name = text(b),
                            (6, Field::Varint(k)) => decoded.kind = k,
                            (15, Field::Bytes(status)) => {
                                for (n, f) in fields(status) {
                                    if let (3, Field::Varint(code)) = (n, f) {
                                        decoded.status_code = code;
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    spans.push(decoded);
                }
            }
        }
        (resources, spans)
    }
}
