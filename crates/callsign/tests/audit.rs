//! The audit trail of `callsign serve` as a process: `--audit-log FILE` appends JSON Lines and
//! is reopened on SIGHUP (after logrotate renamed it, new events go to a new file), and the
//! admin commands (`keys regenerate`, `signing-key rotate`, `import`, `serve --seed`) record
//! their changes, by the operator, in the storage's log.

use callsign_common::AccessKey;
use callsign_testkit::process::ServeProcess;
use callsign_testkit::Client;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

fn callsign(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("CALLSIGN_ACCESS_KEY")
        .env_remove("CALLSIGN_DATABASE_URL")
        .env_remove("CALLSIGN_AUDIT_LOG")
        .env("RUST_LOG", "warn")
        .env("CALLSIGN_DATA", data);
    cmd
}

fn serve(data: &Path, extra: &[&str]) -> ServeProcess {
    let mut cmd = callsign(data);
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::inherit());
    ServeProcess::spawn(&mut cmd, false)
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The file's events once it holds at least `count` (or after 10 s).
async fn lines_once(path: &Path, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = lines(path);
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stored events of a data dir: (type, the event's JSON).
fn stored(data: &Path) -> Vec<(String, Value)> {
    let db = rusqlite::Connection::open(data.join("callsign.db")).unwrap();
    let mut statement = db
        .prepare("SELECT type, event FROM audit_events ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| {
            let json: String = row.get(1)?;
            Ok((row.get(0)?, serde_json::from_str(&json).unwrap()))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_file_is_reopened_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("audit.jsonl");
    let server = serve(&data, &["--audit-log", log.to_str().unwrap()]);
    let client = server.client();
    let first = client.create_user().await;
    // The file mirrors the stored log within milliseconds of the response.
    let written = lines_once(&log, 1).await;
    assert_eq!(written.len(), 1, "the stored event reaches the file");
    assert_eq!(written[0]["type"], "identity.created");
    assert_eq!(written[0]["subject"], first.as_str());

    // logrotate: rename, then SIGHUP; new events go to a new file at the old path.
    let rotated = dir.path().join("audit.jsonl.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut created = vec![first];
    while lines(&log).is_empty() {
        assert!(Instant::now() < deadline, "no new file after SIGHUP");
        created.push(client.create_user().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stopping brings the files up to date with the store.
    server.signal("-TERM");
    assert!(server.wait().success());
    let old = lines(&rotated);
    let new = lines(&log);
    assert!(!new.is_empty());
    let all: Vec<&Value> = old.iter().chain(&new).collect();
    assert_eq!(all.len(), created.len(), "every event in one of the files");
    for (event, id) in all.iter().zip(&created) {
        assert_eq!(event["subject"], id.as_str());
    }
    assert!(all
        .windows(2)
        .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()));
    assert_eq!(
        stored(&data).len(),
        created.len(),
        "the store holds them too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_and_seeds_are_recorded_as_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &[]);
    let client = server.client();
    client.create_user().await;
    ok(callsign(&data)
        .args(["keys", "regenerate", "secondary"])
        .output()
        .unwrap());
    let kid = ok(callsign(&data)
        .args(["signing-key", "rotate"])
        .output()
        .unwrap());
    let kid = String::from_utf8(kid.stdout).unwrap().trim().to_owned();
    let export = dir.path().join("export.jsonl");
    let exported = ok(callsign(&data)
        .args(["export", "--include-keys"])
        .output()
        .unwrap());
    std::fs::write(&export, &exported.stdout).unwrap();
    server.signal("-TERM");
    assert!(server.wait().success());

    let events = stored(&data);
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "identity.created",
            "accessKey.regenerated",
            "signingKey.rotated"
        ]
    );
    let operator = serde_json::json!({"kind": "operator"});
    assert_eq!(events[1].1["actor"], operator);
    assert_eq!(events[1].1["subject"], "secondary");
    assert_eq!(events[2].1["actor"], operator);
    assert_eq!(events[2].1["subject"], kid.as_str());
    assert_eq!(events[2].1["resource"], events[0].1["resource"]);
    // The regenerated key is nowhere in the log.
    let printed = ok(callsign(&data).arg("connection-string").output().unwrap());
    let primary = String::from_utf8(printed.stdout).unwrap();
    let primary = primary
        .trim()
        .split("accesskey=")
        .nth(1)
        .unwrap()
        .to_owned();
    let db_text = std::fs::read(data.join("callsign.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db_text).contains(&primary));

    // `callsign import` into an empty data dir, and `serve --seed` into another.
    let imported = dir.path().join("imported");
    ok(callsign(&imported)
        .arg("import")
        .arg(&export)
        .output()
        .unwrap());
    let events = stored(&imported);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "data.imported");
    assert_eq!(events[0].1["actor"], operator);
    assert_eq!(events[0].1["details"]["source"], "import");
    assert_eq!(events[0].1["details"]["identities"], 1);

    let seeded = dir.path().join("seeded");
    let server = serve(&seeded, &["--seed", export.to_str().unwrap()]);
    server.signal("-TERM");
    assert!(server.wait().success());
    let events = stored(&seeded);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "data.imported");
    assert_eq!(events[0].1["details"]["source"], "seed");
    assert_eq!(events[0].1["actor"], operator);
}

/// `--audit-log -`: each event is a line on stdout, after the start-up banner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_dash_writes_events_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = callsign(&dir.path().join("data"))
        .args(["serve", "--addr", "127.0.0.1:0", "--audit-log", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let endpoint = next().strip_prefix("endpoint: ").unwrap().to_owned();
    let connection_string = next();
    let key = connection_string.split("accesskey=").nth(1).unwrap();
    let client = Client::new(&endpoint, AccessKey::from_base64(key).unwrap());
    let id = client.create_user().await;
    let line = std::iter::repeat_with(&mut next)
        .find(|line| line.starts_with('{'))
        .unwrap();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["type"], "identity.created");
    assert_eq!(event["subject"], id.as_str());
    assert!(!line.contains(key));
    child.kill().unwrap();
    child.wait().unwrap();
}
