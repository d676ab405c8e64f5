//! Signed webhooks (docs/webhooks.md) from `callsign serve` as a process to receivers on
//! loopback: a receiver that is down gets every event once it is up, in order, signed; a server
//! killed with `kill -9` before or during a delivery delivers again when it restarts, and never
//! again what its receiver acknowledged; the documented Python receiver accepts the deliveries and
//! refuses forged ones.

use axum::http::{HeaderMap, StatusCode};
use callsign_common::webhook_signature::{self, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use callsign_testkit::process::ServeProcess;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const BIN: &str = env!("CARGO_BIN_EXE_callsign");
const SECRET: &str = "a-webhook-secret-for-the-tests";
/// Generous: the retries are at most a second apart here.
const DEADLINE: Duration = Duration::from_secs(30);

/// What the test receiver does with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answers 204: acknowledged.
    Up,
    /// Answers 503.
    Down,
    /// Never answers.
    Hold,
    /// Answers 307 to `/elsewhere` on the same receiver.
    Redirect,
}

/// One delivery attempt as the receiver saw it.
#[derive(Debug, Clone)]
struct Attempt {
    id: String,
    event: Value,
    signed: bool,
    acknowledged: bool,
}

#[derive(Default)]
struct Shared {
    mode: Mutex<Option<Mode>>,
    /// Requests that reached `/elsewhere`.
    elsewhere: Mutex<usize>,
    attempts: Mutex<Vec<Attempt>>,
    changed: Notify,
}

/// A webhook receiver on loopback that checks signatures and records every attempt.
struct Receiver {
    port: u16,
    shared: Arc<Shared>,
}

impl Receiver {
    async fn start(mode: Mode) -> Self {
        let shared = Arc::new(Shared::default());
        *shared.mode.lock().unwrap() = Some(mode);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = shared.clone();
        let elsewhere = shared.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    let shared = state.clone();
                    async move { receive(&shared, &headers, &body).await }
                }),
            )
            .route(
                "/elsewhere",
                axum::routing::any(move || {
                    *elsewhere.elsewhere.lock().unwrap() += 1;
                    async { StatusCode::NO_CONTENT }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { port, shared }
    }

    fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = Some(mode);
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.shared.attempts.lock().unwrap().clone()
    }

    /// The acknowledged events' types and subjects, in delivery order.
    fn acknowledged(&self) -> Vec<(String, String)> {
        self.attempts()
            .iter()
            .filter(|a| a.acknowledged)
            .map(|a| {
                (
                    a.event["type"].as_str().unwrap().to_owned(),
                    a.event["subject"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Waits until `done` holds for the attempts so far.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Attempt]) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let changed = self.shared.changed.notified();
            if done(&self.attempts()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{what}: {:#?}", self.attempts());
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), changed).await;
        }
    }

    /// Waits until an event about `subject` has been acknowledged.
    async fn wait_acknowledged(&self, subject: &str) {
        self.wait_for(subject, |a| {
            a.iter()
                .any(|a| a.acknowledged && a.event["subject"] == subject)
        })
        .await;
    }
}

async fn receive(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let signed = webhook_signature::verify(
        SECRET.as_bytes(),
        &header(TIMESTAMP_HEADER),
        &header(SIGNATURE_HEADER),
        body,
        chrono::Utc::now().timestamp(),
    )
    .is_ok();
    let mode = shared.mode.lock().unwrap().unwrap();
    let attempt = Attempt {
        id: header(ID_HEADER),
        event: serde_json::from_slice(body).unwrap(),
        signed,
        acknowledged: mode == Mode::Up && signed,
    };
    shared.attempts.lock().unwrap().push(attempt);
    shared.changed.notify_waiters();
    match mode {
        Mode::Up if signed => StatusCode::NO_CONTENT.into_response(),
        Mode::Up => StatusCode::BAD_REQUEST.into_response(),
        Mode::Down => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Mode::Hold => std::future::pending().await,
        Mode::Redirect => (
            StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, "/elsewhere")],
        )
            .into_response(),
    }
}

