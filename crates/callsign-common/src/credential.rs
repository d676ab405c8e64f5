//! `CommunicationTokenCredential`: holds a user's access token and keeps it fresh (docs/protocol.md §6).
//!
//! Chat and calling clients ask the credential for a token before every request. A credential is
//! either static (one token, handed out as is) or refreshing (an async callback fetches new tokens
//! from the application's own backend, on demand and optionally ahead of time).
//!
//! # How a refresh is shared (single flight)
//!
//! The state (current token, the refresh in flight, whether disposed) sits behind one
//! [`std::sync::Mutex`] that is only ever held for a few field reads and writes, never across an
//! `.await` and never while user code runs. A refresh is a spawned Tokio task; the mutex records it
//! as a [`tokio::sync::watch`] receiver. Whoever finds a refresh needed and none running spawns
//! one; everyone else who needs a new token clones the receiver and waits for the one result,
//! which the task publishes (token or error) exactly once. Because the refresh is a task of its
//! own, a caller that gives up waiting (cancellation, a dropped future) never cancels the refresh
//! the others wait on, and its result is still cached. Callers whose cached token has not expired
//! yet are handed it at once while a refresh runs.
//!
//! # Timing
//!
//! * On demand: [`get_token`](CommunicationTokenCredential::get_token) refreshes when the token
//!   expires within 2 minutes, or there is none yet.
//! * Proactive (opt-in): a background task refreshes 10 minutes before expiry. A token that is
//!   already inside those 10 minutes when it arrives is refreshed again after half its remaining
//!   lifetime (at least 1 second apart), so a refresher that keeps returning a short-lived token is
//!   called about ten times before it expires, not in a loop. A failed proactive refresh is logged
//!   and retried after 1 s, 2 s, 4 s, … up to 1 minute apart, for as long as the current token is
//!   still valid; after that the next `get_token` refreshes on demand and re-arms the schedule.
//! * Expiry is wall-clock time (the JWT `exp`), read from an injectable [`Clock`], so tests run on
//!   Tokio's paused time with [`TokioClock`](crate::clock::TokioClock).
//!
//! Refreshing needs a Tokio runtime (the refresh and the proactive timer are Tokio tasks); a static
//! credential does not.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::claims::{decode_expiry, AccessToken, TokenDecodeError};
use crate::clock::{Clock, SystemClock};

/// Refresh on demand when the token expires within this long.
const ON_DEMAND_WINDOW: TimeDelta = TimeDelta::minutes(2);
/// Refresh proactively this long before expiry.
const PROACTIVE_WINDOW: TimeDelta = TimeDelta::minutes(10);
/// The shortest gap between two proactive refreshes of a token that keeps coming back short-lived:
/// without a floor, halving the remaining lifetime would approach expiry in ever smaller steps.
const MIN_PROACTIVE_INTERVAL: TimeDelta = TimeDelta::seconds(1);
/// The first retry delay after a failed proactive refresh; it doubles on each further failure.
const FIRST_RETRY_DELAY: TimeDelta = TimeDelta::seconds(1);
/// The longest retry delay after failed proactive refreshes.
const MAX_RETRY_DELAY: TimeDelta = TimeDelta::minutes(1);

/// The error type a token refresher may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future a [`TokenRefresher`] returns.
pub type RefreshFuture = Pin<Box<dyn Future<Output = Result<RefreshedToken, BoxError>> + Send>>;

/// The boxed async callback that fetches a new token, usually from the application's backend.
///
/// It is called with no lock held, from a Tokio task of its own, at most once at a time per
/// credential. [`CommunicationTokenRefreshOptions::new`] builds one from any async closure.
pub type TokenRefresher = Box<dyn Fn() -> RefreshFuture + Send + Sync>;

