//! Several client processes driving one server (`--processes N`): the parent splits a scenario's
//! connections (and rate and request cap) between N copies of itself (`callsign-bench client`),
//! hands each its share on stdin with a common start time, and merges the latency histograms and
//! counts they print.
//!
//! One process drives the server from one core at most (its runtime is single-threaded, which is
//! the cheapest per request); a remote server, or a second client core, needs more of them.

use crate::conn::Target;
use crate::load::{self, LoadSpec, Part, PartRecord};
use crate::presign::Signer;
use crate::scenario::{Scenario, Worker};
use anyhow::{bail, Context, Result};
use callsign_common::AccessKey;
use serde::{Deserialize, Serialize};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

/// How long the children get to start and connect before the common start.
const START_DELAY: Duration = Duration::from_secs(1);

/// One client process's share of a scenario; sent on its stdin (so the key is not in any
/// process's arguments).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The server.
    pub endpoint: String,
    /// The access key, base64.
    pub key: String,
    /// What to send.
    pub scenario: Scenario,
    /// The pre-created users' raw ids.
    pub users: Vec<String>,
    /// This process's connections, rate and request cap.
    pub spec: LoadSpec,
    /// When to start, milliseconds since the Unix epoch.
    pub start_at_ms: u64,
}

impl Job {
    /// The jobs of `processes` processes sharing `spec`: connections, request cap and rate
    /// split as evenly as they go (the first ones take the remainder).
    pub fn split(&self, processes: usize) -> Vec<Job> {
        let connections = self.spec.connections;
        (0..processes)
            .map(|i| {
                let mine = connections / processes + usize::from(i < connections % processes);
                let share = mine as f64 / connections as f64;
                let mut job = self.clone();
                job.spec.connections = mine;
                job.spec.max_requests = (self.spec.max_requests as f64 * share).ceil() as u64;
                job.spec.rate = self.spec.rate.map(|r| r * share);
                job
            })
            .filter(|job| job.spec.connections > 0)
            .collect()
    }

    fn start_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.start_at_ms)
    }
}

/// The start time for jobs handed out now.
pub fn start_time() -> u64 {
    let at = SystemTime::now() + START_DELAY;
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Runs `job` split between `processes` children and merges what they measured.
pub async fn run(job: &Job, processes: usize) -> Result<Part> {
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for share in job.split(processes) {
        let mut child = tokio::process::Command::new(&exe)
            .arg("client")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting a client process")?;
        let mut stdin = child.stdin.take().context("no stdin")?;
        stdin.write_all(&serde_json::to_vec(&share)?).await?;
        drop(stdin);
        children.push(child);
    }
    let mut total: Option<Part> = None;
    for child in children {
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            bail!("a client process failed ({})", output.status);
        }
        let record: PartRecord =
            serde_json::from_slice(&output.stdout).context("reading a client process's result")?;
        let part = Part::from_record(&record)?;
        match &mut total {
            Some(total) => total.merge(&part),
            None => total = Some(part),
        }
    }
    total.context("no client process ran")
}

/// `callsign-bench client`: reads a [`Job`] on stdin, runs it, prints its [`PartRecord`].
pub async fn serve_job() -> Result<()> {
    let job: Job = serde_json::from_reader(std::io::stdin()).context("reading the job")?;
    let endpoint = url::Url::parse(&job.endpoint)?;
    let key = AccessKey::from_base64(&job.key)?;
    let (target, signer) = (Target::new(&endpoint)?, Signer::new(&endpoint, key)?);
    let mut workers = Vec::with_capacity(job.spec.connections);
    for index in 0..job.spec.connections {
        let worker = Worker::connect(&target, &signer, job.scenario, &job.users, index);
        workers.push(worker.await?);
    }
    if SystemTime::now() > job.start_at() {
        eprintln!("callsign-bench client: connected after the common start");
    }
    let part = load::run(job.spec, workers, Some(job.start_at())).await?;
    println!("{}", serde_json::to_string(&part.to_record())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(connections: usize, rate: Option<f64>) -> Job {
        Job {
            endpoint: "http://127.0.0.1:1/".into(),
            key: "pw==".into(),
            scenario: Scenario::IssueToken,
            users: vec!["8:acs:a".into()],
            spec: LoadSpec {
                connections,
                duration: Duration::from_secs(5),
                max_requests: 1_000,
                rate,
            },
            start_at_ms: 0,
        }
    }

    #[test]
    fn connections_and_rate_are_shared_out() {
        let jobs = job(16, Some(1_000.0)).split(3);
        let connections: Vec<usize> = jobs.iter().map(|j| j.spec.connections).collect();
        assert_eq!(connections, [6, 5, 5]);
        let rate: f64 = jobs.iter().filter_map(|j| j.spec.rate).sum();
        assert!((rate - 1_000.0).abs() < 1e-6);
        assert!(jobs.iter().map(|j| j.spec.max_requests).sum::<u64>() >= 1_000);
        assert_eq!(jobs[0].spec.rate, Some(375.0));
    }

    #[test]
    fn no_process_gets_no_connection() {
        let jobs = job(2, None).split(4);
        assert_eq!(jobs.len(), 2);
        assert!(jobs
            .iter()
            .all(|j| j.spec.connections == 1 && j.spec.rate.is_none()));
    }

    #[test]
    fn a_job_survives_its_json() {
        let original = job(4, None);
        let back: Job = serde_json::from_str(&serde_json::to_string(&original).unwrap()).unwrap();
        assert_eq!(back.spec.connections, 4);
        assert_eq!(back.scenario, Scenario::IssueToken);
        assert_eq!(back.start_at(), UNIX_EPOCH);
    }
}
