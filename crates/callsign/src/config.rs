//! The optional TOML configuration file of `callsign serve`. Flags and environment variables
//! override what it says.

use anyhow::{Context, Result};
use callsign_server::audit::{AuditConfig, EventType, SinkConfig};
use callsign_server::auth::{IssuerConfig, ManagementConfig};
use callsign_server::http::HttpConfig;
use callsign_server::throttling::{ThrottleConfig, ThrottlePreset};
use callsign_server::webhooks::{self, WebhookConfig, WebhookSecret};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// How long a client has to send a request's line and headers.
    pub header_read_timeout_seconds: Option<u64>,
    /// How long a connection may wait for its next request.
    pub keep_alive_timeout_seconds: Option<u64>,
    /// How long a request's body may take to arrive.
    pub body_read_timeout_seconds: Option<u64>,
    /// Largest request line and headers.
    pub max_header_bytes: Option<usize>,
    /// Most connections at once (default: from the open-file limit).
    pub max_connections: Option<usize>,
    /// Most bytes held by requests not yet fully received, across connections.
    pub max_unfinished_request_bytes: Option<usize>,
    /// Issuers whose tokens are trusted (`[[trusted_issuers]]`: issuer, jwks_uri or jwks_file,
    /// tenant_id).
    #[serde(default)]
    pub trusted_issuers: Vec<IssuerConfig>,
    /// Who may manage identities with a bearer token (`[management]`).
    pub management: Option<ManagementConfig>,
    /// Throttling (`[limits]`): a preset and per-group limits per window; off by default.
    pub limits: Option<LimitsConfig>,
    /// Where to serve `GET /metrics` without authentication (`--metrics-addr`).
    pub metrics_addr: Option<SocketAddr>,
    /// The audit trail (`[audit]`): where it is written, whether issued tokens are events, how
    /// long the store keeps events.
    pub audit: Option<AuditFileConfig>,
    /// Span export (`[tracing]`, docs/tracing.md).
    pub tracing: Option<TracingFileConfig>,
    /// Receivers of signed event deliveries (`[[webhooks]]`, docs/webhooks.md).
    #[serde(default)]
    pub webhooks: Vec<WebhookFileConfig>,
}

/// One `[[webhooks]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFileConfig {
    /// Where events are POSTed.
    pub url: String,
    /// The signing secret (at least 16 bytes), or:
    pub secret: Option<String>,
    /// the environment variable that holds it, keeping it out of the file.
    pub secret_env: Option<String>,
    /// The event types delivered (`identity.tokensRevoked`, …); all when absent or empty.
    #[serde(default)]
    pub events: Vec<EventType>,
    /// The first retry's delay in milliseconds (default 1000); each next one doubles.
    pub min_retry_ms: Option<u64>,
    /// The longest delay between retries in seconds (default 300).
    pub max_retry_seconds: Option<u64>,
}

impl WebhookFileConfig {
    /// The webhook, its secret read from the file or the environment.
    fn webhook(&self) -> Result<WebhookConfig> {
        let secret = match (&self.secret, &self.secret_env) {
            (Some(secret), None) => secret.clone(),
            (None, Some(name)) => std::env::var(name).with_context(|| {
                format!("the webhook {}: its secret_env {name} is not set", self.url)
            })?,
            _ => anyhow::bail!(
                "the webhook {} needs exactly one of secret and secret_env",
                self.url
            ),
        };
        let mut webhook =
            WebhookConfig::new(&self.url, WebhookSecret::new(secret)?, self.events.clone())?;
        if let Some(ms) = self.min_retry_ms {
            webhook.min_retry = Duration::from_millis(ms);
        }
        if let Some(seconds) = self.max_retry_seconds {
            webhook.max_retry = Duration::from_secs(seconds);
        }
        Ok(webhook)
    }
}

