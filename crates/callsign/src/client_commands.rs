//! The client subcommands: `callsign user ...`, `token ...`, `assignment ...` and
//! `entra-assignment ...`, talking to any Communication Identity endpoint (a callsign server or
//! Azure Communication Services), and `callsign reset` (callsign servers only).

use callsign_identity::{
    ApiVersion, CommunicationIdentityClient, CommunicationIdentityClientOptions,
    CommunicationUserIdentifier, CreateUserAndTokenOptions, CreateUserOptions,
    EntraAssignmentRequest, EntraPrincipalType, GetTokenOptions, IdentityError,
    ListEntraAssignmentsOptions, ListUsersOptions, ListedUser, TokenExpiry, TokenScope,
};
use clap::{Args, Subcommand, ValueEnum};
use futures::TryStreamExt;
use serde_json::{json, Map, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// Options every client command takes.
#[derive(Args)]
pub struct ClientArgs {
    /// `endpoint=...;accesskey=...` of the resource.
    #[arg(
        long,
        env = "CALLSIGN_CONNECTION_STRING",
        hide_env_values = true,
        global = true
    )]
    connection_string: Option<String>,
    /// Output format [default: table on a terminal, json when piped].
    #[arg(long, value_enum, global = true)]
    output: Option<Output>,
    /// api-version to speak (commands that need the preview switch to it).
    #[arg(long, global = true, default_value = "2023-10-01")]
    api_version: String,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Json,
    Table,
}

/// `callsign user ...`
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user, optionally with a token.
    Create {
        /// Tag the user with your own id (uses the preview api-version).
        #[arg(long)]
        custom_id: Option<String>,
        /// Also issue a token with these scopes (comma-separated: chat, voip, chat.join, chat.join.limited, voip.join).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Token lifetime, e.g. 90m or 1h (1h to 24h).
        #[arg(long, value_parser = parse_duration, requires = "scopes")]
        expires_in: Option<Duration>,
    },
    /// Show a user (uses the preview api-version).
    Get {
        /// The user's raw id.
        id: String,
    },
    /// Delete a user and revoke its tokens.
    Delete {
        /// The user's raw id.
        id: String,
    },
    /// List every live user, all pages (callsign servers only).
    List {
        /// Only the user with this custom id.
        #[arg(long)]
        custom_id: Option<String>,
        /// Users per page to ask the server for (1 to 1000).
        #[arg(long)]
        max_page_size: Option<u32>,
    },
}

/// `callsign token ...`
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a token for a user.
    Issue {
        /// The user's raw id.
        id: String,
        /// Scopes, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Token lifetime, e.g. 90m or 1h (1h to 24h).
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<Duration>,
    },
    /// Revoke every token of a user.
    Revoke {
        /// The user's raw id.
        id: String,
    },
    /// Ask a callsign server whether a token is valid now.
    Introspect {
        /// The token.
        token: String,
    },
    /// Exchange a Teams user's Entra ID access token for a communication token.
    Teams {
        /// The Entra ID access token (audience https://auth.msft.communication.azure.com).
        #[arg(long, env = "CALLSIGN_AAD_TOKEN", hide_env_values = true)]
        aad_token: String,
        /// The Entra application (client) id the token was issued to.
        #[arg(long)]
        app_id: String,
        /// The Teams user's object id.
        #[arg(long)]
        user_id: String,
    },
}

/// Entra assignments (api-version 2025-03-02-preview): who may exchange Entra tokens.
#[derive(Subcommand)]
pub enum EntraAssignmentCommand {
    /// List every assignment (all pages).
    List {
        /// Assignments per page to ask the service for.
        #[arg(long)]
        max_page_size: Option<u32>,
    },
    /// Show the assignment of a user, group or tenant.
    Get {
        /// The user's, group's or tenant's object id.
        object: String,
    },
    /// Create or replace the assignment of a user, group or tenant.
    Set {
        /// The user's, group's or tenant's object id (a tenant's is its tenant id).
        object: String,
        /// The Entra tenant id.
        #[arg(long)]
        tenant: String,
        /// What the object id names.
        #[arg(long, value_enum, default_value = "user")]
        principal_type: PrincipalTypeArg,
        /// Client application ids whose tokens may be exchanged, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        client_ids: Vec<String>,
    },
    /// Delete the assignment of a user, group or tenant.
    Delete {
        /// The user's, group's or tenant's object id.
        object: String,
    },
}

