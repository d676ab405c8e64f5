//! The first ten minutes with the `callsign` binary: client commands that find the local
//! server, trust its development CA and fail fast, with one line saying why, when it cannot be
//! reached; `serve` output that can be pasted; messages that help.

use callsign_testkit::process::ServeProcess;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

/// How long a command that cannot reach its server may take: the connection is refused or the
/// certificate refused at once; before, the retry policy spent 81 s. Generous for a loaded CI
/// machine; not a speed measurement.
const FAIL_FAST: Duration = Duration::from_secs(10);

/// `callsign <args>` in `dir`, with nothing of the caller's environment choosing a server.
fn callsign(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("CALLSIGN_CONNECTION_STRING")
        .env_remove("CALLSIGN_DATA")
        .env_remove("CALLSIGN_CA_FILE")
        .env_remove("RUST_LOG")
        .env_remove("SSL_CERT_FILE");
    cmd
}

/// Runs it, with the time it took.
fn timed(cmd: &mut Command) -> (Output, Duration) {
    let started = Instant::now();
    let output = cmd.output().unwrap();
    (output, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failure: `code`, nothing on stdout, and exactly one line on stderr, which it
/// returns.
fn one_line_failure(output: &Output, code: i32) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

/// `serve --addr 127.0.0.1:0` in `dir` (its data dir `./callsign-data`).
fn serve(dir: &Path, extra: &[&str]) -> ServeProcess {
    let mut cmd = callsign(dir);
    cmd.env("RUST_LOG", "warn")
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::inherit());
    ServeProcess::spawn(&mut cmd, extra.contains(&"--tls"))
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_server_that_is_not_running_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{}/", closed_port());
    let connection_string =
        format!("endpoint={endpoint};accesskey=QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=");
    let (output, took) = timed(callsign(dir.path()).args([
        "user",
        "create",
        "--connection-string",
        &connection_string,
    ]));
    let stderr = one_line_failure(&output, 1);
    assert_eq!(
        stderr.trim(),
        format!("error: connection refused at {endpoint} — is `callsign serve` running there?")
    );
    assert!(took < FAIL_FAST, "took {took:?}");

    // No connection string and no data dir: a usage error naming every way to give one.
    let (output, _) = timed(callsign(dir.path()).args(["user", "list"]));
    let stderr = one_line_failure(&output, 2);
    for way in [
        "--connection-string",
        "CALLSIGN_CONNECTION_STRING",
        "--dev",
        "callsign serve",
    ] {
        assert!(stderr.contains(way), "{way}: {stderr}");
    }
    assert!(
        stderr.contains(&dir.path().join("callsign-data").display().to_string()),
        "{stderr}"
    );
}

#[test]
fn client_commands_find_the_local_server_and_trust_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--tls"]);
    let data = dir.path().join("callsign-data");
    let ca = server.ca.clone().unwrap();
    assert_eq!(Path::new(&ca), data.join("tls/ca.pem"), "absolute");

    // Found in ./callsign-data, its CA trusted; -v says so.
    let (output, _) = timed(callsign(dir.path()).args([
        "-v",
        "user",
        "create",
        "--scopes",
        "chat, voip",
        "--expires-in",
        "1d",
    ]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let claims = callsign_testkit::payload(created["token"].as_str().unwrap());
    assert_eq!(claims["acsScope"], "chat,voip");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86_400
    );
    assert_eq!(
        text(&output.stderr).trim(),
        format!(
            "using {} from the data dir {} (served by pid {}), trusting {ca}",
            server.endpoint,
            data.display(),
            server.child.id()
        )
    );
    // Without -v a client command says nothing on stderr.
    let quiet = callsign(dir.path())
        .args(["user", "list"])
        .output()
        .unwrap();
    assert!(
        quiet.status.success() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );

    // The same server named by its connection string: its certificate is not trusted until
    // the CA is given.
    let by_string = |extra: &[&str]| {
        let mut cmd = callsign(dir.path());
        cmd.args([
            "user",
            "list",
            "--connection-string",
            &server.connection_string,
        ])
        .args(extra);
        timed(&mut cmd)
    };
    let (output, took) = by_string(&[]);
    let stderr = one_line_failure(&output, 1);
    assert!(
        stderr.starts_with(&format!(
            "error: the certificate of {} is not trusted: ",
            server.endpoint
        )) && stderr.contains("--ca-file"),
        "{stderr}"
    );
    assert!(took < FAIL_FAST, "took {took:?}");
    let (output, _) = by_string(&["--ca-file", &ca]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut with_env = callsign(dir.path());
    with_env
        .args([
            "user",
            "list",
            "--connection-string",
            &server.connection_string,
        ])
        .env("CALLSIGN_CA_FILE", &ca);
    assert!(with_env.output().unwrap().status.success());

    // Once the server has stopped: the data dir says so, and the string is still printed.
    server.signal("-TERM");
    assert!(server.wait().success());
    let (output, took) = timed(callsign(dir.path()).args(["user", "list"]));
    let stderr = one_line_failure(&output, 1);
    assert!(
        stderr.contains("connection refused")
            && stderr.contains(&format!(
                "no server is running on the data dir {}",
                data.display()
            )),
        "{stderr}"
    );
    assert!(took < FAIL_FAST, "took {took:?}");
    let output = callsign(dir.path())
        .arg("connection-string")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(text(&output.stdout).starts_with("endpoint=https://127.0.0.1:"));
    assert_eq!(
        text(&output.stderr).trim(),
        format!(
            "server not running (data dir {}): `callsign serve --data {}` starts it",
            data.display(),
            data.display()
        )
    );
}

#[test]
fn dev_names_the_well_known_server() {
    let dir = tempfile::tempdir().unwrap();
    // Whatever answers on 8080 here, `--dev` means that endpoint with the published key; -v
    // says so before the request is made.
    let output = callsign(dir.path())
        .args(["-v", "user", "list", "--dev", "--api-version", "2023-10-01"])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(
            "using http://127.0.0.1:8080/ from --dev (the well-known development key)"
        ),
        "{stderr}"
    );
    let both = callsign(dir.path())
        .args([
            "user",
            "list",
            "--dev",
            "--connection-string",
            "endpoint=http://h/;accesskey=AA==",
        ])
        .output()
        .unwrap();
    one_line_failure(&both, 2);
}

/// Everything `serve` prints on stdout, up to its last line (the CA's export lines with
/// `--tls`, else the connection string's).
fn banner(dir: &Path, extra: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut child = callsign(dir)
        .env("RUST_LOG", "warn")
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let last = if extra.contains(&"--tls") {
        "export NODE_EXTRA_CA_CERTS="
    } else {
        "export CALLSIGN_CONNECTION_STRING="
    };
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with(last);
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

#[test]
fn serve_prints_absolute_paths_and_lines_to_paste() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("callsign-data");
    let ca = data.join("tls/ca.pem");
    let (mut first, lines) = banner(dir.path(), &["--tls"]);
    let connection_string = lines[1].strip_prefix("connection string: ").unwrap();
    assert!(
        lines[0].starts_with("endpoint: https://127.0.0.1:"),
        "{lines:?}"
    );
    assert_eq!(lines[2], format!("ca certificate: {}", ca.display()));
    assert_eq!(lines[3], format!("data dir: {} (created)", data.display()));
    let endpoint = lines[0].strip_prefix("endpoint: ").unwrap();
    assert_eq!(
        lines[4],
        format!("console: {endpoint}console (sign in with an access key)")
    );
    assert_eq!(lines[5], "");
    let exports = lines[6..].join("\n");
    assert_eq!(
        exports,
        format!(
            "export CALLSIGN_CONNECTION_STRING='{connection_string}'\n\
             export REQUESTS_CA_BUNDLE='{ca}'\nexport NODE_EXTRA_CA_CERTS='{ca}'",
            ca = ca.display()
        )
    );
    // Pasted into a shell (from another directory), they set exactly what they say.
    let shell = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{exports}\nprintf '%s\\n' \"$CALLSIGN_CONNECTION_STRING\" \"$REQUESTS_CA_BUNDLE\" \"$NODE_EXTRA_CA_CERTS\""
        ))
        .current_dir("/")
        .output()
        .unwrap();
    let ca_line = ca.display().to_string();
    assert_eq!(
        text(&shell.stdout).lines().collect::<Vec<_>>(),
        [connection_string, ca_line.as_str(), ca_line.as_str()]
    );
    first.kill().unwrap();
    first.wait().unwrap();

    // Started again: the data dir is reused; without --tls no CA lines.
    let (mut second, lines) = banner(dir.path(), &[]);
    assert_eq!(lines[2], format!("data dir: {} (reused)", data.display()));
    assert!(lines[3].starts_with("console: http://"));
    assert!(lines[5].starts_with("export CALLSIGN_CONNECTION_STRING='endpoint=http://"));
    assert_eq!(lines.len(), 6, "{lines:?}");
    second.kill().unwrap();
    second.wait().unwrap();

    // --no-console: no console line.
    let (mut second, lines) = banner(dir.path(), &["--no-console"]);
    assert!(lines[4].starts_with("export CALLSIGN_CONNECTION_STRING='endpoint=http://"));
    assert_eq!(lines.len(), 5, "{lines:?}");
    second.kill().unwrap();
    second.wait().unwrap();

    let (mut memory, lines) = banner(dir.path(), &["--in-memory"]);
    assert_eq!(lines[2], "storage: in memory (gone when the server stops)");
    memory.kill().unwrap();
    memory.wait().unwrap();
}