/// What a token refresher returns.
///
/// Usually a JWT whose `exp` claim gives its expiry; tokens that cannot be decoded (for example
/// encrypted ones) come with an explicit expiry instead.
///
/// ```
/// use callsign_common::{AccessToken, RefreshedToken};
///
/// let jwt: RefreshedToken = "header.payload.signature".into();
/// let opaque: RefreshedToken = AccessToken {
///     token: "encrypted-token".into(),
///     expires_on: chrono::Utc::now() + chrono::TimeDelta::hours(1),
/// }
/// .into();
/// assert!(matches!(jwt, RefreshedToken::Jwt(_)));
/// assert!(matches!(opaque, RefreshedToken::WithExpiry(_)));
/// assert_eq!(format!("{jwt:?}"), "Jwt(<redacted>)");
/// ```
#[derive(Clone)]
pub enum RefreshedToken {
    /// A JWT; its expiry is read from the `exp` claim.
    Jwt(String),
    /// A token with its expiry given explicitly, for tokens whose claims cannot be read.
    WithExpiry(AccessToken),
}

impl RefreshedToken {
    /// Decodes the expiry where needed.
    fn into_access_token(self) -> Result<AccessToken, CredentialError> {
        match self {
            Self::Jwt(token) => {
                let expires_on = decode_expiry(&token)
                    .map_err(|e| CredentialError::InvalidToken(Arc::new(e)))?;
                Ok(AccessToken { token, expires_on })
            }
            Self::WithExpiry(token) => Ok(token),
        }
    }
}

impl From<String> for RefreshedToken {
    fn from(token: String) -> Self {
        Self::Jwt(token)
    }
}

impl From<&str> for RefreshedToken {
    fn from(token: &str) -> Self {
        Self::Jwt(token.to_owned())
    }
}

impl From<AccessToken> for RefreshedToken {
    fn from(token: AccessToken) -> Self {
        Self::WithExpiry(token)
    }
}

impl fmt::Debug for RefreshedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Jwt(_) => f.write_str("Jwt(<redacted>)"),
            Self::WithExpiry(token) => f.debug_tuple("WithExpiry").field(token).finish(),
        }
    }
}

/// How a refreshing [`CommunicationTokenCredential`] gets its tokens.
///
/// ```
/// use callsign_common::credential::CommunicationTokenRefreshOptions;
///
/// let options = CommunicationTokenRefreshOptions::new(|| async {
///     // Ask your own backend for a fresh token here.
///     Ok::<_, std::io::Error>("header.payload.signature".to_string())
/// })
/// .with_refresh_proactively(true);
/// assert!(options.refresh_proactively);
/// assert!(options.initial_token.is_none());
/// ```
pub struct CommunicationTokenRefreshOptions {
    /// Fetches a new token when one is needed.
    pub refresher: TokenRefresher,
    /// Whether a background task refreshes the token before it expires (10 minutes ahead), so that
    /// requests rarely wait for a refresh. Off by default, as in the official clients.
    pub refresh_proactively: bool,
    /// A token to start with; without one the first `get_token` (or the proactive task) fetches one.
    pub initial_token: Option<String>,
}

