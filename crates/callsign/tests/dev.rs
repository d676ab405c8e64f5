//! `callsign serve --dev` and `--in-memory`: a throwaway local instance with the well-known
//! development key that leaves nothing behind, as test suites use it.

use callsign_testkit::process::ServeProcess;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

/// The published development key (README), spelled out here so that a change to it fails a test.
const WELL_KNOWN_KEY: &str =
    "QBuLZH+Q1IfqHJvQiK57dWHoL4aWPLNRIH2UdY2a/Cl5wKmZcBq5zTarIMGw4CdvE+qCIBVL2U1Id9TtzwsDww==";

/// `callsign` run in `cwd` with its temporary files going to `tmp`, and no data dir in the
/// environment.
fn callsign_in(cwd: &Path, tmp: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .env("TMPDIR", tmp)
        .env("RUST_LOG", "warn")
        .env_remove("CALLSIGN_DATA")
        .env_remove("CALLSIGN_ACCESS_KEY")
        .env_remove("CALLSIGN_DATABASE_URL");
    cmd
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn dev_serves_the_well_known_key_from_memory_and_leaves_nothing_behind() {
    let (cwd, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut cmd = callsign_in(cwd.path(), tmp.path());
    cmd.args(["serve", "--dev", "--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped());
    let mut server = ServeProcess::spawn(&mut cmd, false);
    assert!(
        server
            .connection_string
            .ends_with(&format!(";accesskey={WELL_KNOWN_KEY}")),
        "{}",
        server.connection_string
    );
    let client = server.client();
    let id = client.create_user().await;
    let token = client.issue_token(&id, &["chat"]).await;
    assert_eq!(client.introspect(&token).await["active"], true);

    server.signal("-TERM");
    let stderr = server.child.stderr.take().unwrap();
    assert!(server.wait().success());
    let stderr = std::io::read_to_string(stderr).unwrap();
    assert!(
        stderr.starts_with("warning: --dev: a development instance with a published access key"),
        "{stderr}"
    );
    assert_eq!(entries(cwd.path()), Vec::<String>::new(), "no data dir");
    assert_eq!(
        entries(tmp.path()),
        Vec::<String>::new(),
        "no temporary files"
    );
}

#[tokio::test]
async fn dev_tls_writes_its_ca_to_a_temporary_file_removed_at_exit() {
    let (cwd, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut cmd = callsign_in(cwd.path(), tmp.path());
    cmd.args(["serve", "--dev", "--tls", "--addr", "127.0.0.1:0"])
        .stderr(Stdio::null());
    let server = ServeProcess::spawn(&mut cmd, true);
    let ca = server.ca.clone().unwrap();
    assert!(Path::new(&ca).starts_with(tmp.path()), "{ca}");
    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .unwrap();
    let healthz = http
        .get(format!("{}healthz", server.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);

    server.signal("-TERM");
    assert!(server.wait().success());
    assert!(!Path::new(&ca).exists());
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
    assert_eq!(entries(cwd.path()), Vec::<String>::new());
}

#[tokio::test]
async fn dev_with_a_data_dir_keeps_its_users() {
    let (cwd, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = cwd.path().join("data");
    let start = || {
        let mut cmd = callsign_in(cwd.path(), tmp.path());
        cmd.args(["serve", "--dev", "--addr", "127.0.0.1:0", "--data"])
            .arg(&data)
            .stderr(Stdio::null());
        ServeProcess::spawn(&mut cmd, false)
    };
    let first = start();
    assert!(first.connection_string.ends_with(WELL_KNOWN_KEY));
    let id = first.client().create_user().await;
    drop(first);
    let second = start();
    let token = second.client().issue_token(&id, &["voip"]).await;
    assert!(!token.is_empty());
}

#[test]
fn connection_string_dev_prints_the_well_known_string() {
    let dir = tempfile::tempdir().unwrap();
    let output = callsign_in(dir.path(), dir.path())
        .args(["connection-string", "--dev"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("endpoint=http://127.0.0.1:8080/;accesskey={WELL_KNOWN_KEY}\n")
    );
}

#[test]
fn dev_and_in_memory_refuse_storage_they_would_ignore() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            &[
                "serve",
                "--dev",
                "--database-url",
                "postgres://127.0.0.1:1/x",
            ][..],
            "--dev is a local instance",
        ),
        (
            &["serve", "--in-memory", "--data", "somewhere"],
            "--in-memory stores nothing",
        ),
    ] {
        let output = callsign_in(dir.path(), dir.path())
            .env(
                "CALLSIGN_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "a usage error: {args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn in_memory_starts_empty_every_time() {
    let (cwd, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = || {
        let mut cmd = callsign_in(cwd.path(), tmp.path());
        cmd.args(["serve", "--in-memory", "--addr", "127.0.0.1:0"])
            .stderr(Stdio::null());
        ServeProcess::spawn(&mut cmd, false)
    };
    let first = start();
    let id = first.client().create_user().await;
    let first_key = first.key();
    drop(first);
    let second = start();
    assert_ne!(second.key(), first_key, "a new resource, new random keys");
    let reply = second
        .client()
        .send(
            "GET",
            &format!(
                "/identities/{}?api-version=2025-03-02-preview",
                callsign_testkit::encode(&id)
            ),
            None,
        )
        .await;
    assert_ne!(reply.status, 200, "the first run's user is gone");
    drop(second);
    assert_eq!(entries(cwd.path()), Vec::<String>::new());
}

#[tokio::test]
async fn dev_issues_one_minute_tokens_and_the_flag_sets_other_minimums() {
    let (cwd, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let expires = |minutes: i64| serde_json::json!({"createTokenWithScopes": ["chat"], "expiresInMinutes": minutes});
    let mut cmd = callsign_in(cwd.path(), tmp.path());
    cmd.args(["serve", "--dev", "--addr", "127.0.0.1:0"])
        .stderr(Stdio::null());
    let dev = ServeProcess::spawn(&mut cmd, false);
    let created = dev
        .client()
        .post("/identities?api-version=2023-10-01", &expires(1))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    drop(dev);

    let mut cmd = callsign_in(cwd.path(), tmp.path());
    cmd.args(["serve", "--in-memory", "--min-token-lifetime", "5m"])
        .args(["--addr", "127.0.0.1:0"])
        .stderr(Stdio::null());
    let five = ServeProcess::spawn(&mut cmd, false);
    let refused = five
        .client()
        .post("/identities?api-version=2023-10-01", &expires(4))
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("[5, 1440]"), "{}", refused.text());

    for bad in ["0m", "61m", "2h", "soon"] {
        let output = callsign_in(cwd.path(), tmp.path())
            .args(["serve", "--in-memory", "--min-token-lifetime", bad])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad}");
    }
}

#[tokio::test]
async fn lenient_api_versions_serve_a_newer_sdk_and_strict_refuses_it() {
    let (cwd, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let future = "/identities?api-version=2031-05-01";
    let start = |extra: &[&str]| {
        let mut cmd = callsign_in(cwd.path(), tmp.path());
        cmd.args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::null());
        ServeProcess::spawn(&mut cmd, false)
    };
    for extra in [
        &["--dev"][..],
        &["--in-memory", "--api-versions", "lenient"],
    ] {
        let server = start(extra);
        let created = server.client().post(future, &serde_json::json!({})).await;
        assert_eq!(created.status, 201, "{extra:?}: {}", created.text());
        assert_eq!(
            created.header("warning"),
            Some("299 callsign \"api-version 2031-05-01 is unknown to this callsign; served as 2025-06-30\""),
        );
        let older = server
            .client()
            .post("/identities?api-version=2024-02-02", &serde_json::json!({}))
            .await;
        assert_eq!(older.status, 400, "{extra:?}");
    }
    for extra in [&["--in-memory"][..], &["--dev", "--api-versions", "strict"]] {
        let server = start(extra);
        let refused = server.client().post(future, &serde_json::json!({})).await;
        assert_eq!(refused.status, 400, "{extra:?}");
        assert_eq!(refused.json()["error"]["code"], "UnsupportedApiVersion");
    }
}
