//! The client against the real service's recorded answers: a local server replays the recorded
//! responses and checks each request the client sends — method, path, query, body bytes, headers
//! and the HMAC signature — against the recording.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use callsign_common::hmac::{content_hash, string_to_sign};
use callsign_common::AccessKey;
use callsign_identity::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "c2VjcmV0LWtleS1mb3ItcmVwbGF5LXRlc3RzLW9ubHk=";

#[derive(Default)]
struct Seen {
    expected: Option<Value>,
    requests: Vec<(Method, String, HeaderMap, Bytes)>,
}

type Shared = Arc<Mutex<Seen>>;

async fn replay(
    State(seen): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut seen = seen.lock().unwrap();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    seen.requests.push((method, path, headers, body));
    let Some(exchange) = seen.expected.clone() else {
        return StatusCode::IM_A_TEAPOT.into_response();
    };
    let status = StatusCode::from_u16(exchange["status"].as_u64().unwrap() as u16).unwrap();
    let mut response = match &exchange["response_body"] {
        Value::Null => status.into_response(),
        body => (status, serde_json::to_vec(body).unwrap()).into_response(),
    };
    for (name, value) in exchange["response_headers"].as_object().unwrap() {
        let name = name.to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.as_str().unwrap().parse().unwrap(),
        );
    }
    response
}

struct Replayer {
    seen: Shared,
    endpoint: String,
}

impl Replayer {
    async fn start() -> Self {
        let seen: Shared = Arc::default();
        let app = axum::Router::new()
            .fallback(replay)
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { seen, endpoint }
    }

    fn client(&self, version: &str) -> CommunicationIdentityClient {
        let options = CommunicationIdentityClientOptions {
            api_version: version.parse().unwrap(),
            ..Default::default()
        };
        CommunicationIdentityClient::with_access_key(
            &self.endpoint,
            AccessKey::from_base64(KEY).unwrap(),
            Some(options),
        )
        .unwrap()
    }

    fn expect(&self, exchange: &Value) {
        let mut seen = self.seen.lock().unwrap();
        seen.expected = Some(exchange.clone());
        seen.requests.clear();
    }

    fn requests(&self) -> Vec<(Method, String, HeaderMap, Bytes)> {
        self.seen.lock().unwrap().requests.clone()
    }
}

fn exchanges() -> Vec<Value> {
    serde_json::from_str(include_str!("fixtures/recorded_exchanges.json")).unwrap()
}

fn user() -> CommunicationUserIdentifier {
    CommunicationUserIdentifier::new("sanitized")
}

fn scopes(values: &Value) -> Vec<TokenScope> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().parse().unwrap())
        .collect()
}

fn expiry(body: &Value) -> std::result::Result<Option<TokenExpiry>, IdentityError> {
    body["expiresInMinutes"]
        .as_u64()
        .map(|m| TokenExpiry::new(Duration::from_secs(m * 60)))
        .transpose()
}

/// Runs the operation the recording shows, through the client.
async fn call(
    client: &CommunicationIdentityClient,
    x: &Value,
) -> std::result::Result<Value, IdentityError> {
    let body = &x["request_body"];
    let custom_id = body["customId"].as_str().map(str::to_owned);
    match x["operation"].as_str().unwrap() {
        "create_user" | "create_user_custom_id" => {
            let options = CommunicationIdentityClientCreateUserOptions {
                custom_id,
                ..Default::default()
            };
            let user = client.create_user(Some(options)).await?;
            Ok(serde_json::json!({"id": user.id()}))
        }
        "create_user_and_token" | "create_user_custom_id_and_token" => {
            let options = CommunicationIdentityClientCreateUserAndTokenOptions {
                custom_id,
                expires_in: expiry(body)?,
                ..Default::default()
            };
            let (user, token) = client
                .create_user_and_token(&scopes(&body["createTokenWithScopes"]), Some(options))
                .await?;
            Ok(serde_json::json!({"id": user.id(), "expiresOn": token.expires_on.timestamp()}))
        }
        "issue_token" => {
            let options = CommunicationIdentityClientGetTokenOptions {
                expires_in: expiry(body)?,
                ..Default::default()
            };
            let token = client
                .get_token(&user(), &scopes(&body["scopes"]), Some(options))
                .await?;
            Ok(serde_json::json!({"expiresOn": token.expires_on.timestamp()}))
        }
        "get_identity" => {
            let details = client.get_user(&user(), None).await?;
            Ok(
                serde_json::json!({"id": details.id, "customId": details.custom_id, "at": details.last_token_issued_at.map(|t| t.timestamp())}),
            )
        }
        "revoke_tokens" => client
            .revoke_tokens(&user(), None)
            .await
            .map(|()| Value::Null),
        "delete_user" => client
            .delete_user(&user(), None)
            .await
            .map(|()| Value::Null),
        other => panic!("no client operation for {other}"),
    }
}

