//! The `callsign` command: run the Communication Identity service (`callsign serve`) and manage its
//! data dir (connection string, access keys, signing keys).

mod client_commands;
mod config;

use anyhow::{Context, Result};
use callsign_common::AccessKey;
use callsign_server::domain::Minutes;
use callsign_server::export::ExportFile;
use callsign_server::http::api_version::VersionPolicy;
use callsign_server::keys::access::dev_access_key;
use callsign_server::keys::{DataDir, KeyKind, MasterKey, SigningAlg};
use callsign_server::server::connection_string;
use callsign_server::store::{self, Backend, OpenMode};
use callsign_server::{PostgresConfig, Server, ServerConfig, StorageConfig, TlsMode};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// callsign: a Communication Identity service that speaks the Azure Communication Services
/// Identity protocol.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log lines (on stderr) as text, coloured only on a terminal, or as one JSON object a line.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CALLSIGN_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`); never keys or tokens.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Print the connection string of a data dir again (or, with --dev, of a development
    /// instance).
    ConnectionString {
        /// The well-known connection string of `serve --dev`.
        #[arg(long, conflicts_with = "url")]
        dev: bool,
        #[command(flatten)]
        data: DataArg,
        /// Endpoint to put in the string (default: where the server last listened).
        #[arg(long)]
        endpoint: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Write every identity and assignment (and with --include-keys the keys) as JSON Lines on
    /// stdout; see docs/export.md.
    Export {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        database: DatabaseArg,
        /// Include the access and signing keys (secrets): with them, issued tokens stay valid
        /// where the file is imported.
        #[arg(long)]
        include_keys: bool,
    },
    /// Load an export into an empty data dir or database (which becomes its resource).
    Import {
        /// The file `callsign export` wrote.
        file: PathBuf,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Copy a data dir, while its server runs, into a new directory that `serve --data` can
    /// start from.
    Backup {
        /// Where to write the copy (must not exist, or be empty).
        out: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// Manage the access keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the token-signing keys.
    SigningKey {
        #[command(subcommand)]
        command: SigningKeyCommand,
    },
    /// Create, show and delete users (client of any Communication Identity endpoint).
    User {
        #[command(flatten)]
        client: client_commands::ClientArgs,
        #[command(subcommand)]
        command: client_commands::UserCommand,
    },
    /// Issue, revoke and introspect tokens (client of any Communication Identity endpoint).
    Token {
        #[command(flatten)]
        client: client_commands::ClientArgs,
        #[command(subcommand)]
        command: client_commands::TokenCommand,
    },
    /// Manage Teams extension assignments (client of any Communication Identity endpoint).
    Assignment {
        #[command(flatten)]
        client: client_commands::ClientArgs,
        #[command(subcommand)]
        command: client_commands::AssignmentCommand,
    },
    /// Manage Entra assignments (preview; client of any Communication Identity endpoint).
    EntraAssignment {
        #[command(flatten)]
        client: client_commands::ClientArgs,
        #[command(subcommand)]
        command: client_commands::EntraAssignmentCommand,
    },
    /// Delete every identity and assignment of a callsign server started with --dev or
    /// --allow-reset (keys stay). Asks first when stdin is a terminal; otherwise, as in scripts,
    /// it proceeds.
    Reset {
        #[command(flatten)]
        client: client_commands::ClientArgs,
        /// Do not ask, even on a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Check that a server answers `GET /healthz` with 200 (exit 0; 1 otherwise), for container
    /// health checks that have no shell or curl.
    Healthz {
        /// The URL to get.
        #[arg(default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
    },
}

#[derive(Args)]
struct DataArg {
    /// The data directory.
    #[arg(
        long = "data",
        env = "CALLSIGN_DATA",
        default_value = "./callsign-data"
    )]
    dir: PathBuf,
}

/// A cluster's database: with it, key commands act on the database instead of a data dir.
#[derive(Args)]
struct DatabaseArg {
    /// PostgreSQL URL of a cluster (needs CALLSIGN_MASTER_KEY).
    #[arg(
        long = "database-url",
        env = "CALLSIGN_DATABASE_URL",
        hide_env_values = true
    )]
    url: Option<String>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Replace one access key with a new random key; the other keeps working.
    Regenerate {
        /// Which key.
        which: Which,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Primary,
    Secondary,
}

#[derive(Subcommand)]
enum SigningKeyCommand {
    /// Sign new tokens with a new key; the old key stays in the JWKS for 25 hours.
    Rotate {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Args)]
