//! Connections that never finish cannot take the server down (issue 11 §1), and every refusal
//! below the router is in the ACS shape (§5): timeouts, the connection limit and its policy, the
//! memory budget for unfinished requests, shutdown, malformed HTTP/1 heads, HTTP/2 header lists,
//! over plain TCP, h2c and TLS. Timeouts are configured short; every wait is bounded.

use axum::body::Body;
use callsign_common::hmac::sign_request;
use callsign_server::clock::SystemClock;
use callsign_server::{ServerConfig, TlsMode};
use callsign_testkit::TestServer;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any step may take; far above what each needs.
const BOUND: Duration = Duration::from_secs(5);

const SHORT: Duration = Duration::from_millis(300);

async fn server(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
    TestServer::start_with(Arc::new(SystemClock), configure).await
}

/// Reads until the server closes the connection (EOF or reset); `None` if it has not within
/// `bound`.
async fn until_closed<S: AsyncRead + Unpin>(stream: &mut S, bound: Duration) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok()?;
    Some(bytes)
}

/// Whether the server still holds the connection open (nothing to read, no EOF, for `wait`).
async fn still_open(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(wait, stream.read(&mut byte))
        .await
        .is_err()
}

/// Sends `bytes` on a new connection and returns everything the server sends until it closes.
async fn exchange(host: &str, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(host).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let answer = until_closed(&mut stream, BOUND)
        .await
        .expect("the server answered and closed");
    String::from_utf8_lossy(&answer).into_owned()
}

/// An HTTP/1 response read off the wire: status, lower-cased header lines, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn parse(text: &str) -> Answer {
        let (head, body) = text.split_once("\r\n\r\n").expect("a whole response");
        let status = head[9..12].parse().unwrap();
        Answer {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    /// Asserts the ACS error shape: status, code, JSON content type, service headers.
    fn assert_acs(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}\n{}", self.head, self.body);
        assert!(
            self.head.contains("\r\ncontent-type: application/json\r\n"),
            "{}",
            self.head
        );
        assert!(self.head.contains("\r\nms-cv: "), "{}", self.head);
        assert!(
            self.head.contains("\r\nx-processing-time: "),
            "{}",
            self.head
        );
        let json: Value = serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!("not an ACS body ({e}): {:?}", self.body);
        });
        assert_eq!(json["error"]["code"], code, "{json}");
        assert!(json["error"]["message"].is_string(), "{json}");
        json
    }
}

fn signed_head(server: &TestServer, path: &str, body: &[u8], extra: &str) -> String {
    let signed = sign_request(
        &server.key,
        "POST",
        path,
        &server.host,
        body,
        chrono::Utc::now(),
    );
    format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         x-ms-date: {}\r\nx-ms-content-sha256: {}\r\nAuthorization: {}\r\n{extra}\r\n",
        server.host, signed.date, signed.content_hash, signed.authorization
    )
}

// ---- §1: timeouts ----

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let server = server(|c| c.http.header_read_timeout = SHORT).await;
    let mut stream = TcpStream::connect(&server.host).await.unwrap();
    let started = Instant::now();
    let answer = until_closed(&mut stream, BOUND).await;
    assert_eq!(answer.as_deref(), Some(&[][..]), "closed without a word");
    assert!(started.elapsed() >= SHORT - Duration::from_millis(50));
}

#[tokio::test]
async fn half_a_head_is_answered_408_and_closed() {
    let server = server(|c| c.http.header_read_timeout = SHORT).await;
    let mut stream = TcpStream::connect(&server.host).await.unwrap();
    stream
        .write_all(b"POST /identities?api-version=2023-10-01 HTTP/1.1\r\nHost: h\r\nContent-Ty")
        .await
        .unwrap();
    let answer = until_closed(&mut stream, BOUND).await.expect("closed");
    let answer = Answer::parse(&String::from_utf8_lossy(&answer));
    answer.assert_acs(408, "RequestTimeout");
    assert!(answer.head.contains("\r\nconnection: close"));
}

