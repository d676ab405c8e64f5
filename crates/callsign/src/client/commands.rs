//! The client subcommands: `callsign user ...`, `token ...`, `assignment ...` and
//! `entra-assignment ...`, talking to any Communication Identity endpoint (a callsign server or
//! Azure Communication Services), and `callsign events` and `callsign reset` (callsign servers
//! only).

use super::Session;
use crate::failure::Failure;
use callsign_identity::{
    ApiVersion, CommunicationIdentityClientCreateUserAndTokenOptions,
    CommunicationIdentityClientCreateUserOptions, CommunicationIdentityClientGetTokenOptions,
    CommunicationIdentityClientListEntraAssignmentsOptions,
    CommunicationIdentityClientListUsersOptions, CommunicationIdentityClientReadEventsOptions,
    CommunicationUserIdentifier, EntraAssignment, EntraAssignmentRequest, EntraPrincipalType,
    IdentityError, ListedUser, TeamsExtensionAssignmentRequest, TeamsExtensionPrincipalType,
    TokenExpiry, TokenScope,
};
use clap::{Subcommand, ValueEnum};
use futures::TryStreamExt;
use serde_json::{json, Map, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// What a client command fails with: the service's or client's error (given a hint by the
/// session, which knows the target), or a failure already worded.
pub enum CommandError {
    /// From the identity client.
    Identity(IdentityError),
    /// Worded here.
    Failure(Failure),
}

impl From<IdentityError> for CommandError {
    fn from(e: IdentityError) -> Self {
        CommandError::Identity(e)
    }
}

impl From<Failure> for CommandError {
    fn from(f: Failure) -> Self {
        CommandError::Failure(f)
    }
}

type Result<T, E = CommandError> = std::result::Result<T, E>;

/// `callsign user ...`
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user, optionally with a token.
    #[command(
        after_help = "Examples:\n  callsign user create\n  callsign user create --scopes chat,voip --expires-in 1h\n  callsign user create --custom-id alice --scopes chat"
    )]
    Create {
        /// Tag the user with your own id: creating again with it returns the same user (api-version
        /// 2025-03-02-preview).
        #[arg(long)]
        custom_id: Option<String>,
        /// Also issue a token with these scopes, comma-separated: chat, voip, chat.join,
        /// chat.join.limited, voip.join.
        #[arg(long, value_delimiter = ',', value_parser = parse_scope)]
        scopes: Vec<TokenScope>,
        /// The token's lifetime, 1h to 24h: 90m, 1h, 1d, 3600s [default: 24h].
        #[arg(long, value_parser = parse_expiry, requires = "scopes")]
        expires_in: Option<TokenExpiry>,
    },
    /// Show a user (api-version 2025-03-02-preview).
    #[command(after_help = "Example:\n  callsign user get 8:acs:…")]
    Get {
        /// The user's raw id.
        id: String,
    },
    /// Delete a user and revoke its tokens.
    #[command(after_help = "Example:\n  callsign user delete 8:acs:…")]
    Delete {
        /// The user's raw id.
        id: String,
    },
    /// List every live user, all pages (callsign servers only).
    #[command(
        after_help = "Examples:\n  callsign user list\n  callsign user list --custom-id alice --output json"
    )]
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
    #[command(
        after_help = "Example:\n  callsign token issue 8:acs:… --scopes chat,voip --expires-in 90m"
    )]
    Issue {
        /// The user's raw id.
        id: String,
        /// Scopes, comma-separated: chat, voip, chat.join, chat.join.limited, voip.join.
        #[arg(long, value_delimiter = ',', value_parser = parse_scope, required = true)]
        scopes: Vec<TokenScope>,
        /// The token's lifetime, 1h to 24h: 90m, 1h, 1d, 3600s [default: 24h].
        #[arg(long, value_parser = parse_expiry)]
        expires_in: Option<TokenExpiry>,
    },
    /// Revoke every token of a user.
    #[command(after_help = "Example:\n  callsign token revoke 8:acs:…")]
    Revoke {
        /// The user's raw id.
        id: String,
    },
    /// Ask a callsign server whether a token is valid now, and if not, why.
    #[command(after_help = "Example:\n  callsign token introspect eyJhbGciOi…")]
    Introspect {
        /// The token.
        token: String,
    },
    /// Exchange a Teams user's Entra ID access token for a communication token.
    #[command(
        after_help = "Example:\n  CALLSIGN_AAD_TOKEN=eyJ0eXAi… callsign token teams --app-id <client id> --user-id <object id>"
    )]
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
    #[command(after_help = "Example:\n  callsign entra-assignment list")]
    List {
        /// Assignments per page to ask the service for.
        #[arg(long)]
        max_page_size: Option<u32>,
    },
    /// Show the assignment of a user, group or tenant.
    #[command(after_help = "Example:\n  callsign entra-assignment get <object id>")]
    Get {
        /// The user's, group's or tenant's object id.
        object: String,
    },
    /// Create or replace the assignment of a user, group or tenant.
    #[command(
        after_help = "Example:\n  callsign entra-assignment set <group id> --tenant <tenant id> --principal-type group --client-ids <client id>"
    )]
    Set {
        /// The user's, group's or tenant's object id (a tenant's is its tenant id).
        object: String,
        /// The Entra tenant id.
        #[arg(long)]
        tenant: String,
        /// What the object id names.
        #[arg(long, value_enum, default_value = "user")]
        principal_type: EntraPrincipalTypeArg,
        /// Client application ids whose tokens may be exchanged, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        client_ids: Vec<String>,
    },
    /// Delete the assignment of a user, group or tenant.
    #[command(after_help = "Example:\n  callsign entra-assignment delete <object id>")]
    Delete {
        /// The user's, group's or tenant's object id.
        object: String,
    },
}

