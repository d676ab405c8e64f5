//! Which server a client command talks to: the connection string given, `--dev`'s well-known one,
//! `CALLSIGN_CONNECTION_STRING`, or else the server of the local data dir.

use crate::failure::Failure;
use callsign_server::keys::access::dev_access_key;
use callsign_server::keys::DataDir;
use callsign_server::server::connection_string;
use std::path::{Path, PathBuf};

/// The endpoint `serve --dev` listens on by default, in its well-known connection string.
pub const DEV_ENDPOINT: &str = "http://127.0.0.1:8080/";

/// The environment variable holding a connection string.
pub const CONNECTION_STRING_ENV: &str = "CALLSIGN_CONNECTION_STRING";

/// Where the connection string came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--connection-string`.
    Flag,
    /// `--dev`: the well-known development string.
    Dev,
    /// `CALLSIGN_CONNECTION_STRING`.
    Environment,
    /// The data dir's keys and the endpoint its server last listened on; `pid` is the server
    /// serving it now, if any.
    DataDir {
        /// The data dir (absolute).
        dir: PathBuf,
        /// The process serving it now.
        pid: Option<u32>,
    },
}

/// The server a client command talks to, and how to reach it.
#[derive(Debug)]
pub struct Target {
    /// `endpoint=…;accesskey=…`. A secret: never printed.
    pub connection_string: String,
    /// CA certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Where the connection string came from.
    pub origin: Origin,
}

/// What the user gave to choose the target.
pub struct Choice<'a> {
    /// `--connection-string`.
    pub flag: Option<&'a str>,
    /// `--dev`.
    pub dev: bool,
    /// `CALLSIGN_CONNECTION_STRING`.
    pub environment: Option<String>,
    /// `--data` (or `CALLSIGN_DATA`, or its default).
    pub data: &'a Path,
    /// `--ca-file` (or `CALLSIGN_CA_FILE`).
    pub ca_file: Option<&'a Path>,
}

impl Choice<'_> {
    /// Decides the target: the flag, then `--dev`, then the environment, then the data dir.
    pub fn resolve(self) -> Result<Target, Failure> {
        let (connection_string, origin) =
            match (self.flag, self.dev, self.environment) {
                (Some(_), true, _) => return Err(Failure::usage_msg(
                    "--dev is the well-known connection string: give it or --connection-string, \
                     not both",
                )),
                (Some(flag), false, _) => (flag.to_owned(), Origin::Flag),
                (None, true, _) => (
                    connection_string(DEV_ENDPOINT, &dev_access_key()),
                    Origin::Dev,
                ),
                (None, false, Some(env)) => (env, Origin::Environment),
                (None, false, None) => return from_data_dir(self.data, self.ca_file),
            };
        Ok(Target {
            connection_string,
            ca_file: self.ca_file.map(Path::to_owned),
            origin,
        })
    }
}

/// The target a data dir describes: its primary key and the endpoint its server last listened
/// on, trusting its development CA when that server serves https with it.
fn from_data_dir(data: &Path, ca_file: Option<&Path>) -> Result<Target, Failure> {
    let dir = crate::admin::absolute(data);
    let data_dir = DataDir::new(&dir);
    if !data_dir.is_initialised() {
        return Err(Failure::usage_msg(format!(
            "no connection string: pass --connection-string, set {CONNECTION_STRING_ENV}, use \
             --dev for `callsign serve --dev`, or run `callsign serve` to create the data dir \
             (none at {})",
            dir.display()
        )));
    }
    let endpoint = std::fs::read_to_string(data_dir.endpoint_path()).map_err(|_| {
        Failure::usage_msg(format!(
            "the data dir {} has not been served yet, so its endpoint is unknown: run `callsign \
             serve --data {}` or pass --connection-string",
            dir.display(),
            dir.display()
        ))
    })?;
    let endpoint = endpoint.trim().to_owned();
    let keys = data_dir.load(chrono::Utc::now()).map_err(|e| {
        Failure::failed(anyhow::Error::new(e).context(format!(
            "reading the access key of the data dir {}",
            dir.display()
        )))
    })?;
    let pid = callsign_server::store::sqlite::serving_pid(&dir).unwrap_or(None);
    let dev_ca = data_dir.tls_dir().join("ca.pem");
    let ca_file = match ca_file {
        Some(given) => Some(given.to_owned()),
        None if endpoint.starts_with("https:") && dev_ca.exists() => Some(dev_ca),
        None => None,
    };
    Ok(Target {
        connection_string: connection_string(&endpoint, &keys.access.primary),
        ca_file,
        origin: Origin::DataDir { dir, pid },
    })
}

