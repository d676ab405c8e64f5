//! Keeping N connections busy for a fixed time (or at a fixed rate) and recording latencies.

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

/// How hard and how long to drive one scenario.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LoadSpec {
    /// Concurrent requests in flight (one connection each).
    pub connections: usize,
    /// How long to run.
    pub duration: Duration,
    /// Upper bound on requests, whatever the duration.
    pub max_requests: u64,
    /// Requests per second in total, or as fast as possible when `None`.
    pub rate: Option<f64>,
}

/// One worker: a connection and what to send on it.
pub trait Step {
    /// Sends request number `seq` of this worker and waits for its answer.
    fn step(&mut self, seq: u64) -> impl Future<Output = Result<()>> + Send;
}

/// What one scenario achieved.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Successful requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Successful requests per second.
    pub rps: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// How many client processes sent the load.
    pub processes: usize,
    /// The first error seen, if any (never holds secrets: bodies are ACS error JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// What one process (or one worker) measured: the raw material of a [`LoadReport`], which
/// several processes' parts merge into.
#[derive(Debug, Clone)]
pub struct Part {
    /// Latencies of the successful requests, microseconds.
    pub histogram: Histogram<u64>,
    /// Failed requests.
    pub errors: u64,
    /// Wall time from the common start to the last answer, seconds.
    pub seconds: f64,
    /// The first error seen.
    pub first_error: Option<String>,
}

/// A [`Part`] as a client process prints it for its parent: the histogram as (value, count)
/// pairs, one per recorded bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    histogram: Vec<(u64, u64)>,
    errors: u64,
    seconds: f64,
    first_error: Option<String>,
}

/// Latencies from 1 µs to 60 s, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

impl Part {
    fn empty() -> Self {
        Part {
            histogram: histogram(),
            errors: 0,
            seconds: 0.0,
            first_error: None,
        }
    }

    /// Adds `other` (of a worker or process that ran at the same time).
    pub fn merge(&mut self, other: &Part) {
        self.histogram
            .add(&other.histogram)
            .expect("same bounds on both sides");
        self.errors += other.errors;
        self.seconds = self.seconds.max(other.seconds);
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// The report of everything merged into this part, sent by `processes` processes.
    pub fn report(&self, processes: usize) -> LoadReport {
        let total = &self.histogram;
        let ms = |q: f64| total.value_at_quantile(q) as f64 / 1000.0;
        LoadReport {
            requests: total.len(),
            errors: self.errors,
            seconds: self.seconds,
            rps: total.len() as f64 / self.seconds.max(f64::MIN_POSITIVE),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: total.max() as f64 / 1000.0,
            processes,
            first_error: self.first_error.clone(),
        }
    }

    /// The part in a form another process can read back.
    pub fn to_record(&self) -> PartRecord {
        let buckets = self.histogram.iter_recorded();
        PartRecord {
            histogram: buckets
                .map(|b| (b.value_iterated_to(), b.count_at_value()))
                .collect(),
            errors: self.errors,
            seconds: self.seconds,
            first_error: self.first_error.clone(),
        }
    }

    /// Reads a part back (each bucket's count recorded at its highest equivalent value, which
    /// falls in the same bucket).
    pub fn from_record(record: &PartRecord) -> Result<Self> {
        let mut part = Part::empty();
        for &(value, count) in &record.histogram {
            part.histogram.record_n(value, count)?;
        }
        part.errors = record.errors;
        part.seconds = record.seconds;
        part.first_error.clone_from(&record.first_error);
        Ok(part)
    }
}

/// Runs every worker until the time or count is used up, starting at `start_at` (so that
/// several processes load the server over the same window) or at once.
///
/// With a rate, each request is scheduled in advance and its latency counts from the scheduled
/// start, so a stalled server is charged for the requests it delayed (no coordinated omission).
pub async fn run<W>(spec: LoadSpec, workers: Vec<W>, start_at: Option<SystemTime>) -> Result<Part>
where
    W: Step + Send + 'static,
{
    if let Some(wait) = start_at.and_then(|at| at.duration_since(SystemTime::now()).ok()) {
        tokio::time::sleep(wait).await;
    }
    let start = Instant::now();
    let count = workers.len().max(1);
    let per_worker = spec.max_requests.div_ceil(count as u64).max(1);
    let interval = spec
        .rate
        .map(|rate| Duration::from_secs_f64(count as f64 / rate));
    let schedule = Schedule {
        start,
        deadline: start + spec.duration,
        interval,
        per_worker,
    };
    let tasks: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(index, worker)| {
            let offset = interval.map(|i| i.mul_f64(index as f64 / count as f64));
            tokio::spawn(drive(worker, schedule, offset))
        })
        .collect();
    let mut total = Part::empty();
    for task in tasks {
        total.merge(&task.await?);
    }
    total.seconds = start.elapsed().as_secs_f64();
    Ok(total)
}

