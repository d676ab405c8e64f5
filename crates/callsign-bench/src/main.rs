//! `callsign-bench`: drives a callsign server with HMAC-signed requests from N connections for a
//! fixed time and prints one JSON line per scenario (requests/s, p50/p99/p99.9), beside the bounds
//! of the machine: `openssl speed` RS256 signing, the crypto library's signing rate and the
//! server's `GET /healthz` rate. See BENCHMARKS.md.

mod api;
mod bounds;
mod load;
mod target;

use anyhow::{bail, Context, Result};
use api::Api;
use bounds::Alg;
use clap::{Parser, ValueEnum};
use load::{LoadReport, LoadSpec};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Load generator for callsign (loopback only).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Requests in flight at once (one connection each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Upper bound on requests per scenario.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Scenarios to run, in order (default: all).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// Identities created before the issue-token and revoke scenarios.
    #[arg(long, default_value_t = 256)]
    users: usize,
    /// The `callsign` binary to start (default: next to this binary).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Pin the started server (and `openssl speed`) to these CPUs (`taskset -c`), e.g. `0`.
    #[arg(long)]
    server_cpus: Option<String>,
    /// Token signing algorithm passed to `callsign serve --signing-alg` (rs256, es256, eddsa).
    #[arg(long)]
    signing_alg: Option<String>,
    /// Drive this connection string's server instead of starting one (loopback only).
    #[arg(long, env = "CALLSIGN_BENCH_CONNECTION_STRING")]
    connection_string: Option<String>,
    /// Override the connection string's endpoint.
    #[arg(long, requires = "connection_string")]
    endpoint: Option<String>,
    /// Seconds of each `openssl speed` run; 0 skips them.
    #[arg(long, default_value_t = 3)]
    openssl_seconds: u32,
    /// Seconds of each crypto-library signing measurement; 0 skips them.
    #[arg(long, default_value_t = 3.0)]
    crypto_seconds: f64,
    /// A label copied into every line (for example `pinned` or `unpinned`).
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Healthz,
    CreateUser,
    IssueToken,
    IssueTokenHalfLoad,
    CreateUserAndToken,
    Revoke,
    Mixed,
}

impl Scenario {
    fn all() -> Vec<Scenario> {
        Scenario::value_variants().to_vec()
    }

    fn name(self) -> String {
        self.to_possible_value()
            .expect("no skipped variants")
            .get_name()
            .replace('-', "_")
    }

    /// Whether every request of the scenario signs a token.
    fn signs_tokens(self) -> bool {
        matches!(
            self,
            Scenario::IssueToken | Scenario::IssueTokenHalfLoad | Scenario::CreateUserAndToken
        )
    }
}

/// The bounds measured in this run, requests (signatures) per second.
#[derive(Default)]
struct Bounds {
    openssl: Option<f64>,
    library: Option<f64>,
    healthz: Option<f64>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.connections == 0 || cli.duration <= 0.0 {
        bail!("--connections and --duration must be positive");
    }
    let alg = match cli.signing_alg.as_deref().unwrap_or("rs256") {
        "rs256" => Alg::Rs256,
        "es256" => Alg::Es256,
        "eddsa" => Alg::EdDsa,
        other => bail!("unknown signing algorithm {other}"),
    };
    let mut bounds = Bounds::default();
    measure_crypto_bounds(&cli, alg, &mut bounds)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run_scenarios(&cli, bounds))
}

fn measure_crypto_bounds(cli: &Cli, alg: Alg, bounds: &mut Bounds) -> Result<()> {
    let openssl_name = match alg {
        Alg::Rs256 => "rsa2048",
        Alg::Es256 => "ecdsap256",
        Alg::EdDsa => "ed25519",
    };
    if cli.openssl_seconds > 0 {
        let cpus = cli.server_cpus.as_deref();
        bounds.openssl = bounds::openssl_sign_rate(openssl_name, cli.openssl_seconds, cpus);
        emit(json!({
            "bound": format!("openssl_{openssl_name}_sign"),
            "per_s": bounds.openssl,
            "cpus": cpus,
            "skipped": bounds.openssl.is_none().then_some("openssl (or taskset) unavailable"),
        }));
    }
    if cli.crypto_seconds > 0.0 {
        let duration = Duration::from_secs_f64(cli.crypto_seconds);
        let dir = tempfile::tempdir()?;
        emit(json!({
            "bound": "fsync",
            "per_s": bounds::fsync_rate(dir.path(), duration)?,
            "dir": std::env::temp_dir(),
        }));
        for each in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
            let rate = bounds::library_sign_rate(each, duration)?;
            if std::mem::discriminant(&each) == std::mem::discriminant(&alg) {
                bounds.library = Some(rate);
            }
            emit(json!({
                "bound": format!("aws_lc_rs_{each:?}_sign").to_lowercase(),
                "per_s": rate,
                "threads": 1,
            }));
        }
    }
    Ok(())
}

