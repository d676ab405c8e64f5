//! `callsign serve` as a process: start-up output, data dir reuse, the access-key seed, key
//! commands, graceful shutdown, and durability of acknowledged writes across `kill -9`.

use callsign_common::AccessKey;
use callsign_testkit::process::ServeProcess;
use callsign_testkit::{encode, Client};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

fn callsign(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("CALLSIGN_ACCESS_KEY")
        .env("RUST_LOG", "warn")
        .env("CALLSIGN_DATA", data);
    cmd
}

/// Starts `callsign serve` on a free port and reads the lines it prints.
fn serve(data: &Path, seed: Option<&str>, extra: &[&str]) -> ServeProcess {
    serve_logging(data, seed, extra, ("warn", Stdio::inherit()))
}

/// [`serve`] with a log filter (`RUST_LOG`) and the server's log (stderr) going to `log`.
fn serve_logging(
    data: &Path,
    seed: Option<&str>,
    extra: &[&str],
    (filter, log): (&str, Stdio),
) -> ServeProcess {
    let mut cmd = callsign(data);
    cmd.env("RUST_LOG", filter)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra);
    if let Some(seed) = seed {
        cmd.env("CALLSIGN_ACCESS_KEY", seed);
    }
    ServeProcess::spawn(cmd.stderr(log), extra.contains(&"--tls"))
}

fn seed() -> String {
    AccessKey::from_bytes((0..32).map(|i| i * 7 + 3).collect()).to_base64()
}

/// Everything the server logs at the most verbose level, while it serves good and bad requests,
/// holds no access key, no token and no part of the private signing key.
#[tokio::test]
async fn trace_logs_hold_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let key = seed();
    let server = serve_logging(
        &dir.path().join("data"),
        Some(&key),
        &[],
        ("trace", Stdio::from(log)),
    );
    let client = server.client();
    let id = client.create_user().await;
    let token = client.issue_token(&id, &["chat", "voip"]).await;
    assert_eq!(client.introspect(&token).await["active"], true);
    assert_eq!(client.revoke(&id).await.status, 204);
    let created = client
        .post(
            "/identities?api-version=2023-10-01",
            &json!({"createTokenWithScopes": ["chat"]}),
        )
        .await;
    let second_token = created.json()["accessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Refused requests: a wrong key, a token as a bearer, a token in a Teams exchange.
    let wrong = Client::new(&server.endpoint, AccessKey::from_bytes(vec![9; 32]));
    let refused = wrong
        .post("/identities?api-version=2023-10-01", &json!({}))
        .await;
    assert_eq!(refused.status, 401);
    let bearer = callsign_testkit::raw(
        reqwest::Client::new()
            .post(format!(
                "{}identities?api-version=2023-10-01",
                server.endpoint
            ))
            .bearer_auth(&token)
            .body("{}"),
    )
    .await;
    assert_eq!(bearer.status, 401);
    let exchange = client
        .post(
            "/teamsUser/:exchangeAccessToken?api-version=2023-10-01",
            &json!({"token": token, "appId": "x", "userId": "y"}),
        )
        .await;
    assert_eq!(exchange.status, 401);
    server.signal("-TERM");
    assert!(server.wait().success());

    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("authentication refused") && logged.contains("token rejected"),
        "the refused requests were logged:\n{logged}"
    );
    let mut secrets = vec![key.clone()];
    for token in [&token, &second_token] {
        secrets.push(token.to_string());
        // Its payload or signature alone would be a leak too (the header only names the key).
        secrets.extend(token.split('.').skip(1).map(str::to_owned));
    }
    let signing = dir.path().join("data/signing");
    for entry in std::fs::read_dir(&signing).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".key.pem") {
            let pem = std::fs::read_to_string(&path).unwrap();
            secrets.extend(
                pem.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() >= 32)
                    .map(str::to_owned),
            );
        }
    }
    assert!(secrets.len() > 10, "the secrets to look for were found");
    for secret in &secrets {
        assert!(
            !logged.contains(secret.as_str()),
            "the log holds a secret ({} characters)",
            secret.len()
        );
    }
}

#[tokio::test]
async fn prints_its_connection_string_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let key = seed();
    let server = serve(dir.path(), Some(&key), &[]);
    assert!(server.endpoint.starts_with("http://127.0.0.1:"));
    assert!(server.endpoint.ends_with('/'));
    assert_eq!(
        server.connection_string,
        format!("endpoint={};accesskey={key}", server.endpoint)
    );
    let client = server.client();
    let id = client.create_user().await;
    assert!(id.starts_with("8:acs:"));

    let printed = callsign(dir.path())
        .arg("connection-string")
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap().trim(),
        server.connection_string
    );

    server.signal("-TERM");
    assert!(server.wait().success(), "SIGTERM is a clean shutdown");
}

