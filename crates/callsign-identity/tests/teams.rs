//! `get_token_for_teams_user`, Teams extension and Entra assignments against a real callsign server.

use callsign_testkit::issuer;

use callsign_identity::*;
use callsign_server::clock::SystemClock;
use callsign_testkit::TestServer;
use futures::TryStreamExt;
use issuer::{TestIssuer, APP_ID, USER_OID};
use std::sync::Arc;

const OTHER: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";

fn client_for(server: &TestServer, version: ApiVersion) -> CommunicationIdentityClient {
    let options = CommunicationIdentityClientOptions {
        api_version: version,
        ..Default::default()
    };
    CommunicationIdentityClient::from_connection_string(&server.connection_string(), Some(options))
        .unwrap()
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

    for version in ApiVersion::CURRENT {
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
            callsign_testkit::payload(&token.token)["skypeid"],
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
                &TeamsExtensionAssignmentRequest::new(
                    TeamsExtensionPrincipalType::User,
                    Some(vec![APP_ID.to_owned()]),
                ),
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

fn entra_request(principal_type: EntraPrincipalType, clients: &[&str]) -> EntraAssignmentRequest {
    EntraAssignmentRequest::new(
        issuer::TENANT,
        principal_type,
        clients.iter().map(|c| c.to_string()).collect(),
    )
}

/// Entra assignments with the preview api-version: set, get, every page of the list, a merge
/// patch that adds and removes, delete, and the service's errors.
#[tokio::test]
async fn entra_assignments_are_managed_and_listed_page_by_page() {
    let server = TestServer::start().await;
    let client = client_for(&server, ApiVersion::V2025_03_02Preview);
    let object = |n: usize| format!("00000000-0000-4000-8000-{n:012}");

    let created = client
        .set_entra_assignment(
            USER_OID,
            &entra_request(EntraPrincipalType::User, &[APP_ID]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(created.object_id, USER_OID);
    assert_eq!(created.principal_type, EntraPrincipalType::User);
    assert_eq!(created.client_ids, [APP_ID]);
    let replaced = client
        .set_entra_assignment(
            USER_OID,
            &entra_request(EntraPrincipalType::User, &[APP_ID, OTHER]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(replaced.client_ids, [APP_ID, OTHER]);
    assert_eq!(
        client.get_entra_assignment(USER_OID, None).await.unwrap(),
        replaced
    );

    // Five group assignments in one merge patch; the list reads all six, two per page.
    let changes: Vec<_> = (1..=5)
        .map(|n| {
            let request = entra_request(EntraPrincipalType::Group, &[APP_ID]);
            (object(n), Some(request))
        })
        .collect();
    let written = client
        .update_entra_assignments(&changes, None)
        .await
        .unwrap();
    assert_eq!(written.len(), 5);
    let options = CommunicationIdentityClientListEntraAssignmentsOptions {
        max_page_size: Some(2),
        ..Default::default()
    };
    let listed: Vec<EntraAssignment> = client
        .list_entra_assignments(Some(options.clone()))
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|a| a.object_id.as_str()).collect();
    ids.sort();
    let mut expected: Vec<String> = (1..=5).map(object).collect();
    expected.push(USER_OID.to_owned());
    expected.sort();
    assert_eq!(ids, expected);

    // null removes; a value replaces.
    let changes = vec![
        (object(1), None),
        (
            object(2),
            Some(entra_request(EntraPrincipalType::Group, &[OTHER])),
        ),
    ];
    client
        .update_entra_assignments(&changes, None)
        .await
        .unwrap();
    let listed: Vec<EntraAssignment> = client
        .list_entra_assignments(Some(options))
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed.iter().all(|a| a.object_id != object(1)));
    let second = client.get_entra_assignment(&object(2), None).await.unwrap();
    assert_eq!(second.client_ids, [OTHER]);

    client
        .delete_entra_assignment(USER_OID, None)
        .await
        .unwrap();
    let gone = client
        .get_entra_assignment(USER_OID, None)
        .await
        .unwrap_err();
    assert_eq!(
        (gone.status(), gone.code()),
        (Some(404), Some("AssignmentNotFound"))
    );
    // A tenant assignment names its tenant.
    let wrong = client
        .set_entra_assignment(
            USER_OID,
            &entra_request(EntraPrincipalType::Tenant, &[APP_ID]),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.status(), wrong.code()),
        (Some(400), Some("ValidationError"))
    );

    // Only the preview has them: refused before anything is sent.
    let stable = client_for(&server, ApiVersion::V2025_06_30);
    assert!(matches!(
        stable.list_entra_assignments(None),
        Err(IdentityError::UnsupportedByApiVersion { .. })
    ));
}
