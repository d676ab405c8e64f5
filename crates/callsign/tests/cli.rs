//! The client commands of the `callsign` binary against a real server.

use callsign_testkit::issuer;

use callsign_testkit::TestServer;
use serde_json::Value;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_callsign");

struct Cli {
    connection_string: String,
}

impl Cli {
    fn new(server: &TestServer) -> Self {
        Self {
            connection_string: server.connection_string(),
        }
    }

    /// Runs `callsign <args>` with the connection string in the environment (output is piped).
    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("CALLSIGN_CONNECTION_STRING", &self.connection_string)
            .env("RUST_LOG", "warn");
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// Runs and expects success with JSON on stdout.
    async fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("{args:?}: {}", String::from_utf8_lossy(&output.stdout)))
    }
}

#[tokio::test]
async fn user_and_token_commands_work_end_to_end() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);

    let user = cli.json(&["user", "create"]).await;
    let id = user["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("8:acs:"));

    let with_token = cli
        .json(&[
            "user",
            "create",
            "--scopes",
            "chat,voip",
            "--expires-in",
            "1h",
        ])
        .await;
    let claims = callsign_testkit::payload(with_token["token"].as_str().unwrap());
    assert_eq!(claims["acsScope"], "chat,voip");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(with_token["expiresOn"]
        .as_str()
        .unwrap()
        .ends_with("+00:00"));

    let token = cli
        .json(&[
            "token",
            "issue",
            &id,
            "--scopes",
            "chat",
            "--expires-in",
            "90m",
        ])
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    assert_eq!(
        callsign_testkit::payload(&token)["exp"].as_i64().unwrap()
            - callsign_testkit::payload(&token)["iat"].as_i64().unwrap(),
        5400
    );
    let introspected = cli.json(&["token", "introspect", &token]).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["sub"], id);

    assert_eq!(cli.json(&["token", "revoke", &id]).await["revoked"], true);
    assert_eq!(
        cli.json(&["token", "introspect", &token]).await,
        serde_json::json!({"active": false, "reason": "revoked"})
    );

    assert_eq!(cli.json(&["user", "delete", &id]).await["deleted"], true);
    let gone = cli.run(&["token", "issue", &id, "--scopes", "chat"]).await;
    assert_eq!(gone.status.code(), Some(1), "service errors exit 1");
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("IdentityNotFound"),
        "{stderr}"
    );
    assert!(gone.stdout.is_empty());
}

#[tokio::test]
async fn custom_ids_and_user_get() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);
    let first = cli.json(&["user", "create", "--custom-id", "bob"]).await;
    let again = cli.json(&["user", "create", "--custom-id", "bob"]).await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(
        (&first["customId"], &first["created"]),
        (&"bob".into(), &true.into())
    );
    assert_eq!(again["created"], false, "the second create finds the user");
    let id = first["id"].as_str().unwrap();
    cli.json(&["token", "issue", id, "--scopes", "voip.join"])
        .await;
    let shown = cli.json(&["user", "get", id]).await;
    assert_eq!(shown["customId"], "bob");
    assert!(shown["lastTokenIssuedAt"].is_string());

    let table = cli.run(&["user", "get", id, "--output", "table"]).await;
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("customId") && l.ends_with("bob")),
        "{text}"
    );
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);
    let id = cli.json(&["user", "create"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        vec![
            "token",
            "issue",
            id.as_str(),
            "--scopes",
            "chat",
            "--expires-in",
            "30m",
        ],
        vec![
            "token",
            "issue",
            id.as_str(),
            "--scopes",
            "chat",
            "--expires-in",
            "25h",
        ],
        vec!["token", "issue", id.as_str(), "--scopes", "email"],
        vec!["token", "issue", id.as_str()],
        vec![
            "token",
            "issue",
            id.as_str(),
            "--scopes",
            "chat",
            "--expires-in",
            "soon",
        ],
        vec!["user", "frobnicate"],
        vec!["user", "create", "--api-version", "1999-01-01"],
    ] {
        let output = cli.run(&args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stderr.is_empty());
    }
    let nowhere = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["user", "create"])
        .env_remove("CALLSIGN_CONNECTION_STRING")
        .env_remove("CALLSIGN_DATA")
        .current_dir(nowhere.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--connection-string"));

    let stranger = Cli {
        connection_string: format!(
            "endpoint={}/;accesskey=AAAAAAAAAAAAAAAAAAAAAA==",
            server.base
        ),
    };
    let wrong_key = stranger.run(&["user", "create"]).await;
    assert_eq!(wrong_key.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong_key.stderr);
    assert!(stderr.contains("Denied"), "{stderr}");
    assert!(!stderr.contains("AAAAAAAAAAAAAAAA"), "no key in errors");
}