struct ServeArgs {
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
    database: DatabaseArg,
    /// Sign new tokens with this algorithm; a different one than the current key's rotates to a
    /// new key (the old one stays in the JWKS for 25 hours). Default: keep the current key (RS256
    /// for a new data dir), which is what the official SDKs are tested with.
    #[arg(long, value_enum)]
    signing_alg: Option<SigningAlgArg>,
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::User { client, command } => {
            client_exit(runtime_then(client_commands::user(&client, command)))
        }
        Command::Token { client, command } => {
            client_exit(runtime_then(client_commands::token(&client, command)))
        }
        Command::Assignment { client, command } => {
            client_exit(runtime_then(client_commands::assignment(&client, command)))
        }
        Command::EntraAssignment { client, command } => client_exit(runtime_then(
            client_commands::entra_assignment(&client, command),
        )),
        Command::Reset { client, yes } => {
            client_exit(runtime_then(client_commands::reset(&client, yes)))
        }
        Command::Healthz { url, timeout } => healthz(&url, Duration::from_secs(timeout)),
        other => admin_exit(run(other)),
    }
}

/// Exit codes of client commands: 0 ok, 1 service error, 2 usage error.
fn client_exit(result: Result<(), client_commands::Failure>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(client_commands::Failure::Usage(message)) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(2)
        }
        Err(client_commands::Failure::Service(message)) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(1)
        }
    }
}

fn runtime_then(
    future: impl std::future::Future<Output = Result<(), client_commands::Failure>>,
) -> Result<(), client_commands::Failure> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| {
        client_commands::Failure::Service(format!("starting the async runtime: {e}"))
    })?;
    runtime.block_on(future)
}

