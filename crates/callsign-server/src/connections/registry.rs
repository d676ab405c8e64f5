//! The connections being served: how many there are, which of them are waiting for a request
//! (and since when), what memory their unfinished requests hold, and which to close when the
//! connection limit or the memory budget is reached.
//!
//! A connection is *unfinished* while it has not sent a complete request that is now being
//! answered: during the TLS handshake, while no request or only part of a request's head has
//! arrived (including the idle time between keep-alive requests), and while every request it has
//! started is still sending its body (HTTP/2 streams included). Unfinished connections are the
//! ones closed to make room, the one that has been waiting longest first; a connection with a
//! request that has arrived whole and is being answered is never closed to make room.

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
    /// Speaking HTTP/1 or HTTP/2.
    Serving,
}

struct State {
    phase: Phase,
    /// Requests handed to the service and not yet fully answered.
    active: usize,
    /// Of those, the ones whose bodies are still arriving.
    receiving: usize,
    /// Requests handed to the service so far.
    requests: u64,
    /// When the last response ended (or the connection was accepted).
    idle_since: Instant,
    /// Woken when the last active request ends (the HTTP/1 reader waits for that).
    reader: Option<Waker>,
    /// Bytes held for a head being read, and for bodies still arriving.
    head_bytes: usize,
    body_bytes: usize,
}

impl State {
    fn unfinished(&self) -> bool {
        self.phase == Phase::Handshake || self.active == self.receiving
    }

    fn held(&self) -> usize {
        self.head_bytes + self.body_bytes
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
    /// Set (under the state lock) once the connection is to close; it holds nothing from then.
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

    /// The service got a request; `body` if its body is still to arrive.
    pub(crate) fn request_started(&self, body: bool) {
        let mut state = self.lock();
        state.active += 1;
        state.receiving += usize::from(body);
        state.requests += 1;
        self.refresh(&state);
    }

    /// A request's body has arrived whole (or will not be read further).
    pub(crate) fn request_received(&self) {
        let mut state = self.lock();
        state.receiving = state.receiving.saturating_sub(1);
        self.refresh(&state);
    }

    /// A response was sent in full (or abandoned).
    pub(crate) fn request_finished(&self) {
        let reader = {
            let mut state = self.lock();
            state.active = state.active.saturating_sub(1);
            state.receiving = state.receiving.min(state.active);
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

    /// Whether no request is in flight (what shutdown closes at once; a request whose body is
    /// still arriving is in flight and gets the grace).
    pub(crate) fn closable_at_shutdown(&self) -> bool {
        let state = self.lock();
        state.phase == Phase::Handshake || state.active == 0
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
            closing: AtomicBool::new(false),
            close: Notify::new(),
            changed: Notify::new(),
            state: Mutex::new(State {
                phase: Phase::Handshake,
                active: 0,
                receiving: 0,
                requests: 0,
                idle_since: now,
                reader: None,
                head_bytes: 0,
                body_bytes: 0,
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

    /// Closes `conn` (if unfinished, or `always`), counting it as closing until it ends; returns
    /// the bytes it held.
    fn close(&self, conn: &Conn, always: bool) -> Option<usize> {
        let mut state = conn.lock();
        if conn.closing.load(Ordering::Acquire) || !(always || state.unfinished()) {
            return None;
        }
        // Counted before the connection is told: it may end, and uncount itself, at once.
        self.closing.fetch_add(1, Ordering::AcqRel);
        conn.closing.store(true, Ordering::Release);
        let freed = state.held();
        (state.head_bytes, state.body_bytes) = (0, 0);
        self.held.fetch_sub(freed, Ordering::AcqRel);
        drop(state);
        conn.close.notify_one();
        Some(freed)
    }

    /// Bytes held by unfinished requests, across connections.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Records that `conn` now holds `bytes` for the head it is reading.
    pub(crate) fn hold_head(&self, conn: &Conn, bytes: usize) {
        self.adjust(conn, |state| state.head_bytes = bytes);
    }

    /// Records `bytes` more of a body still arriving on `conn`.
    pub(crate) fn add_body(&self, conn: &Conn, bytes: usize) {
        self.adjust(conn, |state| state.body_bytes += bytes);
    }

    /// Records that `bytes` of bodies on `conn` are no longer unfinished.
    pub(crate) fn remove_body(&self, conn: &Conn, bytes: usize) {
        self.adjust(conn, |state| {
            state.body_bytes = state.body_bytes.saturating_sub(bytes)
        });
    }

    /// Changes what `conn` holds; over the budget, closes the connections that have waited
    /// longest until enough is freed. A connection being closed holds nothing any more.
    fn adjust(&self, conn: &Conn, change: impl FnOnce(&mut State)) {
        // The total changes under the connection's lock, as when it is closed: never below zero.
        let total = {
            let mut state = conn.lock();
            if conn.closing.load(Ordering::Acquire) {
                return;
            }
            let before = state.held();
            change(&mut state);
            let after = state.held();
            if after <= before {
                self.held.fetch_sub(before - after, Ordering::AcqRel);
                return;
            }
            self.held.fetch_add(after - before, Ordering::AcqRel) + (after - before)
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
            if let Some(freed) = self.close(&*oldest?, false) {
                return Some(freed);
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
        self.registry.adjust(&self.conn, |state| {
            (state.head_bytes, state.body_bytes) = (0, 0)
        });
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
        a.conn.set_phase(Phase::Serving);
        a.conn.request_started(true);
        assert_eq!(registry.unfinished(), 3, "a's body is still arriving");
        a.conn.request_received();
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
        registry.hold_head(&a.conn, 200);
        registry.add_body(&a.conn, 400);
        registry.hold_head(&b.conn, 300);
        assert!(!a.conn.closing.load(Ordering::Acquire));
        registry.hold_head(&b.conn, 500);
        assert!(
            a.conn.closing.load(Ordering::Acquire),
            "a held the most, longest"
        );
        assert!(!b.conn.closing.load(Ordering::Acquire));
        assert_eq!(registry.held(), 500, "a's bytes count no more");
        registry.hold_head(&a.conn, 700);
        registry.remove_body(&a.conn, 400);
        assert_eq!(registry.held(), 500, "nor anything a reads while closing");
        registry.add_body(&b.conn, 100);
        registry.remove_body(&b.conn, 100);
        assert_eq!(registry.held(), 500);
        drop(a);
        assert_eq!(registry.held(), 500);
        drop(b);
        assert_eq!(registry.held(), 0);
    }
}
