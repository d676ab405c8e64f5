//! The server under test: a `callsign serve` child on a fresh data dir, or an endpoint given on the
//! command line.

use anyhow::{bail, Context, Result};
use callsign_common::{AccessKey, ConnectionString};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `callsign serve` process the benchmark started; killed and its data dir removed on drop.
pub struct SpawnedServer {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    pub endpoint: String,
    /// The primary access key.
    pub key: AccessKey,
    _data: tempfile::TempDir,
    /// Holds the server's stderr (its log) unless `--server-log` named a file.
    _log_dir: tempfile::TempDir,
}

impl SpawnedServer {
    /// Starts `bin serve` on a free loopback port, under `taskset -c cpus` when given, with the
    /// log settings of this process's environment (`RUST_LOG`; unset: the server's default, a line
    /// per request) and its log (stderr) written to `log`, else to a temporary file: a server is
    /// measured as it runs, writing its log to a file.
    pub fn start(
        bin: &Path,
        cpus: Option<&str>,
        extra: &[String],
        log: Option<&Path>,
    ) -> Result<Self> {
        let data = tempfile::tempdir().context("creating a temp data dir")?;
        let log_dir = tempfile::tempdir().context("creating a temp dir for the log")?;
        let log = log.map_or_else(|| log_dir.path().join("server.log"), Path::to_path_buf);
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("creating the server's log {}", log.display()))?;
        let mut command = match cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let connection = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("the server exited before printing its connection string: {said}");
            };
            if let Some(value) = line?.strip_prefix("connection string: ") {
                break value.to_owned();
            }
        };
        let (endpoint, key) = parse_connection_string(&connection)?;
        Ok(Self {
            child,
            endpoint,
            key,
            _data: data,
            _log_dir: log_dir,
        })
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Endpoint and key of a connection string.
pub fn parse_connection_string(value: &str) -> Result<(String, AccessKey)> {
    let parsed = ConnectionString::parse(value).context("invalid connection string")?;
    let (endpoint, key) = parsed.into_parts();
    Ok((endpoint.to_string(), key))
}
