//! Credential tests. Every timing test runs on Tokio's paused clock with a [`TokioClock`], so token
//! expiry and timers move together and nothing really sleeps.

use super::*;
use crate::clock::TokioClock;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::Notify;
use tokio::time::{sleep, Instant};

/// Chat and calling clients hold the credential across tasks and threads.
#[test]
fn the_credential_is_send_sync_and_cheap_to_clone() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<CommunicationTokenCredential>();
}

/// The wall-clock time paused tests start at.
const START: i64 = 1_800_000_000;

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(START, 0).unwrap()
}

/// An unsigned JWT whose payload is `{"exp": exp}`; clients never check signatures.
fn jwt(exp: i64) -> String {
    format!(
        "eyJhbGciOiJub25lIn0.{}.c2ln",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#))
    )
}

/// A clock at [`START`] that moves with Tokio's (paused) time; create it inside the test runtime.
fn clock() -> Arc<TokioClock> {
    Arc::new(TokioClock::starting_at(start()))
}

/// Seconds since [`START`] on `clock`, with millisecond precision.
fn elapsed(clock: &TokioClock) -> f64 {
    (clock.now() - start()).num_milliseconds() as f64 / 1000.0
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// A refresher that counts its calls and returns a token valid for an hour from "now".
fn hour_tokens(
    clock: &Arc<TokioClock>,
    calls: &Arc<AtomicUsize>,
) -> CommunicationTokenRefreshOptions {
    let (clock, calls) = (Arc::clone(clock), Arc::clone(calls));
    CommunicationTokenRefreshOptions::new(move || {
        calls.fetch_add(1, Ordering::SeqCst);
        let token = jwt(clock.now().timestamp() + 3600);
        async move { Ok::<_, BoxError>(token) }
    })
}

fn io_error(message: &str) -> BoxError {
    Box::new(std::io::Error::other(message.to_owned()))
}

// ---------------------------------------------------------------- static credential

#[tokio::test]
async fn static_credential_returns_its_token_and_decoded_expiry() {
    let token = jwt(START);
    let credential = CommunicationTokenCredential::from_token(&token).unwrap();
    let access = credential.get_token(None).await.unwrap();
    assert_eq!(access.token, token);
    assert_eq!(access.expires_on, start());
    // Like the official clients, a static token is handed out even after it expired (START is
    // in the past here on the real clock).
    assert_eq!(credential.get_token(None).await.unwrap(), access);
}

#[test]
fn undecodable_tokens_are_rejected_at_construction() {
    for bad in ["", "abc", "a.!!!.c", "a.e30.c"] {
        assert!(matches!(
            CommunicationTokenCredential::from_token(bad),
            Err(CredentialError::InvalidToken(_))
        ));
        let options =
            CommunicationTokenRefreshOptions::new(|| async { Ok::<_, BoxError>(jwt(START)) })
                .with_initial_token(bad);
        assert!(matches!(
            CommunicationTokenCredential::new(options),
            Err(CredentialError::InvalidToken(_))
        ));
    }
}

#[tokio::test]
async fn static_credential_with_explicit_expiry_serves_an_opaque_token() {
    let credential = CommunicationTokenCredential::from_access_token(AccessToken {
        token: "opaque-jwe".into(),
        expires_on: start(),
    });
    assert_eq!(
        credential.get_token(None).await.unwrap().token,
        "opaque-jwe"
    );
}

#[tokio::test]
async fn static_credential_can_be_disposed() {
    let credential = CommunicationTokenCredential::from_token(&jwt(START)).unwrap();
    credential.dispose();
    credential.dispose();
    assert!(credential.is_disposed());
    assert!(matches!(
        credential.get_token(None).await,
        Err(CredentialError::Disposed)
    ));
}

#[test]
fn debug_output_never_contains_a_token() {
    let token = jwt(START);
    let credential = CommunicationTokenCredential::from_token(&token).unwrap();
    let options = CommunicationTokenRefreshOptions::new(|| async { Ok::<_, BoxError>("x") })
        .with_initial_token(token.clone());
    let shown = [
        format!("{credential:?}"),
        format!("{options:?}"),
        format!("{:?}", RefreshedToken::from(token.clone())),
        format!(
            "{:?}",
            RefreshedToken::from(AccessToken {
                token: token.clone(),
                expires_on: start()
            })
        ),
    ];
    for s in shown {
        assert!(!s.contains(&token) && !s.contains("eyJ"), "{s}");
    }
}

// ---------------------------------------------------------------- on demand

#[tokio::test(start_paused = true)]
async fn cached_token_is_served_until_two_minutes_before_expiry() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let initial = jwt(START + 180);
    let credential = CommunicationTokenCredential::with_clock(
        hour_tokens(&clock, &calls).with_initial_token(initial.clone()),
        clock.clone(),
    )
    .unwrap();

    assert_eq!(credential.get_token(None).await.unwrap().token, initial);
    sleep(secs(59)).await; // 121 s left: still outside the window
    assert_eq!(credential.get_token(None).await.unwrap().token, initial);
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    sleep(secs(1)).await; // exactly 2 minutes left: refresh
    let fresh = credential.get_token(None).await.unwrap();
    assert_ne!(fresh.token, initial);
    assert_eq!(fresh.expires_on, clock.now() + TimeDelta::hours(1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Cached again, also through a clone.
    let clone = credential.clone();
    assert_eq!(clone.get_token(None).await.unwrap(), fresh);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn first_call_without_an_initial_token_refreshes() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let credential =
        CommunicationTokenCredential::with_clock(hour_tokens(&clock, &calls), clock.clone())
            .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing happens before use"
    );
    let token = credential.get_token(None).await.unwrap();
    assert_eq!(token.expires_on, start() + TimeDelta::hours(1));
    credential.get_token(None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn explicit_expiry_tokens_from_the_refresher_are_cached() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, n) = (clock.clone(), calls.clone());
    let options = CommunicationTokenRefreshOptions::new(move || {
        n.fetch_add(1, Ordering::SeqCst);
        let token = AccessToken {
            token: "opaque-jwe".into(),
            expires_on: c.now() + TimeDelta::hours(1),
        };
        async move { Ok::<_, BoxError>(token) }
    });
    let credential = CommunicationTokenCredential::with_clock(options, clock).unwrap();
    assert_eq!(
        credential.get_token(None).await.unwrap().token,
        "opaque-jwe"
    );
    assert_eq!(
        credential.get_token(None).await.unwrap().token,
        "opaque-jwe"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------- single flight

/// 1,000 tasks on a multi-threaded runtime need a token at once: one refresher call serves all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_refresh() {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let (n, g) = (calls.clone(), gate.clone());
    let token = jwt(Utc::now().timestamp() + 3600);
    let t = token.clone();
    let options = CommunicationTokenRefreshOptions::new(move || {
        n.fetch_add(1, Ordering::SeqCst);
        let (g, t) = (g.clone(), t.clone());
        async move {
            g.notified().await;
            Ok::<_, BoxError>(t)
        }
    });
    let credential = CommunicationTokenCredential::new(options).unwrap();

    let started = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (credential, started) = (credential.clone(), started.clone());
            tokio::spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                credential.get_token(None).await
            })
        })
        .collect();
    // Hold the refresh open until every task has started and the refresher is running, so the
    // callers really overlap it; then let it finish.
    while started.load(Ordering::SeqCst) < 1000 || calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().token, token);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The same on paused time, deterministically: all 1,000 are provably waiting on the one refresh.