impl Target {
    /// The endpoint, without the key.
    pub fn endpoint(&self) -> &str {
        self.connection_string
            .split(';')
            .find_map(|part| part.strip_prefix("endpoint="))
            .unwrap_or("")
    }

    /// One line saying where the connection string came from (for `-v`).
    pub fn describe(&self) -> String {
        let source = match &self.origin {
            Origin::Flag => "--connection-string".to_owned(),
            Origin::Dev => "--dev (the well-known development key)".to_owned(),
            Origin::Environment => CONNECTION_STRING_ENV.to_owned(),
            Origin::DataDir {
                dir,
                pid: Some(pid),
            } => {
                format!("the data dir {} (served by pid {pid})", dir.display())
            }
            Origin::DataDir { dir, pid: None } => {
                format!("the data dir {} (server not running)", dir.display())
            }
        };
        let ca = match &self.ca_file {
            Some(ca) => format!(", trusting {}", ca.display()),
            None => String::new(),
        };
        format!("using {} from {source}{ca}", self.endpoint())
    }

    /// What to do when nothing answers at the endpoint.
    pub fn refused_hint(&self) -> String {
        match &self.origin {
            Origin::DataDir { dir, pid: None } => format!(
                "no server is running on the data dir {}: start it with `callsign serve --data {}`",
                dir.display(),
                dir.display()
            ),
            Origin::DataDir {
                dir,
                pid: Some(pid),
            } => format!(
                "the server of {} (pid {pid}) does not listen there: is it still starting?",
                dir.display()
            ),
            Origin::Dev => "is `callsign serve --dev` running?".to_owned(),
            Origin::Flag | Origin::Environment => "is `callsign serve` running there?".to_owned(),
        }
    }

    /// What to do when the server's certificate is not trusted.
    pub fn certificate_hint(&self) -> String {
        match &self.ca_file {
            Some(ca) => format!(
                "{} does not vouch for it: pass the CA the server printed (`ca certificate:`)",
                ca.display()
            ),
            None => "pass --ca-file (or set CALLSIGN_CA_FILE) with the CA the server printed \
                     (`ca certificate:` of `callsign serve --tls`)"
                .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice<'a>(data: &'a Path) -> Choice<'a> {
        Choice {
            flag: None,
            dev: false,
            environment: None,
            data,
            ca_file: None,
        }
    }

    #[test]
    fn the_flag_then_dev_then_the_environment_decide() {
        let dir = tempfile::tempdir().unwrap();
        let flag = Choice {
            flag: Some("endpoint=http://a/;accesskey=AAAA"),
            environment: Some("endpoint=http://b/;accesskey=AAAA".into()),
            ..choice(dir.path())
        };
        assert_eq!(flag.resolve().ok().unwrap().origin, Origin::Flag);
        let dev = Choice {
            dev: true,
            environment: Some("endpoint=http://b/;accesskey=AAAA".into()),
            ..choice(dir.path())
        };
        let dev = dev.resolve().ok().unwrap();
        assert_eq!(dev.origin, Origin::Dev);
        assert_eq!(dev.endpoint(), DEV_ENDPOINT);
        let env = Choice {
            environment: Some("endpoint=http://b/;accesskey=AAAA".into()),
            ..choice(dir.path())
        };
        assert_eq!(env.resolve().ok().unwrap().endpoint(), "http://b/");
        let both = Choice {
            flag: Some("endpoint=http://a/;accesskey=AAAA"),
            dev: true,
            ..choice(dir.path())
        };
        assert!(both.resolve().is_err());
    }
}
