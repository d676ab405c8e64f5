//! `callsign serve`: its flags, the start-up, and what it prints.

use crate::config;
use crate::failure::Failure;
use anyhow::Context;
use callsign_common::AccessKey;
use callsign_server::domain::Minutes;
use callsign_server::http::api_version::VersionPolicy;
use callsign_server::http::trace::TraceContext;
use callsign_server::keys::access::dev_access_key;
use callsign_server::keys::{DataDir, SigningAlg};
use callsign_server::throttling::ThrottlePreset;
use callsign_server::{Server, ServerConfig, StorageConfig, TlsMode};
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Examples under `callsign serve --help`.
pub const EXAMPLES: &str = "Examples:\n  callsign serve                          # ./callsign-data, http://127.0.0.1:8080/\n  callsign serve --tls                    # https, with a development CA to trust\n  callsign serve --dev --addr 127.0.0.1:0 # in memory, the well-known key, any free port\n  callsign serve --data /var/lib/callsign --addr 0.0.0.0:8080";

/// `callsign serve`'s flags.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CALLSIGN_ADDR")]
    addr: Option<SocketAddr>,
    /// A throwaway local instance: the well-known development access key, in-memory storage
    /// (unless --data is given) and a warning that it is not for production.
    #[arg(long)]
    dev: bool,
    /// Keep everything in memory and write nothing to disk; gone when the server stops.
    #[arg(long)]
    in_memory: bool,
    /// Accept token lifetimes (`expiresInMinutes`) down to this many minutes instead of 60, to
    /// test refresh logic: `1m` to `60m`, `1h`, or plain minutes. --dev implies 1m.
    #[arg(long, value_parser = parse_minutes)]
    min_token_lifetime: Option<Minutes>,
    /// How unknown api-versions are treated: `strict` answers 400 as the service does; `lenient`
    /// serves an unknown newer one as the newest known (with a `Warning` header). Default: strict,
    /// lenient with --dev.
    #[arg(long, value_enum)]
    api_versions: Option<ApiVersionsArg>,
    /// Load identities, assignments and (when the file has them) keys from an export file at
    /// start, idempotently: fixtures for CI. Empty storage becomes the file's resource.
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Serve `POST /callsign/:reset`, which deletes every identity and assignment (keys stay);
    /// implied by --dev.
    #[arg(long)]
    allow_reset: bool,
    /// Data directory [default: ./callsign-data].
    #[arg(long = "data", env = "CALLSIGN_DATA")]
    data: Option<PathBuf>,
    /// Serve HTTPS with a development CA generated into the data dir.
    #[arg(long)]
    tls: bool,
    /// Serve HTTPS with this certificate chain (PEM) instead of the development CA.
    #[arg(long, requires = "tls_key", env = "CALLSIGN_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert", env = "CALLSIGN_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// A TOML configuration file; flags and environment override it.
    #[arg(long, env = "CALLSIGN_CONFIG")]
    config: Option<PathBuf>,
    /// Do not print the endpoint and connection string.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    database: crate::DatabaseArg,
    /// Sign new tokens with this algorithm; a different one than the current key's rotates to a
    /// new key (the old one stays in the JWKS for 25 hours). Default: keep the current key (RS256
    /// for a new data dir), which is what the official SDKs are tested with.
    #[arg(long, value_enum)]
    signing_alg: Option<SigningAlgArg>,
    /// Throttle as ACS does: `acs` admits 1,000 create-identity and issue-token requests and 500
    /// delete, revoke and exchange requests per 30 s (then 429 with Retry-After); `off` admits
    /// everything. Default: the config file's `[limits]`, else off.
    #[arg(long, value_enum)]
    limits: Option<LimitsArg>,
    /// Also serve Prometheus metrics (`GET /metrics`) on this address, without authentication:
    /// for a scraper on a private network. Default: none — `/metrics` is then served on the main
    /// address only, authenticated as management calls are.
    #[arg(long, env = "CALLSIGN_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Append the audit trail to this file as JSON Lines (`-`: stdout), reopened on SIGHUP for
    /// logrotate; repeat for a file and stdout. Default: the config file's `[audit] log`, else
    /// only the storage keeps it.
    #[arg(long, value_name = "FILE", env = "CALLSIGN_AUDIT_LOG")]
    audit_log: Vec<String>,
    /// Export a span of every request (OpenTelemetry, OTLP/HTTP with protobuf) to the collector
    /// at URL, e.g. http://127.0.0.1:4318 (spans go to URL/v1/traces), continuing the callers'
    /// W3C traces (`traceparent`). Needs a build with the `otlp` feature. Default: the config
    /// file's `[tracing] otlp_endpoint`, else no export.
    #[arg(long, value_name = "URL", env = "CALLSIGN_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Do not serve the web console at /console (it is served by default; signing in to it
    /// takes an access key).
    #[arg(long)]
    no_console: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LimitsArg {
    Acs,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum ApiVersionsArg {
    Strict,
    Lenient,
}

#[derive(Clone, Copy, ValueEnum)]
enum SigningAlgArg {
    Rs256,
    Es256,
    Eddsa,
}

/// Installs the logging (with the span export of `--otlp-endpoint`), then runs the server until
/// SIGTERM or SIGINT, and exports the last spans.
pub fn serve(args: ServeArgs, logging: crate::Logging) -> Result<(), Failure> {
    let file = match &args.config {
        Some(path) => config::FileConfig::load(path)?,
        None => config::FileConfig::default(),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let otlp_endpoint = args
        .otlp_endpoint
        .clone()
        .or_else(|| file.otlp_endpoint())
        .filter(|url| !url.trim().is_empty());
    let mut export = SpanExport::start(otlp_endpoint.as_deref(), &runtime)?;
    let (spans, trace_context) = export.parts();
    let _log_writer = logging
        .init_off_thread(spans)
        .context("starting the log writer thread")?;
    if let Some(endpoint) = &otlp_endpoint {
        tracing::info!(endpoint, "exporting a span of every request (OTLP/HTTP)");
    }
    let result = serve_on(args, file, &runtime, trace_context);
    export.flush();
    // The lines still queued are written here, as `_log_writer` is dropped, before the failure
    // (if any) is reported.
    result
}

/// The span export of `--otlp-endpoint`, when there is one (the `otlp` feature).
#[cfg(feature = "otlp")]
struct SpanExport(Option<crate::otlp::Export>);

#[cfg(feature = "otlp")]
impl SpanExport {
    fn start(endpoint: Option<&str>, runtime: &tokio::runtime::Runtime) -> Result<Self, Failure> {
        let export = endpoint
            .map(|url| crate::otlp::Export::start(url, runtime.handle().clone()))
            .transpose()
            .map_err(Failure::usage)?;
        Ok(Self(export))
    }

    /// The layer for the subscriber and the trace context for the server.
    fn parts(&mut self) -> (Option<crate::ExtraLayer>, Option<Arc<dyn TraceContext>>) {
        match self.0.as_mut() {
            Some(export) => (export.layer.take(), Some(export.context.clone())),
            None => (None, None),
        }
    }

    /// Exports the spans still queued; after the server stopped, before the runtime ends.
    fn flush(self) {
        if let Some(export) = self.0 {
            crate::otlp::flush(&export.provider);
        }
    }
}

/// Without the `otlp` feature: an endpoint is a usage error.
#[cfg(not(feature = "otlp"))]
struct SpanExport;

#[cfg(not(feature = "otlp"))]
impl SpanExport {
    fn start(endpoint: Option<&str>, _: &tokio::runtime::Runtime) -> Result<Self, Failure> {
        match endpoint {
            Some(_) => Err(Failure::usage_msg(
                "--otlp-endpoint (CALLSIGN_OTLP_ENDPOINT, [tracing] otlp_endpoint): this callsign \
                 was built without span export; build it with the `otlp` feature (cargo install \
                 --path crates/callsign --locked --features otlp)",
            )),
            None => Ok(Self),
        }
    }

    fn parts(&mut self) -> (Option<crate::ExtraLayer>, Option<Arc<dyn TraceContext>>) {
        (None, None)
    }

    fn flush(self) {}
}

/// The server's configuration from the flags and the file, then the server, on `runtime`.
fn serve_on(
    args: ServeArgs,
    file: config::FileConfig,
    runtime: &tokio::runtime::Runtime,
    trace_context: Option<Arc<dyn TraceContext>>,
) -> Result<(), Failure> {
    let mut http = callsign_server::http::HttpConfig::default();
    file.apply_http(&mut http)?;
    let throttling = file.throttling(args.limits.map(|limits| match limits {
        LimitsArg::Acs => ThrottlePreset::Acs,
        LimitsArg::Off => ThrottlePreset::Off,
    }))?;
    let audit = file.audit(&args.audit_log);
    let webhooks = file.webhooks()?;
    let addr = args
        .addr
        .or(file.addr)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let data = args.data.or(file.data);
    if args.dev && args.database.url.is_some() {
        return Err(Failure::usage_msg(
            "--dev is a local instance; it does not combine with --database-url",
        ));
    }
    if args.in_memory && (data.is_some() || args.database.url.is_some()) {
        return Err(Failure::usage_msg(
            "--in-memory stores nothing: it does not combine with --data (CALLSIGN_DATA) or \
             --database-url",
        ));
    }
    let on_database = args.database.url.is_some();
    let (mut config, storage) = match data {
        None if args.in_memory || args.dev => (ServerConfig::in_memory(addr), Storage::Memory),
        data => {
            // Absolute, so that the paths printed (the CA above all) work from anywhere.
            let data = data.unwrap_or_else(|| PathBuf::from("./callsign-data"));
            let data = crate::admin::absolute(&data);
            let storage = match on_database {
                true => Storage::Database,
                false => Storage::DataDir {
                    created: !DataDir::new(&data).is_initialised(),
                    dir: data.clone(),
                },
            };
            let mut config = ServerConfig::new(addr, &data);
            config.storage = crate::admin::storage_config(&data, args.database.url)?;
            (config, storage)
        }
    };
    config.http = http;
    config.http.tracing = trace_context;
    config.tls = match (
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    ) {
        (Some(cert), Some(key)) => TlsMode::Files { cert, key },
        _ if args.tls || file.tls.unwrap_or(false) => TlsMode::Dev,
        _ => TlsMode::Off,
    };
    config.signing_alg = args.signing_alg.map(|alg| match alg {
        SigningAlgArg::Rs256 => SigningAlg::Rs256,
        SigningAlgArg::Es256 => SigningAlg::Es256,
        SigningAlgArg::Eddsa => SigningAlg::EdDsa,
    });
    config.throttling = throttling;
    config.metrics_addr = args.metrics_addr.or(file.metrics_addr);
    if !config.throttling.is_off() {
        tracing::info!(limits = ?config.throttling, "throttling");
    }
    config.audit = audit;
    config.webhooks = webhooks;
    config.trusted_issuers = file.trusted_issuers;
    config.management = file.management.unwrap_or_default();
    config.access_key_seed = access_key_seed()?;
    config.seed = match &args.seed {
        Some(path) => Some(crate::admin::read_export(path)?),
        None => None,
    };
    config.http.allow_reset = args.allow_reset || args.dev;
    config.console.enabled = !args.no_console;
    // The sign-in form shows the well-known key only while it is the primary key in force.
    config.console.prefill_dev_key = args.dev;
    config.http.api_versions = match (args.api_versions, args.dev) {
        (Some(ApiVersionsArg::Lenient), _) | (None, true) => VersionPolicy::Lenient,
        (Some(ApiVersionsArg::Strict), _) | (None, false) => VersionPolicy::Strict,
    };
    config.min_token_lifetime = match (args.min_token_lifetime, args.dev) {
        (Some(min), _) => min,
        (None, true) => Minutes::SHORTEST,
        (None, false) => Minutes::MIN,
    };
    // A seed file's own keys win over the well-known one.
    let seed_has_keys = config.seed.as_ref().is_some_and(|s| s.keys.is_some());
    if args.dev && !seed_has_keys {
        config.access_key_seed.get_or_insert_with(dev_access_key);
    }
    if args.dev {
        eprintln!(
            "warning: --dev: a development instance with a published access key{}, lenient \
             api-versions and one-minute tokens; not for production, keep it on this machine",
            if matches!(config.storage, StorageConfig::Memory(_)) {
                " and in-memory storage"
            } else {
                ""
            }
        );
    }

    // One socket per client: do not stop at the 1,024 files many systems start processes with.
    match callsign_server::limits::raise_open_files() {
        Ok(files) => tracing::debug!(soft = files.soft, hard = files.hard, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }

    runtime.block_on(async move {
        // Installed before anything is announced: a supervisor that stops the server as soon as
        // the banner appears is heard, not met by the default action (killed by the signal).
        let shutdown = shutdown_signal().context("installing the SIGTERM and SIGINT handlers")?;
        let server = Server::bind(config)
            .await
            .map_err(|e| with_hint(e, addr, &storage))?;
        if !args.quiet {
            print_banner(&server, &storage, !args.no_console);
        }
        tracing::info!(
            endpoint = server.endpoint(),
            max_connections = server.max_connections(),
            "callsign is listening"
        );
        if let Some(metrics) = server.metrics_addr() {
            tracing::info!(%metrics, "metrics (GET /metrics, no authentication)");
        }
        server.run(shutdown).await.context("serving")?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// A minimum token lifetime: `5m`, `1h` or `5` (minutes), from 1 minute to ACS's 60.
fn parse_minutes(text: &str) -> std::result::Result<Minutes, String> {
    let (number, unit) = match text.strip_suffix('m').or(text.strip_suffix("min")) {
        Some(n) => (n, 1),
        None => match text.strip_suffix('h') {
            Some(n) => (n, 60),
            None => (text, 1),
        },
    };
    number
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n <= i64::from(Minutes::MIN.get()))
        .and_then(|n| Minutes::at_least(n, Minutes::SHORTEST))
        .ok_or_else(|| format!("{text:?} is not a lifetime from 1m to 60m (like 1m, 5m, 1h)"))
}

/// `CALLSIGN_ACCESS_KEY`: base64 of at least 32 bytes (ACS's own keys are 64).
fn access_key_seed() -> anyhow::Result<Option<AccessKey>> {
    const MIN_BYTES: usize = 32;
    let value = match std::env::var("CALLSIGN_ACCESS_KEY") {
        Ok(value) if !value.is_empty() => value,
        _ => return Ok(None),
    };
    let key = AccessKey::from_base64(&value).context("CALLSIGN_ACCESS_KEY is not valid base64")?;
    let len = key.as_bytes().len();
    if len < MIN_BYTES {
        anyhow::bail!(
            "CALLSIGN_ACCESS_KEY holds {len} bytes; an access key needs at least {MIN_BYTES} \
             (ACS keys are 64): `openssl rand -base64 64`"
        );
    }
    Ok(Some(key))
}

/// Resolves on the first SIGTERM or SIGINT; both handlers are installed when this returns.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// Where the server keeps its state, for the banner and hints.
enum Storage {
    /// Nothing on disk.
    Memory,
    /// A data dir, `created` by this start or reused.
    DataDir { dir: PathBuf, created: bool },
    /// A cluster's PostgreSQL database.
    Database,
}

/// What `serve` prints on stdout once it listens: the lines scripts read (`endpoint:`,
/// `connection string:`, `ca certificate:`, in that order), where the state is, the console's
/// address (unless `--no-console`), and lines ready to paste into a shell. One write, so that a reader that stops after the lines it needs
/// cannot make a later line fail; stdout only, never the log: it holds the access key.
fn print_banner(server: &Server, storage: &Storage, console: bool) {
    use std::io::Write;
    let connection_string = server.connection_string();
    let mut text = format!(
        "endpoint: {}\nconnection string: {connection_string}\n",
        server.endpoint()
    );
    if let Some(ca) = server.ca_certificate() {
        text += &format!("ca certificate: {}\n", ca.display());
    }
    text += &match storage {
        Storage::Memory => "storage: in memory (gone when the server stops)\n".to_owned(),
        Storage::DataDir { dir, created } => format!(
            "data dir: {} ({})\n",
            dir.display(),
            if *created { "created" } else { "reused" }
        ),
        Storage::Database => "storage: the PostgreSQL database of --database-url\n".to_owned(),
    };
    if console {
        text += &format!(
            "console: {}console (sign in with an access key)\n",
            server.endpoint()
        );
    }
    text += &format!(
        "\nexport CALLSIGN_CONNECTION_STRING={}\n",
        shell_quote(&connection_string)
    );
    if let Some(ca) = server.ca_certificate() {
        let ca = shell_quote(&ca.display().to_string());
        text += &format!("export REQUESTS_CA_BUNDLE={ca}\nexport NODE_EXTRA_CA_CERTS={ca}\n");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// `text` as one shell word: in single quotes, each `'` written as `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A start-up error, with what to do about the usual ones (a busy port, a data dir in use).
fn with_hint(error: callsign_server::ServerError, addr: SocketAddr, storage: &Storage) -> Failure {
    use callsign_server::store::StoreError;
    use callsign_server::ServerError;
    let hint = match (&error, storage) {
        (ServerError::Listen { source, .. }, _)
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            Some(format!(
                "another process listens on {addr}: stop it, or pass --addr {}:0 (any free port) \
                 or another port",
                addr.ip()
            ))
        }
        (ServerError::Store(StoreError::InUse { .. }), Storage::DataDir { dir, .. }) => {
            Some(format!(
                "talk to that server (`callsign user list --data {}`), or give this one another \
                 --data",
                dir.display()
            ))
        }
        _ => None,
    };
    let error = anyhow::Error::new(error);
    Failure::failed(match hint {
        Some(hint) => anyhow::anyhow!("{} — {hint}", crate::failure::chain(&error)),
        None => error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_makes_one_shell_word() {
        assert_eq!(
            shell_quote("endpoint=http://h/;accesskey=a+b/c=="),
            "'endpoint=http://h/;accesskey=a+b/c=='"
        );
        assert_eq!(shell_quote("/tmp/it's/ca.pem"), r"'/tmp/it'\''s/ca.pem'");
    }
}
