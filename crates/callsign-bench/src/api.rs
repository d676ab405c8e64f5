//! The ACS Identity operations the load generator drives, signed with HMAC exactly as a real
//! client signs them (`callsign_common::hmac::sign_request`).

use anyhow::{bail, Context, Result};
use callsign_common::hmac::{host_header, sign_request};
use callsign_common::AccessKey;
use reqwest::{Client, Method};
use serde_json::{json, Value};

/// The api-version every request names.
const API_VERSION: &str = "2023-10-01";

/// A signed-request client of one callsign (or ACS) endpoint.
#[derive(Clone)]
pub struct Api {
    http: Client,
    base: String,
    host: String,
    key: AccessKey,
}

impl Api {
    /// A client of `endpoint` (`http://127.0.0.1:8080/`) signing with `key`.
    pub fn new(endpoint: &str, key: AccessKey, connections: usize) -> Result<Self> {
        let url = reqwest::Url::parse(endpoint).context("parsing the endpoint")?;
        let host = host_header(&url).context("endpoint has no host")?;
        let http = Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base: endpoint.trim_end_matches('/').to_owned(),
            host,
            key,
        })
    }

    /// `POST /identities`; returns the new raw id.
    pub async fn create_user(&self) -> Result<String> {
        let answer = self
            .send(Method::POST, "/identities", Some(json!({})))
            .await?;
        identity_id(&answer)
    }

    /// `POST /identities` with `createTokenWithScopes`; returns the new raw id.
    pub async fn create_user_and_token(&self) -> Result<String> {
        let body = json!({ "createTokenWithScopes": ["chat"] });
        let answer = self.send(Method::POST, "/identities", Some(body)).await?;
        if answer["accessToken"]["token"].as_str().is_none() {
            bail!("no token in the answer");
        }
        identity_id(&answer)
    }

    /// `POST /identities/{id}/:issueAccessToken`.
    pub async fn issue_token(&self, id: &str) -> Result<()> {
        let path = format!("/identities/{}/:issueAccessToken", encode(id));
        let answer = self
            .send(Method::POST, &path, Some(json!({ "scopes": ["chat"] })))
            .await?;
        match answer["token"].as_str() {
            Some(_) => Ok(()),
            None => bail!("no token in the answer"),
        }
    }

    /// `POST /identities/{id}/:revokeAccessTokens`.
    pub async fn revoke(&self, id: &str) -> Result<()> {
        let path = format!("/identities/{}/:revokeAccessTokens", encode(id));
        self.send(Method::POST, &path, None).await.map(|_| ())
    }

    /// `GET /healthz` (unsigned, as probes call it).
    pub async fn healthz(&self) -> Result<()> {
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("healthz answered {}", response.status());
        }
        response.bytes().await?;
        Ok(())
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let path_and_query = format!("{path}?api-version={API_VERSION}");
        let bytes = match &body {
            Some(body) => serde_json::to_vec(body)?,
            None => Vec::new(),
        };
        let signed = sign_request(
            &self.key,
            method.as_str(),
            &path_and_query,
            &self.host,
            &bytes,
            chrono::Utc::now(),
        );
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base))
            .header("x-ms-date", signed.date)
            .header("x-ms-content-sha256", signed.content_hash)
            .header("authorization", signed.authorization);
        if body.is_some() {
            request = request
                .header("content-type", "application/json")
                .body(bytes);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.bytes().await?;
        if !status.is_success() {
            bail!("{status}: {}", String::from_utf8_lossy(&text));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&text)?)
    }
}

fn identity_id(answer: &Value) -> Result<String> {
    answer["identity"]["id"]
        .as_str()
        .map(str::to_owned)
        .context("no identity id in the answer")
}

/// Percent-encodes a raw id for a path segment (`8:acs:...` has colons, which are fine, but ids
/// may in principle hold other characters).
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