impl CommunicationTokenRefreshOptions {
    /// Options from an async closure, with no initial token and no proactive refresh.
    ///
    /// The closure may return a JWT (`String`/`&str`), an [`AccessToken`] with an explicit expiry,
    /// or a [`RefreshedToken`]; its error type is anything convertible to [`BoxError`].
    pub fn new<F, Fut, T, E>(refresher: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Into<RefreshedToken>,
        E: Into<BoxError>,
    {
        let refresher: TokenRefresher = Box::new(move || {
            let fut = refresher();
            Box::pin(async move { fut.await.map(Into::into).map_err(Into::into) })
        });
        Self {
            refresher,
            refresh_proactively: false,
            initial_token: None,
        }
    }

    /// Sets [`refresh_proactively`](Self::refresh_proactively).
    pub fn with_refresh_proactively(mut self, refresh_proactively: bool) -> Self {
        self.refresh_proactively = refresh_proactively;
        self
    }

    /// Sets [`initial_token`](Self::initial_token).
    pub fn with_initial_token(mut self, token: impl Into<String>) -> Self {
        self.initial_token = Some(token.into());
        self
    }
}

impl fmt::Debug for CommunicationTokenRefreshOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommunicationTokenRefreshOptions")
            .field("refresh_proactively", &self.refresh_proactively)
            .field(
                "initial_token",
                &self.initial_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// Why a credential could not produce a token.
///
/// Cloneable because every caller waiting on one failed refresh receives the same error. No
/// variant ever contains a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A token (static, initial or refreshed) is not a JWT whose `exp` can be read.
    #[error("the token cannot be decoded: {0}")]
    InvalidToken(Arc<TokenDecodeError>),
    /// The refresher returned a token that has already expired (the official clients' message).
    #[error("The token returned from the tokenRefresher is expired.")]
    ExpiredToken,
    /// The refresher returned an error; every caller that waited on that refresh gets this same
    /// error (the `Arc` points to one shared value).
    #[error("the token refresher failed: {0}")]
    Refresher(Arc<dyn std::error::Error + Send + Sync>),
    /// The refresh ended without a result: the refresher panicked, or the runtime running the
    /// refresh shut down. The next call starts a new refresh.
    #[error("the token refresh ended without a result (the refresher panicked or its runtime shut down)")]
    RefreshInterrupted,
    /// The caller's cancellation token fired while it waited for a refresh. The refresh itself
    /// goes on and its token is cached for the next call.
    #[error("waiting for the token was cancelled")]
    Cancelled,
    /// The credential was disposed (explicitly, or all its clones were dropped).
    #[error("the credential has been disposed")]
    Disposed,
    /// Refreshing needs a Tokio runtime and none is running on this thread.
    #[error("refreshing a token needs a Tokio runtime, and none is running")]
    NoRuntime,
    /// The credential was given invalid options (e.g. Entra scopes of mixed or unknown prefixes).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

type RefreshResult = Result<AccessToken, CredentialError>;

/// A communication user's access token, cached and refreshed for chat and calling clients.
///
/// Cheap to clone: clones share one token, one refresh and one background task. Disposing any
/// clone disposes them all; dropping the last clone does the same.
///
/// Static:
///
/// ```
/// use callsign_common::credential::CommunicationTokenCredential;
///
/// # fn token_from_identity_service() -> String { use base64::Engine; format!("e30.{}.sig",
/// #     base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":4102444800}"#)) }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let credential = CommunicationTokenCredential::from_token(&token_from_identity_service())?;
/// let access = credential.get_token(None).await?;
/// assert_eq!(access.expires_on.timestamp(), 4_102_444_800);
/// assert!(CommunicationTokenCredential::from_token("not a jwt").is_err());
/// # Ok(())
/// # }
/// ```
///
/// Refreshing, with proactive refresh (needs a Tokio runtime):
///
/// ```
/// use callsign_common::credential::{CommunicationTokenCredential, CommunicationTokenRefreshOptions};
///
/// # fn fetch_token_from_backend() -> String { use base64::Engine; format!("e30.{}.sig",
/// #     base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":4102444800}"#)) }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let credential = CommunicationTokenCredential::new(
///     CommunicationTokenRefreshOptions::new(|| async {
///         // e.g. POST to your backend, which calls the identity service for this user.
///         Ok::<_, std::io::Error>(fetch_token_from_backend())
///     })
///     .with_refresh_proactively(true),
/// )?;
/// let token = credential.get_token(None).await?; // first call fetches, later calls are cached
/// assert!(!token.token.is_empty());
/// credential.dispose(); // stops the background refresh
/// assert!(credential.get_token(None).await.is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CommunicationTokenCredential {
    inner: Arc<Owner>,
}

/// The part only credential clones hold: when the last clone goes, it disposes the shared state.
/// Background and refresh tasks hold [`Shared`] instead, so they never keep the credential alive.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.dispose();
    }
}