#[tokio::test]
async fn token_teams_exchanges_an_entra_token() {
    let issuer = issuer::TestIssuer::start().await;
    let config = issuer.config();
    let server = TestServer::start_with(
        std::sync::Arc::new(callsign_server::clock::SystemClock),
        move |c| c.trusted_issuers = vec![config],
    )
    .await;
    let cli = Cli::new(&server);
    let now = chrono::Utc::now().timestamp();
    let entra = issuer.token(&issuer.teams_claims(now));
    let args = |app: &'static str| {
        let entra = entra.clone();
        move || {
            vec![
                "token".to_owned(),
                "teams".to_owned(),
                "--aad-token".to_owned(),
                entra,
                "--app-id".to_owned(),
                app.to_owned(),
                "--user-id".to_owned(),
                issuer::USER_OID.to_owned(),
            ]
        }
    };
    let ok = args(issuer::APP_ID)();
    let ok: Vec<&str> = ok.iter().map(String::as_str).collect();
    let token = cli.json(&ok).await;
    let claims = callsign_testkit::payload(token["token"].as_str().unwrap());
    assert_eq!(claims["skypeid"], format!("orgid:{}", issuer::USER_OID));
    assert_eq!(claims["exp"], now + 3600);
    assert!(token["expiresOn"]
        .as_str()
        .unwrap()
        .ends_with(".0000000+00:00"));

    let wrong = args("45ab2481-1c1c-4005-be24-0ffb879b1130")();
    let wrong: Vec<&str> = wrong.iter().map(String::as_str).collect();
    let output = cli.run(&wrong).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AAD application is not the expected one."),
        "{stderr}"
    );
    assert!(!stderr.contains(&entra), "the Entra token is never printed");
}

#[tokio::test]
async fn assignment_commands_manage_teams_extension_assignments() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);
    let (tenant, object) = (issuer::TENANT, issuer::USER_OID);
    let target = ["--tenant", tenant, "--object", object];

    let missing = cli
        .run(&[&["assignment", "get"][..], &target].concat())
        .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("AssignmentNotFound"));

    let set = cli
        .json(
            &[
                &["assignment", "set"][..],
                &target,
                &["--client-ids", issuer::APP_ID],
            ]
            .concat(),
        )
        .await;
    assert_eq!(
        set,
        serde_json::json!({"objectId": object, "tenantId": tenant, "principalType": "user",
                           "clientIds": [issuer::APP_ID]})
    );
    let got = cli
        .json(&[&["assignment", "get"][..], &target].concat())
        .await;
    assert_eq!(got, set);
    let replaced = cli
        .json(
            &[
                &["assignment", "set"][..],
                &target,
                &["--principal-type", "resourceAccount"],
            ]
            .concat(),
        )
        .await;
    assert_eq!(replaced["principalType"], "resourceAccount");
    assert!(replaced.get("clientIds").is_none());

    let deleted = cli
        .json(&[&["assignment", "delete"][..], &target].concat())
        .await;
    assert_eq!(deleted["deleted"], true);
    let again = cli
        .run(&[&["assignment", "delete"][..], &target].concat())
        .await;
    assert_eq!(again.status.code(), Some(1));
}

#[tokio::test]
async fn entra_assignment_commands_set_list_get_and_delete() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);
    let (tenant, app) = (issuer::TENANT, issuer::APP_ID);
    let group = "0d2f2a5e-6b0b-4c7e-9f5a-3a1b2c3d4e5f";

    let user = cli
        .json(&[
            "entra-assignment",
            "set",
            issuer::USER_OID,
            "--tenant",
            tenant,
            "--client-ids",
            app,
        ])
        .await;
    assert_eq!(
        user,
        serde_json::json!({"objectId": issuer::USER_OID, "tenantId": tenant,
                           "principalType": "user", "clientIds": [app]})
    );
    let group_set = cli
        .json(&[
            "entra-assignment",
            "set",
            group,
            "--tenant",
            tenant,
            "--principal-type",
            "group",
            "--client-ids",
            &format!("{app},45ab2481-1c1c-4005-be24-0ffb879b1130"),
        ])
        .await;
    assert_eq!(group_set["principalType"], "group");
    assert_eq!(group_set["clientIds"].as_array().unwrap().len(), 2);

    // One per page: the command reads both pages.
    let listed = cli
        .json(&["entra-assignment", "list", "--max-page-size", "1"])
        .await;
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["objectId"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = [group, issuer::USER_OID];
    expected.sort();
    assert_eq!(ids, expected);
    let table = cli
        .run(&["entra-assignment", "list", "--output", "table"])
        .await;
    let table = String::from_utf8(table.stdout).unwrap();
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table
        .lines()
        .any(|l| l.starts_with(group) && l.contains("group")));

    assert_eq!(
        cli.json(&["entra-assignment", "get", group]).await,
        group_set
    );
    let deleted = cli.json(&["entra-assignment", "delete", group]).await;
    assert_eq!(deleted["deleted"], true);
    let missing = cli.run(&["entra-assignment", "get", group]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("AssignmentNotFound"));
    // A principal type the service does not have is a usage error.
    let usage = cli
        .run(&[
            "entra-assignment",
            "set",
            group,
            "--tenant",
            tenant,
            "--principal-type",
            "resourceAccount",
            "--client-ids",
            app,
        ])
        .await;
    assert_eq!(usage.status.code(), Some(2));
}

