//! `callsign serve --limits` and `[limits]` as a process: the flag picks a preset, the file's
//! group limits apply over it, and `--limits off` turns throttling off whatever the file says.

use callsign_testkit::process::ServeProcess;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

fn serve(config: &Path, limits: &str) -> ServeProcess {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("CALLSIGN_ACCESS_KEY")
        .env_remove("CALLSIGN_CONFIG")
        .env("RUST_LOG", "warn")
        .args(["serve", "--addr", "127.0.0.1:0", "--in-memory"])
        .args(["--config", config.to_str().unwrap(), "--limits", limits]);
    ServeProcess::spawn(&mut cmd, false)
}

/// Creates identities until one is refused (at most `tries`); returns the refusal's status,
/// `Retry-After` and body, and how many were created.
async fn create_until_refused(
    server: &ServeProcess,
    tries: usize,
) -> (usize, Option<(u16, String, String)>) {
    let client = server.client();
    for created in 0..tries {
        let reply = client
            .post("/identities?api-version=2023-10-01", &json!({}))
            .await;
        if reply.status != 201 {
            let retry_after = reply.header("retry-after").unwrap_or("").to_owned();
            return (created, Some((reply.status, retry_after, reply.text())));
        }
    }
    (tries, None)
}

#[tokio::test]
async fn the_flag_picks_the_preset_and_the_file_overrides_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("callsign.toml");
    // An hour's window: at most one window boundary falls within the few requests below.
    std::fs::write(&config, "[limits]\nwindow_seconds = 3600\nissue = 2\n").unwrap();

    let server = serve(&config, "acs");
    let (created, refused) = create_until_refused(&server, 5).await;
    let (status, retry_after, body) = refused.expect("the third create of a window is refused");
    assert!((2..=4).contains(&created), "{created}");
    assert_eq!(status, 429);
    assert_eq!(
        body,
        r#"{"error":{"code":"TooManyRequests","message":"Too many requests."}}"#
    );
    let seconds: u32 = retry_after.parse().unwrap();
    assert!((1..=3600).contains(&seconds), "{seconds}");
    drop(server);

    let server = serve(&config, "off");
    let (created, refused) = create_until_refused(&server, 10).await;
    assert_eq!(
        (created, refused),
        (10, None),
        "--limits off wins over the file"
    );
}