/// State shared by the credential's clones, its refresh tasks and its proactive task.
struct Shared {
    state: Mutex<State>,
    /// `None` for a static credential.
    refresher: Option<TokenRefresher>,
    clock: Arc<dyn Clock>,
    /// Bumped whenever a refresh stores a new token, so the proactive task re-plans.
    generation: watch::Sender<u64>,
}

struct State {
    token: Option<AccessToken>,
    flight: Option<Flight>,
    next_flight_id: u64,
    /// The proactive task, aborted on dispose.
    background: Option<AbortHandle>,
    disposed: bool,
}

/// The refresh in flight.
struct Flight {
    id: u64,
    result: watch::Receiver<Option<RefreshResult>>,
    /// Set right after spawning, which happens outside the lock.
    task: Option<AbortHandle>,
}

/// What a caller does next, decided under the lock.
enum Next {
    Ready(AccessToken),
    Wait(watch::Receiver<Option<RefreshResult>>),
}

/// When `get_token`-style callers consider a refresh needed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Refresh only within the on-demand window; serve a still-valid token while one runs.
    OnDemand,
    /// The proactive task decided it is time: always join or start a refresh.
    Now,
}

impl CommunicationTokenCredential {
    /// A static credential: always hands out `token`, which is never refreshed.
    ///
    /// Fails when the token's `exp` cannot be read. Like the official clients, `get_token` keeps
    /// returning the token after it expires; the service then rejects it.
    pub fn from_token(token: &str) -> Result<Self, CredentialError> {
        let token = RefreshedToken::from(token).into_access_token()?;
        Ok(Self::from_access_token(token))
    }

    /// A static credential from a token whose expiry is already known (for example an encrypted
    /// token whose claims cannot be read).
    pub fn from_access_token(token: AccessToken) -> Self {
        Self::build(Some(token), None, Arc::new(SystemClock))
    }

    /// A refreshing credential. With `refresh_proactively`, the background refresh task starts now.
    ///
    /// Fails when the initial token cannot be decoded, or when proactive refresh is asked for
    /// outside a Tokio runtime ([`CredentialError::NoRuntime`]).
    pub fn new(options: CommunicationTokenRefreshOptions) -> Result<Self, CredentialError> {
        Self::with_clock(options, Arc::new(SystemClock))
    }

    /// [`new`](Self::new) with an injected wall clock, for tests on paused Tokio time.
    ///
    /// With [`TokioClock`](crate::clock::TokioClock), token expiry follows Tokio's clock, so an
    /// hour-long token can be aged in a test without waiting:
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use callsign_common::clock::{Clock, TokioClock};
    /// use callsign_common::credential::{CommunicationTokenCredential, CommunicationTokenRefreshOptions};
    /// use callsign_common::AccessToken;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let clock = Arc::new(TokioClock::starting_at(chrono::Utc::now()));
    /// let c = clock.clone();
    /// let credential = CommunicationTokenCredential::with_clock(
    ///     CommunicationTokenRefreshOptions::new(move || {
    ///         // An opaque token with an explicit expiry, valid for an hour.
    ///         let token = AccessToken {
    ///             token: format!("token-{}", c.now().timestamp()),
    ///             expires_on: c.now() + chrono::TimeDelta::hours(1),
    ///         };
    ///         async move { Ok::<_, std::io::Error>(token) }
    ///     }),
    ///     clock.clone(),
    /// )?;
    /// let first = credential.get_token(None).await?;
    /// tokio::time::sleep(Duration::from_secs(57 * 60)).await; // 3 minutes left: still cached
    /// assert_eq!(credential.get_token(None).await?, first);
    /// tokio::time::sleep(Duration::from_secs(60)).await; // 2 minutes left: refreshed on demand
    /// assert_ne!(credential.get_token(None).await?, first);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_clock(
        options: CommunicationTokenRefreshOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CredentialError> {
        let initial = options
            .initial_token
            .map(|t| RefreshedToken::Jwt(t).into_access_token())
            .transpose()?;
        let runtime = if options.refresh_proactively {
            Some(tokio::runtime::Handle::try_current().map_err(|_| CredentialError::NoRuntime)?)
        } else {
            None
        };
        let credential = Self::build(initial, Some(options.refresher), clock);
        if let Some(runtime) = runtime {
            let shared = Arc::clone(&credential.inner.shared);
            let generation = shared.generation.subscribe();
            let task = runtime.spawn(proactive_refresh(shared, generation));
            credential.inner.shared.lock().background = Some(task.abort_handle());
        }
        Ok(credential)
    }

