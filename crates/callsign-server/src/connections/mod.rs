//! Serving connections: accepting them up to a limit, TLS, HTTP/1 and HTTP/2 through hyper, the
//! header-read, keep-alive and body-read timeouts, the memory budget for unfinished requests,
//! and shutdown.
//!
//! At the connection limit, the connection that has waited longest without sending a complete
//! request is closed to make room for the new one ([`registry`]); connections whose requests are
//! being answered are never closed for room, and when every connection is busy the server stops
//! accepting (the kernel's backlog holds new clients) until one is free. At shutdown, idle and
//! unfinished connections are closed at once, requests in flight get the grace to finish.

mod gate;
mod head;
mod refusal;
mod registry;

use axum::body::Bytes;
use axum::Router;
use gate::{Gate, Limits, Protocol};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use registry::{Conn, Registered, Registry};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// When all connections are busy at the limit, how often to look for one that became idle.
const FULL_RECHECK: Duration = Duration::from_millis(100);

/// How many connections may still be closing (and holding a file) over the limit before the
/// server waits for them to be gone; well within [`crate::limits::RESERVED_FILES`].
const CLOSING_SLACK: usize = 32;

/// After an idle HTTP/2 connection is told to go away, how long it has to do so.
const GOAWAY_GRACE: Duration = Duration::from_secs(1);

/// How a server serves its connections.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) header_read_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_connections: usize,
    pub(crate) max_unfinished_request_bytes: usize,
    pub(crate) shutdown_grace: Duration,
}

struct Shared {
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    registry: Arc<Registry>,
    limits: Arc<Limits>,
    shutdown: watch::Receiver<bool>,
}