#[tokio::test(start_paused = true)]
async fn a_thousand_waiting_callers_share_one_refresh() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, n) = (clock.clone(), calls.clone());
    let options = CommunicationTokenRefreshOptions::new(move || {
        n.fetch_add(1, Ordering::SeqCst);
        let c = c.clone();
        async move {
            sleep(secs(5)).await;
            Ok::<_, BoxError>(jwt(c.now().timestamp() + 3600))
        }
    })
    .with_initial_token(jwt(START - 1)); // already expired
    let credential = CommunicationTokenCredential::with_clock(options, clock).unwrap();

    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (credential, done) = (credential.clone(), done.clone());
            tokio::spawn(async move {
                let token = credential.get_token(None).await;
                done.fetch_add(1, Ordering::SeqCst);
                token
            })
        })
        .collect();
    sleep(secs(1)).await;
    assert_eq!(done.load(Ordering::SeqCst), 0, "all are waiting");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let first = tasks
        .into_iter()
        .map(|t| async { t.await.unwrap().unwrap() });
    let mut tokens = Vec::new();
    for t in first {
        tokens.push(t.await);
    }
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_still_valid_token_is_served_while_a_refresh_runs() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let (c, n, g) = (clock.clone(), calls.clone(), gate.clone());
    let initial = jwt(START + 90); // inside the 2-minute window, not expired
    let options = CommunicationTokenRefreshOptions::new(move || {
        n.fetch_add(1, Ordering::SeqCst);
        let (c, g) = (c.clone(), g.clone());
        async move {
            g.notified().await;
            Ok::<_, BoxError>(jwt(c.now().timestamp() + 3600))
        }
    })
    .with_initial_token(initial.clone());
    let credential = CommunicationTokenCredential::with_clock(options, clock).unwrap();

    // The first caller starts the refresh and waits for it.
    let first = tokio::spawn({
        let credential = credential.clone();
        async move { credential.get_token(None).await }
    });
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Later callers get the still-valid token at once, without waiting for the refresh.
    let before = Instant::now();
    let served = tokio::time::timeout(secs(1), credential.get_token(None))
        .await
        .expect("served without waiting")
        .unwrap();
    assert_eq!(served.token, initial);
    assert_eq!(Instant::now(), before);

    gate.notify_one();
    assert_ne!(first.await.unwrap().unwrap().token, initial);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------- errors