    fn build(
        token: Option<AccessToken>,
        refresher: Option<TokenRefresher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                token,
                flight: None,
                next_flight_id: 0,
                background: None,
                disposed: false,
            }),
            refresher,
            clock,
            generation: watch::Sender::new(0),
        });
        Self {
            inner: Arc::new(Owner { shared }),
        }
    }

    /// The current token, refreshed first when it expires within 2 minutes (or there is none).
    ///
    /// While a refresh runs, callers whose cached token has not expired get it at once; the others
    /// wait for that one refresh and all receive its result, token or error. After a failed
    /// refresh, the next call starts a new one.
    ///
    /// `cancel` stops *this caller's* wait ([`CredentialError::Cancelled`]); the refresh goes on
    /// for the others and its token is cached. (Dropping the returned future has the same effect.)
    /// A cached token is returned even when `cancel` has already fired, as there is nothing to wait
    /// for.
    ///
    /// ```
    /// use callsign_common::credential::{
    ///     CommunicationTokenCredential, CommunicationTokenRefreshOptions, CredentialError,
    /// };
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), CredentialError> {
    /// let credential = CommunicationTokenCredential::new(CommunicationTokenRefreshOptions::new(
    ///     || async {
    ///         tokio::time::sleep(std::time::Duration::from_secs(30)).await; // a slow backend
    ///         Ok::<_, std::io::Error>("never.used.here")
    ///     },
    /// ))?;
    /// let cancel = CancellationToken::new();
    /// cancel.cancel();
    /// assert!(matches!(
    ///     credential.get_token(Some(&cancel)).await,
    ///     Err(CredentialError::Cancelled)
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_token(
        &self,
        cancel: Option<&CancellationToken>,
    ) -> Result<AccessToken, CredentialError> {
        let rx = match Shared::next(&self.inner.shared, Need::OnDemand)? {
            Next::Ready(token) => return Ok(token),
            Next::Wait(rx) => rx,
        };
        match cancel {
            Some(cancel) => tokio::select! {
                biased;
                () = cancel.cancelled() => Err(CredentialError::Cancelled),
                result = wait(rx) => result,
            },
            None => wait(rx).await,
        }
    }

    /// Stops the background refresh and any refresh in flight, and forgets the token.
    ///
    /// Affects every clone. Afterwards `get_token` fails with [`CredentialError::Disposed`], and so
    /// do callers that were waiting on the refresh. Disposing twice is harmless. Dropping the last
    /// clone disposes implicitly.
    pub fn dispose(&self) {
        self.inner.shared.dispose();
    }

    /// Whether the credential has been disposed.
    pub fn is_disposed(&self) -> bool {
        self.inner.shared.lock().disposed
    }
}

impl fmt::Debug for CommunicationTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.inner.shared;
        let state = shared.lock();
        f.debug_struct("CommunicationTokenCredential")
            .field("refreshing", &shared.refresher.is_some())
            .field("proactive", &state.background.is_some())
            .field("expires_on", &state.token.as_ref().map(|t| t.expires_on))
            .field("refresh_in_flight", &state.flight.is_some())
            .field("disposed", &state.disposed)
            .finish()
    }
}