/// `--principal-type` of an Entra assignment.
#[derive(Clone, Copy, ValueEnum)]
pub enum PrincipalTypeArg {
    /// One user.
    User,
    /// The members of a group.
    Group,
    /// Every user of the tenant.
    Tenant,
}

impl From<PrincipalTypeArg> for EntraPrincipalType {
    fn from(arg: PrincipalTypeArg) -> Self {
        match arg {
            PrincipalTypeArg::User => EntraPrincipalType::User,
            PrincipalTypeArg::Group => EntraPrincipalType::Group,
            PrincipalTypeArg::Tenant => EntraPrincipalType::Tenant,
        }
    }
}

/// Teams extension assignments (api-version 2025-06-30).
#[derive(Subcommand)]
pub enum AssignmentCommand {
    /// Show an assignment.
    Get {
        /// The Entra tenant id.
        #[arg(long)]
        tenant: String,
        /// The user's or resource account's object id.
        #[arg(long)]
        object: String,
    },
    /// Create or replace an assignment.
    Set {
        /// The Entra tenant id.
        #[arg(long)]
        tenant: String,
        /// The user's or resource account's object id.
        #[arg(long)]
        object: String,
        /// `user` or `resourceAccount`.
        #[arg(long, default_value = "user")]
        principal_type: String,
        /// Client application ids allowed to exchange, comma-separated (default: any).
        #[arg(long, value_delimiter = ',')]
        client_ids: Option<Vec<String>>,
    },
    /// Delete an assignment.
    Delete {
        /// The Entra tenant id.
        #[arg(long)]
        tenant: String,
        /// The user's or resource account's object id.
        #[arg(long)]
        object: String,
    },
}

/// What a client command can fail with, mapped to exit codes.
pub enum Failure {
    /// Bad arguments or configuration: exit 2.
    Usage(String),
    /// The service or the connection failed: exit 1.
    Service(String),
}

impl From<IdentityError> for Failure {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::InvalidArgument(_) | IdentityError::UnsupportedByApiVersion { .. } => {
                Failure::Usage(e.to_string())
            }
            other => Failure::Service(other.to_string()),
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("'{text}' is not a duration like 90m or 1h")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("'{text}' is not a duration like 90m or 1h"))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(format!("'{text}' is not a duration like 90m or 1h"));
    }
    Ok(Duration::from_secs(total))
}

fn scopes(names: &[String]) -> Result<Vec<TokenScope>, Failure> {
    names
        .iter()
        .map(|n| {
            n.trim()
                .parse()
                .map_err(|e: IdentityError| Failure::Usage(e.to_string()))
        })
        .collect()
}

fn expiry(duration: Option<Duration>) -> Result<Option<TokenExpiry>, Failure> {
    Ok(duration.map(TokenExpiry::new).transpose()?)
}

impl ClientArgs {
    /// A client on `api_version` (for operations only that version has).
    fn client_with_version(
        &self,
        api_version: callsign_identity::ApiVersion,
    ) -> Result<CommunicationIdentityClient, Failure> {
        let connection_string = self.connection_string.as_deref().ok_or_else(|| {
            Failure::Usage("give --connection-string or set CALLSIGN_CONNECTION_STRING".into())
        })?;
        let options = CommunicationIdentityClientOptions {
            api_version,
            ..Default::default()
        };
        Ok(CommunicationIdentityClient::from_connection_string(
            connection_string,
            Some(options),
        )?)
    }

    /// A client on the preview when `preview`, else on `--api-version`.
    fn client(&self, preview: bool) -> Result<CommunicationIdentityClient, Failure> {
        let api_version = if preview {
            ApiVersion::V2025_03_02Preview
        } else {
            self.api_version.parse().map_err(
                |e: callsign_common::api_version::UnknownApiVersion| Failure::Usage(e.to_string()),
            )?
        };
        self.client_with_version(api_version)
    }

    fn output(&self) -> Output {
        self.output.unwrap_or(if std::io::stdout().is_terminal() {
            Output::Table
        } else {
            Output::Json
        })
    }

