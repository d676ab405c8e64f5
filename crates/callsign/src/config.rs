//! The optional TOML configuration file of `callsign serve`. Flags and environment variables
//! override what it says.

use anyhow::{Context, Result};
use callsign_server::auth::{IssuerConfig, ManagementConfig};
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
    /// Issuers whose tokens are trusted (`[[trusted_issuers]]`: issuer, jwks_uri or jwks_file,
    /// tenant_id).
    #[serde(default)]
    pub trusted_issuers: Vec<IssuerConfig>,
    /// Who may manage identities with a bearer token (`[management]`).
    pub management: Option<ManagementConfig>,
}

impl FileConfig {
    /// Reads and parses the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        let mut config: Self = toml::from_str(&text)
            .with_context(|| format!("parsing the config file {}", path.display()))?;
        // A relative jwks_file is relative to the config file, not to the working directory.
        let base = path.parent().unwrap_or(Path::new("."));
        for issuer in &mut config.trusted_issuers {
            if let Some(file) = &mut issuer.jwks_file {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }
}