#[tokio::test]
async fn a_head_sent_slowly_is_cut_off_by_the_header_read_timeout() {
    let server = server(|c| c.http.header_read_timeout = SHORT).await;
    let stream = TcpStream::connect(&server.host).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // A header line every 100 ms: progress, but never a whole head.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        for i in 0..50 {
            if write
                .write_all(format!("x{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let answer = until_closed(&mut read, BOUND).await.expect("closed");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cut off in time"
    );
    Answer::parse(&String::from_utf8_lossy(&answer)).assert_acs(408, "RequestTimeout");
    writer.abort();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let server = server(|c| {
        c.http.keep_alive_timeout = SHORT;
        c.http.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let mut stream = TcpStream::connect(&server.host).await.unwrap();
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.host).as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\nok") {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(BOUND, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();
    let rest = until_closed(&mut stream, BOUND).await;
    assert_eq!(
        rest.as_deref(),
        Some(&[][..]),
        "closed after the keep-alive timeout"
    );
    assert!(answered.elapsed() >= SHORT - Duration::from_millis(50));
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408() {
    let server = server(|c| c.http.body_read_timeout = SHORT).await;
    let body = br#"{"createTokenWithScopes":["chat"]}"#;
    let path = "/identities?api-version=2023-10-01";
    let head = signed_head(
        &server,
        path,
        body,
        &format!("Content-Length: {}\r\n", body.len()),
    );
    let mut stream = TcpStream::connect(&server.host).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    let answer = until_closed(&mut stream, BOUND).await.expect("closed");
    let answer = Answer::parse(&String::from_utf8_lossy(&answer));
    answer.assert_acs(408, "RequestTimeout");
    assert!(answer.head.contains("\r\nconnection: close"));
}

// ---- §1: the connection limit and its policy ----

#[tokio::test]
async fn at_the_limit_the_connection_waiting_longest_makes_room_and_clients_are_served() {
    let server = server(|c| {
        c.http.max_connections = Some(8);
        c.http.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(&server.host).await.unwrap());
        // Distinct accept times, so that "longest" is well defined.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A half-sent head is as unfinished as silence.
    idle[1]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\n")
        .await
        .unwrap();
    let client = server.client();
    let started = Instant::now();
    let id = tokio::time::timeout(BOUND, client.create_user())
        .await
        .expect("served at the limit");
    assert!(id.starts_with("8:acs:"));
    assert!(started.elapsed() < BOUND);
    assert!(
        until_closed(&mut idle[0], BOUND).await.is_some(),
        "the oldest idle connection made room"
    );
    assert!(still_open(&mut idle[7], SHORT).await, "the newest was kept");

    // Many more silent connections: each pushes out the oldest, and clients are still served.
    let mut more = Vec::new();
    for _ in 0..40 {
        more.push(TcpStream::connect(&server.host).await.unwrap());
    }
    let started = Instant::now();
    tokio::time::timeout(BOUND, client.create_user())
        .await
        .expect("served");
    assert!(started.elapsed() < BOUND);
    for stream in idle.iter_mut().chain(more.iter_mut().take(30)) {
        assert!(until_closed(stream, BOUND).await.is_some());
    }
}

#[tokio::test]
async fn unfinished_requests_share_a_memory_budget() {
    let server = server(|c| {
        c.http.max_header_bytes = 16 * 1024;
        c.http.max_unfinished_request_bytes = 64 * 1024;
        c.http.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    // Each holds about 12 KiB of a head that never ends, in a buffer of 16 KiB.
    let filler = format!(
        "GET /healthz HTTP/1.1\r\nHost: h\r\nx-fill: {}",
        "a".repeat(12 * 1024)
    );
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut stream = TcpStream::connect(&server.host).await.unwrap();
        stream.write_all(filler.as_bytes()).await.unwrap();
        held.push(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        until_closed(&mut held[0], BOUND).await.is_some(),
        "the oldest unfinished request was dropped"
    );
    assert!(still_open(&mut held[9], SHORT).await, "the newest was kept");
    let mut open = 0;
    for stream in &mut held {
        if still_open(stream, Duration::from_millis(50)).await {
            open += 1;
        }
    }
    assert!((1..=5).contains(&open), "{open} of 10 kept within 64 KiB");
    tokio::time::timeout(BOUND, server.client().create_user())
        .await
        .expect("served");
}

#[tokio::test]
async fn bodies_still_arriving_count_against_the_memory_budget() {
    let server = server(|c| {
        c.http.max_unfinished_request_bytes = 64 * 1024;
        c.http.body_read_timeout = Duration::from_secs(60);
    })
    .await;
    let path = "/identities?api-version=2023-10-01";
    let body = vec![b' '; 60_000];
    let mut held = Vec::new();
    for _ in 0..6 {
        let head = signed_head(&server, path, &body, "Content-Length: 60000\r\n");
        let mut stream = TcpStream::connect(&server.host).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..20_000]).await.unwrap();
        held.push(stream);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        until_closed(&mut held[0], BOUND).await.is_some(),
        "the oldest unfinished body was dropped"
    );
    assert!(still_open(&mut held[5], SHORT).await, "the newest was kept");
    tokio::time::timeout(BOUND, server.client().create_user())
        .await
        .expect("served");
}

/// An HTTP/2 request body that sends one chunk and then nothing.
struct Stalled(Option<axum::body::Bytes>);

impl http_body::Body for Stalled {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.0.take() {
            Some(chunk) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk)))),
            None => std::task::Poll::Pending,
        }
    }
}

