//! The `callsign` command: run the Communication Identity service (`callsign serve`), manage its
//! data dir or cluster (connection string, keys, export, import, backup) and talk to any
//! Communication Identity endpoint (`user`, `token`, `assignment`, …).

mod admin;
mod client;
mod config;
mod failure;
mod log_writer;
#[cfg(feature = "otlp")]
mod otlp;
mod serve;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use client::commands::{AssignmentCommand, EntraAssignmentCommand, TokenCommand, UserCommand};
use client::ClientArgs;
use failure::Failure;
use std::path::PathBuf;
use std::process::ExitCode;

/// callsign: a Communication Identity service that speaks the Azure Communication Services
/// Identity protocol.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Examples:\n  callsign serve                      # creates ./callsign-data, prints the connection string\n  callsign user create --scopes chat  # talks to that server\n  callsign serve --dev                # in memory, the well-known development key"
)]
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
    /// Say more on stderr: for client commands, which server and why (`-v`) and the HTTP
    /// stack's log (`-vv`); for `serve`, debug logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    #[command(after_help = serve::EXAMPLES)]
    Serve(serve::ServeArgs),
    /// Print the connection string of a data dir again (or, with --dev, of a development
    /// instance), and on stderr whether its server is running.
    #[command(
        after_help = "Examples:\n  callsign connection-string\n  export CALLSIGN_CONNECTION_STRING=\"$(callsign connection-string --data ./callsign-data)\"\n  callsign connection-string --database-url postgres://… --endpoint https://identity.example/"
    )]
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
    #[command(
        after_help = "Examples:\n  callsign export > users.jsonl\n  callsign export --include-keys > all.jsonl   # a secret: the keys are in it"
    )]
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
    #[command(
        after_help = "Examples:\n  callsign import all.jsonl --data ./new-data\n  callsign import all.jsonl --database-url postgres://…/callsign"
    )]
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
    #[command(after_help = "Example:\n  callsign backup ./backup-2026-12-04")]
    Backup {
        /// Where to write the copy (must not exist, or be empty).
        out: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// Manage the access keys.
    #[command(after_help = "Example:\n  callsign keys regenerate secondary")]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the token-signing keys.
    #[command(after_help = "Example:\n  callsign signing-key rotate")]
    SigningKey {
        #[command(subcommand)]
        command: SigningKeyCommand,
    },
    /// Create, show, list and delete users (client of any Communication Identity endpoint).
    #[command(after_help = CLIENT_TARGETS)]
    User {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Issue, revoke and introspect tokens (client of any Communication Identity endpoint).
    #[command(after_help = CLIENT_TARGETS)]
    Token {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage Teams extension assignments (client of any Communication Identity endpoint).
    #[command(after_help = CLIENT_TARGETS)]
    Assignment {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: AssignmentCommand,
    },
    /// Manage Entra assignments (preview; client of any Communication Identity endpoint).
    #[command(after_help = CLIENT_TARGETS)]
    EntraAssignment {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: EntraAssignmentCommand,
    },
    /// Print the change feed's events (callsign servers only) as JSON Lines, oldest kept first or
    /// after --after; with --follow, keep printing new ones as they happen until interrupted.
    #[command(
        after_help = "Examples:\n  callsign events --dev --follow\n  callsign events --after AQAAAAAAAAAAAAAAAAAAACo | jq -r .type"
    )]
    Events {
        #[command(flatten)]
        client: ClientArgs,
        /// Start after this cursor (an event's `cursor`, or the one printed last time).
        #[arg(long)]
        after: Option<String>,
        /// Wait for new events instead of stopping at the newest.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Delete every identity and assignment of a callsign server started with --dev or
    /// --allow-reset (keys stay). Asks first when stdin is a terminal; otherwise, as in scripts,
    /// it proceeds.
    #[command(after_help = "Examples:\n  callsign reset --dev --yes\n  callsign reset")]
    Reset {
        #[command(flatten)]
        client: ClientArgs,
        /// Do not ask, even on a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Check that a server answers `GET /healthz` with 200 (exit 0; 1 otherwise), for container
    /// health checks that have no shell or curl.
    #[command(
        after_help = "Example:\n  callsign healthz http://127.0.0.1:8080/healthz --timeout 2"
    )]
    Healthz {
        /// The URL to get.
        #[arg(default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
    },
    /// Print a completion script for a shell.
    #[command(
        after_help = "Examples:\n  callsign completions bash > ~/.local/share/bash-completion/completions/callsign\n  callsign completions zsh > \"${fpath[1]}/_callsign\"\n  callsign completions fish > ~/.config/fish/completions/callsign.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// How client commands find their server, shown under their `--help`.
const CLIENT_TARGETS: &str = "The server: --connection-string, else --dev (the well-known string \
of `serve --dev`), else CALLSIGN_CONNECTION_STRING, else the server of the data dir (--data, \
default ./callsign-data), trusting its development CA when it serves --tls. -v says which.\n\n\
Examples:\n  callsign user create --scopes chat,voip\n  callsign token issue 8:acs:… --scopes chat \
--expires-in 1h\n  callsign user list --dev";

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
    #[command(after_help = "Example:\n  callsign keys regenerate primary")]
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
    #[command(after_help = "Example:\n  callsign signing-key rotate --data ./callsign-data")]
    Rotate {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = Logging {
        format: cli.log_format,
        verbose: cli.verbose,
        client: cli.command.is_client(),
    };
    match run(cli.command, logging) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Every command, in one place.
fn run(command: Command, logging: Logging) -> Result<(), Failure> {
    let verbose = logging.verbose > 0;
    // `serve` installs the logging itself, once it knows whether spans are exported.
    if let Command::Serve(args) = command {
        return serve::serve(args, logging);
    }
    logging.init(None);
    match command {
        Command::Serve(_) => unreachable!("served above"),
        Command::ConnectionString {
            dev,
            data,
            endpoint,
            database,
        } => admin::connection_string(dev, &data.dir, endpoint, database.url),
        Command::Export {
            data,
            database,
            include_keys,
        } => admin::export(&data.dir, database.url, include_keys),
        Command::Import {
            file,
            data,
            database,
        } => admin::import(&file, &data.dir, database.url),
        Command::Backup { out, data } => admin::backup(&data.dir, &out),
        Command::Keys {
            command:
                KeysCommand::Regenerate {
                    which,
                    data,
                    database,
                },
        } => admin::regenerate(which.into(), &data.dir, database.url),
        Command::SigningKey {
            command: SigningKeyCommand::Rotate { data, database },
        } => admin::rotate(&data.dir, database.url),
        Command::User { client, command } => client::run(&client, verbose, async |s| {
            client::commands::user(s, command).await
        }),
        Command::Token { client, command } => client::run(&client, verbose, async |s| {
            client::commands::token(s, command).await
        }),
        Command::Assignment { client, command } => client::run(&client, verbose, async |s| {
            client::commands::assignment(s, command).await
        }),
        Command::EntraAssignment { client, command } => client::run(&client, verbose, async |s| {
            client::commands::entra_assignment(s, command).await
        }),
        Command::Events {
            client,
            after,
            follow,
        } => client::run(&client, verbose, async |s| {
            client::commands::events(s, after, follow).await
        }),
        Command::Reset { client, yes } => client::run(&client, verbose, async |s| {
            client::commands::reset(s, yes).await
        }),
        Command::Healthz { url, timeout } => {
            admin::healthz(&url, std::time::Duration::from_secs(timeout))
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "callsign",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

impl Command {
    /// Client commands log nothing of their own by default: their output is the answer.
    fn is_client(&self) -> bool {
        matches!(
            self,
            Command::User { .. }
                | Command::Token { .. }
                | Command::Assignment { .. }
                | Command::EntraAssignment { .. }
                | Command::Events { .. }
                | Command::Reset { .. }
                | Command::Healthz { .. }
        )
    }
}

impl From<Which> for callsign_server::keys::KeyKind {
    fn from(which: Which) -> Self {
        match which {
            Which::Primary => Self::Primary,
            Which::Secondary => Self::Secondary,
        }
    }
}

/// How logs are written, chosen by the global flags.
#[derive(Clone, Copy)]
struct Logging {
    format: LogFormat,
    verbose: u8,
    /// Whether the command is a client command (they log nothing of their own by default).
    client: bool,
}

/// A layer of the subscriber besides the log lines: the span export of `serve --otlp-endpoint`.
type ExtraLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

impl Logging {
    /// Installs the subscriber for a command that is not the server: lines are written to stderr
    /// as they are logged, so they stay in order with what the command prints.
    fn init(self, spans: Option<ExtraLayer>) {
        self.install(spans, std::io::stderr);
    }

    /// Installs the subscriber for the server: lines are buffered and written to stderr by a
    /// thread of their own (`log_writer`), so a request never waits on the write (a line per
    /// request is the default). The lines still buffered are written when the returned flusher is
    /// dropped.
    fn init_off_thread(self, spans: Option<ExtraLayer>) -> std::io::Result<log_writer::Flusher> {
        let (writer, flusher) = log_writer::start(Box::new(std::io::stderr()))?;
        self.install(spans, writer);
        Ok(flusher)
    }

    /// Logs go to `writer`, filtered by `RUST_LOG`, else by the command: `info` for the server
    /// (`debug` with `-v`); for client commands nothing, warnings with `-v` (which also says which
    /// server they use), the HTTP stack's debug log with `-vv`. Never keys or tokens. With `spans`
    /// (the span export, docs/tracing.md), the request spans go to it and not to the log lines,
    /// whatever `RUST_LOG` says.
    fn install<W>(self, spans: Option<ExtraLayer>, writer: W)
    where
        W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        use std::io::IsTerminal;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::Layer;
        let default = match (self.client, self.verbose) {
            (true, 0) => "off",
            (true, 1) => "warn",
            (true, 2) | (false, 1) => "debug",
            (true, _) | (false, 2..) => "trace",
            (false, 0) => "info",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| default.into());
        let ansi = std::io::stderr().is_terminal();
        let Some(spans) = spans else {
            // Without span export, as always: one filter for the whole subscriber.
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer);
            match self.format {
                LogFormat::Text => builder.with_ansi(ansi).init(),
                LogFormat::Json => builder.json().init(),
            }
            return;
        };
        let request_spans = format!("{}=off", callsign_server::http::trace::SPAN_TARGET)
            .parse()
            .expect("a valid directive");
        let filter = filter.add_directive(request_spans);
        let lines = tracing_subscriber::fmt::layer().with_writer(writer);
        let lines = match self.format {
            LogFormat::Text => lines.with_ansi(ansi).with_filter(filter).boxed(),
            LogFormat::Json => lines.json().with_filter(filter).boxed(),
        };
        tracing_subscriber::registry()
            .with(spans)
            .with(lines)
            .init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's `--help` ends with an example of its use.
    #[test]
    fn every_command_has_an_example() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            let help = command
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            if !help.contains("callsign ") {
                missing.push(path.clone());
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no example in: {missing:?}");
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
