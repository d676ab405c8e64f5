//! The client commands (`callsign user …`, `token …`, `assignment …`, `entra-assignment …`,
//! `reset`): which server they talk to, how, and how they print.

pub mod commands;
mod target;
mod transport;

use crate::failure::Failure;
use callsign_identity::{
    ApiVersion, CommunicationIdentityClient, CommunicationIdentityClientOptions, IdentityError,
};
use clap::{Args, ValueEnum};
use commands::CommandError;
use serde_json::Value;
use std::io::IsTerminal;
use std::path::PathBuf;
use target::{Choice, Target, CONNECTION_STRING_ENV};
use transport::Unreachable;

/// Options every client command takes.
#[derive(Args)]
pub struct ClientArgs {
    /// `endpoint=...;accesskey=...` of the resource [env: CALLSIGN_CONNECTION_STRING]. Without
    /// it: the server of the data dir (--data).
    #[arg(long, global = true)]
    connection_string: Option<String>,
    /// Talk to `callsign serve --dev` on this machine (its well-known connection string,
    /// http://127.0.0.1:8080/).
    #[arg(long, global = true)]
    dev: bool,
    /// The data dir whose server to talk to when no connection string is given.
    #[arg(
        long = "data",
        env = "CALLSIGN_DATA",
        default_value = "./callsign-data",
        global = true
    )]
    data: PathBuf,
    /// A PEM file of CA certificates to trust besides the system's: the `ca certificate:` that
    /// `callsign serve --tls` prints (trusted by itself when the data dir is the server's).
    #[arg(long, env = "CALLSIGN_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// Output format [default: table on a terminal, json when piped].
    #[arg(long, value_enum, global = true)]
    output: Option<Output>,
    /// api-version to speak [default: 2023-10-01]. Commands that exist only in another version
    /// use that one, and refuse a different --api-version.
    #[arg(long, global = true)]
    api_version: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Json,
    Table,
}

/// The api-version client commands speak unless told otherwise.
const DEFAULT_API_VERSION: ApiVersion = ApiVersion::V2023_10_01;

/// A client command's connection to its server, and its output.
pub struct Session {
    target: Target,
    api_version: Option<ApiVersion>,
    output: Output,
    verbose: bool,
}

impl Session {
    /// Resolves the target of `args` (saying which with `verbose`).
    pub fn new(args: &ClientArgs, verbose: bool) -> Result<Self, Failure> {
        let api_version = args
            .api_version
            .as_deref()
            .map(|text| {
                text.parse::<ApiVersion>().map_err(|_| {
                    Failure::usage_msg(format!(
                        "unknown --api-version {text:?}; the client speaks {}",
                        spoken_versions()
                    ))
                })
            })
            .transpose()?;
        let environment = std::env::var(CONNECTION_STRING_ENV)
            .ok()
            .filter(|value| !value.is_empty());
        let target = Choice {
            flag: args.connection_string.as_deref(),
            dev: args.dev,
            environment,
            data: &args.data,
            ca_file: args.ca_file.as_deref(),
        }
        .resolve()?;
        if verbose {
            eprintln!("{}", target.describe());
        }
        let output = args.output.unwrap_or(if std::io::stdout().is_terminal() {
            Output::Table
        } else {
            Output::Json
        });
        Ok(Self {
            target,
            api_version,
            output,
            verbose,
        })
    }

    /// A client on `--api-version` (or the default).
    pub fn client(&self) -> Result<CommunicationIdentityClient, Failure> {
        self.client_on(self.api_version.unwrap_or(DEFAULT_API_VERSION))
    }

    /// A client on `needed`, for an operation (`what`) that exists only there: refused when
    /// the user chose another --api-version.
    pub fn client_needing(
        &self,
        needed: ApiVersion,
        what: &str,
    ) -> Result<CommunicationIdentityClient, Failure> {
        match self.api_version {
            Some(chosen) if chosen != needed => Err(Failure::usage_msg(format!(
                "{what} needs api-version {needed}, not the --api-version {chosen} given"
            ))),
            _ => {
                if self.verbose && self.api_version.is_none() {
                    eprintln!("{what} speaks api-version {needed}");
                }
                self.client_on(needed)
            }
        }
    }

    fn client_on(&self, api_version: ApiVersion) -> Result<CommunicationIdentityClient, Failure> {
        let client_options =
            transport::client_options(self.target.ca_file.as_deref()).map_err(Failure::usage)?;
        let options = CommunicationIdentityClientOptions {
            api_version,
            client_options,
        };
        CommunicationIdentityClient::from_connection_string(
            &self.target.connection_string,
            Some(options),
        )
        .map_err(|e| self.failure(e))
    }

    /// The failure an identity error is, with a hint when the server could not be reached.
    pub fn failure(&self, error: IdentityError) -> Failure {
        let unreachable =
            std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .find_map(|e| e.downcast_ref::<Unreachable>());
        match unreachable {
            Some(u @ Unreachable::Certificate { .. }) => {
                Failure::failed(anyhow::anyhow!("{u} — {}", self.target.certificate_hint()))
            }
            Some(u @ Unreachable::Refused { .. }) => {
                Failure::failed(anyhow::anyhow!("{u} — {}", self.target.refused_hint()))
            }
            Some(u @ Unreachable::Connect { .. }) => Failure::failed(anyhow::anyhow!("{u}")),
            None => match error {
                IdentityError::InvalidArgument(_)
                | IdentityError::UnsupportedByApiVersion { .. } => Failure::usage(error),
                other => Failure::failed(other),
            },
        }
    }

    /// Prints a list whose rows may lack some of `columns`: a JSON array as it is, or one line
    /// per row with every column in order, `-` where the row has none.
    pub fn print_columns(&self, columns: &[&str], rows: Vec<Value>) {
        match self.output {
            Output::Json => println!("{}", Value::Array(rows)),
            Output::Table => {
                for row in rows {
                    let fields: Vec<String> = columns
                        .iter()
                        .map(|c| row.get(c).map_or_else(|| "-".to_owned(), shown))
                        .collect();
                    println!("{}", fields.join("  "));
                }
            }
        }
    }

    /// Prints a list: a JSON array, or one line per item with its fields' values.
    pub fn print_rows(&self, rows: Value) {
        match self.output {
            Output::Json => println!("{rows}"),
            Output::Table => {
                for row in rows.as_array().into_iter().flatten() {
                    let fields: Vec<String> = row
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(_, v)| shown(v))
                        .collect();
                    println!("{}", fields.join("  "));
                }
            }
        }
    }

    /// Prints one object: JSON, or one `key  value` line per field.
    pub fn print(&self, value: Value) {
        match self.output {
            Output::Json => println!("{value}"),
            Output::Table => {
                for (key, value) in value.as_object().into_iter().flatten() {
                    println!("{key:<18} {}", shown(value));
                }
            }
        }
    }
}

/// The api-versions the client speaks, for messages.
fn spoken_versions() -> String {
    ApiVersion::ALL
        .into_iter()
        .filter(|v| !v.is_early_preview())
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as a table shows it: strings without quotes, lists of strings comma-joined.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Runs a client command on a runtime of its own, with its session.
pub fn run(
    args: &ClientArgs,
    verbose: bool,
    command: impl AsyncFnOnce(&Session) -> Result<(), CommandError>,
) -> Result<(), Failure> {
    let session = Session::new(args, verbose)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::failed(anyhow::Error::new(e).context("starting the async runtime"))
        })?;
    runtime.block_on(async {
        command(&session).await.map_err(|e| match e {
            CommandError::Identity(e) => session.failure(e),
            CommandError::Failure(f) => f,
        })
    })
}