/// `[tracing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingFileConfig {
    /// The OTLP/HTTP collector spans are exported to, as `--otlp-endpoint`.
    pub otlp_endpoint: Option<String>,
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFileConfig {
    /// A JSON Lines file the events are appended to (`-`: stdout), as `--audit-log`.
    pub log: Option<String>,
    /// Record every issued token (`token.issued`); off by default: that is most requests.
    pub token_issued: Option<bool>,
    /// Delete stored events older than this many days; 0 keeps them forever. Default 90.
    pub retention_days: Option<u32>,
}

/// `[limits]`: a preset (`off` or `acs`), and the window length and group limits that differ
/// from it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The limits to start from (`off` unless given).
    pub preset: Option<ThrottlePreset>,
    /// The window's length in seconds (the preset's 30 unless given).
    pub window_seconds: Option<u32>,
    /// Create-identity and issue-token requests per window.
    pub issue: Option<u32>,
    /// Delete-identity and revoke-tokens requests per window.
    pub revoke: Option<u32>,
    /// Token exchanges per window.
    pub exchange: Option<u32>,
}

impl FileConfig {
    /// Applies the connection and HTTP limits the file sets; zero is refused for each.
    pub fn apply_http(&self, http: &mut HttpConfig) -> Result<()> {
        let seconds = |value: Option<u64>, key: &str| -> Result<Option<Duration>> {
            match value {
                Some(0) => anyhow::bail!("{key} in the config file must be at least 1"),
                other => Ok(other.map(Duration::from_secs)),
            }
        };
        let count = |value: Option<usize>, key: &str| -> Result<Option<usize>> {
            match value {
                Some(0) => anyhow::bail!("{key} in the config file must be at least 1"),
                other => Ok(other),
            }
        };
        if let Some(seconds) = self.max_clock_skew_seconds {
            http.max_clock_skew = chrono::Duration::seconds(seconds);
        }
        if let Some(bytes) = self.max_body_bytes {
            http.max_body_bytes = bytes;
        }
        if let Some(t) = seconds(
            self.header_read_timeout_seconds,
            "header_read_timeout_seconds",
        )? {
            http.header_read_timeout = t;
        }
        if let Some(t) = seconds(
            self.keep_alive_timeout_seconds,
            "keep_alive_timeout_seconds",
        )? {
            http.keep_alive_timeout = t;
        }
        if let Some(t) = seconds(self.body_read_timeout_seconds, "body_read_timeout_seconds")? {
            http.body_read_timeout = t;
        }
        if let Some(n) = count(self.max_header_bytes, "max_header_bytes")? {
            http.max_header_bytes = n;
        }
        if let Some(n) = count(self.max_connections, "max_connections")? {
            http.max_connections = Some(n);
        }
        if let Some(n) = count(
            self.max_unfinished_request_bytes,
            "max_unfinished_request_bytes",
        )? {
            http.max_unfinished_request_bytes = n;
        }
        Ok(())
    }

    /// The throttling limits: `--limits off` turns throttling off whatever the file says;
    /// otherwise the preset (`--limits`, else the file's `preset`, else off) with the file's own
    /// window and group limits over it. Zero is refused for each.
    pub fn throttling(&self, flag: Option<ThrottlePreset>) -> Result<ThrottleConfig> {
        if flag == Some(ThrottlePreset::Off) {
            return Ok(ThrottleConfig::off());
        }
        let file = self.limits.as_ref();
        let preset = flag
            .or(file.and_then(|l| l.preset))
            .unwrap_or(ThrottlePreset::Off);
        let mut config = preset.config();
        let Some(file) = file else {
            return Ok(config);
        };
        let at_least_one = |value: Option<u32>, key: &str| -> Result<Option<u32>> {
            match value {
                Some(0) => anyhow::bail!("{key} in [limits] must be at least 1"),
                other => Ok(other),
            }
        };
        if let Some(seconds) = at_least_one(file.window_seconds, "window_seconds")? {
            config.window_seconds = seconds;
        }
        for (value, key, limit) in [
            (file.issue, "issue", &mut config.issue),
            (file.revoke, "revoke", &mut config.revoke),
            (file.exchange, "exchange", &mut config.exchange),
        ] {
            if let Some(n) = at_least_one(value, key)? {
                *limit = Some(n);
            }
        }
        Ok(config)
    }

