//! `/readyz` against real storage failures: PostgreSQL stopped and started again, and a data
//! dir whose file system (a small tmpfs) fills up and is freed. `/healthz` stays 200 meanwhile.

use callsign_testkit::{TestServer, TestStorage};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bound the issue sets for a change to show: the server's design bound is 3 s (a check a
/// second, each bounded by 2 s).
const WITHIN: Duration = Duration::from_secs(5);

/// `GET path` without authentication: status and body.
async fn get(server: &TestServer, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{}{path}", server.base))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Polls `/readyz` until it answers `status`; returns the body and how long it took.
async fn until_readyz(server: &TestServer, status: u16) -> (String, Duration) {
    let started = Instant::now();
    loop {
        let (got, body) = get(server, "/readyz").await;
        if got == status {
            return (body, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/readyz still {got} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_is_not_ready_and_ready_again_once_back() {
    let storage = TestStorage::postgres();
    let server =
        TestServer::start_on(&storage, Arc::new(callsign_server::clock::SystemClock)).await;
    assert_eq!(get(&server, "/readyz").await, (200, "ready".into()));
    let TestStorage::Postgres(cluster) = &storage else {
        unreachable!()
    };

    cluster.stop();
    let (body, took) = until_readyz(&server, 503).await;
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "ServiceUnavailable");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Not ready: "), "{message}");
    assert!(
        !message.contains(&cluster.url()),
        "no connection string: {message}"
    );
    assert!(took < WITHIN, "took {took:?}");
    assert_eq!(get(&server, "/healthz").await.0, 200, "alive all the same");

    cluster.start_server();
    let (body, took) = until_readyz(&server, 200).await;
    assert_eq!(body, "ready");
    assert!(took < WITHIN, "took {took:?}");
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts `size` at `dir`; `None` when this process may not mount (not root).
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .ok()?;
        status.success().then(|| Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with one file, as far as it goes.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    // Whatever is left is less than a chunk; take it too.
    for _ in 0..64 * 1024 {
        if file.write_all(&[0]).is_err() {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_on_a_full_disk_is_not_ready_until_space_is_freed() {
    let outer = tempfile::tempdir().unwrap();
    // Mounting needs root, which CI (.ci/run) has; a developer's unprivileged run says so.
    let Some(disk) = Tmpfs::mount(outer.path(), "8m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let data = disk.0.join("data");
    let server = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), |config| {
        config.storage = callsign_server::StorageConfig::DataDir(data.clone());
        config.data_dir = Some(data.clone());
    })
    .await;
    assert_eq!(get(&server, "/readyz").await, (200, "ready".into()));
    let client = server.client();
    client.create_user().await;

    let filler = disk.0.join("filler");
    fill(&filler);
    let (body, took) = until_readyz(&server, 503).await;
    assert!(
        body.contains("Not ready: ") && body.contains("disk full"),
        "{body}"
    );
    assert!(took < WITHIN, "took {took:?}");
    assert_eq!(get(&server, "/healthz").await.0, 200);

    std::fs::remove_file(&filler).unwrap();
    let (_, took) = until_readyz(&server, 200).await;
    assert!(took < WITHIN, "took {took:?}");
    // And writes work again.
    client.create_user().await;
    server.stop().await;
}
