//! `callsign healthz [URL]`: the container's health check (no shell or curl in the image) exits 0
//! when the server answers `GET /healthz` with 200, and 1, within its timeout, otherwise.

use callsign_testkit::process::ServeProcess;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

fn healthz(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(BIN)
        .arg("healthz")
        .args(args)
        // A proxy in the environment must not stand between the check and the server.
        .env("HTTP_PROXY", "http://127.0.0.1:9/")
        .env("http_proxy", "http://127.0.0.1:9/")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (output, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_running_server_is_healthy_and_other_answers_are_not() {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--dev", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .env_remove("CALLSIGN_DATA")
        .stderr(Stdio::null());
    let server = ServeProcess::spawn(&mut cmd, false);

    let url = format!("{}healthz", server.endpoint);
    let (out, _) = healthz(&[&url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("healthy: {url} answered 200\n"));

    let missing = format!("{}no-such-route", server.endpoint);
    let (out, _) = healthz(&[&missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("error: unhealthy: {missing} answered 404")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn nothing_listening_is_unhealthy() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/healthz");
    let (out, elapsed) = healthz(&[&url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("error: unhealthy: {url}: ")),
        "{}",
        text(&out.stderr)
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn a_server_that_never_answers_is_unhealthy_after_the_timeout() {
    // Accepts connections (the kernel's backlog does) but never reads or writes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    let (out, elapsed) = healthz(&["--timeout", "1", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("error: unhealthy: {url}: ")),
        "{}",
        text(&out.stderr)
    );
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    drop(listener);
}