/// When a worker's requests are due.
#[derive(Clone, Copy)]
struct Schedule {
    start: Instant,
    deadline: Instant,
    interval: Option<Duration>,
    per_worker: u64,
}

async fn drive<W: Step>(mut worker: W, schedule: Schedule, offset: Option<Duration>) -> Part {
    let mut part = Part::empty();
    for seq in 0..schedule.per_worker {
        let scheduled = match (schedule.interval, offset) {
            (Some(i), Some(o)) => schedule.start + o + i.mul_f64(seq as f64),
            _ => Instant::now(),
        };
        if scheduled >= schedule.deadline {
            break;
        }
        if schedule.interval.is_some() {
            wait_until(scheduled).await;
        }
        match worker.step(seq).await {
            Ok(()) => {
                let micros = scheduled.elapsed().as_micros() as u64;
                part.histogram.saturating_record(micros.max(1));
            }
            Err(e) => {
                part.errors += 1;
                part.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    part
}

/// Waits until `at`, to within microseconds. Tokio's timer fires up to a millisecond late, which an
/// open-loop latency (counted from the scheduled start) would charge to the server: the timer
/// sleeps until shortly before, then the task yields until the instant (the load generator's
/// core is its own, so the spinning costs the server nothing).
async fn wait_until(at: Instant) {
    const TIMER_SLACK: Duration = Duration::from_millis(2);
    if let Some(early) = at.checked_sub(TIMER_SLACK) {
        tokio::time::sleep_until(early.into()).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose every third request fails.
    struct Flaky;

    impl Step for Flaky {
        async fn step(&mut self, seq: u64) -> Result<()> {
            tokio::task::yield_now().await;
            match seq % 3 {
                2 => anyhow::bail!("refused {seq}"),
                _ => Ok(()),
            }
        }
    }

    fn spec(max_requests: u64) -> LoadSpec {
        LoadSpec {
            connections: 2,
            duration: Duration::from_secs(10),
            max_requests,
            rate: None,
        }
    }

    #[tokio::test]
    async fn counts_successes_and_failures_up_to_the_maximum() {
        let part = run(spec(60), vec![Flaky, Flaky], None).await.unwrap();
        assert_eq!(part.histogram.len(), 40);
        assert_eq!(part.errors, 20);
        assert_eq!(part.first_error.as_deref(), Some("refused 2"));
    }

    #[tokio::test]
    async fn starts_at_the_given_time() {
        let at = SystemTime::now() + Duration::from_millis(50);
        let before = Instant::now();
        run(spec(2), vec![Flaky], Some(at)).await.unwrap();
        assert!(before.elapsed() >= Duration::from_millis(45));
    }

    fn part_of(latencies: &[u64], errors: u64, seconds: f64) -> Part {
        let mut part = Part::empty();
        for &l in latencies {
            part.histogram.record(l).unwrap();
        }
        part.errors = errors;
        part.seconds = seconds;
        part
    }

    #[test]
    fn parts_of_processes_merge_into_one_report() {
        let mut merged = part_of(&[100, 200, 300], 1, 5.0);
        merged.first_error = Some("first".into());
        let mut other = part_of(&[1_000, 2_000_000], 2, 5.2);
        other.first_error = Some("second".into());
        merged.merge(&other);
        let report = merged.report(2);
        assert_eq!(
            (report.requests, report.errors, report.processes),
            (5, 3, 2)
        );
        assert_eq!(report.seconds, 5.2);
        assert!((report.rps - 5.0 / 5.2).abs() < 1e-9);
        assert_eq!(report.first_error.as_deref(), Some("first"));
        assert!((report.max_ms - 2000.0).abs() < 2.0);
        assert!((report.p50_ms - 0.3).abs() < 0.001);
    }

    #[test]
    fn a_part_survives_its_record() {
        let latencies: Vec<u64> = (1..5_000).map(|i| i * 37).collect();
        let part = part_of(&latencies, 4, 1.5);
        let json = serde_json::to_string(&part.to_record()).unwrap();
        let back = Part::from_record(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back.histogram.len(), part.histogram.len());
        for q in [0.5, 0.99, 0.999, 1.0] {
            let (a, b) = (
                part.histogram.value_at_quantile(q),
                back.histogram.value_at_quantile(q),
            );
            assert!(part.histogram.equivalent(a, b), "quantile {q}: {a} vs {b}");
        }
        assert_eq!((back.errors, back.seconds), (4, 1.5));
    }
}