#[tokio::test]
async fn data_dir_is_reused_and_a_different_seed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), None, &[]);
    let resource = std::fs::read_to_string(dir.path().join("resource-id")).unwrap();
    let key = first
        .connection_string
        .split("accesskey=")
        .nth(1)
        .unwrap()
        .to_owned();
    drop(first);

    let again = serve(dir.path(), Some(&key), &[]);
    assert!(
        again.connection_string.ends_with(&key),
        "same key on restart"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("resource-id")).unwrap(),
        resource
    );
    drop(again);

    let refused = callsign(dir.path())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("CALLSIGN_ACCESS_KEY", seed())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("different primary access key"), "{stderr}");
    assert!(
        !stderr.contains(&seed()) && !stderr.contains(&key),
        "no key in the message"
    );
}

#[tokio::test]
async fn quiet_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let child = callsign(dir.path())
        .args(["serve", "--addr", "127.0.0.1:0", "--quiet"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The endpoint file appears once the server is bound.
    let endpoint_file = dir.path().join("endpoint");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !endpoint_file.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let endpoint = std::fs::read_to_string(&endpoint_file).unwrap();
    let health = reqwest::get(format!("{endpoint}healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // SIGINT (Ctrl-C) is a clean stop too.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(
        output.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test]
async fn key_commands_reach_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), None, &[]);
    let old_primary = server.client();
    assert_eq!(old_primary.create_user().await.len(), 79);

    let jwks_url = format!("{}.well-known/jwks.json", server.endpoint);
    let kids = || async {
        let jwks: serde_json::Value = reqwest::get(&jwks_url).await.unwrap().json().await.unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(kids().await.len(), 1);
    let rotated = callsign(dir.path())
        .args(["signing-key", "rotate"])
        .output()
        .unwrap();
    assert!(rotated.status.success());
    let new_kid = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();

    let regenerated = callsign(dir.path())
        .args(["keys", "regenerate", "primary"])
        .output()
        .unwrap();
    assert!(regenerated.status.success());
    let printed = callsign(dir.path())
        .arg("connection-string")
        .output()
        .unwrap();
    let new_connection_string = String::from_utf8(printed.stdout).unwrap().trim().to_owned();
    assert_ne!(new_connection_string, server.connection_string);
    let key = new_connection_string.split("accesskey=").nth(1).unwrap();
    let new_primary = Client::new(&server.endpoint, AccessKey::from_base64(key).unwrap());

    // The server polls the key files; wait (bounded) until it has picked the change up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let accepted = new_primary
            .post("/identities?api-version=2023-10-01", &json!({}))
            .await
            .status
            == 201;
        if accepted && kids().await.first() == Some(&new_kid) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not pick up the new keys"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kids().await.len(), 2, "the old signing key stays published");
    let reply = old_primary
        .post("/identities?api-version=2023-10-01", &json!({}))
        .await;
    assert_eq!(
        reply.status, 401,
        "the replaced primary key no longer works"
    );
    let id = new_primary.create_user().await;
    let token = new_primary.issue_token(&id, &["chat"]).await;
    let header = token.split('.').next().unwrap();
    use base64::Engine;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], new_kid);
}

/// Every acknowledged create, revoke and delete survives the process being killed with SIGKILL.
#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let key = seed();
    let server = serve(dir.path(), Some(&key), &[]);
    let client = server.client();
    let mut kept = Vec::new();
    let mut revoked = Vec::new();
    let mut deleted = Vec::new();
    for i in 0..30 {
        let id = client.create_user().await;
        let token = client.issue_token(&id, &["chat"]).await;
        match i % 3 {
            0 => kept.push((id, token)),
            1 => {
                assert_eq!(client.revoke(&id).await.status, 204);
                revoked.push((id, token));
            }
            _ => {
                let reply = client.delete(&id).await;
                assert_eq!(reply.status, 204);
                deleted.push((id, token));
            }
        }
    }
    let custom = client
        .post(
            "/identities?api-version=2025-03-02-preview",
            &json!({"customId": "survivor"}),
        )
        .await
        .json()["identity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.signal("-KILL");
    let status = server.wait();
    assert!(!status.success());

    let restarted = serve(dir.path(), Some(&key), &[]);
    let client = restarted.client();
    for (id, token) in &kept {
        assert_eq!(client.introspect(token).await["active"], true);
        client.issue_token(id, &["voip"]).await;
    }
    for (id, token) in &revoked {
        assert_eq!(client.introspect(token).await["active"], false);
        client.issue_token(id, &["voip"]).await;
    }
    for (id, token) in &deleted {
        assert_eq!(client.introspect(token).await["active"], false);
        let reply = client
            .post(
                &format!(
                    "/identities/{}/:issueAccessToken?api-version=2023-10-01",
                    encode(id)
                ),
                &json!({"scopes": ["chat"]}),
            )
            .await;
        assert_eq!(reply.status, 404);
    }
    let again = client
        .post(
            "/identities?api-version=2025-03-02-preview",
            &json!({"customId": "survivor"}),
        )
        .await;
    assert_eq!(again.json()["identity"]["id"], custom);
}