#[tokio::test]
async fn http2_connections_whose_streams_are_all_unfinished_make_room_too() {
    let server = server(|c| {
        c.http.max_connections = Some(4);
        c.http.body_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut connections = Vec::new();
    for _ in 0..4 {
        let tcp = TcpStream::connect(&server.host).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake::<_, Stalled>(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        let connection = tokio::spawn(connection);
        let request = http::Request::post(format!(
            "http://{}/identities?api-version=2023-10-01",
            server.host
        ))
        .header("content-length", "100")
        .body(Stalled(Some(axum::body::Bytes::from_static(b"{\"a\":"))))
        .unwrap();
        let response = tokio::spawn(sender.send_request(request));
        connections.push((connection, response, sender));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    tokio::time::timeout(BOUND, server.client().create_user())
        .await
        .expect("served at the limit");
    assert!(started.elapsed() < BOUND);
    // The oldest connection, whose one request never finished arriving, made room: its request
    // fails with the connection. The newest is still waiting for its body.
    let (_, oldest, _) = &mut connections[0];
    let failed = tokio::time::timeout(BOUND, oldest)
        .await
        .expect("the oldest HTTP/2 connection was closed")
        .unwrap();
    assert!(failed.is_err(), "{failed:?}");
    assert!(!connections[3].1.is_finished(), "the newest was kept");
}

// ---- §1: shutdown ----

#[tokio::test]
async fn shutdown_closes_idle_and_unfinished_connections_at_once_and_finishes_requests() {
    let server = server(|c| c.shutdown_grace = Duration::from_secs(20)).await;
    let mut silent = TcpStream::connect(&server.host).await.unwrap();
    let mut partial = TcpStream::connect(&server.host).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\n")
        .await
        .unwrap();
    let body = br#"{"createTokenWithScopes":["chat"]}"#;
    let path = "/identities?api-version=2023-10-01";
    let head = signed_head(
        &server,
        path,
        body,
        &format!("Content-Length: {}\r\n", body.len()),
    );
    let mut in_flight = TcpStream::connect(&server.host).await.unwrap();
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(&body[..10]).await.unwrap();
    // Ordering only: the server has the head before it is told to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let stopped = tokio::spawn(server.stop());
    assert_eq!(
        until_closed(&mut silent, BOUND).await.as_deref(),
        Some(&[][..])
    );
    assert_eq!(
        until_closed(&mut partial, BOUND).await.as_deref(),
        Some(&[][..])
    );
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once");
    tokio::time::sleep(Duration::from_millis(200)).await;
    in_flight.write_all(&body[10..]).await.unwrap();
    let answer = until_closed(&mut in_flight, BOUND).await.expect("answered");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    tokio::time::timeout(BOUND, stopped)
        .await
        .expect("stopped well within the 20 s grace")
        .unwrap();
}

// ---- §5: every refusal in the ACS shape ----

#[tokio::test]
async fn oversized_heads_are_refused_431_in_the_acs_shape() {
    let server = server(|_| {}).await;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nx-big: {}\r\n\r\n",
        server.host,
        "a".repeat(40 * 1024)
    );
    Answer::parse(&exchange(&server.host, big.as_bytes()).await)
        .assert_acs(431, "RequestHeaderFieldsTooLarge");
    // Within the limit (32 KiB), the same request is served.
    let fits = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nx-big: {}\r\nConnection: close\r\n\r\n",
        server.host,
        "a".repeat(30 * 1024)
    );
    let answer = exchange(&server.host, fits.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A head that is too big before it even ends.
    let mut stream = TcpStream::connect(&server.host).await.unwrap();
    let _ = stream.write_all(&big.as_bytes()[..36 * 1024]).await;
    let answer = until_closed(&mut stream, BOUND).await.expect("answered");
    Answer::parse(&String::from_utf8_lossy(&answer)).assert_acs(431, "RequestHeaderFieldsTooLarge");
}

#[tokio::test]
async fn malformed_requests_are_refused_400_in_the_acs_shape() {
    let server = server(|_| {}).await;
    let host = &server.host;
    for (request, message) in [
        (
            "GET /healthz HTTP/1.1 junk\r\nHost: h\r\n\r\n".to_owned(),
            "The request line is not valid.",
        ),
        (
            "GET /healthz HTTP/1.1\r\nHost h\r\n\r\n".to_owned(),
            "A request header is not valid.",
        ),
        (
            format!("POST /identities HTTP/1.1\r\nHost: {host}\r\nContent-Length: abc\r\n\r\n"),
            "The Content-Length header is not valid.",
        ),
        (
            format!(
                "POST /identities HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n\
                 Content-Length: 3\r\n\r\n{{}}"
            ),
            "The Content-Length header is not valid.",
        ),
        (
            format!("POST /identities HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: gzip\r\n\r\n"),
            "The Transfer-Encoding header is not valid.",
        ),
        (
            format!(
                "POST /identities HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\
                 Content-Length: 2\r\n\r\n{{}}"
            ),
            "A request must not have both Content-Length and Transfer-Encoding.",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nHost: elsewhere\r\n\r\n"),
            "The request must have exactly one valid Host header.",
        ),
        (
            "GET /healthz HTTP/1.1\r\n\r\n".to_owned(),
            "The request must have exactly one valid Host header.",
        ),
    ] {
        let answer = Answer::parse(&exchange(host, request.as_bytes()).await);
        let json = answer.assert_acs(400, "BadRequest");
        assert_eq!(json["error"]["message"], message, "{request:?}");
        assert!(answer.head.contains("\r\nconnection: close"), "{request:?}");
        assert!(
            !answer.head.contains("api-supported-versions"),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn refusals_echo_the_client_request_id() {
    let server = server(|_| {}).await;
    for request in [
        "POST /identities HTTP/1.1\r\nHost: h\r\nx-ms-client-request-id: req-7\r\n\
         Content-Length: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nx-ms-client-request-id: req-7\r\n\r\n",
    ] {
        let answer = Answer::parse(&exchange(&server.host, request.as_bytes()).await);
        answer.assert_acs(400, "BadRequest");
        assert!(
            answer.head.contains("\r\nx-ms-client-request-id: req-7"),
            "{}",
            answer.head
        );
    }
}

#[tokio::test]
async fn each_pipelined_request_is_checked() {
    let server = server(|_| {}).await;
    let host = &server.host;
    let healthz = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let body = br#"{}"#;
    let path = "/identities?api-version=2023-10-01";
    // A chunked body, then a body of known length, then a malformed head: the boundaries are
    // where hyper puts them, and the last head is refused in the ACS shape.
    let chunked = format!(
        "{}2\r\n{}\r\n0\r\n\r\n",
        signed_head(&server, path, body, "Transfer-Encoding: chunked\r\n"),
        std::str::from_utf8(body).unwrap()
    );
    let sized = format!(
        "{}{}",
        signed_head(&server, path, body, "Content-Length: 2\r\n"),
        std::str::from_utf8(body).unwrap()
    );
    let bad = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n");
    let all = format!("{healthz}{chunked}{healthz}{sized}{bad}");
    let answer = exchange(host, all.as_bytes()).await;
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "201", "200", "201", "400"], "{answer}");
    let last = &answer[answer.rfind("HTTP/1.1 400").unwrap()..];
    Answer::parse(last).assert_acs(400, "BadRequest");
}

// ---- HTTP/2 (h2c and TLS) ----

async fn h2_request(
    sender: &mut hyper::client::conn::http2::SendRequest<Body>,
    uri: &str,
    headers: &[(&str, String)],
) -> (u16, http::HeaderMap, String) {
    let mut request = http::Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = tokio::time::timeout(
        BOUND,
        sender.send_request(request.body(Body::empty()).unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx))
            .await
    {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes.extend_from_slice(&data);
        }
    }
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

type H2Connection<S> = hyper::client::conn::http2::Connection<
    hyper_util::rt::TokioIo<S>,
    Body,
    hyper_util::rt::TokioExecutor,
>;

async fn h2_handshake<S>(
    io: S,
) -> (
    hyper::client::conn::http2::SendRequest<Body>,
    H2Connection<S>,
)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .max_header_list_size(1 << 20)
        .handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .unwrap()
}

#[tokio::test]
async fn http2_header_lists_over_the_limit_are_refused_431_in_the_acs_shape() {
    let server = server(|_| {}).await;
    let tcp = TcpStream::connect(&server.host).await.unwrap();
    let (mut sender, connection) = h2_handshake(tcp).await;
    tokio::spawn(connection);
    let uri = format!("http://{}/healthz", server.host);
    // Under the 32 KiB limit: served (hyper's own HTTP/2 limit was 16 KiB).
    let (status, _, body) =
        h2_request(&mut sender, &uri, &[("x-big", "a".repeat(20 * 1024))]).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, headers, body) =
        h2_request(&mut sender, &uri, &[("x-big", "a".repeat(40 * 1024))]).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.contains_key("ms-cv"));
    assert!(!headers.contains_key("connection"));
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["code"], "RequestHeaderFieldsTooLarge");
    // The stream was refused, not the connection.
    let (status, _, _) = h2_request(&mut sender, &uri, &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_keep_alive_timeout() {
    let server = server(|c| c.http.keep_alive_timeout = SHORT).await;
    let tcp = TcpStream::connect(&server.host).await.unwrap();
    let (mut sender, connection) = h2_handshake(tcp).await;
    let connection = tokio::spawn(connection);
    let (status, _, _) =
        h2_request(&mut sender, &format!("http://{}/healthz", server.host), &[]).await;
    assert_eq!(status, 200);
    tokio::time::timeout(BOUND, connection)
        .await
        .expect("the server ended the idle connection")
        .unwrap()
        .unwrap();
}

/// A TLS client trusting the server's development CA, offering `alpn`.
async fn tls_connect(
    server: &TestServer,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let ca = server.data.path().join("data/tls/ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(&server.host).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn over_tls_refusals_timeouts_and_http2_work_the_same() {
    let server = server(|c| {
        c.tls = TlsMode::Dev;
        c.http.header_read_timeout = SHORT;
    })
    .await;
    // HTTP/1.1: a refused head in the ACS shape.
    let mut tls = tls_connect(&server, b"http/1.1").await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut tls, BOUND).await.expect("answered");
    Answer::parse(&String::from_utf8_lossy(&answer)).assert_acs(400, "BadRequest");
    // Half a head, then the header-read timeout.
    let mut tls = tls_connect(&server, b"http/1.1").await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let answer = until_closed(&mut tls, BOUND).await.expect("answered");
    Answer::parse(&String::from_utf8_lossy(&answer)).assert_acs(408, "RequestTimeout");
    // A handshake that never starts is cut off too.
    let mut silent = TcpStream::connect(&server.host).await.unwrap();
    assert!(until_closed(&mut silent, BOUND).await.is_some());
    // HTTP/2 by ALPN.
    let tls = tls_connect(&server, b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = h2_handshake(tls).await;
    tokio::spawn(connection);
    let (status, _, body) = h2_request(
        &mut sender,
        &format!(
            "https://localhost:{}/healthz",
            server.host.rsplit(':').next().unwrap()
        ),
        &[],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}