    /// The audit trail: the `--audit-log`s (files, or `-` for stdout) instead of the file's
    /// `log`, and the file's `token_issued` and `retention_days`.
    pub fn audit(&self, flags: &[String]) -> AuditConfig {
        let file = self.audit.as_ref();
        let sinks = match file.and_then(|a| a.log.as_deref()) {
            Some(log) if flags.is_empty() => vec![SinkConfig::parse(log)],
            _ => flags.iter().map(|flag| SinkConfig::parse(flag)).collect(),
        };
        let mut config = AuditConfig {
            sinks,
            ..AuditConfig::default()
        };
        if let Some(on) = file.and_then(|a| a.token_issued) {
            config.token_issued = on;
        }
        if let Some(days) = file.and_then(|a| a.retention_days) {
            config.retention = (days > 0).then(|| chrono::Duration::days(days.into()));
        }
        config
    }

    /// The `[[webhooks]]`, checked: URLs, secrets, each URL once, retry delays.
    pub fn webhooks(&self) -> Result<Vec<WebhookConfig>> {
        let webhooks = self
            .webhooks
            .iter()
            .map(WebhookFileConfig::webhook)
            .collect::<Result<Vec<_>>>()?;
        webhooks::config::check_all(&webhooks)?;
        Ok(webhooks)
    }

    /// The OTLP collector of `[tracing] otlp_endpoint`.
    pub fn otlp_endpoint(&self) -> Option<String> {
        self.tracing.as_ref()?.otlp_endpoint.clone()
    }

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

    #[test]
    fn webhooks_parse_with_their_secret_from_the_file_or_the_environment() {
        std::env::set_var("CALLSIGN_TEST_WEBHOOK_SECRET", "from-the-environment-0123");
        let file = load(
            "[[webhooks]]\nurl = \"http://127.0.0.1:9000/hook\"\nsecret = \"0123456789abcdef\"\n\
             events = [\"identity.tokensRevoked\", \"identity.deleted\"]\nmin_retry_ms = 50\n\n\
             [[webhooks]]\nurl = \"https://hooks.example/callsign\"\n\
             secret_env = \"CALLSIGN_TEST_WEBHOOK_SECRET\"\n",
        )
        .unwrap();
        let webhooks = file.webhooks().unwrap();
        assert_eq!(webhooks.len(), 2);
        assert_eq!(
            webhooks[0].events,
            webhooks::EventFilter::Only(vec![
                EventType::IdentityTokensRevoked,
                EventType::IdentityDeleted
            ])
        );
        assert_eq!(webhooks[0].min_retry, Duration::from_millis(50));
        assert_eq!(webhooks[1].events, webhooks::EventFilter::All);
        assert_eq!(webhooks[1].secret.as_bytes(), b"from-the-environment-0123");
        let unknown_type = "[[webhooks]]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"0123456789abcdef\"\nevents = [\"identity.renamed\"]\n";
        assert!(load(unknown_type).is_err());
        for bad in [
            // no secret, both, a short one, an unset variable, a bad URL, one URL twice
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/\"\n",
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"0123456789abcdef\"\nsecret_env = \"X\"\n",
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"short\"\n",
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/\"\nsecret_env = \"CALLSIGN_TEST_UNSET_SECRET\"\n",
            "[[webhooks]]\nurl = \"ftp://127.0.0.1:9/\"\nsecret = \"0123456789abcdef\"\n",
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"0123456789abcdef\"\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"0123456789abcdef\"\n",
        ] {
            let error = load(bad).unwrap().webhooks().expect_err(bad);
            assert!(!format!("{error:#}").contains("0123456789abcdef"), "{error:#}");
        }
    }