#[test]
fn start_up_errors_say_what_to_do_once() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = callsign(dir.path())
        .args(["serve", "--in-memory", "--addr", &addr])
        .output()
        .unwrap();
    let stderr = one_line_failure(&output, 1);
    assert!(stderr.contains(&format!("listening on {addr}")), "{stderr}");
    assert_eq!(
        stderr.matches("in use").count(),
        1,
        "the cause once: {stderr}"
    );
    assert!(stderr.contains("--addr 127.0.0.1:0"), "a hint: {stderr}");

    // A data dir that does not exist, for a command that needs one.
    let output = callsign(dir.path())
        .args(["export", "--data", "nothing-here"])
        .output()
        .unwrap();
    let stderr = one_line_failure(&output, 1);
    assert!(
        stderr.contains(&format!(
            "{} holds no callsign data yet",
            dir.path().join("nothing-here").display()
        )) && stderr.contains("callsign serve"),
        "{stderr}"
    );
}

#[test]
fn arguments_are_read_generously_and_refused_helpfully() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--in-memory"]);
    let run = |args: &[&str]| {
        callsign(dir.path())
            .args(args)
            .env("CALLSIGN_CONNECTION_STRING", &server.connection_string)
            .output()
            .unwrap()
    };
    let refused = run(&["user", "create", "--scopes", "chat,vip"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("unknown scope \"vip\"")
            && stderr.contains("chat, voip, chat.join, chat.join.limited, voip.join"),
        "{stderr}"
    );
    let bare = run(&["user", "create", "--scopes", "chat", "--expires-in", "3600"]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(
        text(&bare.stderr).contains("3600s"),
        "{}",
        text(&bare.stderr)
    );
    for lifetime in ["90m", "1h", "1d", "3600s", "1h30m"] {
        let ok = run(&[
            "user",
            "create",
            "--scopes",
            "chat",
            "--expires-in",
            lifetime,
        ]);
        assert!(ok.status.success(), "{lifetime}: {}", text(&ok.stderr));
    }
    let help = run(&["user", "create", "--help"]);
    let help = text(&help.stdout);
    assert!(
        help.contains("[default: 24h]") && help.contains("Examples:"),
        "{help}"
    );

    // A command that needs another api-version refuses one it was given.
    let clash = run(&["entra-assignment", "list", "--api-version", "2023-10-01"]);
    let stderr = one_line_failure(&clash, 2);
    assert!(
        stderr.contains("needs api-version 2025-03-02-preview"),
        "{stderr}"
    );
}

#[test]
fn introspection_says_why_a_token_is_inactive() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--in-memory"]);
    let run = |args: &[&str]| -> serde_json::Value {
        let output = callsign(dir.path())
            .args(args)
            .env("CALLSIGN_CONNECTION_STRING", &server.connection_string)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let user = run(&["user", "create", "--scopes", "chat"]);
    let (id, token) = (
        user["id"].as_str().unwrap(),
        user["token"].as_str().unwrap(),
    );
    assert_eq!(run(&["token", "introspect", token])["active"], true);
    run(&["token", "revoke", id]);
    assert_eq!(
        run(&["token", "introspect", token]),
        serde_json::json!({"active": false, "reason": "revoked"})
    );
    assert_eq!(
        run(&["token", "introspect", "not-a-token"])["reason"],
        "malformed"
    );
}

#[test]
fn completions_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let output = callsign(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = text(&output.stdout);
        for word in ["serve", "connection-string", "entra-assignment", "scopes"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    if Command::new("bash").arg("--version").output().is_ok() {
        let script = callsign(dir.path())
            .args(["completions", "bash"])
            .output()
            .unwrap()
            .stdout;
        let path = dir.path().join("callsign.bash");
        std::fs::write(&path, script).unwrap();
        let loaded = Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p callsign", path.display()))
            .output()
            .unwrap();
        assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    }
}

/// A service that is there but busy is retried, briefly: three retries honouring `Retry-After`,
/// then the service's own error.
#[tokio::test]
async fn busy_services_are_retried_within_a_short_budget() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1"), ("content-type", "application/json")],
                r#"{"error":{"code":"TooManyRequests","message":"Too many requests."}}"#,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut cmd = callsign(dir.path());
    cmd.args(["user", "create", "--connection-string"])
        .arg(format!(
            "endpoint={endpoint};accesskey=QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
        ));
    let (output, took) = tokio::task::spawn_blocking(move || timed(&mut cmd))
        .await
        .unwrap();
    let stderr = one_line_failure(&output, 1);
    assert!(
        stderr.contains("429") && stderr.contains("TooManyRequests"),
        "{stderr}"
    );
    assert_eq!(asked.load(Ordering::SeqCst), 4, "one try and three retries");
    // Three waits of at least the 1 s Retry-After each: the budget was used, not skipped.
    assert!(took >= Duration::from_secs(3), "took {took:?}");
}