impl Shared {
    /// Locks the state. A panic while it was held cannot leave it inconsistent (every critical
    /// section only assigns whole fields), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the cached token, or the refresh to wait for (starting one if needed).
    fn next(this: &Arc<Self>, need: Need) -> Result<Next, CredentialError> {
        let mut state = this.lock();
        if state.disposed {
            return Err(CredentialError::Disposed);
        }
        let now = this.clock.now();
        if let Some(token) = &state.token {
            let fresh = token.expires_on - now > ON_DEMAND_WINDOW;
            if this.refresher.is_none() || (need == Need::OnDemand && fresh) {
                return Ok(Next::Ready(token.clone()));
            }
        }
        if let Some(flight) = &state.flight {
            if let Some(token) = &state.token {
                if need == Need::OnDemand && now < token.expires_on {
                    return Ok(Next::Ready(token.clone()));
                }
            }
            return Ok(Next::Wait(flight.result.clone()));
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| CredentialError::NoRuntime)?;
        let id = state.next_flight_id;
        state.next_flight_id += 1;
        let (tx, rx) = watch::channel(None);
        state.flight = Some(Flight {
            id,
            result: rx.clone(),
            task: None,
        });
        drop(state);

        let publisher = Publisher {
            shared: Arc::clone(this),
            id,
            tx,
            result: None,
        };
        // Spawned with the lock released: a runtime that is shutting down drops the task (and so
        // the publisher, which takes the lock) inside `spawn`.
        let task = runtime.spawn(refresh(publisher)).abort_handle();
        let mut state = this.lock();
        if let Some(flight) = state.flight.as_mut().filter(|f| f.id == id) {
            flight.task = Some(task);
        } else if state.disposed {
            // Disposed while spawning: dispose could not abort a task it did not know of yet.
            drop(state);
            task.abort();
        }
        // Otherwise the refresh has already finished and published its result.
        Ok(Next::Wait(rx))
    }

    fn dispose(&self) {
        let (flight, background) = {
            let mut state = self.lock();
            state.disposed = true;
            state.token = None;
            (state.flight.take(), state.background.take())
        };
        // Aborted outside the lock: the refresh task's publisher takes the lock when dropped.
        if let Some(task) = flight.and_then(|f| f.task) {
            task.abort();
        }
        if let Some(background) = background {
            background.abort();
        }
    }
}

/// Waits for a refresh's published result.
async fn wait(mut rx: watch::Receiver<Option<RefreshResult>>) -> RefreshResult {
    match rx.wait_for(Option::is_some).await {
        Ok(result) => result
            .clone()
            .unwrap_or(Err(CredentialError::RefreshInterrupted)),
        // Unreachable in practice: the publisher always sends before it is dropped.
        Err(_) => Err(CredentialError::RefreshInterrupted),
    }
}

/// Publishes a refresh's outcome when dropped, so that waiters get an answer however the refresh
/// task ends: normally, by a panic in the refresher, by dispose aborting it, or by runtime shutdown.
struct Publisher {
    shared: Arc<Shared>,
    id: u64,
    tx: watch::Sender<Option<RefreshResult>>,
    result: Option<RefreshResult>,
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let mut result = self
            .result
            .take()
            .unwrap_or(Err(CredentialError::RefreshInterrupted));
        let stored = {
            let mut state = self.shared.lock();
            if state.flight.as_ref().is_some_and(|f| f.id == self.id) {
                state.flight = None;
            }
            if state.disposed {
                result = Err(CredentialError::Disposed);
                false
            } else if let Ok(token) = &result {
                // Token and flight change under one lock, so no caller can see "no refresh
                // running" together with the old token and start a second refresh.
                state.token = Some(token.clone());
                true
            } else {
                false
            }
        };
        if stored {
            self.shared
                .generation
                .send_modify(|g| *g = g.wrapping_add(1));
        }
        self.tx.send_replace(Some(result));
    }
}