#[tokio::test]
async fn tls_prints_the_dev_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), None, &["--tls"]);
    assert!(server.endpoint.starts_with("https://127.0.0.1:"));
    let ca = server.ca.clone().unwrap();
    assert!(
        Path::new(&ca).is_absolute() || Path::new(&ca).exists(),
        "{ca}"
    );
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(healthz_trusting(&server.endpoint, &ca).await, 200);
}

/// `GET /healthz` over TLS with only `ca` trusted.
async fn healthz_trusting(endpoint: &str, ca: impl AsRef<Path>) -> u16 {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let reply = http.get(format!("{endpoint}healthz")).send().await.unwrap();
    reply.status().as_u16()
}

#[tokio::test]
async fn own_certificate_files_are_served() {
    let dir = tempfile::tempdir().unwrap();
    // Use the development CA's server certificate as "real" files for a second data dir.
    drop(serve(&dir.path().join("a"), None, &["--tls"]));
    let tls = dir.path().join("a/tls");
    let cert = tls.join("server.pem");
    let key = tls.join("server.key.pem");
    let server = serve(
        &dir.path().join("b"),
        None,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.endpoint.starts_with("https://"));
    assert!(
        !dir.path().join("b/tls").exists(),
        "no development CA is generated"
    );
    // The files given are what is served: a client trusting their CA connects.
    assert_eq!(
        healthz_trusting(&server.endpoint, tls.join("ca.pem")).await,
        200
    );
}

/// Many writes in flight when the process is killed: every create and revoke that was answered
/// is there after the restart, whichever group commit it was part of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_flight_at_kill_9_lose_nothing_acknowledged() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    const WORKERS: usize = 16;
    const PER_WORKER: usize = 4;
    const KILL_AFTER: usize = 200;

    let dir = tempfile::tempdir().unwrap();
    let key = seed();
    let server = serve(dir.path(), Some(&key), &[]);
    let client = server.client();
    let mut targets = Vec::new();
    for _ in 0..WORKERS * PER_WORKER {
        let id = client.create_user().await;
        let token = client.issue_token(&id, &["chat"]).await;
        targets.push((id, token));
    }
    let targets = Arc::new(targets);
    let created = Arc::new(Mutex::new(Vec::new()));
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (client, targets) = (client.clone(), targets.clone());
        let (created, revoked) = (created.clone(), revoked.clone());
        let (answered, enough) = (answered.clone(), enough.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let target = w * PER_WORKER + i / 4;
                let revoke = i % 4 == 0 && i / 4 < PER_WORKER;
                let reply = if revoke {
                    let path = format!(
                        "/identities/{}/:revokeAccessTokens?api-version=2023-10-01",
                        encode(&targets[target].0)
                    );
                    client.try_post(&path, &json!({})).await
                } else {
                    client
                        .try_post("/identities?api-version=2023-10-01", &json!({}))
                        .await
                };
                // The server is gone: what this request did is unknown, and nothing follows.
                let Ok(reply) = reply else { break };
                match (revoke, reply.status) {
                    (true, 204) => revoked.lock().unwrap().push(target),
                    (false, 201) => created
                        .lock()
                        .unwrap()
                        .push(reply.json()["identity"]["id"].as_str().unwrap().to_owned()),
                    (_, status) => panic!("unexpected {status}: {}", reply.text()),
                }
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                    enough.notify_one();
                }
            }
        }));
    }
    enough.notified().await;
    server.signal("-KILL");
    for worker in workers {
        worker.await.unwrap();
    }
    assert!(!server.wait().success());

    let created = created.lock().unwrap().clone();
    let revoked = revoked.lock().unwrap().clone();
    assert!(created.len() >= KILL_AFTER / 2, "{} creates", created.len());
    assert!(!revoked.is_empty(), "some revokes were answered");
    let restarted = serve(dir.path(), Some(&key), &[]);
    let client = restarted.client();
    for id in &created {
        client.issue_token(id, &["chat"]).await;
    }
    for &target in &revoked {
        let (id, token) = &targets[target];
        assert_eq!(
            client.introspect(token).await["active"],
            false,
            "revoke of {id} was answered"
        );
    }
}