/// `--principal-type` of an Entra assignment.
#[derive(Clone, Copy, ValueEnum)]
pub enum EntraPrincipalTypeArg {
    /// One user.
    User,
    /// The members of a group.
    Group,
    /// Every user of the tenant.
    Tenant,
}

impl From<EntraPrincipalTypeArg> for EntraPrincipalType {
    fn from(arg: EntraPrincipalTypeArg) -> Self {
        match arg {
            EntraPrincipalTypeArg::User => EntraPrincipalType::User,
            EntraPrincipalTypeArg::Group => EntraPrincipalType::Group,
            EntraPrincipalTypeArg::Tenant => EntraPrincipalType::Tenant,
        }
    }
}

/// `--principal-type` of a Teams extension assignment.
#[derive(Clone, Copy, ValueEnum)]
pub enum TeamsPrincipalTypeArg {
    /// A Teams user.
    User,
    /// A Teams resource account (a call queue or auto attendant).
    #[value(name = "resourceAccount", alias = "resource-account")]
    ResourceAccount,
}

impl From<TeamsPrincipalTypeArg> for TeamsExtensionPrincipalType {
    fn from(arg: TeamsPrincipalTypeArg) -> Self {
        match arg {
            TeamsPrincipalTypeArg::User => TeamsExtensionPrincipalType::User,
            TeamsPrincipalTypeArg::ResourceAccount => TeamsExtensionPrincipalType::ResourceAccount,
        }
    }
}

/// Teams extension assignments (api-version 2025-06-30).
#[derive(Subcommand)]
pub enum AssignmentCommand {
    /// Show an assignment.
    #[command(
        after_help = "Example:\n  callsign assignment get --tenant <tenant id> --object <object id>"
    )]
    Get {
        /// The Entra tenant id.
        #[arg(long)]
        tenant: String,
        /// The user's or resource account's object id.
        #[arg(long)]
        object: String,
    },
    /// Create or replace an assignment.
    #[command(
        after_help = "Example:\n  callsign assignment set --tenant <tenant id> --object <object id> --client-ids <client id>"
    )]
    Set {
        /// The Entra tenant id.
        #[arg(long)]
        tenant: String,
        /// The user's or resource account's object id.
        #[arg(long)]
        object: String,
        /// What the object id names.
        #[arg(long, value_enum, default_value = "user")]
        principal_type: TeamsPrincipalTypeArg,
        /// Client application ids allowed to exchange, comma-separated (default: any).
        #[arg(long, value_delimiter = ',')]
        client_ids: Option<Vec<String>>,
    },
    /// Delete an assignment.
    #[command(
        after_help = "Example:\n  callsign assignment delete --tenant <tenant id> --object <object id>"
    )]
    Delete {
        /// The Entra tenant id.
        #[arg(long)]
        tenant: String,
        /// The user's or resource account's object id.
        #[arg(long)]
        object: String,
    },
}

