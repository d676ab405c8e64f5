//! A throwaway PostgreSQL cluster for tests: `initdb` into a temp dir and `pg_ctl` on a free
//! loopback port, from the installed PostgreSQL binaries. `initdb` refuses to run as root, so as
//! root everything runs as the `postgres` user (`runuser -u postgres --`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; stopped (immediately) and removed when dropped.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PgCluster {
    /// Creates and starts a cluster. Panics with instructions when PostgreSQL is not installed.
    pub fn start() -> Self {
        let bin = pg_bin_dir();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("callsign-pg-")
            .tempdir()
            .expect("temp dir");
        if as_postgres {
            let owner = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .output()
                .expect("chown");
            assert!(owner.status.success(), "chown: {owner:?}");
        }
        let port = free_port();
        let cluster = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start_server();
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_server(&self) {
        let data = self.data_dir();
        let log = self.dir.path().join("postgres.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
            self.port,
            path_str(self.dir.path())
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Runs the SQL script `file` (a plain `pg_dump`, say) with `psql` against the `postgres`
    /// database, stopping at the first error.
    pub fn psql_file(&self, file: &Path) {
        let url = self.url();
        self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &url,
                "-f",
                path_str(file),
            ],
        );
    }

    /// Runs one SQL query with `psql` against the `postgres` database and returns its result,
    /// unaligned and without headers (`1`, or rows separated by newlines).
    pub fn psql_query(&self, sql: &str) -> String {
        let url = self.url();
        let output = self.run("psql", &["-X", "-A", "-t", "-d", &url, "-c", sql]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Stops the server abruptly, as a crash would (no checkpoint; recovery replays the WAL).
    pub fn crash(&self) {
        self.stop_with("immediate");
    }

    /// Stops the server cleanly.
    pub fn stop(&self) {
        self.stop_with("fast");
    }

    fn stop_with(&self, mode: &str) {
        let data = self.data_dir();
        self.run("pg_ctl", &["-D", path_str(&data), "-m", mode, "-w", "stop"]);
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let binary = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}\nlog: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
        );
        output
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run_quiet(&["-D", path_str(&data), "-m", "immediate", "-w", "stop"]);
    }
}

impl PgCluster {
    fn run_quiet(&self, args: &[&str]) -> std::io::Result<Output> {
        let binary = self.bin.join("pg_ctl");
        if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&binary)
                .args(args)
                .output()
        } else {
            Command::new(&binary).args(args).output()
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// Where `initdb` and `pg_ctl` live: `$CALLSIGN_PG_BIN`, the newest `/usr/lib/postgresql/*/bin`
/// (Debian), or the directory of `initdb` on the `PATH`.
pub fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CALLSIGN_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists());
    on_path.expect(
        "PostgreSQL is not installed: `apt-get install -y postgresql` (or set CALLSIGN_PG_BIN)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
