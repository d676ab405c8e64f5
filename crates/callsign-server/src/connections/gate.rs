//! What stands between a client's bytes and hyper on an HTTP/1 connection. It holds a request's
//! head until the whole head has arrived and has been checked, answers a refused head itself in
//! the ACS shape, follows the body so that the next head is checked too, keeps the
//! header-read, keep-alive and body-read timeouts, and accounts for the memory the unfinished
//! request holds. On HTTP/2 connections it only passes bytes through.

use super::head::{self, Chunks, Framing};
use super::refusal;
use super::registry::{Conn, Phase, Registry};
use crate::http::error::ApiError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Sleep;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first read of a head: most heads fit.
const FIRST_READ: usize = 2048;

/// The body-read timeout is the service's to answer (408); the connection only closes a body
/// that is still not read this much later.
const BODY_BACKSTOP: Duration = Duration::from_secs(2);

/// After a refusal, how long and how much of what the client is still sending is read and
/// dropped before closing, so that closing does not reset the connection before the client has
/// read the answer.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

/// The timeouts and limits the gate applies.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) max_header_bytes: usize,
}

/// Which protocol the connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

#[derive(Debug)]
enum State {
    /// Reading (or waiting for) a head.
    Head,
    /// Handing a checked head to hyper.
    Release { left: usize, then: Framing },
    /// A body of known length.
    Length(u64),
    /// A chunked body.
    Chunked(Chunks),
    /// Everything passes (HTTP/2, or a body hyper is about to refuse).
    Pass,
    /// hyper is told the connection ended (after a refusal or a timeout).
    Ended,
}

