//! The ACS Identity operations the load generator drives, as request templates (signed with HMAC
//! exactly as a real client signs them, `callsign_common::hmac::sign_request`, once per
//! [`crate::presign::RESIGN_AFTER`]) and checks of their answers.

use crate::conn::{Answer, Conn};
use crate::presign::{Presigned, Signer, Template};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use chrono::Utc;
use http::Method;
use serde_json::Value;

/// `GET /healthz` (unsigned, as probes call it).
pub fn healthz() -> Template {
    template(Method::GET, "/healthz".into(), None, false)
}

/// `POST /identities`: each one creates a new identity, however often the request is resent.
pub fn create_user() -> Template {
    template(Method::POST, "/identities".into(), Some("{}"), true)
}

/// `POST /identities` with `createTokenWithScopes`.
pub fn create_user_and_token() -> Template {
    let body = r#"{"createTokenWithScopes":["chat"]}"#;
    template(Method::POST, "/identities".into(), Some(body), true)
}

/// `POST /identities/{id}/:issueAccessToken`.
pub fn issue_token(id: &str) -> Template {
    let path = format!("/identities/{}/:issueAccessToken", encode(id));
    template(Method::POST, path, Some(r#"{"scopes":["chat"]}"#), true)
}

/// `POST /identities/{id}/:revokeAccessTokens`.
pub fn revoke(id: &str) -> Template {
    let path = format!("/identities/{}/:revokeAccessTokens", encode(id));
    template(Method::POST, path, None, true)
}

fn template(method: Method, path: String, body: Option<&'static str>, signed: bool) -> Template {
    Template {
        method,
        path,
        body: body.map(|b| Bytes::from_static(b.as_bytes())),
        signed,
    }
}

/// What a successful answer must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A 2xx status.
    Success,
    /// A 2xx status and a token in the body.
    Token,
}

impl Expect {
    /// Checks an answer: the status, and for tokens a `"token":` member (a substring search
    /// rather than a JSON parse, so that checking is not what the harness spends its core on).
    pub fn check(self, answer: Answer) -> Result<()> {
        let body = answer.success()?;
        if self == Expect::Token && !body.windows(8).any(|w| w == b"\"token\":") {
            bail!("no token in the answer");
        }
        Ok(())
    }
}

/// Creates `count` identities one after another and returns their raw ids.
pub async fn create_users(conn: &mut Conn, signer: &Signer, count: usize) -> Result<Vec<String>> {
    let mut requests = Presigned::new(signer.clone(), vec![create_user()]);
    let mut users = Vec::with_capacity(count);
    for _ in 0..count {
        let body = conn.send(requests.get(0, Utc::now())).await?.success()?;
        let answer: Value = serde_json::from_slice(&body)?;
        let id = answer["identity"]["id"].as_str();
        users.push(id.context("no identity id in the answer")?.to_owned());
    }
    Ok(users)
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

/// The ids of the first `count` identity lines of an export file (docs/export.md: one JSON object
/// a line, `"type": "identity"` with its `id`).
pub fn users_from_export(file: &std::path::Path, count: usize) -> Result<Vec<String>> {
    let opened =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut ids = Vec::with_capacity(count);
    for line in std::io::BufRead::lines(std::io::BufReader::new(opened)) {
        let line: Value = serde_json::from_str(&line?).context("an export line is not JSON")?;
        if line["type"] == "identity" {
            let id = line["id"]
                .as_str()
                .context("an identity line without an id")?;
            ids.push(id.to_owned());
            if ids.len() == count {
                break;
            }
        }
    }
    anyhow::ensure!(!ids.is_empty(), "no identities in {}", file.display());
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &'static str) -> Answer {
        Answer {
            status: http::StatusCode::from_u16(status).unwrap(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn answers_are_checked() {
        let token = r#"{"token":"eyJ","expiresOn":"2026-01-01T00:00:00Z"}"#;
        assert!(Expect::Token.check(answer(200, token)).is_ok());
        assert!(Expect::Token.check(answer(201, "{}")).is_err());
        assert!(Expect::Success.check(answer(204, "")).is_ok());
        let refused = Expect::Success.check(answer(401, r#"{"error":{}}"#));
        assert!(refused.unwrap_err().to_string().starts_with("401"));
    }

    #[test]
    fn ids_are_encoded_for_a_path() {
        assert_eq!(encode("8:acs:a-b_c"), "8:acs:a-b_c");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn users_come_from_an_export_file() {
        let file = std::env::temp_dir().join(format!("callsign-bench-ids-{}", std::process::id()));
        let lines = [
            r#"{"type":"resource","format":1,"resourceId":"r"}"#,
            r#"{"type":"identity","id":"8:acs:r_1","createdAtUs":1}"#,
            r#"{"type":"assignment","objectId":"o"}"#,
            r#"{"type":"identity","id":"8:acs:r_2","createdAtUs":1}"#,
            r#"{"type":"identity","id":"8:acs:r_3","createdAtUs":1}"#,
        ];
        std::fs::write(&file, lines.join("\n")).unwrap();
        let two = users_from_export(&file, 2);
        std::fs::write(&file, lines[0]).unwrap();
        let none = users_from_export(&file, 2);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(two.unwrap(), ["8:acs:r_1", "8:acs:r_2"]);
        assert!(none.unwrap_err().to_string().starts_with("no identities"));
    }
}