/// `callsign healthz`: 0 when `url` answers 200 within `timeout`, 1 otherwise (any other status, no
/// answer, a refused connection), saying which on stdout or stderr.
fn healthz(url: &str, timeout: Duration) -> std::process::ExitCode {
    let get = async {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()?;
        Ok::<_, reqwest::Error>(client.get(url).send().await?.status())
    };
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime
                .block_on(get)
                .map_err(|e| anyhow::Error::from(e.without_url()))
        });
    match status {
        Ok(reqwest::StatusCode::OK) => {
            println!("healthy: {url} answered 200");
            std::process::ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("unhealthy: {url} answered {status}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn admin_exit(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve(args),
        Command::Export {
            data,
            database,
            include_keys,
        } => export(&data.dir, database, include_keys),
        Command::Import {
            file,
            data,
            database,
        } => import(&file, &data.dir, database),
        Command::Backup { out, data } => {
            store::sqlite::backup(&data.dir, &out).with_context(|| {
                format!("backing up {} to {}", data.dir.display(), out.display())
            })?;
            eprintln!(
                "backed up {} to {}; `callsign serve --data {}` starts from it",
                data.dir.display(),
                out.display(),
                out.display()
            );
            Ok(())
        }
        Command::ConnectionString {
            dev: true,
            endpoint,
            ..
        } => {
            let endpoint = endpoint.unwrap_or_else(|| "http://127.0.0.1:8080/".to_owned());
            println!("{}", connection_string(&endpoint, &dev_access_key()));
            Ok(())
        }
        Command::ConnectionString {
            dev: false,
            data,
            endpoint,
            database,
        } => {
            let dir = DataDir::new(&data.dir);
            let now = chrono::Utc::now();
            let keys = with_storage(&data.dir, database, |backend| async move {
                Ok(backend.load_keys(now).await?)
            })
            .context("reading the keys")?;
            let endpoint = match endpoint {
                Some(e) => e,
                None => std::fs::read_to_string(dir.endpoint_path())
                    .context("the server has not run with this data dir yet; pass --endpoint")?,
            };
            println!(
                "{}",
                connection_string(endpoint.trim(), &keys.access.primary)
            );
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Regenerate {
                    which,
                    data,
                    database,
                },
        } => {
            let kind = match which {
                Which::Primary => KeyKind::Primary,
                Which::Secondary => KeyKind::Secondary,
            };
            with_storage(&data.dir, database, |backend| async move {
                Ok(backend.regenerate_access_key(kind).await?)
            })
            .context("regenerating the access key")?;
            eprintln!(
                "regenerated the {} key; a running server picks it up within seconds",
                match which {
                    Which::Primary => "primary",
                    Which::Secondary => "secondary",
                }
            );
            Ok(())
        }
        Command::User { .. }
        | Command::Token { .. }
        | Command::Assignment { .. }
        | Command::EntraAssignment { .. }
        | Command::Reset { .. }
        | Command::Healthz { .. } => {
            unreachable!("handled in main")
        }
        Command::SigningKey {
            command: SigningKeyCommand::Rotate { data, database },
        } => {
            let now = chrono::Utc::now();
            let kid = with_storage(&data.dir, database, |backend| async move {
                Ok(backend.rotate_signing_key(now).await?)
            })
            .context("rotating the signing key")?;
            println!("{kid}");
            eprintln!("new tokens are signed with the key above; the previous key stays published for 25 hours");
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => config::FileConfig::load(path)?,
        None => config::FileConfig::default(),
    };
    let mut http = callsign_server::http::HttpConfig::default();
    file.apply_http(&mut http)?;
    let addr = args
        .addr
        .or(file.addr)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let data = args.data.or(file.data);
    if args.dev && args.database.url.is_some() {
        anyhow::bail!("--dev is a local instance; it does not combine with --database-url");
    }
    if args.in_memory && (data.is_some() || args.database.url.is_some()) {
        anyhow::bail!(
            "--in-memory stores nothing: it does not combine with --data (CALLSIGN_DATA) or \
             --database-url"
        );
    }
    let mut config = match data {
        None if args.in_memory || args.dev => ServerConfig::in_memory(addr),
        data => {
            let data = data.unwrap_or_else(|| PathBuf::from("./callsign-data"));
            let mut config = ServerConfig::new(addr, &data);
            config.storage = storage_config(&data, args.database)?;
            config
        }
    };
    config.http = http;
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
    config.trusted_issuers = file.trusted_issuers;
    config.management = file.management.unwrap_or_default();
    config.access_key_seed = access_key_seed()?;
    config.seed = match &args.seed {
        Some(path) => Some(read_export(path)?),
        None => None,
    };
    config.http.allow_reset = args.allow_reset || args.dev;
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

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        if !args.quiet {
            // Straight to stdout, never through the log pipeline: it holds the access key.
            println!("endpoint: {}", server.endpoint());
            println!("connection string: {}", server.connection_string());
            if let Some(ca) = server.ca_certificate() {
                println!("ca certificate: {}", ca.display());
            }
        }
        tracing::info!(
            endpoint = server.endpoint(),
            max_connections = server.max_connections(),
            "callsign is listening"
        );
        server.run(shutdown_signal()).await?;
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
fn access_key_seed() -> Result<Option<AccessKey>> {
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

/// The master key sealing a cluster's keys in its database (`CALLSIGN_MASTER_KEY`, required).
fn master_key() -> Result<MasterKey> {
    let text = std::env::var("CALLSIGN_MASTER_KEY").map_err(|_| {
        anyhow::anyhow!(
            "a PostgreSQL database needs CALLSIGN_MASTER_KEY (base64 of 32 random bytes, \
             e.g. `openssl rand -base64 32`), the same on every node"
        )
    })?;
    Ok(MasterKey::from_base64(&text)?)
}

/// Reads an export file, naming it in any error.
fn read_export(path: &Path) -> Result<ExportFile> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening the export file {}", path.display()))?;
    ExportFile::read(std::io::BufReader::new(file))
        .with_context(|| format!("reading the export file {}", path.display()))
}

/// `callsign export`: the storage's data, and keys when asked, on stdout.
fn export(data: &Path, database: DatabaseArg, include_keys: bool) -> Result<()> {
    if include_keys {
        eprintln!("warning: the export holds the access and signing keys: keep it secret");
    }
    let now = chrono::Utc::now();
    let file = with_storage(data, database, |backend| async move {
        let keys = backend.load_keys(now).await?;
        Ok(ExportFile {
            resource_id: keys.resource_id,
            keys: include_keys.then(|| keys.transfer()),
            data: backend.export_data().await?,
        })
    })
    .context("exporting")?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    file.write(&mut out, now).context("writing the export")
}

/// `callsign import`: an export into empty storage, which becomes the file's resource.
fn import(path: &Path, data: &Path, database: DatabaseArg) -> Result<()> {
    let file = read_export(path)?;
    let storage = storage_config(data, database)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let imported = runtime.block_on(async move {
        // Claimed like a server would: no server may run on it meanwhile.
        let backend = store::open(&storage, OpenMode::Serve)
            .await
            .context("opening the storage")?;
        if !backend.export_data().await?.is_empty() {
            anyhow::bail!(
                "the storage already holds identities or assignments; import into an empty data \
                 dir or database (or use `serve --seed` to add fixtures)"
            );
        }
        let now = chrono::Utc::now();
        backend.adopt_keys(file.resource_id, file.keys, now).await?;
        Ok(backend.import_data(file.data).await?)
    })?;
    eprintln!(
        "imported {} identities and {} assignments",
        imported.identities, imported.assignments
    );
    Ok(())
}

/// The storage a command acts on: the cluster's database when one is given, else the data dir.
fn storage_config(data: &Path, database: DatabaseArg) -> Result<StorageConfig> {
    Ok(match database.url {
        Some(url) => StorageConfig::Postgres(PostgresConfig {
            url,
            master_key: Arc::new(master_key()?),
        }),
        None => StorageConfig::DataDir(data.to_owned()),
    })
}

/// Runs an admin command against storage a server has initialised; a database serialises it
/// with the running nodes, a data dir is picked up by the running server within a second.
fn with_storage<T, F, Fut>(data: &Path, database: DatabaseArg, f: F) -> Result<T>
where
    F: FnOnce(Arc<dyn Backend>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let storage = storage_config(data, database)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let backend = store::open(&storage, OpenMode::Existing)
            .await
            .context("opening the storage")?;
        f(backend).await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