pub(crate) struct Gate<S> {
    io: S,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    limits: Arc<Limits>,
    state: State,
    /// Bytes read from the client and not yet handed on: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// When the head being read started to arrive.
    head_started: Option<Instant>,
    /// How much of `buf[pos..]` has been looked at for the end of a head, and whether its first
    /// line has been checked: a head is parsed again only when it may have ended, never once per
    /// byte of a slowly sent one.
    scanned: usize,
    line_checked: bool,
    body_started: Instant,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// The refusal to write before closing.
    refusal: Option<Vec<u8>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Gate<S> {
    pub(crate) fn new(
        io: S,
        conn: Arc<Conn>,
        registry: Arc<Registry>,
        limits: Arc<Limits>,
    ) -> Self {
        Self {
            io,
            conn,
            registry,
            limits,
            state: State::Head,
            buf: Vec::new(),
            pos: 0,
            head_started: None,
            scanned: 0,
            line_checked: false,
            body_started: Instant::now(),
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            refusal: None,
        }
    }

    /// Tells HTTP/1 from HTTP/2 by the first bytes; `None` when the client closed, sent nothing
    /// in time or the read failed.
    pub(crate) async fn sniff(&mut self) -> Option<Protocol> {
        std::future::poll_fn(|cx| self.poll_sniff(cx)).await
    }

    fn poll_sniff(&mut self, cx: &mut Context<'_>) -> Poll<Option<Protocol>> {
        loop {
            let seen = &self.buf[self.pos..];
            let n = seen.len().min(PREFACE.len());
            if seen[..n] != PREFACE[..n] {
                self.conn.set_phase(Phase::Serving);
                return Poll::Ready(Some(Protocol::Http1));
            }
            if n == PREFACE.len() {
                self.pass_through();
                return Poll::Ready(Some(Protocol::Http2));
            }
            match self.fill(cx) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(None),
                Poll::Ready(Ok(_)) => continue,
                Poll::Pending => {
                    let deadline = self.conn.accepted + self.limits.header_read_timeout;
                    if self.expired(cx, deadline) {
                        return Poll::Ready(None);
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Passes every byte from now on (HTTP/2 negotiated by ALPN or by its preface).
    pub(crate) fn pass_through(&mut self) {
        self.state = State::Pass;
        self.conn.set_phase(Phase::Serving);
        self.account();
    }

    /// Ends the connection: writes the refusal, if there is one, and closes; after a refusal,
    /// reads and drops what the client still sends for a moment first (bounded).
    pub(crate) async fn finish(mut self) {
        let refused = self.refusal.take();
        if let Some(bytes) = &refused {
            let _ = tokio::time::timeout(LINGER_TIME, self.io.write_all(bytes)).await;
        }
        let _ = tokio::time::timeout(LINGER_TIME, self.io.shutdown()).await;
        if refused.is_some() {
            let until = tokio::time::Instant::now() + LINGER_TIME;
            let mut scratch = [0u8; 4096];
            let mut drained = 0;
            while drained < LINGER_BYTES {
                match tokio::time::timeout_at(until, self.io.read(&mut scratch)).await {
                    Ok(Ok(n)) if n > 0 => drained += n,
                    _ => break,
                }
            }
        }
    }

    /// Reads more of a head into `buf` (never past one byte over the limit).
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let cap = self.limits.max_header_bytes + 1;
        let len = self.buf.len();
        if len >= cap {
            // The caller refuses the head before asking for more; nothing to read into.
            return Poll::Ready(Ok(0));
        }
        if self.buf.capacity() == len {
            let grow = len.max(FIRST_READ).min(cap - len);
            self.buf.reserve_exact(grow);
            self.account();
        }
        let want = (self.buf.capacity() - len).min(cap - len);
        self.buf.resize(len + want, 0);
        let mut read = ReadBuf::new(&mut self.buf[len..]);
        let result = Pin::new(&mut self.io).poll_read(cx, &mut read);
        let n = read.filled().len();
        self.buf.truncate(len + n);
        ready!(result)?;
        if n > 0 && self.head_started.is_none() {
            self.head_started = Some(Instant::now());
        }
        Poll::Ready(Ok(n))
    }

    /// Whether `deadline` has passed; if not, the task is woken when it does.
    fn expired(&mut self, cx: &mut Context<'_>, deadline: Instant) -> bool {
        if self.armed != Some(deadline) {
            self.sleep.as_mut().reset(deadline.into());
            self.armed = Some(deadline);
        }
        self.sleep.as_mut().poll(cx).is_ready()
    }

    /// When the head being waited for is late; `None` while a request is being answered.
    fn head_deadline(&self) -> Option<Instant> {
        let limits = &self.limits;
        let idle = self
            .conn
            .idle_deadline(limits.header_read_timeout, limits.keep_alive_timeout)?;
        if self.conn.requests() == 0 {
            return Some(idle);
        }
        match self.head_started {
            Some(started) => Some(started + limits.header_read_timeout),
            None => Some(idle),
        }
    }

    fn unreleased(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reports the memory the head being read holds (bodies are counted as the service reads
    /// them, over HTTP/1 and HTTP/2 alike).
    fn account(&mut self) {
        let bytes = match self.state {
            State::Pass => 0,
            _ => self.buf.capacity(),
        };
        self.registry.hold_head(&self.conn, bytes);
    }

    /// Frees the head buffer once it is all handed on (an idle connection holds nothing).
    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
            self.account();
        }
    }

    fn refuse(&mut self, refused: head::Refused) {
        tracing::debug!(
            status = refused.error.status.as_u16(),
            code = refused.error.code,
            "refused a request below the router"
        );
        self.refusal = Some(refusal::http1_response(
            &refused.error,
            refused.request_id.as_deref(),
        ));
        self.end();
    }

    fn end(&mut self) {
        self.state = State::Ended;
        self.buf = Vec::new();
        self.pos = 0;
        self.account();
    }

    fn start_body(&mut self, framing: Framing) {
        self.head_started = None;
        self.scanned = 0;
        self.line_checked = false;
        self.body_started = Instant::now();
        match framing {
            Framing::Empty => self.message_done(),
            Framing::Length(n) => self.state = State::Length(n),
            Framing::Chunked => self.state = State::Chunked(Chunks::new()),
        }
    }

    /// When a body still arriving is given up on.
    fn body_deadline(&self) -> Option<Instant> {
        Some(self.body_started + self.limits.body_read_timeout + BODY_BACKSTOP)
    }

    /// Puts back bytes read past the end of a body: the start of the next head.
    fn unread(&mut self, bytes: &[u8]) {
        let mut buf = Vec::with_capacity(bytes.len() + self.unreleased());
        buf.extend_from_slice(bytes);
        buf.extend_from_slice(&self.buf[self.pos..]);
        self.buf = buf;
        self.pos = 0;
        self.scanned = 0;
        self.head_started.get_or_insert_with(Instant::now);
    }

    /// Whether the head in `buf[pos..]` should be parsed now: its first line or its blank line
    /// may have arrived since the last look, or it is over the limit.
    fn worth_parsing(&mut self) -> bool {
        let unreleased = &self.buf[self.pos..];
        let fresh = &unreleased[self.scanned.saturating_sub(2)..];
        let first_line = !self.line_checked && fresh.contains(&b'\n');
        let may_end =
            fresh.windows(2).any(|w| w == b"\n\n") || fresh.windows(3).any(|w| w == b"\n\r\n");
        self.scanned = unreleased.len();
        self.line_checked |= first_line;
        first_line || may_end || unreleased.len() > self.limits.max_header_bytes
    }

    fn message_done(&mut self) {
        self.state = State::Head;
    }

    /// Hands body bytes to hyper: from `buf` first, else straight from the client; at most
    /// `limit` bytes. Returns how many.
    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
        limit: usize,
        deadline: Option<Instant>,
    ) -> Poll<io::Result<usize>> {
        let limit = limit.min(out.remaining());
        if self.unreleased() > 0 {
            let n = limit.min(self.unreleased());
            out.put_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            self.compact();
            return Poll::Ready(Ok(n));
        }
        let dst = out.initialize_unfilled_to(limit);
        let mut read = ReadBuf::new(dst);
        match Pin::new(&mut self.io).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                out.advance(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if deadline.is_some_and(|d| self.expired(cx, d)) {
                    return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                }
                Poll::Pending
            }
        }
    }

    fn poll_read_http1(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match &mut self.state {
                State::Head => {
                    if self.unreleased() > 0 && self.worth_parsing() {
                        match head::parse(&self.buf[self.pos..], self.limits.max_header_bytes) {
                            Ok(Some(head)) => {
                                self.state = State::Release {
                                    left: head.len,
                                    then: head.framing,
                                };
                                continue;
                            }
                            Ok(None) => {}
                            Err(refused) => {
                                self.refuse(refused);
                                continue;
                            }
                        }
                    }
                    match self.fill(cx) {
                        Poll::Ready(Ok(0)) => {
                            // The client closed; a partial head is dropped.
                            self.end();
                            continue;
                        }
                        Poll::Ready(Ok(_)) => continue,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {
                            // Wake when the request being answered ends: the idle clock starts.
                            let idle = self.conn.idle_or_wake(cx.waker());
                            if let Some(deadline) = self.head_deadline().filter(|_| idle) {
                                if self.expired(cx, deadline) {
                                    if self.unreleased() > 0 {
                                        self.refuse(ApiError::request_timeout().into());
                                    } else {
                                        tracing::trace!("closing an idle connection");
                                        self.end();
                                    }
                                    continue;
                                }
                            }
                            return Poll::Pending;
                        }
                    }
                }
                State::Release { left, then } => {
                    let (left_before, then) = (*left, *then);
                    let n = left_before
                        .min(out.remaining())
                        .min(self.buf.len() - self.pos);
                    out.put_slice(&self.buf[self.pos..self.pos + n]);
                    self.pos += n;
                    if left_before == n {
                        self.start_body(then);
                    } else {
                        self.state = State::Release {
                            left: left_before - n,
                            then,
                        };
                    }
                    self.compact();
                    return Poll::Ready(Ok(()));
                }
                State::Length(remaining) => {
                    let limit = usize::try_from(*remaining).unwrap_or(usize::MAX);
                    let deadline = self.body_deadline();
                    let n = ready!(self.poll_body(cx, out, limit, deadline))?;
                    if n == 0 {
                        // The client closed mid-body: hyper sees the body end early.
                        self.end();
                        return Poll::Ready(Ok(()));
                    }
                    let State::Length(remaining) = &mut self.state else {
                        unreachable!("still reading a body of known length")
                    };
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.message_done();
                    }
                    return Poll::Ready(Ok(()));
                }
                State::Chunked(_) => {
                    let before = out.filled().len();
                    let deadline = self.body_deadline();
                    let n = ready!(self.poll_body(cx, out, usize::MAX, deadline))?;
                    if n == 0 {
                        self.end();
                        return Poll::Ready(Ok(()));
                    }
                    let State::Chunked(chunks) = &mut self.state else {
                        unreachable!("still chunked")
                    };
                    match chunks.scan(&out.filled()[before..]) {
                        Ok((used, done)) => {
                            if used < n {
                                // The next request's head came with the body's end: keep it.
                                let surplus = out.filled()[before + used..].to_vec();
                                out.set_filled(before + used);
                                self.unread(&surplus);
                            }
                            if done {
                                self.message_done();
                            }
                        }
                        Err(head::BadChunk) => {
                            // hyper refuses the body and closes the connection.
                            self.state = State::Pass;
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                State::Pass => {
                    ready!(self.poll_body(cx, out, usize::MAX, None))?;
                    return Poll::Ready(Ok(()));
                }
                State::Ended => {
                    // Let the responses being written finish before hyper sees the end.
                    if !self.conn.idle_or_wake(cx.waker()) {
                        return Poll::Pending;
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Gate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_http1(cx, out)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Gate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