/// The scopes a token may have, for messages.
const SCOPE_NAMES: &str = "chat, voip, chat.join, chat.join.limited, voip.join";

/// One scope of `--scopes` (spaces around it allowed, as in `"chat, voip"`).
fn parse_scope(text: &str) -> std::result::Result<TokenScope, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "unknown scope {:?}; the scopes are {SCOPE_NAMES}",
            text.trim()
        )
    })
}

/// A token lifetime: a number with a unit (`s`, `m`, `h`, `d`), parts added (`1h30m`), within the
/// service's 1 h to 24 h.
fn parse_expiry(text: &str) -> std::result::Result<TokenExpiry, String> {
    let duration = parse_duration(text)?;
    TokenExpiry::new(duration).map_err(|_| {
        format!(
            "{text:?} is {} minutes; a token lives 1h to 24h",
            duration.as_secs() / 60
        )
    })
}

fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a lifetime like 90m, 1h, 1d or 3600s");
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{text:?} needs a unit: {text}s (seconds), {text}m (minutes) or {text}h (hours)"
        ));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(invalid()),
        };
        let n: u64 = number.parse().map_err(|_| invalid())?;
        total = n
            .checked_mul(unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(invalid)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

/// Runs a `user` command.
pub async fn user(s: &Session, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Create {
            custom_id,
            scopes,
            expires_in,
        } => create_user(s, custom_id, scopes, expires_in).await?,
        UserCommand::Get { id } => {
            let details = s
                .client_needing(ApiVersion::V2025_03_02Preview, "user get")?
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
            s.print(value);
        }
        UserCommand::Delete { id } => {
            let user = CommunicationUserIdentifier::new(id);
            s.client()?.delete_user(&user, None).await?;
            s.print(json!({ "id": user.id(), "deleted": true }));
        }
        UserCommand::List {
            custom_id,
            max_page_size,
        } => {
            let users = list_users(s, custom_id, max_page_size).await?;
            let rows = users.into_iter().map(listed_user).collect();
            s.print_columns(&LISTED_USER_COLUMNS, rows);
        }
    }
    Ok(())
}

/// `user create`: with a custom id, says whether the user was created or already existed (the
/// service answers 201 either way; callsign's listing tells, beforehand).
async fn create_user(
    s: &Session,
    custom_id: Option<String>,
    scopes: Vec<TokenScope>,
    expires_in: Option<TokenExpiry>,
) -> Result<()> {
    let existed = match &custom_id {
        Some(custom_id) => custom_id_exists(s, custom_id).await?,
        None => None,
    };
    let client = match custom_id {
        Some(_) => s.client_needing(ApiVersion::V2025_03_02Preview, "user create --custom-id")?,
        None => s.client()?,
    };
    let mut value = if scopes.is_empty() {
        let options = CommunicationIdentityClientCreateUserOptions {
            custom_id: custom_id.clone(),
            ..Default::default()
        };
        let user = client.create_user(Some(options)).await?;
        json!({ "id": user.id() })
    } else {
        let options = CommunicationIdentityClientCreateUserAndTokenOptions {
            custom_id: custom_id.clone(),
            expires_in,
            ..Default::default()
        };
        let (user, token) = client.create_user_and_token(&scopes, Some(options)).await?;
        json!({
            "id": user.id(),
            "token": token.token,
            "expiresOn": callsign_common::time_format::expires_on(token.expires_on),
        })
    };
    if let Some(custom_id) = custom_id {
        value["customId"] = custom_id.into();
        if let Some(existed) = existed {
            value["created"] = (!existed).into();
        }
    }
    s.print(value);
    Ok(())
}

