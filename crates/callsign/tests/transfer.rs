//! Moving data with the binary: `callsign export` / `import` (a data dir to a PostgreSQL
//! cluster with every issued token still valid), `serve --seed` fixtures, and `callsign backup`
//! of a running server's data dir.

use callsign_testkit::pg_cluster::PgCluster;
use callsign_testkit::process::ServeProcess;
use callsign_testkit::{encode, Client};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_callsign");
const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn callsign() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("RUST_LOG", "warn")
        .env("CALLSIGN_MASTER_KEY", MASTER_KEY)
        .env_remove("CALLSIGN_DATA")
        .env_remove("CALLSIGN_ACCESS_KEY")
        .env_remove("CALLSIGN_DATABASE_URL");
    cmd
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn serve(args: &[&str]) -> ServeProcess {
    let mut cmd = callsign();
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::inherit());
    ServeProcess::spawn(&mut cmd, false)
}

/// What a test made: users in each state, and the tokens they were given.
struct Made {
    live: String,
    live_token: String,
    revoked_token: String,
    after_revoke_token: String,
    deleted_token: String,
}

async fn populate(client: &Client) -> Made {
    let created = client
        .post(
            "/identities?api-version=2025-03-02-preview",
            &json!({"customId": "carol", "createTokenWithScopes": ["chat"]}),
        )
        .await
        .json();
    let live = created["identity"]["id"].as_str().unwrap().to_owned();
    let live_token = created["accessToken"]["token"].as_str().unwrap().to_owned();
    let revoked = client.create_user().await;
    let revoked_token = client.issue_token(&revoked, &["voip"]).await;
    assert_eq!(client.revoke(&revoked).await.status, 204);
    let after_revoke_token = client.issue_token(&revoked, &["chat"]).await;
    let deleted = client.create_user().await;
    let deleted_token = client.issue_token(&deleted, &["chat"]).await;
    assert_eq!(client.delete(&deleted).await.status, 204);
    let assignment = client
        .send(
            "PUT",
            "/access/entra/assignments/72f988bf-86f1-41af-91ab-2d7cd011db47?api-version=2025-03-02-preview",
            Some(br#"{"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","principalType":"tenant","clientIds":["1fd5118e-2576-4263-8130-9503064c837a"]}"#),
        )
        .await;
    assert_eq!(assignment.status, 201, "{}", assignment.text());
    Made {
        live,
        live_token,
        revoked_token,
        after_revoke_token,
        deleted_token,
    }
}

/// Every user, token and assignment of `made` is served as it was.
async fn check_served(client: &Client, made: &Made) {
    for (token, active) in [
        (&made.live_token, true),
        (&made.revoked_token, false),
        (&made.after_revoke_token, true),
        (&made.deleted_token, false),
    ] {
        assert_eq!(client.introspect(token).await["active"], active);
    }
    let user = client
        .send(
            "GET",
            &format!(
                "/identities/{}?api-version=2025-03-02-preview",
                encode(&made.live)
            ),
            None,
        )
        .await;
    assert_eq!(user.status, 200, "{}", user.text());
    assert_eq!(user.json()["customId"], "carol");
    let again = client
        .post(
            "/identities?api-version=2025-03-02-preview",
            &json!({"customId": "carol"}),
        )
        .await;
    assert_eq!(again.json()["identity"]["id"], made.live.as_str());
    let assignments = client
        .send(
            "GET",
            "/access/entra/assignments?api-version=2025-03-02-preview",
            None,
        )
        .await;
    assert_eq!(assignments.json()["value"].as_array().unwrap().len(), 1);
}

fn export(data: &Path, include_keys: bool, file: &Path) {
    let mut cmd = callsign();
    cmd.arg("export").arg("--data").arg(data);
    if include_keys {
        cmd.arg("--include-keys");
    }
    let output = ok(cmd.output().unwrap());
    std::fs::write(file, &output.stdout).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_moves_to_a_cluster_with_every_token_still_valid() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&["--data", data.to_str().unwrap()]);
    let made = populate(&server.client()).await;
    let connection_string = server.connection_string.clone();
    drop(server);

    let file = dir.path().join("export.jsonl");
    export(&data, true, &file);
    let cluster = PgCluster::start();
    let url = cluster.url();
    let imported = ok(callsign()
        .arg("import")
        .arg(&file)
        .args(["--database-url", &url])
        .output()
        .unwrap());
    assert_eq!(
        String::from_utf8_lossy(&imported.stderr).trim(),
        "imported 3 identities and 1 assignments"
    );
    let node = serve(&[
        "--database-url",
        &url,
        "--data",
        dir.path().join("n").to_str().unwrap(),
    ]);
    let key = |s: &str| s.split("accesskey=").nth(1).unwrap().to_owned();
    assert_eq!(key(&node.connection_string), key(&connection_string));
    check_served(&node.client(), &made).await;

    // The cluster now holds data: a second import is refused.
    let again = callsign()
        .arg("import")
        .arg(&file)
        .args(["--database-url", &url])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds identities"));
}