#[test]
fn config_file_is_read_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("callsign.toml");
    std::fs::write(
        &config,
        format!(
            "addr = \"127.0.0.1:0\"\ndata = \"{}\"\n",
            dir.path().join("from-file").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_remove("CALLSIGN_DATA")
        .env_remove("CALLSIGN_ACCESS_KEY");
    let running = ServeProcess::spawn(
        cmd.args(["serve", "--config", config.to_str().unwrap()]),
        false,
    );
    assert!(dir.path().join("from-file/resource-id").exists());
    drop(running);

    let mut cmd = Command::new(BIN);
    cmd.env_remove("CALLSIGN_DATA")
        .env_remove("CALLSIGN_ACCESS_KEY");
    cmd.args(["serve", "--config", config.to_str().unwrap()])
        .args(["--data", dir.path().join("from-flag").to_str().unwrap()]);
    drop(ServeProcess::spawn(&mut cmd, false));
    assert!(dir.path().join("from-flag/resource-id").exists());

    // The environment overrides the file, and a flag the environment.
    let with_env = |flag: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.env("CALLSIGN_DATA", dir.path().join("from-env"))
            .env_remove("CALLSIGN_ACCESS_KEY")
            .args(["serve", "--config", config.to_str().unwrap()]);
        if let Some(flag) = flag {
            cmd.args(["--data", dir.path().join(flag).to_str().unwrap()]);
        }
        drop(ServeProcess::spawn(&mut cmd, false));
    };
    with_env(None);
    assert!(dir.path().join("from-env/resource-id").exists());
    with_env(Some("flag-over-env"));
    assert!(dir.path().join("flag-over-env/resource-id").exists());

    // A trusted issuer must name exactly one key source, and a JWKS file must be readable.
    for issuer in [
        "jwks_uri = \"https://example.invalid/keys\"\njwks_file = \"keys.json\"\n",
        "jwks_file = \"missing-keys.json\"\n",
    ] {
        std::fs::write(
            &config,
            format!("[[trusted_issuers]]\nissuer = \"https://issuer.example/v2.0\"\n{issuer}"),
        )
        .unwrap();
        let output = Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .args(["--data", dir.path().join("issuers").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("trusted issuer"), "{stderr}");
    }

    std::fs::write(&config, "adress = \"typo\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("config file"));
}

/// A request whose body is still arriving when SIGTERM comes is answered before the server exits.
#[test]
fn sigterm_lets_in_flight_requests_finish() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let key = seed();
    let server = serve(dir.path(), Some(&key), &[]);
    let host = server
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let path = "/identities?api-version=2023-10-01";
    let body = br#"{"createTokenWithScopes":["chat"]}"#;
    let signed = callsign_common::hmac::sign_request(
        &AccessKey::from_base64(&key).unwrap(),
        "POST",
        path,
        &host,
        body,
        chrono::Utc::now(),
    );
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         x-ms-date: {}\r\nx-ms-content-sha256: {}\r\nAuthorization: {}\r\n\r\n",
        body.len(),
        signed.date,
        signed.content_hash,
        signed.authorization
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..10]).unwrap();
    // Ordering only (the server must have parsed the head before the signal), not a timing assertion.
    std::thread::sleep(Duration::from_millis(300));
    server.signal("-TERM");
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body[10..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(server.wait().success());
}

#[test]
fn admin_commands_refuse_a_data_dir_no_server_has_made() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    for args in [
        &["keys", "regenerate", "primary"][..],
        &["signing-key", "rotate"],
        &["connection-string", "--endpoint", "http://127.0.0.1:1/"],
    ] {
        let output = callsign(&missing).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("holds no callsign data yet"),
            "{args:?}: {stderr}"
        );
        assert!(!missing.exists(), "{args:?} created the data dir");
    }
}