/// Whether a live user has `custom_id` now, when the server can say (callsign's listing; other
/// services answer 404 and `None` is returned).
async fn custom_id_exists(s: &Session, custom_id: &str) -> Result<Option<bool>> {
    match list_users(s, Some(custom_id.to_owned()), None).await {
        Ok(users) => Ok(Some(!users.is_empty())),
        Err(CommandError::Identity(IdentityError::Service { status: 404, .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn list_users(
    s: &Session,
    custom_id: Option<String>,
    max_page_size: Option<u32>,
) -> Result<Vec<ListedUser>> {
    let options = CommunicationIdentityClientListUsersOptions {
        custom_id,
        max_page_size,
        ..Default::default()
    };
    let users = s
        .client()?
        .list_users(Some(options))?
        .try_collect()
        .await
        .map_err(IdentityError::from)?;
    Ok(users)
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

/// How long `callsign events --follow` asks the server to wait for an event: under the
/// transport's 30 s read timeout.
const FOLLOW_WAIT: Duration = Duration::from_secs(25);

/// Runs `callsign events`: the change feed's events, one JSON object a line, from `after` (or
/// the oldest the server keeps) to the newest — then, with `follow`, each new one as it is
/// stored, until interrupted. Without `follow`, the cursor to continue from goes to stderr.
pub async fn events(s: &Session, after: Option<String>, follow: bool) -> Result<()> {
    let client = s.client()?;
    let mut cursor = after;
    loop {
        let options = CommunicationIdentityClientReadEventsOptions {
            after: cursor.take(),
            max_page_size: Some(1000),
            wait: follow.then_some(FOLLOW_WAIT),
            ..Default::default()
        };
        let page = client.read_events(Some(options)).await?;
        let done = page.value.is_empty() && !follow;
        let mut out = std::io::stdout().lock();
        for event in &page.value {
            let line = serde_json::to_string(event).expect("an event always serialises");
            // A closed pipe (`| head`) ends the command quietly.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return Ok(());
            }
        }
        cursor = Some(page.cursor);
        if done {
            eprintln!("cursor: {}", cursor.unwrap_or_default());
            return Ok(());
        }
    }
}

/// Runs `callsign reset`: asks first when stdin is a terminal (unless `yes`), then empties the
/// server.
pub async fn reset(s: &Session, yes: bool) -> Result<()> {
    let client = s.client()?;
    let endpoint = client.endpoint().to_string();
    if !yes && std::io::stdin().is_terminal() {
        let confirmed = confirm(std::io::stdin().lock(), std::io::stderr(), &endpoint)
            .map_err(|e| Failure::failed(anyhow::Error::new(e).context("reading the answer")))?;
        if !confirmed {
            return Err(Failure::usage_msg(
                "reset cancelled; nothing was deleted (--yes skips the question)",
            )
            .into());
        }
    }
    client.reset(None).await?;
    s.print(json!({ "endpoint": endpoint, "reset": true }));
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
pub async fn assignment(s: &Session, command: AssignmentCommand) -> Result<()> {
    let client = s.client_needing(ApiVersion::V2025_06_30, "assignment")?;
    match command {
        AssignmentCommand::Get { tenant, object } => {
            let found = client
                .get_teams_extension_assignment(&tenant, &object, None)
                .await?;
            s.print(serde_json::to_value(found).expect("serializable"));
        }
        AssignmentCommand::Set {
            tenant,
            object,
            principal_type,
            client_ids,
        } => {
            let set = client
                .set_teams_extension_assignment(
                    &tenant,
                    &object,
                    &TeamsExtensionAssignmentRequest::new(principal_type.into(), client_ids),
                    None,
                )
                .await?;
            s.print(serde_json::to_value(set).expect("serializable"));
        }
        AssignmentCommand::Delete { tenant, object } => {
            client
                .delete_teams_extension_assignment(&tenant, &object, None)
                .await?;
            s.print(json!({ "tenantId": tenant, "objectId": object, "deleted": true }));
        }
    }
    Ok(())
}

/// Runs an `entra-assignment` command (Entra assignments, api-version 2025-03-02-preview).
pub async fn entra_assignment(s: &Session, command: EntraAssignmentCommand) -> Result<()> {
    let client = s.client_needing(ApiVersion::V2025_03_02Preview, "entra-assignment")?;
    match command {
        EntraAssignmentCommand::List { max_page_size } => {
            let options = CommunicationIdentityClientListEntraAssignmentsOptions {
                max_page_size,
                ..Default::default()
            };
            let all: Vec<EntraAssignment> = client
                .list_entra_assignments(Some(options))?
                .try_collect()
                .await
                .map_err(IdentityError::from)?;
            s.print_rows(serde_json::to_value(all).expect("serializable"));
        }
        EntraAssignmentCommand::Get { object } => {
            let found = client.get_entra_assignment(&object, None).await?;
            s.print(serde_json::to_value(found).expect("serializable"));
        }
        EntraAssignmentCommand::Set {
            object,
            tenant,
            principal_type,
            client_ids,
        } => {
            let request = EntraAssignmentRequest::new(tenant, principal_type.into(), client_ids);
            let set = client.set_entra_assignment(&object, &request, None).await?;
            s.print(serde_json::to_value(set).expect("serializable"));
        }
        EntraAssignmentCommand::Delete { object } => {
            client.delete_entra_assignment(&object, None).await?;
            s.print(json!({ "objectId": object, "deleted": true }));
        }
    }
    Ok(())
}

/// Runs a `token` command.
pub async fn token(s: &Session, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Issue {
            id,
            scopes,
            expires_in,
        } => {
            let options = CommunicationIdentityClientGetTokenOptions {
                expires_in,
                ..Default::default()
            };
            let token = s
                .client()?
                .get_token(
                    &CommunicationUserIdentifier::new(id),
                    &scopes,
                    Some(options),
                )
                .await?;
            s.print(json!({
                "token": token.token,
                "expiresOn": callsign_common::time_format::expires_on(token.expires_on),
            }));
        }
        TokenCommand::Revoke { id } => {
            let user = CommunicationUserIdentifier::new(id);
            s.client()?.revoke_tokens(&user, None).await?;
            s.print(json!({ "id": user.id(), "revoked": true }));
        }
        TokenCommand::Teams {
            aad_token,
            app_id,
            user_id,
        } => {
            let token = s
                .client()?
                .get_token_for_teams_user(&aad_token, &app_id, &user_id, None)
                .await?;
            s.print(json!({
                "token": token.token,
                "expiresOn": callsign_common::time_format::expires_on(token.expires_on),
            }));
        }
        TokenCommand::Introspect { token } => {
            let answer = s.client()?.introspect_token(&token, None).await?;
            s.print(serde_json::to_value(answer).expect("serializable"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, seconds) in [
            ("90m", 5400),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1d", 86_400),
            ("3600s", 3600),
            (" 2h ", 7200),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        for bad in ["", "m", "0m", "-1h", "1w", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let bare = parse_duration("3600").unwrap_err();
        assert!(bare.contains("3600s"), "{bare}");
        assert_eq!(parse_expiry("1d").unwrap().minutes(), 1440);
        let short = parse_expiry("30m").unwrap_err();
        assert!(short.contains("1h to 24h"), "{short}");
    }

    #[test]
    fn scopes_are_trimmed_and_a_wrong_one_lists_the_valid_ones() {
        assert_eq!(parse_scope(" voip").unwrap(), TokenScope::Voip);
        let wrong = parse_scope("chats").unwrap_err();
        assert!(wrong.contains("chat, voip, chat.join"), "{wrong}");
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
