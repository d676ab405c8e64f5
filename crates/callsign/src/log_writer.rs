//! The server's log writer: log lines are appended to a buffer in memory, and a thread of their
//! own writes the buffer to stderr every [`INTERVAL`], so a request never waits on the write.
//!
//! Why not a channel with a thread woken per line: at a line per request that thread is woken
//! thousands of times a second, and on a server pinned to one core each wake-up preempts the
//! runtime (measured: a fifth of the core at 12,500 requests/s, and the p99 of a request tripled).
//! Waking on a timer writes the same lines in a few large writes.
//!
//! Nothing is dropped: past [`BACKLOG`] bytes not yet written (stderr blocked or slower than the
//! lines), the logging thread writes the backlog itself. Lines still buffered are written when the
//! [`Flusher`] is dropped; a process killed outright loses at most the last interval's lines.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line waits in memory at most before it is written (when the writer keeps up).
const INTERVAL: Duration = Duration::from_millis(50);

/// Bytes buffered past which the thread that logs writes them itself.
const BACKLOG: usize = 8 << 20;

/// Where lines are written: stderr in the server, anything in the tests.
type Sink = Box<dyn Write + Send>;

/// What the logging threads and the writer share.
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Held while bytes are written, so that the backlog written by a logging thread and the
    /// writer's batches keep the lines' order.
    sink: Mutex<Sink>,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    stopping: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain bytes behind: still fine to write.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what is buffered and writes it, holding the sink from before the take so that no
    /// later batch overtakes it. Errors are ignored: a log has nowhere left to report them.
    fn drain(&self) {
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = std::mem::take(&mut self.state().pending);
        if !bytes.is_empty() {
            let _ = sink.write_all(&bytes);
            let _ = sink.flush();
        }
    }
}

/// The `MakeWriter` for `tracing_subscriber::fmt`: each line is appended to the shared buffer.
#[derive(Clone)]
pub struct LogWriter(Arc<Shared>);

/// Writes the buffered lines on drop and stops the writer thread.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `sink` (stderr: `start(Box::new(std::io::stderr()))`).
pub fn start(sink: Sink) -> std::io::Result<(LogWriter, Flusher)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        sink: Mutex::new(sink),
    });
    let writer = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("callsign-log".into())
        .spawn(move || write_every_interval(&writer))?;
    let flusher = Flusher {
        shared: Arc::clone(&shared),
        thread: Some(thread),
    };
    Ok((LogWriter(shared), flusher))
}

/// The writer thread: every interval (or when stopping), write what is buffered.
fn write_every_interval(shared: &Shared) {
    loop {
        let state = shared.state();
        let (state, _) = shared
            .wake
            .wait_timeout_while(state, INTERVAL, |s| !s.stopping)
            .unwrap_or_else(PoisonError::into_inner);
        let stopping = state.stopping;
        drop(state);
        shared.drain();
        if stopping {
            return;
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.state().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Lines logged after the thread's last batch (by threads still running).
        self.shared.drain();
    }
}

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = self.0.state();
        state.pending.extend_from_slice(bytes);
        if state.pending.len() >= BACKLOG {
            // The writer is not keeping up: write the backlog here rather than grow or drop it.
            drop(state);
            self.0.drain();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test reads back, counting the writes it was given.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut recorded = self.0.lock().unwrap();
            recorded.0.extend_from_slice(bytes);
            recorded.1 += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_flusher_is_dropped() {
        let sink = Recorded::default();
        let (writer, flusher) = start(Box::new(sink.clone())).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        writer.write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(flusher);
        let (bytes, writes) = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..10_000).collect::<Vec<_>>(), "thread {t}'s lines");
        }
        // Batched: far fewer writes than the 40,000 lines.
        assert!(writes < 1_000, "{writes} writes for 40,000 lines");
    }

    #[test]
    fn a_backlog_is_written_by_the_thread_that_logs() {
        // No writer thread: only the logging thread can write.
        let sink = Recorded::default();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            sink: Mutex::new(Box::new(sink.clone())),
        });
        let mut writer = LogWriter(shared);
        let line = vec![b'x'; 1 << 16];
        for _ in 0..(BACKLOG / line.len() - 1) {
            writer.write_all(&line).unwrap();
        }
        assert_eq!(
            sink.0.lock().unwrap().0.len(),
            0,
            "below the backlog: buffered"
        );
        writer.write_all(&line).unwrap();
        assert_eq!(
            sink.0.lock().unwrap().0.len(),
            BACKLOG,
            "at the backlog: written"
        );
    }
}
