//! The connections being served: how many there are, which of them are waiting for a request
//! (and since when), what memory their unfinished requests hold, and which to close when the
//! connection limit or the memory budget is reached.
//!
//! A connection is *unfinished* while it has not sent a complete request that is now being
//! answered: during the TLS handshake, while no request or only part of a request's head has
//! arrived (including the idle time between keep-alive requests), and while the body of its one
//! request is still arriving. Unfinished connections are the ones closed to make room, the one
//! that has been waiting longest first; a connection whose request is being answered is never
//! closed to make room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// `waiting_since` of a connection that is not waiting.
const NOT_WAITING: u64 = 0;

/// Where a connection is, as far as closing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// TLS handshake, or the first bytes that tell HTTP/1 from HTTP/2.
    Handshake,
    /// HTTP/1: waiting for a request's head, or reading one.
    Head,
    /// HTTP/1: a request's body is arriving.
    Body,
    /// HTTP/2: unfinished while no stream is being answered.
    Http2,
}

struct State {
    phase: Phase,
    /// Requests handed to the service and not yet fully answered.
    active: usize,
    /// Requests handed to the service so far.
    requests: u64,
    /// When the last response ended (or the connection was accepted).
    idle_since: Instant,
    /// Woken when the last active request ends (the HTTP/1 reader waits for that).
    reader: Option<Waker>,
}

impl State {
    fn unfinished(&self) -> bool {
        match self.phase {
            Phase::Handshake => true,
            Phase::Head | Phase::Http2 => self.active == 0,
            // The request whose body this is counts as active once the service has it.
            Phase::Body => self.active <= 1,
        }
    }
}

/// One connection's shared state.
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) accepted: Instant,
    epoch: Instant,
    /// Nanoseconds after the registry's epoch (plus one) since which the connection has been
    /// unfinished; [`NOT_WAITING`] while a request is being answered.
    waiting_since: AtomicU64,
    /// Bytes held for its unfinished request.
    held: AtomicUsize,
    closing: AtomicBool,
    close: Notify,
    /// Signalled on every change of phase or active requests.
    pub(crate) changed: Notify,
    state: Mutex<State>,
}