/// A config file with one webhook to `url`, quick retries, and `events` (TOML array text).
fn config(dir: &Path, url: &str, events: &str) -> PathBuf {
    let path = dir.join("callsign.toml");
    std::fs::write(
        &path,
        format!(
            "[[webhooks]]\nurl = \"{url}\"\nsecret_env = \"TEST_WEBHOOK_SECRET\"\n\
             events = {events}\nmin_retry_ms = 50\nmax_retry_seconds = 1\n"
        ),
    )
    .unwrap();
    path
}

fn serve(data: &Path, config: &Path) -> ServeProcess {
    serve_with(data, config, &[])
}

/// [`serve`] with more environment variables.
fn serve_with(data: &Path, config: &Path, env: &[(&str, &str)]) -> ServeProcess {
    let mut cmd = Command::new(BIN);
    cmd.envs(env.iter().copied());
    cmd.env_remove("CALLSIGN_ACCESS_KEY")
        .env("RUST_LOG", "error")
        .env("TEST_WEBHOOK_SECRET", SECRET)
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data);
    ServeProcess::spawn(&mut cmd, false)
}

/// A node of a cluster on the PostgreSQL database at `url`, configured by `config`.
fn serve_node(url: &str, data: &Path, config: &Path) -> ServeProcess {
    let master_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let env = [
        ("CALLSIGN_MASTER_KEY", master_key),
        ("CALLSIGN_DATABASE_URL", url),
    ];
    serve_with(data, config, &env)
}

