//! Keeping N connections busy for a fixed time (or at a fixed rate) and recording latencies.

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How hard and how long to drive one scenario.
#[derive(Debug, Clone, Copy)]
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
    /// The first error seen, if any (never holds secrets: bodies are ACS error JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

struct WorkerResult {
    histogram: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `op(worker, sequence)` from `spec.connections` workers until the time or count is used up.
///
/// With a rate, each request is scheduled in advance and its latency counts from the scheduled
/// start, so a stalled server is charged for the requests it delayed (no coordinated omission).
pub async fn run<F, Fut>(spec: LoadSpec, op: F) -> Result<LoadReport>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + spec.duration;
    let per_worker = spec.max_requests.div_ceil(spec.connections as u64).max(1);
    let interval = spec
        .rate
        .map(|rate| Duration::from_secs_f64(spec.connections as f64 / rate));
    let mut tasks = Vec::with_capacity(spec.connections);
    for worker in 0..spec.connections {
        let op = op.clone();
        let offset = interval.map(|i| i.mul_f64(worker as f64 / spec.connections as f64));
        tasks.push(tokio::spawn(async move {
            let mut result = WorkerResult {
                histogram: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
                errors: 0,
                first_error: None,
            };
            for seq in 0..per_worker {
                let scheduled = match (interval, offset) {
                    (Some(i), Some(o)) => start + o + i.mul_f64(seq as f64),
                    _ => Instant::now(),
                };
                if scheduled >= deadline {
                    break;
                }
                tokio::time::sleep_until(scheduled.into()).await;
                match op(worker, seq).await {
                    Ok(()) => {
                        let micros = scheduled.elapsed().as_micros() as u64;
                        result.histogram.saturating_record(micros.max(1));
                    }
                    Err(e) => {
                        result.errors += 1;
                        result.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            result
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        let result = task.await?;
        total.add(&result.histogram)?;
        errors += result.errors;
        first_error = first_error.or(result.first_error);
    }
    let seconds = start.elapsed().as_secs_f64();
    let ms = |q: f64| total.value_at_quantile(q) as f64 / 1000.0;
    Ok(LoadReport {
        requests: total.len(),
        errors,
        seconds,
        rps: total.len() as f64 / seconds,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: total.max() as f64 / 1000.0,
        first_error,
    })
}
