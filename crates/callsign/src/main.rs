//! The `callsign` command: run the Communication Identity service (`callsign serve`) and manage its
//! data dir (connection string, access keys, signing keys).

mod client_commands;
mod config;

use anyhow::{Context, Result};
use callsign_common::AccessKey;
use callsign_server::keys::{DataDir, KeyKind, MasterKey, SigningAlg};
use callsign_server::server::connection_string;
use callsign_server::store::{self, Backend, OpenMode};
use callsign_server::{PostgresConfig, Server, ServerConfig, StorageConfig, TlsMode};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// callsign: a Communication Identity service that speaks the Azure Communication Services
/// Identity protocol.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Print the connection string of a data dir again.
    ConnectionString {
        #[command(flatten)]
        data: DataArg,
        /// Endpoint to put in the string (default: where the server last listened).
        #[arg(long)]
        endpoint: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
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
enum SigningAlgArg {
    Rs256,
    Es256,
    Eddsa,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
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
        Command::ConnectionString {
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
        | Command::EntraAssignment { .. } => {
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
    let data = args
        .data
        .or(file.data)
        .unwrap_or_else(|| PathBuf::from("./callsign-data"));
    let mut config = ServerConfig::new(addr, &data);
    config.http = http;
    config.storage = storage_config(&data, args.database)?;
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
    config.access_key_seed = match std::env::var("CALLSIGN_ACCESS_KEY") {
        Ok(value) if !value.is_empty() => Some(
            AccessKey::from_base64(&value).context("CALLSIGN_ACCESS_KEY is not valid base64")?,
        ),
        _ => None,
    };

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
