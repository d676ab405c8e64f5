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
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("parsing the config file {}", path.display()))
    }

    /// Parses the text of a config file that lives in the directory `base`: a relative
    /// `jwks_file` is relative to the config file, not to the working directory. (The fuzz target
    /// `config_toml` calls this directly.)
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut config: Self = toml::from_str(text)?;
        for issuer in &mut config.trusted_issuers {
            if let Some(file) = &mut issuer.jwks_file {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<FileConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callsign.toml");
        std::fs::write(&path, text).unwrap();
        FileConfig::load(&path)
    }

    /// The README's example of trusting an Entra tenant parses into what the server is given.
    #[test]
    fn trusted_issuers_and_management_parse() {
        let config = load(
            r#"
            addr = "0.0.0.0:8443"
            max_clock_skew_seconds = 120

            [[trusted_issuers]]
            issuer = "https://login.microsoftonline.com/t/v2.0"
            jwks_uri = "https://login.microsoftonline.com/t/discovery/v2.0/keys"
            tenant_id = "t"

            [[trusted_issuers]]
            issuer = "https://sts.windows.net/t/"
            jwks_file = "keys.json"

            [management]
            allowed_object_ids = ["o1", "o2"]
            required_role = "Identity.Manage"
            "#,
        )
        .unwrap();
        assert_eq!(config.addr, Some("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(config.max_clock_skew_seconds, Some(120));
        assert_eq!(config.trusted_issuers.len(), 2);
        assert_eq!(config.trusted_issuers[0].tenant_id.as_deref(), Some("t"));
        let file = config.trusted_issuers[1].jwks_file.as_ref().unwrap();
        assert!(
            file.is_absolute() && file.ends_with("keys.json"),
            "{file:?}"
        );
        let management = config.management.unwrap();
        assert_eq!(management.allowed_object_ids, ["o1", "o2"]);
        assert_eq!(management.required_role.as_deref(), Some("Identity.Manage"));
    }

    /// A misspelt key is an error, not a silently ignored setting (an ignored allow-list would
    /// lock every bearer caller out without a word).
    #[test]
    fn unknown_keys_are_refused() {
        for text in [
            "adress = \"127.0.0.1:1\"\n",
            "[management]\nallowed_object_id = [\"o\"]\n",
            "[[trusted_issuers]]\nissuer = \"i\"\njwks_url = \"u\"\n",
        ] {
            let err = load(text).unwrap_err();
            assert!(
                format!("{err:#}").contains("unknown field"),
                "{text}: {err:#}"
            );
        }
    }
}