    /// Prints a list: a JSON array, or one line per item with its fields' values.
    fn print_rows(&self, rows: Value) {
        match self.output() {
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

    /// Prints a list whose rows may lack some of `columns`: a JSON array as it is, or one line
    /// per row with every column in order, `-` where the row has none.
    fn print_columns(&self, columns: &[&str], rows: Vec<Value>) {
        match self.output() {
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

    fn print(&self, value: Value) {
        match self.output() {
            Output::Json => println!("{value}"),
            Output::Table => {
                for (key, value) in value.as_object().into_iter().flatten() {
                    println!("{key:<18} {}", shown(value));
                }
            }
        }
    }
}

/// A value as a table shows it: strings without quotes, lists of strings comma-joined.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Runs a `user` command.
pub async fn user(args: &ClientArgs, command: UserCommand) -> Result<(), Failure> {
    match command {
        UserCommand::Create {
            custom_id,
            scopes: names,
            expires_in,
        } => {
            let client = args.client(custom_id.is_some())?;
            if names.is_empty() {
                let options = CreateUserOptions {
                    custom_id,
                    ..Default::default()
                };
                let user = client.create_user(Some(options)).await?;
                args.print(json!({ "id": user.id() }));
            } else {
                let options = CreateUserAndTokenOptions {
                    custom_id,
                    expires_in: expiry(expires_in)?,
                    ..Default::default()
                };
                let (user, token) = client
                    .create_user_and_token(&scopes(&names)?, Some(options))
                    .await?;
                args.print(json!({
                    "id": user.id(),
                    "token": token.token,
                    "expiresOn": callsign_common::time_format::expires_on(token.expires_on),
                }));
            }
        }
        UserCommand::Get { id } => {
            let details = args
                .client(true)?
                .get_user(&CommunicationUserIdentifier::new(id), None)
                .await?;
            let mut value = json!({ "id": details.id });
            if let Some(custom_id) = details.custom_id {
                value["customId"] = custom_id.into();
            }
            if let Some(at) = details.last_token_issued_at {
                value["lastTokenIssuedAt"] =
                    callsign_common::time_format::last_token_issued_at(at).into();
            }
            args.print(value);
        }
        UserCommand::Delete { id } => {
            let user = CommunicationUserIdentifier::new(id);
            args.client(false)?.delete_user(&user, None).await?;
            args.print(json!({ "id": user.id(), "deleted": true }));
        }
        UserCommand::List {
            custom_id,
            max_page_size,
        } => {
            let options = ListUsersOptions {
                custom_id,
                max_page_size,
                ..Default::default()
            };
            let users: Vec<ListedUser> = args
                .client(false)?
                .list_users(Some(options))?
                .try_collect()
                .await
                .map_err(IdentityError::from)?;
            let rows = users.into_iter().map(listed_user).collect();
            args.print_columns(&LISTED_USER_COLUMNS, rows);
        }
    }
    Ok(())
}

/// The fields of a listed user, in the order the table shows them.
const LISTED_USER_COLUMNS: [&str; 5] = [
    "id",
    "customId",
    "createdAt",
    "lastTokenIssuedAt",
    "revokedAt",
];

/// A listed user as the server sends it: absent fields left out, times as `lastTokenIssuedAt`.
fn listed_user(user: ListedUser) -> Value {
    let time = |t| Value::from(callsign_common::time_format::last_token_issued_at(t));
    let mut row = Map::new();
    row.insert("id".into(), user.id.into());
    if let Some(custom_id) = user.custom_id {
        row.insert("customId".into(), custom_id.into());
    }
    row.insert("createdAt".into(), time(user.created_at));
    if let Some(at) = user.last_token_issued_at {
        row.insert("lastTokenIssuedAt".into(), time(at));
    }
    if let Some(at) = user.revoked_at {
        row.insert("revokedAt".into(), time(at));
    }
    Value::Object(row)
}

/// Runs `callsign reset`: asks first when stdin is a terminal (unless `yes`), then empties the
/// server.
pub async fn reset(args: &ClientArgs, yes: bool) -> Result<(), Failure> {
    let client = args.client(false)?;
    let endpoint = client.endpoint().to_string();
    if !yes && std::io::stdin().is_terminal() {
        let confirmed = confirm(std::io::stdin().lock(), std::io::stderr(), &endpoint)
            .map_err(|e| Failure::Usage(format!("reading the answer: {e}")))?;
        if !confirmed {
            return Err(Failure::Usage(
                "reset cancelled; nothing was deleted (--yes skips the question)".into(),
            ));
        }
    }
    client.reset(None).await?;
    args.print(json!({ "endpoint": endpoint, "reset": true }));
    Ok(())
}

/// Asks on `prompt` whether to reset `endpoint`; only `y` or `yes` agrees.
fn confirm(
    mut input: impl BufRead,
    mut prompt: impl Write,
    endpoint: &str,
) -> std::io::Result<bool> {
    write!(
        prompt,
        "Delete every identity, Teams extension assignment and Entra assignment of {endpoint}? \
         Keys stay. [y/N] "
    )?;
    prompt.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Runs an `assignment` command (Teams extension assignments, api-version 2025-06-30).
pub async fn assignment(args: &ClientArgs, command: AssignmentCommand) -> Result<(), Failure> {
    let client = args.client_with_version(callsign_identity::ApiVersion::V2025_06_30)?;
    match command {
        AssignmentCommand::Get { tenant, object } => {
            let found = client
                .get_teams_extension_assignment(&tenant, &object, None)
                .await?;
            args.print(serde_json::to_value(found).expect("serializable"));
        }
        AssignmentCommand::Set {
            tenant,
            object,
            principal_type,
            client_ids,
        } => {
            let set = client
                .set_teams_extension_assignment(&tenant, &object, &principal_type, client_ids, None)
                .await?;
            args.print(serde_json::to_value(set).expect("serializable"));
        }
        AssignmentCommand::Delete { tenant, object } => {
            client
                .delete_teams_extension_assignment(&tenant, &object, None)
                .await?;
            args.print(json!({ "tenantId": tenant, "objectId": object, "deleted": true }));
        }
    }
    Ok(())
}

/// Runs an `entra-assignment` command (Entra assignments, api-version 2025-03-02-preview).
pub async fn entra_assignment(
    args: &ClientArgs,
    command: EntraAssignmentCommand,
) -> Result<(), Failure> {
    let client = args.client(true)?;
    match command {
        EntraAssignmentCommand::List { max_page_size } => {
            let options = ListEntraAssignmentsOptions {
                max_page_size,
                ..Default::default()
            };
            let all = client.list_entra_assignments(Some(options)).await?;
            args.print_rows(serde_json::to_value(all).expect("serializable"));
        }
        EntraAssignmentCommand::Get { object } => {
            let found = client.get_entra_assignment(&object, None).await?;
            args.print(serde_json::to_value(found).expect("serializable"));
        }
        EntraAssignmentCommand::Set {
            object,
            tenant,
            principal_type,
            client_ids,
        } => {
            let request = EntraAssignmentRequest {
                tenant_id: tenant,
                principal_type: principal_type.into(),
                client_ids,
            };
            let set = client.set_entra_assignment(&object, &request, None).await?;
            args.print(serde_json::to_value(set).expect("serializable"));
        }
        EntraAssignmentCommand::Delete { object } => {
            client.delete_entra_assignment(&object, None).await?;
            args.print(json!({ "objectId": object, "deleted": true }));
        }
    }
    Ok(())
}

/// Runs a `token` command.
pub async fn token(args: &ClientArgs, command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::Issue {
            id,
            scopes: names,
            expires_in,
        } => {
            let options = GetTokenOptions {
                expires_in: expiry(expires_in)?,
                ..Default::default()
            };
            let token = args
                .client(false)?
                .get_token(
                    &CommunicationUserIdentifier::new(id),
                    &scopes(&names)?,
                    Some(options),
                )
                .await?;
            args.print(json!({
                "token": token.token,
                "expiresOn": callsign_common::time_format::expires_on(token.expires_on),
            }));
        }
        TokenCommand::Revoke { id } => {
            let user = CommunicationUserIdentifier::new(id);
            args.client(false)?.revoke_tokens(&user, None).await?;
            args.print(json!({ "id": user.id(), "revoked": true }));
        }
        TokenCommand::Teams {
            aad_token,
            app_id,
            user_id,
        } => {
            let token = args
                .client(false)?
                .get_token_for_teams_user(&aad_token, &app_id, &user_id, None)
                .await?;
            args.print(json!({
                "token": token.token,
                "expiresOn": callsign_common::time_format::expires_on(token.expires_on),
            }));
        }
        TokenCommand::Introspect { token } => {
            let answer = args.client(false)?.introspect_token(&token, None).await?;
            args.print(serde_json::to_value(answer).expect("serializable"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "90", "m", "1d", "0m", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reset_asks_and_only_yes_agrees() {
        for (answer, agreed) in [
            ("y\n", true),
            ("YES\n", true),
            (" yes \n", true),
            ("\n", false),
            ("n\n", false),
            ("yep\n", false),
            ("", false),
        ] {
            let mut prompt = Vec::new();
            let confirmed = confirm(answer.as_bytes(), &mut prompt, "http://h/").unwrap();
            assert_eq!(confirmed, agreed, "{answer:?}");
            let prompt = String::from_utf8(prompt).unwrap();
            assert!(
                prompt.contains("http://h/") && prompt.ends_with("[y/N] "),
                "{prompt}"
            );
        }
    }
}
