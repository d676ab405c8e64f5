//! `CommunicationTokenCredential::from_entra` against a real callsign server over TLS (azure_core's
//! bearer policy refuses plain http), with the server's development CA trusted and an azure_core
//! `TokenCredential` that hands out the local test issuer's tokens.

use callsign_testkit::issuer;

use azure_core::credentials::{AccessToken as EntraToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, Transport};
use callsign_common::credential::{
    CommunicationTokenCredential, CredentialError, EntraCommunicationTokenCredentialOptions,
};
use callsign_identity::*;
use callsign_server::clock::SystemClock;
use callsign_server::TlsMode;
use callsign_testkit::TestServer;
use issuer::{TestIssuer, APP_ID, TENANT, USER_OID};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const TEAMS_EXTENSION_SCOPE: &str =
    "https://auth.msft.communication.azure.com/TeamsExtension.ManageCalls";

/// Hands out one token of the test issuer and remembers what it was asked for.
#[derive(Debug)]
struct IssuerCredential {
    token: String,
    exp: i64,
    calls: AtomicUsize,
    scopes: Mutex<Vec<String>>,
}

impl IssuerCredential {
    fn new(token: String, exp: i64) -> Arc<Self> {
        Arc::new(Self {
            token,
            exp,
            calls: AtomicUsize::new(0),
            scopes: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait::async_trait]
impl TokenCredential for IssuerCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<EntraToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.scopes.lock().unwrap() = scopes.iter().map(|s| s.to_string()).collect();
        let expires_on = azure_core::time::OffsetDateTime::from_unix_timestamp(self.exp).unwrap();
        Ok(EntraToken::new(self.token.clone(), expires_on))
    }
}

fn trusting(ca: &std::path::Path) -> ClientOptions {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_entra_credential_exchanges_teams_extension_tokens_over_tls() {
    let issuer = TestIssuer::start().await;
    let config = issuer.config();
    let server = TestServer::start_with(Arc::new(SystemClock), move |c| {
        c.tls = TlsMode::Dev;
        c.trusted_issuers = vec![config];
    })
    .await;
    let port = server.host.rsplit(':').next().unwrap();
    let endpoint = format!("https://localhost:{port}/");
    let ca = server.data.path().join("data/tls/ca.pem");

    // The assignment, made with the identity client over the same TLS.
    let admin = CommunicationIdentityClient::from_connection_string(
        &format!("endpoint={endpoint};accesskey={}", server.key.to_base64()),
        Some(CommunicationIdentityClientOptions {
            api_version: ApiVersion::V2025_06_30,
            client_options: trusting(&ca),
        }),
    )
    .unwrap();
    admin
        .set_teams_extension_assignment(
            TENANT,
            USER_OID,
            &TeamsExtensionAssignmentRequest::new(
                TeamsExtensionPrincipalType::User,
                Some(vec![APP_ID.into()]),
            ),
            None,
        )
        .await
        .unwrap();

    let now = chrono::Utc::now().timestamp();
    let mut claims = issuer.teams_claims(now);
    claims["scp"] = "TeamsExtension.ManageCalls".into();
    let entra = IssuerCredential::new(issuer.token(&claims), now + 3600);
    let credential = CommunicationTokenCredential::from_entra_with_client_options(
        EntraCommunicationTokenCredentialOptions {
            resource_endpoint: endpoint.clone(),
            credential: entra.clone(),
            scopes: vec![TEAMS_EXTENSION_SCOPE.to_owned()],
        },
        trusting(&ca),
    )
    .unwrap();
    let token = credential.get_token(None).await.unwrap();
    let payload = callsign_testkit::payload(&token.token);
    assert_eq!(
        payload["skypeid"],
        format!("acs:{}_{TENANT}_{USER_OID}", server.resource_id)
    );
    assert_eq!(token.expires_on.timestamp(), now + 3600);
    assert_eq!(*entra.scopes.lock().unwrap(), [TEAMS_EXTENSION_SCOPE]);
    // Cached: a second call neither exchanges nor asks Entra again.
    let again = credential.get_token(None).await.unwrap();
    assert_eq!(again.token, token.token);
    assert_eq!(entra.calls.load(Ordering::SeqCst), 1);

    // Without an assignment the exchange is refused, and the credential reports it.
    admin
        .delete_teams_extension_assignment(TENANT, USER_OID, None)
        .await
        .unwrap();
    let refused = CommunicationTokenCredential::from_entra_with_client_options(
        EntraCommunicationTokenCredentialOptions {
            resource_endpoint: endpoint.clone(),
            credential: entra.clone(),
            scopes: vec![TEAMS_EXTENSION_SCOPE.to_owned()],
        },
        trusting(&ca),
    )
    .unwrap();
    let err = refused.get_token(None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("No assignment allows this user and client application."),
        "{err}"
    );
    assert!(
        !err.to_string().contains(&entra.token),
        "no token in errors"
    );

    // Plain http: azure_core's bearer policy refuses to send the token.
    let plain =
        CommunicationTokenCredential::from_entra(EntraCommunicationTokenCredentialOptions {
            resource_endpoint: format!("http://localhost:{port}/"),
            credential: entra.clone(),
            scopes: vec![TEAMS_EXTENSION_SCOPE.to_owned()],
        })
        .unwrap();
    assert!(plain.get_token(None).await.is_err());
}

#[test]
fn scopes_are_checked_at_construction() {
    #[derive(Debug)]
    struct Never;
    #[async_trait::async_trait]
    impl TokenCredential for Never {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<EntraToken> {
            unreachable!("construction never fetches a token")
        }
    }
    let options = |scopes: &[&str]| EntraCommunicationTokenCredentialOptions {
        resource_endpoint: "https://example.communication.azure.com/".into(),
        credential: Arc::new(Never),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    for bad in [
        &["https://graph.microsoft.com/.default"][..],
        &[
            "https://communication.azure.com/clients/VoIP",
            TEAMS_EXTENSION_SCOPE,
        ][..],
    ] {
        assert!(matches!(
            CommunicationTokenCredential::from_entra(options(bad)),
            Err(CredentialError::InvalidArgument(_))
        ));
    }
    assert!(CommunicationTokenCredential::from_entra(options(&[])).is_ok());
    assert!(CommunicationTokenCredential::from_entra(options(&[TEAMS_EXTENSION_SCOPE])).is_ok());
}

/// The default scope routes to the Entra exchange (preview), allowed by a user assignment.
#[tokio::test]
async fn the_default_scope_exchanges_entra_tokens_over_tls() {
    let issuer = TestIssuer::start().await;
    let config = issuer.config();
    let server = TestServer::start_with(Arc::new(SystemClock), move |c| {
        c.tls = TlsMode::Dev;
        c.trusted_issuers = vec![config];
    })
    .await;
    let port = server.host.rsplit(':').next().unwrap();
    let host = format!("localhost:{port}");
    let endpoint = format!("https://{host}/");
    let ca = server.data.path().join("data/tls/ca.pem");

    // The assignment, as a raw HMAC-signed PUT over the same TLS (the client has no Entra
    // assignment methods yet).
    let path = format!("/access/entra/assignments/{USER_OID}?api-version=2025-03-02-preview");
    let body =
        serde_json::json!({"principalType": "user", "tenantId": TENANT, "clientIds": [APP_ID]})
            .to_string();
    let signed = callsign_common::hmac::sign_request(
        &server.key,
        "PUT",
        &path,
        &host,
        body.as_bytes(),
        chrono::Utc::now(),
    );
    let ca_cert = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca_cert)
        .build()
        .unwrap();
    let response = http
        .put(format!("https://{host}{path}"))
        .header("content-type", "application/json")
        .header("x-ms-date", signed.date)
        .header("x-ms-content-sha256", signed.content_hash)
        .header("authorization", signed.authorization)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let now = chrono::Utc::now().timestamp();
    let entra = IssuerCredential::new(issuer.token(&issuer.entra_claims(now, &[])), now + 3600);
    let credential = CommunicationTokenCredential::from_entra_with_client_options(
        EntraCommunicationTokenCredentialOptions {
            resource_endpoint: endpoint,
            credential: entra.clone(),
            scopes: vec!["https://communication.azure.com/clients/.default".to_owned()],
        },
        trusting(&ca),
    )
    .unwrap();
    let token = credential.get_token(None).await.unwrap();
    let payload = callsign_testkit::payload(&token.token);
    assert_eq!(
        payload["skypeid"],
        format!("acs:{}_wf_{TENANT}_{USER_OID}", server.resource_id)
    );
    assert_eq!(token.expires_on.timestamp(), now + 3600);
    assert_eq!(
        *entra.scopes.lock().unwrap(),
        ["https://communication.azure.com/clients/.default"]
    );
}

/// `CommunicationIdentityClient::new` with an Entra `TokenCredential`: the management token goes
/// out as a bearer for `https://communication.azure.com//.default`, and the server lets an
/// allow-listed caller manage identities and refuses any other.
#[tokio::test]
async fn a_client_with_an_entra_credential_manages_identities_over_tls() {
    const ADMIN: &str = "9e3a4b2c-5d6e-4f70-8a9b-0c1d2e3f4a5b";
    let issuer = TestIssuer::start().await;
    let config = issuer.config();
    let server = TestServer::start_with(Arc::new(SystemClock), move |c| {
        c.tls = TlsMode::Dev;
        c.trusted_issuers = vec![config];
        c.management.allowed_object_ids = vec![ADMIN.to_owned()];
    })
    .await;
    let port = server.host.rsplit(':').next().unwrap();
    let endpoint = format!("https://localhost:{port}/");
    let ca = server.data.path().join("data/tls/ca.pem");
    let client_for = |credential: Arc<IssuerCredential>| {
        CommunicationIdentityClient::new(
            &endpoint,
            credential,
            Some(CommunicationIdentityClientOptions {
                client_options: trusting(&ca),
                ..Default::default()
            }),
        )
        .unwrap()
    };
    let now = chrono::Utc::now().timestamp();

    let admin = IssuerCredential::new(
        issuer.token(&issuer.management_claims(now, ADMIN)),
        now + 3600,
    );
    let client = client_for(admin.clone());
    let user = client.create_user(None).await.unwrap();
    let token = client
        .get_token(&user, &[TokenScope::Chat], None)
        .await
        .unwrap();
    assert!(!token.token.is_empty());
    client.revoke_tokens(&user, None).await.unwrap();
    client.delete_user(&user, None).await.unwrap();
    assert_eq!(*admin.scopes.lock().unwrap(), [ENTRA_SCOPE]);
    assert!(admin.calls.load(Ordering::SeqCst) >= 1);

    let stranger = IssuerCredential::new(
        issuer.token(&issuer.management_claims(now, USER_OID)),
        now + 3600,
    );
    let err = client_for(stranger).create_user(None).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.code(), Some("Denied"));
}

/// A 5xx from the exchange is retried (azure_core's retry policy in the credential's pipeline):
/// a TLS stub answers 503 once, then a token.
#[tokio::test]
async fn a_failed_exchange_is_retried() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let dir = tempfile::tempdir().unwrap();
    let files = callsign_server::tls::dev_certificates(dir.path()).unwrap();
    let config = callsign_server::tls::server_config(&files).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let expires_on = chrono::Utc::now() + chrono::Duration::hours(1);
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
            let counter = counter.clone();
            async move {
                // Both tries go to the Entra exchange (the default scope) with the Entra token.
                assert_eq!(
                    uri.path_and_query().unwrap().as_str(),
                    "/access/entra/:exchangeAccessToken?api-version=2025-03-02-preview"
                );
                assert_eq!(headers["authorization"], "Bearer entra");
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                let body = serde_json::json!({
                    "identity": {"id": "8:acs:r_wf_t_o"},
                    "accessToken": {
                        "token": "a.b.c",
                        "expiresOn": callsign_common::time_format::expires_on(expires_on),
                    },
                });
                axum::Json(body).into_response()
            }
        },
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = axum_server::tls_rustls::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )
    .unwrap();
    tokio::spawn(async move { server.serve(app.into_make_service()).await });

    let now = chrono::Utc::now().timestamp();
    let credential = CommunicationTokenCredential::from_entra_with_client_options(
        EntraCommunicationTokenCredentialOptions {
            resource_endpoint: format!("https://localhost:{port}/"),
            credential: IssuerCredential::new("entra".into(), now + 3600),
            scopes: Vec::new(),
        },
        trusting(files.ca.as_ref().unwrap()),
    )
    .unwrap();
    let token = credential.get_token(None).await.unwrap();
    assert_eq!(token.token, "a.b.c");
    assert_eq!(token.expires_on.timestamp(), expires_on.timestamp());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one 503, one retry");
}
