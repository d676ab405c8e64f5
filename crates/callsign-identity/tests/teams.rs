//! `get_token_for_teams_user` against a real callsign server trusting a local test issuer.

#[path = "../../callsign-server/tests/common/mod.rs"]
mod common;
#[path = "../../callsign-server/tests/common/issuer.rs"]
mod issuer;

use callsign_identity::*;
use callsign_server::clock::SystemClock;
use common::TestServer;
use issuer::{TestIssuer, APP_ID, USER_OID};
use std::sync::Arc;

const OTHER: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";

fn client_for(server: &TestServer, version: ApiVersion) -> CommunicationIdentityClient {
    let options = CommunicationIdentityClientOptions {
        api_version: version,
        ..Default::default()
    };
    let connection_string = format!(
        "endpoint={}/;accesskey={}",
        server.base,
        server.key.to_base64()
    );
    CommunicationIdentityClient::from_connection_string(&connection_string, Some(options)).unwrap()
}

#[tokio::test]
async fn teams_user_tokens_are_exchanged_and_errors_mapped() {
    let issuer = TestIssuer::start().await;
    let config = issuer.config();
    // The client signs with the system clock, so the server runs on it too.
    let server = TestServer::start_with(Arc::new(SystemClock), move |c| {
        c.trusted_issuers = vec![config];
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    let entra = issuer.token(&issuer.teams_claims(now));

    for version in ApiVersion::ALL {
        let client = client_for(&server, version);
        if version == ApiVersion::V2021_03_07 {
            let err = client
                .get_token_for_teams_user(&entra, APP_ID, USER_OID, None)
                .await
                .unwrap_err();
            assert!(
                matches!(err, IdentityError::UnsupportedByApiVersion { .. }),
                "{err}"
            );
            continue;
        }
        let token = client
            .get_token_for_teams_user(&entra, APP_ID, USER_OID, None)
            .await
            .unwrap();
        assert_eq!(token.expires_on.timestamp(), now + 3600, "{version:?}");
        assert_eq!(
            common::payload(&token.token)["skypeid"],
            format!("orgid:{USER_OID}")
        );

        let err = client
            .get_token_for_teams_user(&entra, OTHER, USER_OID, None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert!(
            err.to_string()
                .contains("AAD application is not the expected one."),
            "{err}"
        );
        let err = client
            .get_token_for_teams_user(&entra, APP_ID, OTHER, None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400));
        let err = client
            .get_token_for_teams_user("not-a-token", APP_ID, USER_OID, None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(401));
        assert_eq!(err.code(), Some("InvalidAccessToken"));
        let err = client
            .get_token_for_teams_user("", APP_ID, USER_OID, None)
            .await
            .unwrap_err();
        assert!(matches!(err, IdentityError::InvalidArgument(_)), "{err}");
    }
}

#[tokio::test]
async fn teams_extension_assignments_need_2025_06_30() {
    let server = TestServer::start().await;
    let old = client_for(&server, ApiVersion::V2023_10_01);
    let err = old
        .get_teams_extension_assignment(issuer::TENANT, USER_OID, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, IdentityError::UnsupportedByApiVersion { .. }),
        "{err}"
    );
    for version in [ApiVersion::V2025_06_30, ApiVersion::V2025_03_02Preview] {
        let client = client_for(&server, version);
        let set = client
            .set_teams_extension_assignment(
                issuer::TENANT,
                USER_OID,
                "user",
                Some(vec![APP_ID.to_owned()]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(set.client_ids.as_deref(), Some(&[APP_ID.to_owned()][..]));
        let got = client
            .get_teams_extension_assignment(issuer::TENANT, USER_OID, None)
            .await
            .unwrap();
        assert_eq!(got, set);
        client
            .delete_teams_extension_assignment(issuer::TENANT, USER_OID, None)
            .await
            .unwrap();
        let err = client
            .get_teams_extension_assignment(issuer::TENANT, USER_OID, None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.code(), Some("AssignmentNotFound"));
    }
}
