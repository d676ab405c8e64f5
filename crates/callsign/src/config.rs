//! The optional TOML configuration file of `callsign serve`. Flags and environment variables
//! override what it says.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What the file may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub addr: Option<SocketAddr>,
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Serve HTTPS with the development CA.
    pub tls: Option<bool>,
    /// Certificate chain PEM.
    pub tls_cert: Option<PathBuf>,
    /// Private key PEM.
    pub tls_key: Option<PathBuf>,
    /// Allowed difference between a request's date and the server clock.
    pub max_clock_skew_seconds: Option<i64>,
    /// Largest accepted request body.
    pub max_body_bytes: Option<usize>,
}

impl FileConfig {
    /// Reads and parses the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing the config file {}", path.display()))
    }
}