async fn run_scenarios(cli: &Cli, mut bounds: Bounds) -> Result<()> {
    let _server;
    let (endpoint, key) = match &cli.connection_string {
        Some(value) => {
            let (endpoint, key) = target::parse_connection_string(value)?;
            (cli.endpoint.clone().unwrap_or(endpoint), key)
        }
        None => {
            let bin = match &cli.server_bin {
                Some(bin) => bin.clone(),
                None => std::env::current_exe()?.with_file_name("callsign"),
            };
            let extra: Vec<String> = match &cli.signing_alg {
                Some(alg) => vec!["--signing-alg".into(), alg.clone()],
                None => Vec::new(),
            };
            let server = target::SpawnedServer::start(&bin, cli.server_cpus.as_deref(), &extra)?;
            let pair = (server.endpoint.clone(), server.key.clone());
            _server = server;
            pair
        }
    };
    require_loopback(&endpoint)?;
    let api = Api::new(&endpoint, key, cli.connections)?;
    let users = Arc::new(create_users(&api, cli.users.max(1)).await?);
    let mut issue_rps = None;
    let mut failed = 0;
    let scenarios = match cli.scenarios.is_empty() {
        true => Scenario::all(),
        false => cli.scenarios.clone(),
    };
    for scenario in scenarios {
        let mut spec = LoadSpec {
            connections: cli.connections,
            duration: Duration::from_secs_f64(cli.duration),
            max_requests: cli.max_requests,
            rate: None,
        };
        if scenario == Scenario::IssueTokenHalfLoad {
            let Some(max) = issue_rps else {
                eprintln!("issue_token_half_load needs issue_token first; skipped");
                continue;
            };
            spec.rate = Some(max / 2.0);
        }
        let load_before = load_average();
        let report = run_one(scenario, spec, &api, &users).await?;
        match scenario {
            Scenario::Healthz => bounds.healthz = Some(report.rps),
            Scenario::IssueToken => issue_rps = Some(report.rps),
            _ => {}
        }
        failed += report.errors;
        emit(scenario_line(
            cli,
            scenario,
            &spec,
            &report,
            &bounds,
            load_before,
        ));
    }
    if failed > 0 {
        bail!("{failed} requests failed");
    }
    Ok(())
}

async fn run_one(
    scenario: Scenario,
    spec: LoadSpec,
    api: &Api,
    users: &Arc<Vec<String>>,
) -> Result<LoadReport> {
    let api = api.clone();
    let users = users.clone();
    load::run(spec, move |worker, seq| {
        let api = api.clone();
        let user = users[(worker * 31 + seq as usize) % users.len()].clone();
        async move {
            match scenario {
                Scenario::Healthz => api.healthz().await,
                Scenario::CreateUser => api.create_user().await.map(|_| ()),
                Scenario::IssueToken | Scenario::IssueTokenHalfLoad => api.issue_token(&user).await,
                Scenario::CreateUserAndToken => api.create_user_and_token().await.map(|_| ()),
                Scenario::Revoke => api.revoke(&user).await,
                Scenario::Mixed => mixed(&api, &user, worker, seq).await,
            }
        }
    })
    .await
}

/// 80 % issue token, 15 % create user, 5 % revoke, interleaved deterministically.
async fn mixed(api: &Api, user: &str, worker: usize, seq: u64) -> Result<()> {
    match (worker as u64 * 7 + seq) % 20 {
        0..=15 => api.issue_token(user).await,
        16..=18 => api.create_user().await.map(|_| ()),
        _ => api.revoke(user).await,
    }
}

async fn create_users(api: &Api, count: usize) -> Result<Vec<String>> {
    let mut users = Vec::with_capacity(count);
    for _ in 0..count {
        users.push(api.create_user().await.context("creating the test users")?);
    }
    Ok(users)
}

fn scenario_line(
    cli: &Cli,
    scenario: Scenario,
    spec: &LoadSpec,
    report: &LoadReport,
    bounds: &Bounds,
    load_before: Value,
) -> Value {
    let ratio = |bound: Option<f64>| bound.map(|b| round(report.rps / b, 3));
    let token_ratio = |bound| scenario.signs_tokens().then(|| ratio(bound)).flatten();
    let mut line = json!({
        "scenario": scenario.name(),
        "label": cli.label,
        "signing_alg": cli.signing_alg.as_deref().unwrap_or("rs256"),
        "server_cpus": cli.server_cpus,
        "connections": spec.connections,
        "target_rps": spec.rate.map(|r| round(r, 1)),
        "ratio_to_openssl_sign": token_ratio(bounds.openssl),
        "ratio_to_library_sign": token_ratio(bounds.library),
        "ratio_to_healthz": ratio(bounds.healthz),
        "loadavg_before": load_before,
        "loadavg_after": load_average(),
    });
    let report = serde_json::to_value(report).expect("serializable");
    if let (Some(line), Value::Object(report)) = (line.as_object_mut(), report) {
        line.extend(report);
    }
    line
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// The 1, 5 and 15 minute load averages, so that every figure says how busy the machine was.
fn load_average() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|f| f.parse().ok())
        .collect();
    json!(fields)
}

fn require_loopback(endpoint: &str) -> Result<()> {
    let url = reqwest::Url::parse(endpoint)?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if !loopback {
        bail!("callsign-bench only drives loopback endpoints, not {endpoint}");
    }
    Ok(())
}

fn emit(line: Value) {
    println!("{line}");
}
