//! `callsign serve` as a child process, for tests of the binary: what it printed on start, a
//! client for it, signals, and a kill when the test is done with it.

use crate::Client;
use callsign_common::AccessKey;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `callsign serve`; killed when dropped.
pub struct ServeProcess {
    /// The process.
    pub child: Child,
    /// The endpoint it printed (`http://127.0.0.1:<port>/`).
    pub endpoint: String,
    /// The connection string it printed.
    pub connection_string: String,
    /// The development CA it printed, with `--tls`.
    pub ca: Option<String>,
}

impl ServeProcess {
    /// Spawns `command` (a `callsign serve` without `--quiet`) with stdout piped, and reads the
    /// endpoint, connection string and, when `tls`, the CA lines it prints.
    pub fn spawn(command: &mut Command, tls: bool) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = |prefix: &str| {
            let line = lines.next().expect("the server printed a line").unwrap();
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
                .to_owned()
        };
        let endpoint = next("endpoint: ");
        let connection_string = next("connection string: ");
        let ca = tls.then(|| next("ca certificate: "));
        Self {
            child,
            endpoint,
            connection_string,
            ca,
        }
    }

    /// The primary access key from the connection string.
    pub fn key(&self) -> AccessKey {
        let key = self.connection_string.split("accesskey=").nth(1).unwrap();
        AccessKey::from_base64(key).unwrap()
    }

    /// A client signing with the primary key.
    pub fn client(&self) -> Client {
        Client::new(&self.endpoint, self.key())
    }

    /// Sends `signal` (`-TERM`, `-INT`, `-9`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (at most 30 s) for the process to exit.
    pub fn wait(mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
