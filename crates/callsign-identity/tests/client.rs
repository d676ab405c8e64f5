//! The client against a real callsign server on a loopback port: every operation in every
//! api-version, error mapping, retries and concurrency.

use callsign_identity::*;
use callsign_testkit::TestServer;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn client_for(server: &TestServer, version: ApiVersion) -> CommunicationIdentityClient {
    let options = CommunicationIdentityClientOptions {
        api_version: version,
        ..Default::default()
    };
    CommunicationIdentityClient::from_connection_string(&server.connection_string(), Some(options))
        .unwrap()
}

fn minutes(m: u64) -> Option<TokenExpiry> {
    Some(TokenExpiry::new(Duration::from_secs(m * 60)).unwrap())
}

#[tokio::test]
async fn every_operation_in_every_version() {
    let server = TestServer::start().await;
    let checker = server.client();
    for version in ApiVersion::CURRENT {
        let client = client_for(&server, version);
        assert_eq!(client.api_version(), version);
        let user = client.create_user(None).await.unwrap();
        assert!(
            user.id()
                .starts_with(&format!("8:acs:{}_", server.resource_id)),
            "{version:?}"
        );

        let (other, token) = client
            .create_user_and_token(
                &[TokenScope::Chat, TokenScope::Voip],
                Some(CommunicationIdentityClientCreateUserAndTokenOptions {
                    expires_in: minutes(60),
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        let claims = callsign_testkit::payload(&token.token);
        assert_eq!(claims["acsScope"], "chat,voip");
        assert_eq!(claims["exp"], token.expires_on.timestamp());
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        // Before 2022-10-01 there is no expiresInMinutes: the service default of 24 h applies.
        let expected = if matches!(version, ApiVersion::V2021_03_07 | ApiVersion::V2022_06_01) {
            86_400
        } else {
            3600
        };
        assert_eq!(lifetime, expected, "{version:?}");

        let token = client
            .get_token(
                &user,
                &[TokenScope::Voip],
                Some(CommunicationIdentityClientGetTokenOptions {
                    expires_in: minutes(90),
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        assert_eq!(checker.introspect(&token.token).await["active"], true);
        client.revoke_tokens(&user, None).await.unwrap();
        assert_eq!(checker.introspect(&token.token).await["active"], false);
        client.delete_user(&user, None).await.unwrap();
        client.delete_user(&other, None).await.unwrap();

        let gone = client
            .get_token(&user, &[TokenScope::Chat], None)
            .await
            .unwrap_err();
        assert_eq!(gone.status(), Some(404));
        assert_eq!(gone.code(), Some("IdentityNotFound"));
    }
}

#[tokio::test]
async fn preview_custom_ids_and_get_user() {
    let server = TestServer::start().await;
    let client = client_for(&server, ApiVersion::V2025_03_02Preview);
    let options = || CommunicationIdentityClientCreateUserOptions {
        custom_id: Some("alice@contoso.com".into()),
        ..Default::default()
    };
    let user = client.create_user(Some(options())).await.unwrap();
    assert_eq!(client.create_user(Some(options())).await.unwrap(), user);
    let details = client.get_user(&user, None).await.unwrap();
    assert_eq!(details.custom_id.as_deref(), Some("alice@contoso.com"));
    assert_eq!(details.last_token_issued_at, None);
    client
        .get_token(&user, &[TokenScope::ChatJoinLimited], None)
        .await
        .unwrap();
    let details = client.get_user(&user, None).await.unwrap();
    assert!(details.last_token_issued_at.is_some());

    let stable = client_for(&server, ApiVersion::V2023_10_01);
    assert!(matches!(
        stable.get_user(&user, None).await,
        Err(IdentityError::UnsupportedByApiVersion { .. })
    ));
    let with_custom_id = stable.create_user(Some(options())).await;
    assert!(matches!(
        with_custom_id,
        Err(IdentityError::UnsupportedByApiVersion { .. })
    ));
}

#[tokio::test]
async fn errors_carry_status_code_and_message() {
    let server = TestServer::start().await;
    let client = client_for(&server, ApiVersion::V2023_10_01);

    let stranger = CommunicationIdentityClient::with_access_key(
        &format!("{}/", server.base),
        callsign_common::AccessKey::from_bytes(vec![1; 32]),
        None,
    )
    .unwrap();
    let denied = stranger.create_user(None).await.unwrap_err();
    assert_eq!(
        (denied.status(), denied.code()),
        (Some(401), Some("Denied"))
    );

    let foreign = CommunicationUserIdentifier::new(
        "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000000",
    );
    let not_owned = client.revoke_tokens(&foreign, None).await.unwrap_err();
    assert_eq!(
        (not_owned.status(), not_owned.code()),
        (Some(401), Some("IdentityNotOwned"))
    );
    assert_eq!(
        not_owned.message(),
        Some("Provided identity doesn't belong to the resource.")
    );

    // A scope the version does not know is the service's 400.
    let old = client_for(&server, ApiVersion::V2022_10_01);
    let user = old.create_user(None).await.unwrap();
    let unknown = old
        .get_token(&user, &[TokenScope::VoipJoin], None)
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.status(), unknown.code()),
        (Some(400), Some("ValidationError"))
    );

    // Arguments the service would refuse are refused before sending.
    assert!(matches!(
        client.get_token(&user, &[], None).await,
        Err(IdentityError::InvalidArgument(_))
    ));
    assert!(TokenExpiry::new(Duration::from_secs(59 * 60)).is_err());
    assert!(TokenExpiry::new(Duration::from_secs(1441 * 60)).is_err());
    assert!(CommunicationIdentityClient::from_connection_string("endpoint=x", None).is_err());
}

#[tokio::test]
async fn one_client_serves_a_hundred_concurrent_calls() {
    let server = TestServer::start().await;
    let client = client_for(&server, ApiVersion::V2023_10_01);
    let user = client.create_user(None).await.unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (client, user) = (client.clone(), user.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    client
                        .get_token(&user, &[TokenScope::Chat], None)
                        .await
                        .map(|t| t.token)
                } else {
                    client.create_user(None).await.map(|u| u.id().to_owned())
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    results.sort();
    results.dedup();
    assert_eq!(results.len(), 100, "every call got its own answer");
}

/// A server that answers `first` once, then a fixed success; it records when each call came.
async fn flaky_server(
    first: u16,
    extra: &'static [(&'static str, &'static str)],
) -> (String, Arc<Mutex<Vec<Instant>>>) {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let arrivals = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let arrivals = arrivals.clone();
        async move {
            let first_call = {
                let mut arrivals = arrivals.lock().unwrap();
                arrivals.push(Instant::now());
                arrivals.len() == 1
            };
            if first_call {
                let mut response = (
                    StatusCode::from_u16(first).unwrap(),
                    [("content-type", "application/json")],
                    r#"{"error":{"code":"TooManyRequests","message":"Too many requests."}}"#,
                )
                    .into_response();
                for (name, value) in extra {
                    response.headers_mut().insert(*name, value.parse().unwrap());
                }
                response
            } else {
                (
                    StatusCode::CREATED,
                    [("content-type", "application/json")],
                    r#"{"identity":{"id":"8:acs:x_y"}}"#,
                )
                    .into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, calls)
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    for (status, headers) in [
        (429, &[("retry-after", "1")][..]),
        (503, &[][..]),
        (500, &[][..]),
    ] {
        let (endpoint, calls) = flaky_server(status, headers).await;
        let client = CommunicationIdentityClient::with_access_key(
            &endpoint,
            callsign_common::AccessKey::from_bytes(vec![1; 32]),
            None,
        )
        .unwrap();
        let user = client.create_user(None).await.unwrap();
        assert_eq!(user.id(), "8:acs:x_y");
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 2, "{status} is retried once");
        if status == 429 {
            // The retry waits as long as Retry-After says (the default first backoff is shorter).
            let waited = calls[1] - calls[0];
            assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
        }
    }
}

/// Every item of a `list_users` pager, or the first error as this crate's.
async fn listed(
    client: &CommunicationIdentityClient,
    options: CommunicationIdentityClientListUsersOptions<'_>,
) -> Result<Vec<ListedUser>> {
    use futures::TryStreamExt;
    let pager = client.list_users(Some(options))?;
    pager.try_collect().await.map_err(IdentityError::from)
}

#[tokio::test]
async fn list_users_pages_through_every_user_once() {
    use futures::TryStreamExt;
    let server = TestServer::start().await;
    let client = client_for(&server, ApiVersion::V2025_03_02Preview);
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let mut created = Vec::new();
    for n in 0..7 {
        let options = CommunicationIdentityClientCreateUserOptions {
            custom_id: (n % 2 == 0).then(|| format!("user-{n}")),
            ..Default::default()
        };
        created.push(client.create_user(Some(options)).await.unwrap());
    }
    client
        .get_token(&created[0], &[TokenScope::Chat], None)
        .await
        .unwrap();
    client.revoke_tokens(&created[1], None).await.unwrap();
    let mut expected: Vec<&str> = created.iter().map(|u| u.id()).collect();
    expected.sort();

    let small = || CommunicationIdentityClientListUsersOptions {
        max_page_size: Some(3),
        ..Default::default()
    };
    let users = listed(&client, small()).await.unwrap();
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, expected, "every user once, in id order");
    let find = |user: &CommunicationUserIdentifier| {
        users.iter().find(|u| u.id == user.id()).unwrap().clone()
    };
    let first = find(&created[0]);
    assert_eq!(first.custom_id.as_deref(), Some("user-0"));
    assert!(first.created_at >= before && first.created_at <= chrono::Utc::now());
    assert!(first.last_token_issued_at.is_some());
    assert_eq!(first.revoked_at, None);
    let second = find(&created[1]);
    assert_eq!(second.custom_id, None);
    assert_eq!(second.last_token_issued_at, None);
    assert!(second.revoked_at.is_some());

    // Page by page: 3, 3, 1.
    let mut pages = client.list_users(Some(small())).unwrap().into_pages();
    let mut sizes = Vec::new();
    while let Some(page) = pages.try_next().await.unwrap() {
        sizes.push(page.into_model().unwrap().value.len());
    }
    assert_eq!(sizes, [3, 3, 1]);

    // A pager resumes where another one's continuation says.
    let mut pages = client.list_users(Some(small())).unwrap().into_pages();
    pages.try_next().await.unwrap().unwrap();
    let continuation = pages.into_continuation().expect("more pages follow");
    let rest = listed(
        &client,
        CommunicationIdentityClientListUsersOptions {
            method_options: azure_core::http::pager::PagerOptions {
                continuation: Some(continuation),
                ..Default::default()
            },
            ..small()
        },
    )
    .await
    .unwrap();
    let rest: Vec<&str> = rest.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(rest, expected[3..]);

    // The stable api-version lists the same: the route takes none.
    let stable = client_for(&server, ApiVersion::V2023_10_01);
    assert_eq!(
        listed(
            &stable,
            CommunicationIdentityClientListUsersOptions::default()
        )
        .await
        .unwrap(),
        users
    );
    // Deleted users are gone from the list.
    client.delete_user(&created[2], None).await.unwrap();
    let after = listed(&client, small()).await.unwrap();
    assert_eq!(after.len(), 6);
    assert!(after.iter().all(|u| u.id != created[2].id()));
}

#[tokio::test]
async fn list_users_filters_by_custom_id() {
    let server = TestServer::start().await;
    let client = client_for(&server, ApiVersion::V2025_03_02Preview);
    let alice = client
        .create_user(Some(CommunicationIdentityClientCreateUserOptions {
            custom_id: Some("alice@contoso.com".into()),
            ..Default::default()
        }))
        .await
        .unwrap();
    client.create_user(None).await.unwrap();
    let by_custom_id = |custom_id: &str| CommunicationIdentityClientListUsersOptions {
        custom_id: Some(custom_id.into()),
        ..Default::default()
    };
    let found = listed(&client, by_custom_id("alice@contoso.com"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, alice.id());
    assert_eq!(found[0].custom_id.as_deref(), Some("alice@contoso.com"));
    assert!(listed(&client, by_custom_id("bob"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        listed(
            &client,
            CommunicationIdentityClientListUsersOptions::default()
        )
        .await
        .unwrap()
        .len(),
        2
    );

    // Arguments the server would refuse are refused before sending.
    for options in [
        CommunicationIdentityClientListUsersOptions {
            max_page_size: Some(0),
            ..Default::default()
        },
        CommunicationIdentityClientListUsersOptions {
            max_page_size: Some(1001),
            ..Default::default()
        },
        by_custom_id(""),
        by_custom_id(&"x".repeat(257)),
    ] {
        assert!(matches!(
            client.list_users(Some(options)),
            Err(IdentityError::InvalidArgument(_))
        ));
    }

    // Errors while paging convert to this crate's, with the service's status and code.
    let stranger = CommunicationIdentityClient::with_access_key(
        &format!("{}/", server.base),
        callsign_common::AccessKey::from_bytes(vec![1; 32]),
        None,
    )
    .unwrap();
    let denied = listed(
        &stranger,
        CommunicationIdentityClientListUsersOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (denied.status(), denied.code()),
        (Some(401), Some("Denied"))
    );
}

#[tokio::test]
async fn reset_empties_a_server_that_allows_it() {
    let server = TestServer::start_with(Arc::new(callsign_server::clock::SystemClock), |c| {
        c.http.allow_reset = true
    })
    .await;
    let client = client_for(&server, ApiVersion::V2023_10_01);
    let (user, token) = client
        .create_user_and_token(&[TokenScope::Chat], None)
        .await
        .unwrap();
    client.create_user(None).await.unwrap();
    assert_eq!(
        listed(
            &client,
            CommunicationIdentityClientListUsersOptions::default()
        )
        .await
        .unwrap()
        .len(),
        2
    );

    client.reset(None).await.unwrap();
    assert!(listed(
        &client,
        CommunicationIdentityClientListUsersOptions::default()
    )
    .await
    .unwrap()
    .is_empty());
    assert_eq!(
        server.client().introspect(&token.token).await["active"],
        false
    );
    let gone = client.revoke_tokens(&user, None).await.unwrap_err();
    assert_eq!(gone.status(), Some(404));
    // The keys stay: the same client keeps working.
    client.create_user(None).await.unwrap();
}

#[tokio::test]
async fn reset_is_not_found_unless_the_server_allows_it() {
    let server = TestServer::start().await;
    let client = client_for(&server, ApiVersion::V2023_10_01);
    let user = client.create_user(None).await.unwrap();
    let refused = client.reset(None).await.unwrap_err();
    assert!(
        matches!(refused, IdentityError::Service { .. }),
        "{refused:?}"
    );
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(404), Some("NotFound"))
    );
    // Nothing was removed.
    let users = listed(
        &client,
        CommunicationIdentityClientListUsersOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, user.id());
}

/// A server answering every request with one page whose `nextLink` is `next_link`.
async fn one_page_server(next_link: &'static str) -> String {
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move || async move {
        let body = serde_json::json!({
            "value": [{"id": "8:acs:r_u", "createdAt": "2025-04-14T15:32:35+00:00"}],
            "nextLink": next_link,
        });
        ([("content-type", "application/json")], body.to_string()).into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    endpoint
}

#[tokio::test]
async fn list_users_follows_next_links_on_its_endpoint_only() {
    use futures::StreamExt;
    for (next_link, refusal) in [
        (
            "https://elsewhere.example/callsign/identities?continuationToken=eA",
            "another host",
        ),
        ("/callsign/identities", "same page"),
    ] {
        let endpoint = one_page_server(next_link).await;
        let client = CommunicationIdentityClient::with_access_key(
            &endpoint,
            callsign_common::AccessKey::from_bytes(vec![1; 32]),
            None,
        )
        .unwrap();
        // The page that carries the link fails, and the pager ends.
        let items: Vec<_> = client.list_users(None).unwrap().collect().await;
        assert_eq!(items.len(), 1, "{next_link}");
        let error = items[0].as_ref().unwrap_err().to_string();
        assert!(error.contains(refusal), "{next_link}: {error}");
    }
}