#[tokio::test]
async fn an_export_without_keys_keeps_the_resource_and_gets_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&["--data", data.to_str().unwrap()]);
    let made = populate(&server.client()).await;
    let old_key = server.key();
    drop(server);
    let file = dir.path().join("export.jsonl");
    export(&data, false, &file);
    assert!(!std::fs::read_to_string(&file)
        .unwrap()
        .contains("PRIVATE KEY"));

    let copy = dir.path().join("copy");
    ok(callsign()
        .arg("import")
        .arg(&file)
        .arg("--data")
        .arg(&copy)
        .output()
        .unwrap());
    let server = serve(&["--data", copy.to_str().unwrap()]);
    assert_ne!(server.key(), old_key, "new access keys");
    let client = server.client();
    // Old tokens are signed by a key this resource no longer has; its users are its own.
    assert_eq!(client.introspect(&made.live_token).await["active"], false);
    let token = client.issue_token(&made.live, &["chat"]).await;
    assert_eq!(client.introspect(&token).await["active"], true);
}

#[tokio::test]
async fn seeding_loads_fixtures_once_and_refuses_another_resource() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&["--data", data.to_str().unwrap()]);
    let made = populate(&server.client()).await;
    drop(server);
    let file = dir.path().join("seed.jsonl");
    export(&data, true, &file);
    let seed = file.to_str().unwrap();

    // In memory, every start: the same users, their tokens valid.
    for _ in 0..2 {
        let server = serve(&["--in-memory", "--seed", seed]);
        check_served(&server.client(), &made).await;
    }
    // Into a data dir, twice: nothing doubles.
    let fixtures = dir.path().join("fixtures");
    for _ in 0..2 {
        let server = serve(&["--data", fixtures.to_str().unwrap(), "--seed", seed]);
        let listed: Value = server
            .client()
            .send("GET", "/callsign/identities", None)
            .await
            .json();
        assert_eq!(listed["value"].as_array().unwrap().len(), 2, "{listed}");
    }
    // A data dir of another resource refuses the seed.
    let other = dir.path().join("other");
    drop(serve(&["--data", other.to_str().unwrap()]));
    let refused = callsign()
        .args(["serve", "--addr", "127.0.0.1:0", "--quiet", "--seed", seed])
        .arg("--data")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("identities cannot move between resources"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_backup_taken_while_the_server_runs_starts_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&["--data", data.to_str().unwrap()]);
    let made = populate(&server.client()).await;
    let backup = dir.path().join("backup");
    ok(callsign()
        .arg("backup")
        .arg(&backup)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap());
    // Writes after the backup are the original's only.
    let later = server.client().create_user().await;
    drop(server);

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(backup.join("access-keys.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let restored = serve(&["--data", backup.to_str().unwrap()]);
    let client = restored.client();
    check_served(&client, &made).await;
    let missing = client
        .send(
            "GET",
            &format!(
                "/identities/{}?api-version=2025-03-02-preview",
                encode(&later)
            ),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);

    let again = callsign()
        .arg("backup")
        .arg(&backup)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "an existing backup is not overwritten"
    );
}