    #[test]
    fn audit_settings_parse_and_the_flag_wins() {
        let none = load("").unwrap().audit(&[]);
        assert_eq!(none, AuditConfig::default());
        assert_eq!(none.retention, Some(chrono::Duration::days(90)));
        let file =
            load("[audit]\nlog = \"/var/log/a.jsonl\"\ntoken_issued = true\nretention_days = 0\n")
                .unwrap();
        let config = file.audit(&[]);
        assert_eq!(config.sinks, [SinkConfig::File("/var/log/a.jsonl".into())]);
        assert!(config.token_issued);
        assert_eq!(config.retention, None, "0 keeps events forever");
        assert_eq!(file.audit(&["-".into()]).sinks, [SinkConfig::Stdout]);
        let both = file.audit(&["a.jsonl".into(), "-".into()]).sinks;
        assert_eq!(
            both,
            [SinkConfig::File("a.jsonl".into()), SinkConfig::Stdout]
        );
        assert!(load("[audit]\nretention = 3\n").is_err());
    }

    #[test]
    fn the_otlp_endpoint_parses_and_unknown_tracing_keys_are_refused() {
        assert_eq!(load("").unwrap().otlp_endpoint(), None);
        let config = load("[tracing]\notlp_endpoint = \"http://10.0.0.5:4318\"\n").unwrap();
        assert_eq!(
            config.otlp_endpoint().as_deref(),
            Some("http://10.0.0.5:4318")
        );
        assert!(load("[tracing]\nendpoint = \"http://10.0.0.5:4318\"\n").is_err());
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

    #[test]
    fn connection_limits_parse_and_zero_is_refused() {
        let config = load(
            "header_read_timeout_seconds = 5\nkeep_alive_timeout_seconds = 7\n\
             body_read_timeout_seconds = 9\nmax_header_bytes = 8192\nmax_connections = 100\n\
             max_unfinished_request_bytes = 1048576\n",
        )
        .unwrap();
        let mut http = HttpConfig::default();
        config.apply_http(&mut http).unwrap();
        assert_eq!(http.header_read_timeout, Duration::from_secs(5));
        assert_eq!(http.keep_alive_timeout, Duration::from_secs(7));
        assert_eq!(http.body_read_timeout, Duration::from_secs(9));
        assert_eq!(http.max_header_bytes, 8192);
        assert_eq!(http.max_connections, Some(100));
        assert_eq!(http.max_unfinished_request_bytes, 1 << 20);
        let zero = load("keep_alive_timeout_seconds = 0\n").unwrap();
        let err = zero.apply_http(&mut http).unwrap_err();
        assert!(
            err.to_string().contains("keep_alive_timeout_seconds"),
            "{err}"
        );
    }

    #[test]
    fn limits_take_a_preset_and_override_it_per_group() {
        let none = load("").unwrap();
        assert!(none.throttling(None).unwrap().is_off(), "off by default");
        assert_eq!(
            none.throttling(Some(ThrottlePreset::Acs)).unwrap(),
            ThrottleConfig::acs()
        );

        let acs = load("[limits]\npreset = \"acs\"\nrevoke = 100\n").unwrap();
        let config = acs.throttling(None).unwrap();
        assert_eq!(config.window_seconds, 30);
        assert_eq!(config.issue, Some(1000));
        assert_eq!(config.revoke, Some(100));
        assert_eq!(config.exchange, Some(500));
        assert!(acs.throttling(Some(ThrottlePreset::Off)).unwrap().is_off());

        let own = load("[limits]\nwindow_seconds = 2\nissue = 2\n").unwrap();
        let config = own.throttling(None).unwrap();
        assert_eq!(
            (config.window_seconds, config.issue, config.revoke),
            (2, Some(2), None),
            "without a preset, only the groups given are limited"
        );

        let zero = load("[limits]\nissue = 0\n").unwrap();
        let err = zero.throttling(None).unwrap_err();
        assert!(err.to_string().contains("issue"), "{err}");
        for text in ["[limits]\npreset = \"azure\"\n", "[limits]\nissues = 5\n"] {
            assert!(load(text).is_err(), "{text}");
        }
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