fn kill_9(server: ServeProcess) {
    server.signal("-KILL");
    assert!(!server.wait().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_every_event_in_order_signed_once() {
    let receiver = Receiver::start(Mode::Down).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &format!("http://127.0.0.1:{}/hook", receiver.port),
        r#"["identity.created", "identity.tokensRevoked"]"#,
    );
    let server = serve(&dir.path().join("data"), &config);
    let client = server.client();
    let user = client.create_user().await;
    assert_eq!(client.revoke(&user).await.status, 204);
    // Not a type the webhook receives.
    assert_eq!(client.delete(&user).await.status, 204);
    receiver
        .wait_for("retried while down", |a| a.len() >= 3)
        .await;
    receiver.set(Mode::Up);
    receiver
        .wait_for("both delivered", |a| {
            a.iter().filter(|a| a.acknowledged).count() >= 2
        })
        .await;
    // Whatever else comes, comes after a later event: create one and wait for it.
    let marker = client.create_user().await;
    receiver.wait_acknowledged(&marker).await;
    assert_eq!(
        receiver.acknowledged(),
        [
            ("identity.created".to_owned(), user.clone()),
            ("identity.tokensRevoked".to_owned(), user.clone()),
            ("identity.created".to_owned(), marker),
        ]
    );
    let attempts = receiver.attempts();
    assert!(attempts.iter().all(|a| a.signed), "{attempts:#?}");
    let first = &attempts[0];
    assert_eq!(first.event["type"], "identity.created");
    assert!(
        attempts[..3].iter().all(|a| a.id == first.id),
        "retries are of the first event, with its id: {attempts:#?}"
    );
    assert_eq!(first.id, first.event["id"].to_string());
    assert!(first.event["cursor"].is_string());
    let revoked = attempts
        .iter()
        .find(|a| a.event["type"] == "identity.tokensRevoked");
    assert!(revoked.unwrap().event["details"]["revokedBeforeMicros"].is_i64());

    // The attempts are counted, per webhook and outcome (the last acknowledgement is counted
    // once its answer is back at the server: waited for).
    let series = |outcome: &str| {
        format!(
            "callsign_webhook_attempts_total{{url=\"http://127.0.0.1:{}/hook\",outcome=\"{outcome}\"}} ",
            receiver.port
        )
    };
    let deadline = Instant::now() + DEADLINE;
    let (acknowledged, failed) = loop {
        let metrics = client.send("GET", "/metrics", None).await.text();
        let count = |outcome: &str| -> usize {
            let series = series(outcome);
            let line = metrics.lines().find(|l| l.starts_with(&series));
            line.unwrap_or_else(|| panic!("{series} in {metrics}"))[series.len()..]
                .parse()
                .unwrap()
        };
        let counts = (count("acknowledged"), count("failed"));
        if counts.0 >= 3 || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(acknowledged, 3);
    assert_eq!(failed, attempts.iter().filter(|a| !a.acknowledged).count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_before_or_during_a_delivery_delivers_again_and_never_what_was_acknowledged() {
    let receiver = Receiver::start(Mode::Hold).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(
        dir.path(),
        &format!("http://127.0.0.1:{}/hook", receiver.port),
        "[]",
    );

    // Killed while the receiver holds the delivery of `during` unanswered.
    let server = serve(&data, &config);
    let during = server.client().create_user().await;
    receiver
        .wait_for("the held delivery", |a| {
            a.iter().any(|a| a.event["subject"] == during.as_str())
        })
        .await;
    kill_9(server);

    // Killed after `before` was committed, while the receiver was refusing it.
    receiver.set(Mode::Down);
    let server = serve(&data, &config);
    receiver
        .wait_for("the first again, refused", |a| {
            a.iter()
                .filter(|a| a.event["subject"] == during.as_str())
                .count()
                >= 2
        })
        .await;
    let before = server.client().create_user().await;
    kill_9(server);

    // Up: both arrive, acknowledged once each.
    receiver.set(Mode::Up);
    let server = serve(&data, &config);
    receiver.wait_acknowledged(&before).await;
    // An event after them, acknowledged: the position of the two was recorded before it was
    // sent. Then killed, restarted, and one more event.
    let after = server.client().create_user().await;
    receiver.wait_acknowledged(&after).await;
    kill_9(server);
    let server = serve(&data, &config);
    let last = server.client().create_user().await;
    receiver.wait_acknowledged(&last).await;

    let acknowledged = receiver.acknowledged();
    let times = |user: &str| acknowledged.iter().filter(|(_, s)| s == user).count();
    assert_eq!(times(&during), 1, "{acknowledged:?}");
    assert_eq!(times(&before), 1, "{acknowledged:?}");
    // `after` may come twice: its acknowledgement and the kill can fall in the window before its
    // position is recorded (documented).
    assert!((1..=2).contains(&times(&after)), "{acknowledged:?}");
    assert_eq!(times(&last), 1, "{acknowledged:?}");
    let order: Vec<&str> = acknowledged.iter().map(|(_, s)| s.as_str()).collect();
    let first = |user: &str| order.iter().position(|s| *s == user).unwrap();
    assert!(first(&during) < first(&before) && first(&before) < first(&after));
    assert!(first(&after) < first(&last));
}

/// The Python receiver in docs/webhooks/receiver.py, started on a free port.
struct PythonReceiver {
    child: Child,
    port: u16,
}

impl PythonReceiver {
    fn start(out: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/webhooks/receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", "0", "--out"])
            .arg(out)
            .env("CALLSIGN_WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the documented receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .parse()
            .unwrap();
        Self { child, port }
    }
}

impl Drop for PythonReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_python_receiver_takes_deliveries_and_refuses_forgeries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let python = PythonReceiver::start(&out);
    let url = format!("http://127.0.0.1:{}/hook", python.port);
    let config = config(dir.path(), &url, r#"["identity.created"]"#);
    let server = serve(&dir.path().join("data"), &config);
    let user = server.client().create_user().await;

    let deadline = Instant::now() + DEADLINE;
    let received = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str::<Value>(line).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "nothing delivered to the receiver"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(received["type"], "identity.created");
    assert_eq!(received["subject"], user.as_str());

    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"id":999,"type":"identity.deleted","subject":"8:acs:forged"}"#;
    let post = |timestamp: i64, signature: String| {
        http.post(&url)
            .header(ID_HEADER, "999")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
    };
    let wrong_secret = webhook_signature::sign(b"not-the-webhook-secret", now, body);
    assert_eq!(post(now, wrong_secret).await.unwrap().status(), 400);
    let tampered = webhook_signature::sign(SECRET.as_bytes(), now, b"{}");
    assert_eq!(post(now, tampered).await.unwrap().status(), 400);
    let stale = now - 600;
    let replayed = webhook_signature::sign(SECRET.as_bytes(), stale, body);
    assert_eq!(post(stale, replayed).await.unwrap().status(), 400);
    // The same checks accept a good one: the refusals above are the signature's.
    let good = webhook_signature::sign(SECRET.as_bytes(), now, body);
    assert_eq!(post(now, good).await.unwrap().status(), 204);
    let lines = std::fs::read_to_string(&out).unwrap();
    let subjects: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["subject"].clone())
        .collect();
    assert_eq!(subjects, [Value::from(user), Value::from("8:acs:forged")]);
}

/// Two nodes of a cluster, both configured with the webhook, both writing: every event of
/// either node is delivered, once — one node at a time holds the webhook's lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_delivers_each_event_once() {
    let pg = callsign_testkit::pg_cluster::PgCluster::start();
    let receiver = Receiver::start(Mode::Up).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &format!("http://127.0.0.1:{}/hook", receiver.port),
        r#"["identity.created"]"#,
    );
    let a = serve_node(&pg.url(), &dir.path().join("a"), &config);
    let b = serve_node(&pg.url(), &dir.path().join("b"), &config);
    let mut tasks = Vec::new();
    for client in [a.client(), b.client()] {
        tasks.push(tokio::spawn(async move {
            let mut users = Vec::new();
            for _ in 0..20 {
                users.push(client.create_user().await);
            }
            users
        }));
    }
    let mut users = Vec::new();
    for task in tasks {
        users.extend(task.await.unwrap());
    }
    receiver
        .wait_for("every user", |a| {
            users.iter().all(|user| {
                a.iter()
                    .any(|a| a.acknowledged && a.event["subject"] == user.as_str())
            })
        })
        .await;
    let attempts = receiver.attempts();
    let mut ids: Vec<&str> = attempts.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), attempts.len(), "each event once: {attempts:#?}");
    assert_eq!(attempts.len(), users.len());
    // In the feed's order: commit order, which a cluster's ids need not follow.
    let positions: Vec<_> = attempts
        .iter()
        .map(|a| {
            let cursor = a.event["cursor"].as_str().unwrap();
            callsign_server::audit::Cursor::decode(cursor).unwrap().0
        })
        .collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(positions, sorted, "delivered in the log's order");
}

/// Only the configured URL is contacted: a redirect is a failed attempt, not followed, and a
/// proxy in the environment is not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_url_is_contacted() {
    let receiver = Receiver::start(Mode::Redirect).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &format!("http://127.0.0.1:{}/hook", receiver.port),
        "[]",
    );
    // A proxy that does not exist: a delivery through it would fail.
    let proxy = "http://127.0.0.1:1";
    let env = [
        ("HTTP_PROXY", proxy),
        ("http_proxy", proxy),
        ("ALL_PROXY", proxy),
    ];
    let server = serve_with(&dir.path().join("data"), &config, &env);
    let user = server.client().create_user().await;
    receiver
        .wait_for("redirected twice", |a| a.len() >= 2)
        .await;
    receiver.set(Mode::Up);
    receiver.wait_acknowledged(&user).await;
    assert_eq!(
        *receiver.shared.elsewhere.lock().unwrap(),
        0,
        "a redirect was followed"
    );
    let attempts = receiver.attempts();
    assert!(attempts.len() >= 3 && attempts.iter().all(|a| a.id == attempts[0].id));
}