/// `callsign serve` that is expected to refuse to start: its exit status and stderr.
fn refused_start(data: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = callsign(data);
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--quiet"]);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[tokio::test]
async fn a_data_dir_serves_one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), None, &[]);
    let stderr = refused_start(dir.path(), &[]);
    let expected = format!(
        "error: {} is in use by another callsign process (pid {})",
        dir.path().display(),
        first.child.id()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(
        stderr.contains("talk to that server") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
    // Key commands work beside the running server; it picks their changes up.
    let rotated = callsign(dir.path())
        .args(["signing-key", "rotate"])
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    // The lock goes with the process, however it ends.
    drop(first);
    drop(serve(dir.path(), None, &[]));
}

#[tokio::test]
async fn a_data_dir_that_lost_a_key_file_refuses_to_start_and_names_it() {
    for lost in ["resource-id", "access-keys.json", "signing/ring.json"] {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(dir.path(), None, &[]);
        server.client().create_user().await;
        drop(server);
        std::fs::remove_file(dir.path().join(lost)).unwrap();
        let stderr = refused_start(dir.path(), &[]);
        assert!(
            stderr.contains(&format!("is incomplete: {lost} missing")),
            "{lost}: {stderr}"
        );
        assert!(!dir.path().join(lost).exists(), "{lost} was recreated");
    }
    // All key files gone while the database holds users: not a new data dir either.
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), None, &[]);
    server.client().create_user().await;
    drop(server);
    std::fs::remove_file(dir.path().join("resource-id")).unwrap();
    std::fs::remove_file(dir.path().join("access-keys.json")).unwrap();
    std::fs::remove_dir_all(dir.path().join("signing")).unwrap();
    let stderr = refused_start(dir.path(), &[]);
    assert!(stderr.contains("the database holds identities"), "{stderr}");
}

#[test]
fn start_up_refusals_name_the_file_and_say_it_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    drop(serve(dir.path(), None, &[]));

    // A key file others can read.
    let keys = dir.path().join("access-keys.json");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = refused_start(dir.path(), &[]);
    assert!(stderr.contains(&format!(
        "{} is readable by group or others",
        keys.display()
    )));
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A database written by a newer callsign.
    let db = rusqlite::Connection::open(dir.path().join("callsign.db")).unwrap();
    db.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(db);
    let stderr = refused_start(dir.path(), &[]);
    assert!(
        stderr.contains("has schema version 99, newer than this callsign knows (8)"),
        "{stderr}"
    );

    // A seed too short to be an access key.
    let short = AccessKey::from_bytes(vec![1; 16]).to_base64();
    let stderr = refused_start(&dir.path().join("new"), &[("CALLSIGN_ACCESS_KEY", &short)]);
    assert!(stderr.contains("holds 16 bytes; an access key needs at least 32"));

    // An address in use: the cause once, and the way out.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = callsign(&dir.path().join("other"))
        .args(["serve", "--quiet", "--addr", &addr])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("--addr"), "{stderr}");
}

/// One INFO line per request (route template, never the id), refused authentication at INFO with
/// its reason, no colours off a terminal, and the same as JSON with `--log-format json`.
#[tokio::test]
async fn requests_and_refusals_are_logged_one_line_each_without_ids() {
    for json in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let extra: &[&str] = if json { &["--log-format", "json"] } else { &[] };
        let server = serve_logging(
            &dir.path().join("data"),
            None,
            extra,
            ("info", Stdio::from(log)),
        );
        let client = server.client();
        let id = client.create_user().await;
        client.issue_token(&id, &["chat"]).await;
        let stranger = Client::new(&server.endpoint, AccessKey::from_bytes(vec![9; 32]));
        let refused = stranger
            .post("/identities?api-version=2023-10-01", &json!({}))
            .await;
        assert_eq!(refused.status, 401);
        server.signal("-TERM");
        assert!(server.wait().success());

        let text = std::fs::read_to_string(&log_path).unwrap();
        assert!(!text.contains('\u{1b}'), "no colours in a file: {text}");
        let resource = id.split(':').nth(2).unwrap().split('_').next().unwrap();
        assert!(
            !text.contains(&id) && !text.contains(resource),
            "no ids: {text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        let has = |words: &[&str]| lines.iter().any(|l| words.iter().all(|w| l.contains(w)));
        assert!(has(&["request", "POST", "/identities", "201"]), "{text}");
        assert!(
            has(&["/identities/{id}/:issueAccessToken", "200"]),
            "{text}"
        );
        assert!(has(&["request", "/identities", "401"]), "{text}");
        assert!(
            has(&[
                "INFO",
                "authentication refused",
                "the signature does not match"
            ]),
            "{text}"
        );
        if json {
            for line in &lines {
                let parsed: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                assert!(parsed["level"].is_string(), "{line}");
            }
        }
    }
}