#[tokio::test(start_paused = true)]
async fn an_expired_token_from_the_refresher_is_an_error() {
    let clock = clock();
    for exp in [START - 3600, START] {
        let options =
            CommunicationTokenRefreshOptions::new(
                move || async move { Ok::<_, BoxError>(jwt(exp)) },
            );
        let credential = CommunicationTokenCredential::with_clock(options, clock.clone()).unwrap();
        let error = credential.get_token(None).await.unwrap_err();
        assert!(matches!(error, CredentialError::ExpiredToken));
        assert_eq!(
            error.to_string(),
            "The token returned from the tokenRefresher is expired."
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_token_from_the_refresher_is_an_error() {
    let options = CommunicationTokenRefreshOptions::new(|| async { Ok::<_, BoxError>("opaque") });
    let credential = CommunicationTokenCredential::with_clock(options, clock()).unwrap();
    assert!(matches!(
        credential.get_token(None).await,
        Err(CredentialError::InvalidToken(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn every_waiter_gets_the_same_error_and_the_next_call_refreshes_again() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, n) = (clock.clone(), calls.clone());
    let options = CommunicationTokenRefreshOptions::new(move || {
        let call = n.fetch_add(1, Ordering::SeqCst);
        let c = c.clone();
        async move {
            sleep(secs(1)).await;
            if call == 0 {
                Err(io_error("backend unavailable"))
            } else {
                Ok(jwt(c.now().timestamp() + 3600))
            }
        }
    });
    let credential = CommunicationTokenCredential::with_clock(options, clock).unwrap();

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let credential = credential.clone();
            tokio::spawn(async move { credential.get_token(None).await })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Err(CredentialError::Refresher(e)) => errors.push(e),
            other => panic!("expected the refresher's error, got {other:?}"),
        }
    }
    assert_eq!(errors[0].to_string(), "backend unavailable");
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "one shared error"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    credential.get_token(None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_refresher_fails_the_refresh_and_the_next_call_retries() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, n) = (clock.clone(), calls.clone());
    let options = CommunicationTokenRefreshOptions::new(move || {
        let call = n.fetch_add(1, Ordering::SeqCst);
        let c = c.clone();
        async move {
            assert!(
                call > 0,
                "refresher panics on its first call (expected in this test)"
            );
            Ok::<_, BoxError>(jwt(c.now().timestamp() + 3600))
        }
    });
    let credential = CommunicationTokenCredential::with_clock(options, clock).unwrap();
    assert!(matches!(
        credential.get_token(None).await,
        Err(CredentialError::RefreshInterrupted)
    ));
    credential.get_token(None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_wait_leaves_the_refresh_running_and_cached() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, n) = (clock.clone(), calls.clone());
    let options = CommunicationTokenRefreshOptions::new(move || {
        n.fetch_add(1, Ordering::SeqCst);
        let c = c.clone();
        async move {
            sleep(secs(10)).await;
            Ok::<_, BoxError>(jwt(c.now().timestamp() + 3600))
        }
    });
    let credential = CommunicationTokenCredential::with_clock(options, clock).unwrap();

    let cancel = CancellationToken::new();
    let (result, ()) = tokio::join!(credential.get_token(Some(&cancel)), async {
        sleep(secs(1)).await;
        cancel.cancel();
    });
    assert!(matches!(result, Err(CredentialError::Cancelled)));

    sleep(secs(10)).await;
    let before = Instant::now();
    credential.get_token(Some(&cancel)).await.unwrap();
    assert_eq!(Instant::now(), before, "served from the cache");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A refresh whose runtime shuts down publishes "interrupted" instead of leaving the credential
/// stuck; a call from another runtime then starts a fresh refresh there.
#[test]
fn a_refresh_survives_its_runtime_shutting_down() {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let (n, g) = (calls.clone(), gate.clone());
    let options = CommunicationTokenRefreshOptions::new(move || {
        let first = n.fetch_add(1, Ordering::SeqCst) == 0;
        let g = g.clone();
        async move {
            if first {
                g.notified().await; // never released: this refresh only ends with its runtime
            }
            Ok::<_, BoxError>(jwt(Utc::now().timestamp() + 3600))
        }
    });
    let credential = CommunicationTokenCredential::new(options).unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };

    let first = runtime();
    first.block_on(async {
        let credential = credential.clone();
        // A waiter on the doomed refresh; it is dropped along with the runtime.
        tokio::spawn(async move { credential.get_token(None).await });
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    drop(first);

    let second = runtime();
    let token = second.block_on(credential.get_token(None)).unwrap();
    assert!(token.expires_on > Utc::now());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn proactive_refresh_outside_a_runtime_is_an_error() {
    let options = CommunicationTokenRefreshOptions::new(|| async { Ok::<_, BoxError>(jwt(START)) })
        .with_refresh_proactively(true);
    assert!(matches!(
        CommunicationTokenCredential::new(options),
        Err(CredentialError::NoRuntime)
    ));
}

// ---------------------------------------------------------------- proactive

#[tokio::test(start_paused = true)]
async fn proactive_refresh_runs_ten_minutes_before_expiry() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let credential = CommunicationTokenCredential::with_clock(
        hour_tokens(&clock, &calls)
            .with_initial_token(jwt(START + 30 * 60))
            .with_refresh_proactively(true),
        clock.clone(),
    )
    .unwrap();

    sleep(mins(20) - Duration::from_millis(1)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    sleep(Duration::from_millis(2)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The new token (1 h) is refreshed 50 minutes later, and so on; get_token never waits.
    sleep(mins(50)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let before = Instant::now();
    let token = credential.get_token(None).await.unwrap();
    assert_eq!(Instant::now(), before);
    assert_eq!(token.expires_on, start() + TimeDelta::minutes(70 + 60));
}

#[tokio::test(start_paused = true)]
async fn proactive_refresh_without_an_initial_token_fetches_at_once() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let credential = CommunicationTokenCredential::with_clock(
        hour_tokens(&clock, &calls).with_refresh_proactively(true),
        clock.clone(),
    )
    .unwrap();
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    credential.get_token(None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// docs/protocol.md §6: a refresher that keeps returning the same token, expiring 20 minutes after the
/// start, is called about ten times before it expires (at half the remaining lifetime), not
/// thousands.
#[tokio::test(start_paused = true)]
async fn a_refresher_returning_the_same_short_token_is_called_about_ten_times() {
    let clock = clock();
    let token = jwt(START + 20 * 60);
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let (c, t, ts) = (clock.clone(), token.clone(), recorded.clone());
    let options = CommunicationTokenRefreshOptions::new(move || {
        ts.lock().unwrap().push(elapsed(&c));
        let t = t.clone();
        async move { Ok::<_, BoxError>(t) }
    })
    .with_initial_token(token)
    .with_refresh_proactively(true);
    let credential = CommunicationTokenCredential::with_clock(options, clock).unwrap();

    sleep(mins(20)).await;
    let times = recorded.lock().unwrap().clone();
    assert!(
        (5..=15).contains(&times.len()),
        "{} calls: {times:?}",
        times.len()
    );
    assert_eq!(
        &times[..3],
        &[600.0, 900.0, 1050.0],
        "10 min before, then halving"
    );
    assert!(
        times.iter().all(|&t| t < 1200.0),
        "all before expiry: {times:?}"
    );

    // Nothing more after expiry: no timer spins on an expired token.
    sleep(mins(120)).await;
    assert_eq!(times.len(), recorded.lock().unwrap().len());
    drop(credential);
}

#[tokio::test(start_paused = true)]
async fn failed_proactive_refreshes_are_logged_and_retried_with_backoff_until_expiry() {
    let logs = LogCapture::default();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    let clock = clock();
    let initial = jwt(START + 20 * 60);
    let times = Arc::new(Mutex::new(Vec::new()));
    let succeed = Arc::new(AtomicBool::new(false));
    let (c, ts, ok) = (clock.clone(), times.clone(), succeed.clone());
    let options = CommunicationTokenRefreshOptions::new(move || {
        ts.lock().unwrap().push(elapsed(&c));
        let result = if ok.load(Ordering::SeqCst) {
            Ok(jwt(c.now().timestamp() + 3600))
        } else {
            Err(io_error("backend unavailable"))
        };
        async move { result }
    })
    .with_initial_token(initial.clone())
    .with_refresh_proactively(true);
    let credential = CommunicationTokenCredential::with_clock(options, clock.clone()).unwrap();

    sleep(mins(25)).await;
    let attempts = times.lock().unwrap().clone();
    let gaps: Vec<f64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(attempts[0], 600.0);
    assert_eq!(&gaps[..8], &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]);
    assert!(
        gaps[6..].iter().all(|&g| g == 60.0),
        "capped at a minute: {gaps:?}"
    );
    assert!(attempts.iter().all(|&t| t < 1200.0), "{attempts:?}");
    assert!(attempts.len() < 25, "bounded: {attempts:?}");

    let output = logs.text();
    assert!(
        output.contains("proactive token refresh failed"),
        "{output}"
    );
    assert!(output.contains("backend unavailable"), "{output}");
    assert!(output.contains("gave up"), "{output}");
    assert!(
        !output.contains(&initial) && !output.contains("eyJ"),
        "{output}"
    );

    // Once the token has expired, the next get_token refreshes on demand and re-arms the schedule.
    succeed.store(true, Ordering::SeqCst);
    let before = attempts.len();
    let token = credential.get_token(None).await.unwrap();
    assert_eq!(token.expires_on, clock.now() + TimeDelta::minutes(60));
    sleep(mins(50) + secs(1)).await;
    let attempts = times.lock().unwrap().clone();
    assert_eq!(
        attempts.len(),
        before + 2,
        "on demand, then proactive: {attempts:?}"
    );
    assert_eq!(attempts[before + 1] - attempts[before], 50.0 * 60.0);
}

#[tokio::test(start_paused = true)]
async fn an_on_demand_refresh_reschedules_the_proactive_one() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    // The initial token has expired; proactive refresh has nothing to do until get_token fetches.
    let credential = CommunicationTokenCredential::with_clock(
        hour_tokens(&clock, &calls)
            .with_initial_token(jwt(START))
            .with_refresh_proactively(true),
        clock.clone(),
    )
    .unwrap();
    sleep(mins(5)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    credential.get_token(None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    sleep(mins(50) - secs(1)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    sleep(secs(2)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------- dispose and drop

#[tokio::test(start_paused = true)]
async fn dispose_stops_the_background_task_and_fails_later_calls() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let credential = CommunicationTokenCredential::with_clock(
        hour_tokens(&clock, &calls)
            .with_initial_token(jwt(START + 20 * 60))
            .with_refresh_proactively(true),
        clock,
    )
    .unwrap();
    let clone = credential.clone();
    tokio::task::yield_now().await; // the background task is now sleeping
    assert_eq!(Arc::strong_count(&credential.inner.shared), 2);

    clone.dispose();
    sleep(Duration::from_secs(86_400)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "never called after dispose"
    );
    assert_eq!(
        Arc::strong_count(&credential.inner.shared),
        1,
        "the background task has ended"
    );
    assert!(credential.is_disposed());
    assert!(matches!(
        credential.get_token(None).await,
        Err(CredentialError::Disposed)
    ));
    assert!(!format!("{credential:?}").contains("eyJ"));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_clone_stops_the_background_task() {
    let clock = clock();
    let calls = Arc::new(AtomicUsize::new(0));
    let credential = CommunicationTokenCredential::with_clock(
        hour_tokens(&clock, &calls)
            .with_initial_token(jwt(START + 20 * 60))
            .with_refresh_proactively(true),
        clock,
    )
    .unwrap();
    let shared = Arc::downgrade(&credential.inner.shared);
    let clone = credential.clone();

    drop(credential);
    sleep(mins(11)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a live clone keeps it running"
    );

    drop(clone);
    sleep(Duration::from_secs(86_400)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "never called after the last drop"
    );
    assert!(
        shared.upgrade().is_none(),
        "no task holds the state any more"
    );
}

#[tokio::test(start_paused = true)]
async fn dispose_fails_callers_waiting_on_a_refresh() {
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let options = CommunicationTokenRefreshOptions::new(move || {
        let g = g.clone();
        async move {
            g.notified().await; // never released
            Ok::<_, BoxError>(jwt(START + 3600))
        }
    });
    let credential = CommunicationTokenCredential::with_clock(options, clock()).unwrap();
    let waiter = tokio::spawn({
        let credential = credential.clone();
        async move { credential.get_token(None).await }
    });
    sleep(secs(1)).await;
    credential.dispose();
    assert!(matches!(
        waiter.await.unwrap(),
        Err(CredentialError::Disposed)
    ));
    tokio::task::yield_now().await;
    assert_eq!(
        Arc::strong_count(&credential.inner.shared),
        1,
        "refresh task ended"
    );
}

// ---------------------------------------------------------------- planning (pure)

#[test]
fn refresh_planning() {
    let now = start();
    let token = |secs: i64| AccessToken {
        token: String::new(),
        expires_on: now + TimeDelta::seconds(secs),
    };
    assert_eq!(plan_refresh(None, now), Some(now));
    assert_eq!(
        plan_refresh(Some(&token(3600)), now),
        Some(now + TimeDelta::minutes(50))
    );
    assert_eq!(
        plan_refresh(Some(&token(600)), now),
        Some(now + TimeDelta::minutes(5))
    );
    assert_eq!(
        plan_refresh(Some(&token(1)), now),
        None,
        "the 1 s floor would reach expiry"
    );
    assert_eq!(
        plan_refresh(Some(&token(1)), now - TimeDelta::milliseconds(500)),
        Some(now + TimeDelta::milliseconds(500)),
        "1.5 s left: refresh 1 s later, not 0.75 s"
    );
    assert_eq!(plan_refresh(Some(&token(0)), now), None);
    assert_eq!(plan_refresh(Some(&token(-5)), now), None);
}

#[test]
fn retry_planning() {
    let now = start();
    let token = AccessToken {
        token: String::new(),
        expires_on: now + TimeDelta::hours(1),
    };
    let delays: Vec<i64> = (1..=10)
        .map(|n| (plan_retry(Some(&token), now, n).unwrap() - now).num_seconds())
        .collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    assert!(plan_retry(Some(&token), now, u32::MAX).is_some());
    assert_eq!(plan_retry(None, now, 1), None);
    let short = AccessToken {
        token: String::new(),
        expires_on: now + TimeDelta::seconds(3),
    };
    assert!(plan_retry(Some(&short), now, 2).is_some());
    assert_eq!(plan_retry(Some(&short), now, 3), None);
}

/// Collects formatted log output in memory.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
