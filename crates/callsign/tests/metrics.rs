//! `callsign serve --metrics-addr` and `metrics_addr` in the config file, as a process: the
//! metrics listener answers `GET /metrics` without authentication, the main listener only to an
//! authenticated request.

use callsign_testkit::process::ServeProcess;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

/// A port free a moment ago (the server binds it right after).
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn serve(extra: &[&str]) -> ServeProcess {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("CALLSIGN_ACCESS_KEY")
        .env_remove("CALLSIGN_CONFIG")
        .env_remove("CALLSIGN_METRICS_ADDR")
        .env("RUST_LOG", "warn")
        .args(["serve", "--addr", "127.0.0.1:0", "--in-memory"])
        .args(extra);
    ServeProcess::spawn(&mut cmd, false)
}

async fn assert_serves_metrics_without_auth(addr: &str) {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l == "# TYPE callsign_auth_failures counter"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn the_flag_opens_an_unauthenticated_metrics_listener() {
    let addr = free_addr();
    let server = serve(&["--metrics-addr", &addr]);
    assert_serves_metrics_without_auth(&addr).await;

    let main = format!("{}metrics", server.endpoint);
    assert_eq!(reqwest::get(&main).await.unwrap().status(), 401);
    let signed = server.client().send("GET", "/metrics", None).await;
    assert_eq!(signed.status, 200);
    assert!(signed.text().contains("callsign_identities 0"));
}

#[tokio::test]
async fn the_config_file_sets_the_metrics_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("callsign.toml");
    let addr = free_addr();
    std::fs::write(&config, format!("metrics_addr = \"{addr}\"\n")).unwrap();
    let _server = serve(&["--config", config.to_str().unwrap()]);
    assert_serves_metrics_without_auth(&addr).await;
}