/// The body of a refresh task: run the refresher, validate its token, publish.
async fn refresh(mut publisher: Publisher) {
    let Some(refresher) = &publisher.shared.refresher else {
        return;
    };
    let result = match refresher().await {
        Ok(token) => token.into_access_token().and_then(|token| {
            if token.expires_on <= publisher.shared.clock.now() {
                Err(CredentialError::ExpiredToken)
            } else {
                Ok(token)
            }
        }),
        Err(e) => Err(CredentialError::Refresher(Arc::from(e))),
    };
    publisher.result = Some(result);
}

/// When the proactive task should next refresh `token`, planning at `now`; `None` when it should
/// not (the token has expired, or expires before another refresh would be due).
fn plan_refresh(token: Option<&AccessToken>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let Some(token) = token else {
        return Some(now);
    };
    let remaining = token.expires_on - now;
    if remaining <= TimeDelta::zero() {
        return None;
    }
    if remaining > PROACTIVE_WINDOW {
        return Some(token.expires_on - PROACTIVE_WINDOW);
    }
    let delay = (remaining / 2).max(MIN_PROACTIVE_INTERVAL);
    (delay < remaining).then(|| now + delay)
}

/// When to retry after `failures` consecutive failed proactive refreshes; `None` once the retry
/// would come after the token expires (or there is no token to keep fresh).
fn plan_retry(
    token: Option<&AccessToken>,
    now: DateTime<Utc>,
    failures: u32,
) -> Option<DateTime<Utc>> {
    let delay = FIRST_RETRY_DELAY
        .checked_mul(1 << failures.saturating_sub(1).min(16))
        .unwrap_or(MAX_RETRY_DELAY)
        .min(MAX_RETRY_DELAY);
    let at = now + delay;
    (at < token?.expires_on).then_some(at)
}

/// The proactive refresh task: sleeps until the planned time, refreshes, re-plans; re-plans early
/// whenever an on-demand refresh stores a new token. Ends when aborted by dispose.
async fn proactive_refresh(shared: Arc<Shared>, mut generation: watch::Receiver<u64>) {
    let mut failures = 0u32;
    loop {
        // Marked seen before planning, so a token stored after this point wakes the task below. A
        // token stored since the last look (an on-demand refresh) ends any failure streak.
        if generation.borrow_and_update().has_changed() {
            failures = 0;
        }
        let planned = {
            let state = shared.lock();
            if state.disposed {
                return;
            }
            let now = shared.clock.now();
            if failures == 0 {
                plan_refresh(state.token.as_ref(), now)
            } else {
                plan_retry(state.token.as_ref(), now, failures)
            }
        };
        let Some(at) = planned else {
            if failures > 0 {
                tracing::warn!(
                    failures,
                    "proactive token refresh gave up: the token expires before the next retry; \
                     the next get_token refreshes on demand"
                );
            }
            // Nothing to do until some refresh stores a new token.
            if generation.changed().await.is_err() {
                return;
            }
            failures = 0;
            continue;
        };
        let delay = (at - shared.clock.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            changed = generation.changed() => {
                if changed.is_err() {
                    return;
                }
                failures = 0;
                continue;
            }
        }
        let outcome = match Shared::next(&shared, Need::Now) {
            Ok(Next::Ready(_)) => Ok(()),
            Ok(Next::Wait(rx)) => wait(rx).await.map(drop),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => failures = 0,
            Err(CredentialError::Disposed) => return,
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, failures, "proactive token refresh failed; will retry");
            }
        }
    }
}

mod entra;
pub use entra::{
    exchange_route, EntraCommunicationTokenCredentialOptions, DEFAULT_ENTRA_SCOPE,
    ENTRA_CLIENTS_PREFIX, TEAMS_EXTENSION_PREFIX,
};

#[cfg(test)]
mod tests;