#[tokio::test]
async fn user_list_reads_every_page() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);
    assert_eq!(cli.json(&["user", "list"]).await, serde_json::json!([]));
    let mut created = Vec::new();
    for n in 0..5 {
        let custom_id = format!("user-{n}");
        let mut args = vec!["user", "create"];
        if n < 2 {
            args.extend(["--custom-id", custom_id.as_str()]);
        }
        created.push(cli.json(&args).await["id"].as_str().unwrap().to_owned());
    }
    cli.json(&["token", "issue", &created[0], "--scopes", "chat"])
        .await;
    cli.json(&["token", "revoke", &created[4]]).await;
    created.sort();

    // Two per page: the command reads all three pages.
    let listed = cli.json(&["user", "list", "--max-page-size", "2"]).await;
    let listed = listed.as_array().unwrap();
    let ids: Vec<&str> = listed.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, created);
    for user in listed {
        assert!(user["createdAt"].as_str().unwrap().ends_with("+00:00"));
    }
    let tagged = listed.iter().find(|u| u["customId"] == "user-0").unwrap();
    assert!(tagged["lastTokenIssuedAt"].is_string());
    assert_eq!(
        listed
            .iter()
            .filter(|u| u.get("customId").is_some())
            .count(),
        2
    );
    assert_eq!(
        listed
            .iter()
            .filter(|u| u.get("revokedAt").is_some())
            .count(),
        1
    );

    let bob = cli.json(&["user", "list", "--custom-id", "user-1"]).await;
    assert_eq!(bob.as_array().unwrap().len(), 1);
    assert_eq!(bob[0]["customId"], "user-1");
    assert_eq!(
        cli.json(&["user", "list", "--custom-id", "nobody"]).await,
        serde_json::json!([])
    );

    // The table has one line per user and every column, `-` where a user has none.
    let table = cli.run(&["user", "list", "--output", "table"]).await;
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert_eq!(table.lines().count(), 5, "{table}");
    assert!(table
        .lines()
        .all(|l| l.split("  ").count() == 5 && l.starts_with("8:acs:")));
    assert!(table.lines().any(|l| l.contains("  user-0  ")), "{table}");

    for size in ["0", "1001", "many"] {
        let usage = cli.run(&["user", "list", "--max-page-size", size]).await;
        assert_eq!(usage.status.code(), Some(2), "{size}");
    }
}

#[tokio::test]
async fn reset_empties_a_server_that_allows_it_and_fails_on_others() {
    let server = TestServer::start_with(
        std::sync::Arc::new(callsign_server::clock::SystemClock),
        |c| c.http.allow_reset = true,
    )
    .await;
    let cli = Cli::new(&server);
    let user = cli.json(&["user", "create", "--scopes", "chat"]).await;
    cli.json(&["user", "create"]).await;
    assert_eq!(
        cli.json(&["user", "list"]).await.as_array().unwrap().len(),
        2
    );
    // stdin is not a terminal here: no question, it proceeds.
    let reset = cli.json(&["reset"]).await;
    assert_eq!(reset["reset"], true);
    assert_eq!(reset["endpoint"], format!("{}/", server.base));
    assert_eq!(cli.json(&["user", "list"]).await, serde_json::json!([]));
    assert_eq!(
        cli.json(&["token", "introspect", user["token"].as_str().unwrap()])
            .await,
        serde_json::json!({"active": false, "reason": "identityNotFound"})
    );
    assert_eq!(cli.json(&["reset", "--yes"]).await["reset"], true);

    let plain = TestServer::start().await;
    let cli = Cli::new(&plain);
    let kept = cli.json(&["user", "create"]).await;
    let refused = cli.run(&["reset", "--yes"]).await;
    assert_eq!(refused.status.code(), Some(1), "service errors exit 1");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("NotFound"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());
    assert_eq!(cli.json(&["user", "list"]).await[0]["id"], kept["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_prints_the_feed_and_follows_it() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);
    let client = server.client();
    let first = client.create_user().await;
    assert_eq!(client.revoke(&first).await.status, 204);

    let output = cli.run(&["events"]).await;
    assert!(output.status.success());
    let events: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["identity.created", "identity.tokensRevoked"]);
    assert_eq!(events[1]["subject"], first.as_str());
    assert!(events[1]["details"]["revokedBeforeMicros"].is_i64());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let cursor = stderr.trim().strip_prefix("cursor: ").unwrap().to_owned();
    assert_eq!(cursor, events[1]["cursor"].as_str().unwrap());

    // Following from that cursor: only what comes next, as it happens.
    let mut follow = std::process::Command::new(BIN)
        .args(["events", "--follow", "--after", &cursor])
        .env("CALLSIGN_CONNECTION_STRING", server.connection_string())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let next = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    });
    let second = client.create_user().await;
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), next)
        .await
        .expect("the followed event within 30 s")
        .unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["type"], "identity.created");
    assert_eq!(event["subject"], second.as_str());

    // A cursor the server did not make is its 400, said once.
    let bad = cli.run(&["events", "--after", "nonsense"]).await;
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(stderr.contains("cursor is not valid"), "{stderr}");
}