impl Conn {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Updates `waiting_since` after a change; the caller holds the state lock.
    fn refresh(&self, state: &State) {
        if state.unfinished() {
            let now = (Instant::now() - self.epoch).as_nanos() as u64 + 1;
            // Keep the earlier time if it was already waiting.
            let _ = self.waiting_since.compare_exchange(
                NOT_WAITING,
                now,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        } else {
            self.waiting_since.store(NOT_WAITING, Ordering::Release);
        }
        self.changed.notify_one();
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        let mut state = self.lock();
        if state.phase != phase {
            state.phase = phase;
            self.refresh(&state);
        }
    }

    /// The service got a request.
    pub(crate) fn request_started(&self) {
        let mut state = self.lock();
        state.active += 1;
        state.requests += 1;
        self.refresh(&state);
    }

    /// A response was sent in full (or abandoned).
    pub(crate) fn request_finished(&self) {
        let reader = {
            let mut state = self.lock();
            state.active = state.active.saturating_sub(1);
            state.idle_since = Instant::now();
            self.refresh(&state);
            if state.active == 0 {
                state.reader.take()
            } else {
                None
            }
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// Whether no request is being answered; if one is, `waker` is woken when none is.
    pub(crate) fn idle_or_wake(&self, waker: &Waker) -> bool {
        let mut state = self.lock();
        if state.active == 0 {
            return true;
        }
        match &state.reader {
            Some(w) if w.will_wake(waker) => {}
            _ => state.reader = Some(waker.clone()),
        }
        false
    }

    /// When the connection would be closed for idleness: `first` after the accept while it has
    /// had no request, `later` after the last response; `None` while a request is active.
    pub(crate) fn idle_deadline(&self, first: Duration, later: Duration) -> Option<Instant> {
        let state = self.lock();
        match (state.active, state.requests) {
            (0, 0) => Some(self.accepted + first),
            (0, _) => Some(state.idle_since + later),
            _ => None,
        }
    }

    /// Requests handed to the service so far.
    pub(crate) fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Whether the connection has no request being answered (what shutdown closes at once).
    pub(crate) fn closable_at_shutdown(&self) -> bool {
        let state = self.lock();
        state.phase != Phase::Body && state.unfinished()
    }

    /// Closes the connection if it is unfinished (or `always`).
    fn try_close(&self, always: bool) -> bool {
        let state = self.lock();
        if self.closing.load(Ordering::Acquire) || !(always || state.unfinished()) {
            return false;
        }
        self.closing.store(true, Ordering::Release);
        drop(state);
        self.close.notify_one();
        true
    }

    /// Resolves once the connection is to be closed at once (made room for, or the shutdown
    /// grace is over).
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.close.notified();
            if self.closing.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// Every connection being served.
pub(crate) struct Registry {
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    count: AtomicUsize,
    /// Connections told to close that have not ended yet.
    closing: AtomicUsize,
    held: AtomicUsize,
    /// Signalled whenever a connection ends.
    pub(crate) freed: Notify,
    pub(crate) max_connections: usize,
    pub(crate) max_unfinished_bytes: usize,
}

impl Registry {
    pub(crate) fn new(max_connections: usize, max_unfinished_bytes: usize) -> Self {
        Self {
            epoch: Instant::now(),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            count: AtomicUsize::new(0),
            closing: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            freed: Notify::new(),
            max_connections,
            max_unfinished_bytes,
        }
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A newly accepted connection; it leaves the registry when the returned guard is dropped.
    pub(crate) fn register(self: &Arc<Self>) -> Registered {
        let now = Instant::now();
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            accepted: now,
            epoch: self.epoch,
            waiting_since: AtomicU64::new(NOT_WAITING),
            held: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            changed: Notify::new(),
            state: Mutex::new(State {
                phase: Phase::Handshake,
                active: 0,
                requests: 0,
                idle_since: now,
                reader: None,
            }),
        });
        conn.refresh(&conn.lock());
        self.conns().insert(conn.id, conn.clone());
        self.count.fetch_add(1, Ordering::AcqRel);
        Registered {
            registry: self.clone(),
            conn,
        }
    }

    /// Connections being served, those being closed included (they still hold a file).
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Connections being served and not being closed.
    pub(crate) fn open_len(&self) -> usize {
        self.len()
            .saturating_sub(self.closing.load(Ordering::Acquire))
    }

    /// Closes `conn` (if unfinished, or `always`), counting it as closing until it ends.
    fn close(&self, conn: &Conn, always: bool) -> bool {
        // Counted first: the connection may end, and uncount itself, as soon as it is told.
        self.closing.fetch_add(1, Ordering::AcqRel);
        if conn.try_close(always) {
            let freed = conn.held.swap(0, Ordering::AcqRel);
            self.held.fetch_sub(freed, Ordering::AcqRel);
            true
        } else {
            self.closing.fetch_sub(1, Ordering::AcqRel);
            false
        }
    }

    /// Bytes held by unfinished requests, across connections.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Records that `conn` now holds `bytes` for its unfinished request; over the budget, closes
    /// the connections that have waited longest until enough is freed.
    pub(crate) fn hold(&self, conn: &Conn, bytes: usize) {
        // A connection being closed no longer counts (its bytes were released when it was chosen).
        let bytes = if conn.closing.load(Ordering::Acquire) {
            0
        } else {
            bytes
        };
        let before = conn.held.swap(bytes, Ordering::AcqRel);
        let total = if bytes >= before {
            self.held.fetch_add(bytes - before, Ordering::AcqRel) + (bytes - before)
        } else {
            self.held.fetch_sub(before - bytes, Ordering::AcqRel) - (before - bytes)
        };
        if total > self.max_unfinished_bytes {
            let mut excess = total - self.max_unfinished_bytes;
            // Bounded: every round closes one connection or stops.
            for _ in 0..self.len() {
                match self.close_oldest_unfinished(None) {
                    Some(freed) if freed < excess => excess -= freed,
                    _ => break,
                }
            }
        }
    }

    /// Closes the connection that has been unfinished longest (never `except`); returns the
    /// bytes it held, or `None` when every connection is busy answering a request.
    pub(crate) fn close_oldest_unfinished(&self, except: Option<u64>) -> Option<usize> {
        // A connection may start a request between the choice and the close: choose again.
        for _ in 0..4 {
            let oldest = {
                let conns = self.conns();
                conns
                    .values()
                    .filter(|c| Some(c.id) != except && !c.closing.load(Ordering::Acquire))
                    .filter_map(|c| {
                        let since = c.waiting_since.load(Ordering::Acquire);
                        (since != NOT_WAITING).then_some((since, c.id, c))
                    })
                    .min_by_key(|(since, id, _)| (*since, *id))
                    .map(|(_, _, c)| c.clone())
            };
            let conn = oldest?;
            let held = conn.held.load(Ordering::Acquire);
            if self.close(&conn, false) {
                return Some(held);
            }
        }
        None
    }

    /// Closes every connection at once (the shutdown grace is over).
    pub(crate) fn close_all(&self) {
        let conns: Vec<_> = self.conns().values().cloned().collect();
        for conn in conns {
            self.close(&conn, true);
        }
    }

    /// Connections that are unfinished right now (for tests and logs).
    #[cfg(test)]
    pub(crate) fn unfinished(&self) -> usize {
        self.conns()
            .values()
            .filter(|c| c.waiting_since.load(Ordering::Acquire) != NOT_WAITING)
            .count()
    }
}

/// A connection's place in the registry, given up on drop.
pub(crate) struct Registered {
    registry: Arc<Registry>,
    pub(crate) conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.hold(&self.conn, 0);
        self.registry.conns().remove(&self.conn.id);
        if self.conn.closing.load(Ordering::Acquire) {
            self.registry.closing.fetch_sub(1, Ordering::AcqRel);
        }
        self.registry.count.fetch_sub(1, Ordering::AcqRel);
        self.registry.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_connection_waiting_longest_is_closed_first_and_busy_ones_never() {
        let registry = Arc::new(Registry::new(10, 1 << 20));
        let a = registry.register();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let b = registry.register();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let c = registry.register();
        // `a` is answering a request; `b` is the oldest unfinished.
        a.conn.set_phase(Phase::Head);
        a.conn.request_started();
        assert_eq!(registry.unfinished(), 2);
        assert_eq!(registry.close_oldest_unfinished(None), Some(0));
        assert!(b.conn.closing.load(Ordering::Acquire));
        assert_eq!((registry.len(), registry.open_len()), (3, 2));
        tokio::time::timeout(Duration::from_secs(1), b.conn.closed())
            .await
            .unwrap();
        // Only `c` is left to close, and not when it is the one to keep.
        assert_eq!(registry.close_oldest_unfinished(Some(c.conn.id)), None);
        // Once `a` has answered, it waits again, since after `c`.
        a.conn.request_finished();
        assert_eq!(registry.close_oldest_unfinished(None), Some(0));
        assert!(c.conn.closing.load(Ordering::Acquire));
        assert!(!a.conn.closing.load(Ordering::Acquire));
        assert_eq!(registry.close_oldest_unfinished(None), Some(0));
        assert!(a.conn.closing.load(Ordering::Acquire));
        drop((a, b, c));
        assert_eq!((registry.len(), registry.open_len()), (0, 0));
        assert_eq!(registry.closing.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn holding_over_the_budget_closes_the_oldest() {
        let registry = Arc::new(Registry::new(10, 1000));
        let a = registry.register();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let b = registry.register();
        registry.hold(&a.conn, 600);
        registry.hold(&b.conn, 300);
        assert!(!a.conn.closing.load(Ordering::Acquire));
        registry.hold(&b.conn, 500);
        assert!(
            a.conn.closing.load(Ordering::Acquire),
            "a held the most, longest"
        );
        assert!(!b.conn.closing.load(Ordering::Acquire));
        assert_eq!(registry.held(), 500, "a's bytes count no more");
        registry.hold(&a.conn, 700);
        assert_eq!(registry.held(), 500, "nor anything a reads while closing");
        drop(a);
        assert_eq!(registry.held(), 500);
        drop(b);
        assert_eq!(registry.held(), 0);
    }
}
