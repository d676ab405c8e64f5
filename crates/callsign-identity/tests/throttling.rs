//! The client against a real callsign server that throttles (a short window, in real time): its
//! default retry policy waits out each 429 for as long as `Retry-After` says and gets through.

use azure_core::http::headers::RETRY_AFTER;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{ClientOptions, Context, Request};
use callsign_identity::*;
use callsign_server::clock::SystemClock;
use callsign_server::throttling::ThrottleConfig;
use callsign_testkit::TestServer;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One try as the client sent it: when, and what came back.
#[derive(Debug, Clone)]
struct Try {
    at: Instant,
    status: u16,
    retry_after: Option<String>,
}

/// Records every try the retry policy makes (a per-try policy sits inside the retries).
#[derive(Debug, Default)]
struct Tries(Mutex<Vec<Try>>);

#[async_trait::async_trait]
impl Policy for Tries {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let at = Instant::now();
        let response = next[0].send(ctx, request, &next[1..]).await?;
        self.0.lock().unwrap().push(Try {
            at,
            status: u16::from(response.status()),
            retry_after: response.headers().get_optional_string(&RETRY_AFTER),
        });
        Ok(response)
    }
}

#[tokio::test]
async fn the_client_waits_out_429_and_gets_through() {
    let limits = ThrottleConfig {
        window_seconds: 2,
        issue: Some(2),
        ..ThrottleConfig::off()
    };
    let server =
        TestServer::start_with(Arc::new(SystemClock), |config| config.throttling = limits).await;
    let tries = Arc::new(Tries::default());
    let options = CommunicationIdentityClientOptions {
        client_options: ClientOptions {
            per_try_policies: vec![tries.clone()],
            ..Default::default()
        },
        ..Default::default()
    };
    let client = CommunicationIdentityClient::from_connection_string(
        &server.connection_string(),
        Some(options),
    )
    .unwrap();

    // Six requests of a group that takes two per 2 s window: some are refused, none fails.
    let user = client.create_user(None).await.unwrap();
    for _ in 0..5 {
        client
            .get_token(&user, &[TokenScope::Chat], None)
            .await
            .unwrap();
    }

    let tries = tries.0.lock().unwrap().clone();
    let refused: Vec<usize> = (0..tries.len())
        .filter(|i| tries[*i].status == 429)
        .collect();
    assert!(!refused.is_empty(), "{tries:?}");
    assert_eq!(
        tries.len(),
        6 + refused.len(),
        "each refusal retried once: {tries:?}"
    );
    for i in refused {
        let seconds: u64 = tries[i].retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=2).contains(&seconds), "{tries:?}");
        let retry = &tries[i + 1];
        assert!(
            retry.at - tries[i].at >= Duration::from_secs(seconds),
            "waited as long as Retry-After: {tries:?}"
        );
        assert_eq!(retry.status, 200, "the next window admits it: {tries:?}");
    }
}
