//! `--signing-alg` on every backend, through HTTP: tokens are signed with the chosen algorithm,
//! the JWKS publishes the new key beside the old one, and a restart without the flag keeps it.

use callsign_server::clock::SystemClock;
use callsign_server::keys::SigningAlg;
use callsign_testkit::{header, TestServer, TestStorage};
use std::sync::Arc;

async fn start(storage: &TestStorage, alg: Option<SigningAlg>) -> TestServer {
    let storage = storage.config();
    TestServer::start_with(Arc::new(SystemClock), move |config| {
        config.storage = storage;
        config.signing_alg = alg;
    })
    .await
}

async fn jwks_algs(server: &TestServer) -> Vec<String> {
    let jwks = server
        .client()
        .send("GET", "/.well-known/jwks.json", None)
        .await
        .json();
    let mut algs: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap().to_owned())
        .collect();
    algs.sort();
    algs
}

async fn switches_and_stays(storage: TestStorage) {
    let first = start(&storage, None).await;
    let client = first.client();
    let id = client.create_user().await;
    let rsa_token = client.issue_token(&id, &["chat"]).await;
    assert_eq!(header(&rsa_token)["alg"], "RS256");
    first.stop().await;

    let second = start(&storage, Some(SigningAlg::Es256)).await;
    let client = second.client();
    let ec_token = client.issue_token(&id, &["chat"]).await;
    assert_eq!(header(&ec_token)["alg"], "ES256");
    assert_ne!(header(&ec_token)["kid"], header(&rsa_token)["kid"]);
    assert_eq!(client.introspect(&ec_token).await["active"], true);
    assert_eq!(
        client.introspect(&rsa_token).await["active"],
        true,
        "tokens of the old key stay valid"
    );
    assert_eq!(jwks_algs(&second).await, ["ES256", "RS256"]);
    second.stop().await;

    // Without the flag the current key stays, whatever its algorithm.
    let third = start(&storage, None).await;
    let token = third.client().issue_token(&id, &["voip"]).await;
    assert_eq!(header(&token)["kid"], header(&ec_token)["kid"]);
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    switches_and_stays(TestStorage::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    switches_and_stays(TestStorage::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    switches_and_stays(TestStorage::memory()).await;
}