#[tokio::test]
async fn requests_and_answers_match_the_recordings() {
    let replayer = Replayer::start().await;
    let key = AccessKey::from_base64(KEY).unwrap();
    let mut checked = 0;
    for x in exchanges() {
        let id = x["id"].as_str().unwrap();
        let version = x["api_version"].as_str().unwrap();
        let client = replayer.client(version);
        replayer.expect(&x);
        let result = call(&client, &x).await;
        let requests = replayer.requests();

        // Bodies the recorded service refused before the model check are refused here before sending.
        let refused_locally = matches!(&result, Err(IdentityError::InvalidArgument(_)));
        if refused_locally {
            assert!(
                requests.is_empty(),
                "{id}: nothing is sent for a refused argument"
            );
            assert_eq!(
                x["status"], 400,
                "{id}: only service 400s are refused locally"
            );
            checked += 1;
            continue;
        }
        assert_eq!(
            requests.len(),
            1,
            "{id}: exactly one request (no retry of a final answer)"
        );
        let (method, path, headers, body) = &requests[0];
        assert_eq!(method.as_str(), x["method"], "{id}");
        assert_eq!(
            path,
            x["path"].as_str().unwrap(),
            "{id}: path and query as recorded"
        );
        match &x["request_body"] {
            Value::Null => assert!(body.is_empty(), "{id}: no body"),
            recorded => assert_eq!(
                std::str::from_utf8(body).unwrap(),
                serde_json::to_string(recorded).unwrap(),
                "{id}: the same compact body, field for field"
            ),
        }
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            header("accept").as_deref(),
            Some("application/json"),
            "{id}"
        );
        if !body.is_empty() {
            assert_eq!(
                header("content-type").as_deref(),
                Some("application/json"),
                "{id}"
            );
        }
        let hash = header("x-ms-content-sha256").unwrap();
        assert_eq!(hash, content_hash(body), "{id}");
        if let Some(recorded) = x["request_headers"]["x-ms-content-sha256"]
            .as_str()
            .filter(|h| *h != "Sanitized")
        {
            assert_eq!(hash, recorded, "{id}: the recorded body hash");
        }
        let date = header("x-ms-date").unwrap();
        let host = header("host").unwrap();
        let sts = string_to_sign(method.as_str(), path, &date, &host, &hash);
        let auth = header("authorization").unwrap();
        let (_, signature) = callsign_common::hmac::parse_authorization(&auth).unwrap();
        assert!(key.verify(&sts, signature), "{id}: the signature verifies");
        if let Some(recorded) = x["request_headers"]["x-ms-hmac-string-to-sign-base64"].as_str() {
            use base64::Engine;
            let recorded = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(recorded)
                    .unwrap(),
            )
            .unwrap();
            let recorded_date = x["request_headers"]["x-ms-date"].as_str().unwrap();
            let expected = recorded
                .replace(recorded_date, &date)
                .replace("smstestapp.communication.azure.com", &host);
            assert_eq!(sts, expected, "{id}: the recorded string-to-sign");
        }
        let user_agent = header("user-agent").unwrap();
        // The Azure SDK pattern: `azsdk-rust-<crate>/<version> (<rustc>; <os>; <arch>)`.
        assert!(
            user_agent.starts_with(&format!(
                "azsdk-rust-callsign_identity/{} (",
                env!("CARGO_PKG_VERSION")
            )),
            "{id}: {user_agent}"
        );

        let status = x["status"].as_u64().unwrap() as u16;
        match result {
            Ok(answer) => {
                assert!(status < 300, "{id}: succeeded on {status}");
                if let Some(expires_on) = x["response_body"]["expiresOn"]
                    .as_str()
                    .or(x["response_body"]["accessToken"]["expiresOn"].as_str())
                {
                    let expected = callsign_common::time_format::parse(expires_on)
                        .unwrap()
                        .timestamp();
                    assert_eq!(answer["expiresOn"], expected, "{id}");
                }
                if let Some(custom_id) = x["response_body"]["customId"].as_str() {
                    assert_eq!(answer["customId"], custom_id, "{id}");
                    assert!(answer["at"].is_i64(), "{id}: lastTokenIssuedAt parsed");
                }
            }
            Err(e) => {
                assert_eq!(e.status(), Some(status), "{id}");
                assert_eq!(
                    e.code(),
                    x["response_body"]["error"]["code"].as_str(),
                    "{id}"
                );
                let IdentityError::Service { message, .. } = &e else {
                    panic!("{id}: {e:?}")
                };
                assert_eq!(
                    message,
                    x["response_body"]["error"]["message"].as_str().unwrap(),
                    "{id}"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, exchanges().len());
}