/// Serves `app` on `listener` until `shutdown` resolves, then closes idle and unfinished
/// connections and gives requests in flight `shutdown_grace` to finish.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let registry = Arc::new(Registry::new(
        settings.max_connections,
        settings.max_unfinished_request_bytes,
    ));
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(Shared {
        app,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        registry: registry.clone(),
        limits: Arc::new(Limits {
            header_read_timeout: settings.header_read_timeout,
            keep_alive_timeout: settings.keep_alive_timeout,
            body_read_timeout: settings.body_read_timeout,
            max_header_bytes: settings.max_header_bytes,
        }),
        shutdown: stopping,
    });
    let mut shutdown = pin!(shutdown);
    let mut at_limit = LimitLog::default();
    'accept: loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let registered = registry.register();
                let newcomer = registered.conn.id;
                tokio::spawn(connection(tcp, peer, registered, shared.clone()));
                // Over the limit: close the connection that has waited longest without a complete
                // request (without waiting for it to be gone, up to a few); when every one is busy,
                // accept again only once one is not.
                loop {
                    let mut freed = pin!(registry.freed.notified());
                    freed.as_mut().enable();
                    let over = registry.open_len() > registry.max_connections;
                    if !over && registry.len() <= registry.max_connections + CLOSING_SLACK {
                        break;
                    }
                    let closed = over && registry.close_oldest_unfinished(Some(newcomer)).is_some();
                    if over {
                        at_limit.note(closed, registry.max_connections);
                    }
                    if closed {
                        continue;
                    }
                    tokio::select! {
                        _ = freed => {}
                        _ = tokio::time::sleep(FULL_RECHECK) => {}
                        _ = &mut shutdown => break 'accept,
                    }
                }
            }
            Err(e) if out_of_files(&e) => {
                // The reserve was not enough (or the system is out of files): make room anyway.
                at_limit.note_files(&e);
                registry.close_oldest_unfinished(None);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = &mut shutdown => break,
                }
            }
            Err(e) => tracing::debug!(error = %e, "accepting a connection failed"),
        }
    }
    drop(listener);
    tracing::info!(
        connections = registry.len(),
        "closing idle connections; letting requests in flight finish"
    );
    let _ = stop.send(true);
    if !all_closed(&registry, Instant::now() + settings.shutdown_grace).await {
        tracing::warn!(
            connections = registry.len(),
            "requests still in flight after the shutdown grace; closing their connections"
        );
        registry.close_all();
        all_closed(&registry, Instant::now() + Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Waits until no connection is left, or `deadline`; whether none is.
async fn all_closed(registry: &Registry, deadline: Instant) -> bool {
    loop {
        let mut freed = pin!(registry.freed.notified());
        freed.as_mut().enable();
        if registry.len() == 0 {
            return true;
        }
        tokio::select! {
            _ = freed => {}
            _ = tokio::time::sleep_until(deadline.into()) => return registry.len() == 0,
        }
    }
}

fn out_of_files(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

/// Warns about the connection limit at most every ten seconds.
#[derive(Default)]
struct LimitLog {
    last: Option<Instant>,
    closed: usize,
    waited: usize,
}

impl LimitLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn due(&mut self) -> bool {
        let due = self.last.is_none_or(|t| t.elapsed() >= Self::EVERY);
        if due {
            self.last = Some(Instant::now());
        }
        due
    }

    fn note(&mut self, closed: bool, limit: usize) {
        if closed {
            self.closed += 1;
        } else {
            self.waited += 1;
        }
        if self.due() {
            tracing::warn!(
                limit,
                closed_unfinished = self.closed,
                waited_for_busy = self.waited,
                "at the connection limit: closing the connections that waited longest without \
                 a complete request"
            );
            (self.closed, self.waited) = (0, 0);
        }
    }

    fn note_files(&mut self, e: &io::Error) {
        if self.due() {
            tracing::warn!(error = %e, "out of file descriptors accepting a connection");
        }
    }
}

async fn connection(tcp: TcpStream, peer: SocketAddr, registered: Registered, shared: Arc<Shared>) {
    let conn = registered.conn.clone();
    let mut shutdown = shared.shutdown.clone();
    let deadline = conn.accepted + shared.limits.header_read_timeout;
    match &shared.tls {
        None => serve_stream(tcp, false, peer, conn, &shared, shutdown).await,
        Some(acceptor) => {
            let tls = tokio::select! {
                tls = acceptor.accept(tcp) => match tls {
                    Ok(tls) => tls,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
                _ = tokio::time::sleep_until(deadline.into()) => return,
                _ = conn.closed() => return,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            Box::pin(serve_stream(tls, h2, peer, conn, &shared, shutdown)).await
        }
    }
    drop(registered);
}

async fn serve_stream<S>(
    io: S,
    alpn_h2: bool,
    peer: SocketAddr,
    conn: Arc<Conn>,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut gate = Gate::new(
        io,
        conn.clone(),
        shared.registry.clone(),
        shared.limits.clone(),
    );
    let protocol = if alpn_h2 {
        gate.pass_through();
        Protocol::Http2
    } else {
        tokio::select! {
            protocol = gate.sniff() => match protocol {
                Some(protocol) => protocol,
                None => return,
            },
            _ = conn.closed() => return,
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    };
    let service = ConnService {
        app: shared.app.clone(),
        peer,
        conn: conn.clone(),
        registry: shared.registry.clone(),
    };
    // Boxed: a connection that has not sent its first bytes yet should not carry the size of
    // hyper's connection state in its task (a silent connection costs a few KiB, not tens).
    match protocol {
        Protocol::Http1 => {
            Box::pin(serve_http1(gate, service, &conn, &shared.limits, shutdown)).await
        }
        Protocol::Http2 => {
            Box::pin(serve_http2(gate, service, &conn, &shared.limits, shutdown)).await
        }
    }
}

async fn serve_http1<S>(
    gate: Gate<S>,
    service: ConnService,
    conn: &Conn,
    limits: &Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_headers(head::MAX_HEADERS)
        .max_buf_size(limits.max_header_bytes.max(8192) + 8192);
    let mut connection = http.serve_connection(TokioIo::new(gate), service);
    let mut draining = false;
    let outcome = loop {
        tokio::select! {
            outcome = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => break outcome,
            _ = conn.closed() => return,
            _ = shutdown.wait_for(|stop| *stop), if !draining => {
                draining = true;
                if conn.closable_at_shutdown() {
                    return;
                }
                Pin::new(&mut connection).graceful_shutdown();
            }
        }
    };
    if let Err(e) = outcome {
        tracing::debug!(error = %e, "HTTP/1 connection ended with an error");
    }
    // The refusal, if any, is written here: hyper saw the end of the input and stopped.
    connection.into_parts().io.into_inner().finish().await;
}

async fn serve_http2<S>(
    gate: Gate<S>,
    service: ConnService,
    conn: &Conn,
    limits: &Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // What a client may have in flight on one connection: HTTP/2's default windows (64 KiB) for a
    // stream, 256 KiB for the connection, instead of hyper's 1 MB each; 100 streams (hyper: 200).
    http.initial_stream_window_size(64 * 1024)
        .initial_connection_window_size(256 * 1024)
        .max_concurrent_streams(100);
    // Header lists up to twice the limit reach the service, which answers 431 in the ACS shape
    // over the limit; larger ones get the h2 crate's own 431.
    http.max_header_list_size(
        u32::try_from(limits.max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX),
    );
    let mut connection = pin!(http.serve_connection(TokioIo::new(gate), service));
    let mut draining = false;
    let mut give_up: Option<Instant> = None;
    loop {
        let changed = conn.changed.notified();
        let idle = if draining {
            None
        } else {
            conn.idle_deadline(limits.header_read_timeout, limits.keep_alive_timeout)
        };
        tokio::select! {
            outcome = connection.as_mut() => {
                if let Err(e) = outcome {
                    tracing::debug!(error = %e, "HTTP/2 connection ended with an error");
                }
                return;
            }
            _ = conn.closed() => return,
            _ = shutdown.wait_for(|stop| *stop), if !draining => {
                if conn.closable_at_shutdown() {
                    return;
                }
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(idle.unwrap_or_else(Instant::now).into()), if idle.is_some() => {
                draining = true;
                connection.as_mut().graceful_shutdown();
                give_up = Some(Instant::now() + GOAWAY_GRACE);
            }
            _ = tokio::time::sleep_until(give_up.unwrap_or_else(Instant::now).into()), if give_up.is_some() => return,
            _ = changed => {}
        }
    }
}

/// The router, counting each request as active on its connection until its response is sent.
#[derive(Clone)]
struct ConnService {
    app: Router,
    /// The client's address, given to each request as a `ConnectInfo` extension (audit trail).
    peer: SocketAddr,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Counted>, Infallible>> + Send>>;

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<Counted>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let body = !request.body().is_end_stream();
        let active = Active::start(self.conn.clone(), body);
        let mut request = request.map(|incoming| Received {
            incoming,
            conn: self.conn.clone(),
            registry: self.registry.clone(),
            bytes: 0,
            receiving: body,
        });
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        // A router is always ready.
        let response = tower_service::Service::call(&mut self.app.clone(), request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Counted {
                body,
                _active: active,
            }))
        })
    }
}

/// A request being answered on its connection, until dropped.
struct Active(Arc<Conn>);

impl Active {
    fn start(conn: Arc<Conn>, body: bool) -> Self {
        conn.request_started(body);
        Self(conn)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A request body that counts what it holds against the budget for unfinished requests until it
/// has arrived whole, and then marks its request received.
struct Received {
    incoming: Incoming,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    bytes: usize,
    receiving: bool,
}

impl Received {
    fn done(&mut self) {
        if std::mem::take(&mut self.receiving) {
            self.registry.remove_body(&self.conn, self.bytes);
            self.conn.request_received();
        }
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        self.done();
    }
}

impl http_body::Body for Received {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = std::task::ready!(Pin::new(&mut this.incoming).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), true) = (frame.data_ref(), this.receiving) {
                    this.bytes += data.len();
                    this.registry.add_body(&this.conn, data.len());
                }
                if this.incoming.is_end_stream() {
                    this.done();
                }
            }
            None | Some(Err(_)) => this.done(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

/// A response body that keeps its request active until it has been sent (or dropped).
struct Counted {
    body: axum::body::Body,
    _active: Active,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a connection's task costs before it has sent a byte: its future is allocated whole.
    #[test]
    fn a_waiting_connection_is_small() {
        let (_stop, stopping) = watch::channel(false);
        let registry = Arc::new(Registry::new(1, 1));
        let shared = Arc::new(Shared {
            app: Router::new(),
            tls: None,
            registry: registry.clone(),
            limits: Arc::new(Limits {
                header_read_timeout: Duration::from_secs(1),
                keep_alive_timeout: Duration::from_secs(1),
                body_read_timeout: Duration::from_secs(1),
                max_header_bytes: 1024,
            }),
            shutdown: stopping,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tcp = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let task = connection(
                tcp,
                listener.local_addr().unwrap(),
                registry.register(),
                shared.clone(),
            );
            let size = std::mem::size_of_val(&task);
            assert!(size < 2048, "{size} bytes");
        });
    }
}
