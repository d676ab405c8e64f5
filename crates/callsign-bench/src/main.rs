//! `callsign-bench`: drives a callsign server with HMAC-signed requests from N connections for a
//! fixed time and prints one JSON line per scenario (requests/s, p50/p99/p99.9), beside the bounds
//! of the machine: `openssl speed` RS256 signing, the crypto library's signing rate and the
//! server's `GET /healthz` rate. See BENCHMARKS.md.
//!
//! So that it measures the server and not itself, each worker owns one keep-alive connection
//! (`conn`) and sends requests signed once a minute rather than once each (`presign`); one
//! process drives from one core (a single-threaded runtime), `--processes N` from more. `presign`
//! prints the same requests for `wrk` (`wrk/presigned.lua`), the independent cross-check.

mod api;
mod bounds;
mod conn;
mod load;
mod presign;
mod processes;
mod scenario;
mod target;

use anyhow::{bail, Context, Result};
use bounds::Alg;
use callsign_common::AccessKey;
use clap::{Args, Parser, Subcommand};
use conn::Target;
use load::{LoadReport, LoadSpec};
use presign::Signer;
use processes::Job;
use scenario::{Scenario, Worker};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Load generator for callsign.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print pre-signed requests for `wrk -s crates/callsign-bench/wrk/presigned.lua` (valid for
    /// the server's 5-minute clock skew from now).
    Presign(PresignArgs),
    /// Run one share of a scenario read on stdin (the children of `--processes`).
    #[command(hide = true)]
    Client,
}

/// The server to drive: a connection string, optionally with another endpoint.
#[derive(Args, Clone)]
struct ServerArgs {
    /// Drive this connection string's server (http or https, any host) instead of starting one.
    #[arg(long, env = "CALLSIGN_BENCH_CONNECTION_STRING")]
    connection_string: Option<String>,
    /// Override the connection string's endpoint.
    #[arg(long, requires = "connection_string")]
    endpoint: Option<String>,
}

#[derive(Args)]
struct PresignArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// What to sign: `issue-token` and `revoke` create `--users` users first.
    #[arg(long, default_value = "issue-token")]
    scenario: Scenario,
    /// Identities to create and sign requests for.
    #[arg(long, default_value_t = 64)]
    users: usize,
    /// Sign for the first `--users` identities of this export file (`callsign export`, or any
    /// file of its identity lines) instead of creating users: the scale runs' large data dirs.
    #[arg(long, value_name = "FILE")]
    ids_from: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Requests in flight at once (one connection each), over all client processes.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Client processes sharing the connections (each sends from one core at most).
    #[arg(long, default_value_t = 1)]
    processes: usize,
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
    /// Write the started server's log (stderr) to this file (default: a temporary file). Its log
    /// level is `RUST_LOG`'s, else the server's default (`info`: a line per request).
    #[arg(long)]
    server_log: Option<PathBuf>,
    /// Token signing algorithm passed to `callsign serve --signing-alg` (rs256, es256, eddsa).
    #[arg(long)]
    signing_alg: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
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

/// The bounds measured in this run, requests (signatures) per second.
#[derive(Default)]
struct Bounds {
    openssl: Option<f64>,
    library: Option<f64>,
    healthz: Option<f64>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // One thread: the cheapest runtime per request; more client cores are more processes.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Presign(args)) => runtime.block_on(print_presigned(args)),
        Some(Command::Client) => runtime.block_on(processes::serve_job()),
        None => run(&cli.run, &runtime),
    }
}

/// The default command: the bounds, then every scenario.
fn run(cli: &RunArgs, runtime: &tokio::runtime::Runtime) -> Result<()> {
    if cli.connections == 0 || cli.duration <= 0.0 || cli.processes == 0 {
        bail!("--connections, --processes and --duration must be positive");
    }
    let alg = match cli.signing_alg.as_deref().unwrap_or("rs256") {
        "rs256" => Alg::Rs256,
        "es256" => Alg::Es256,
        "eddsa" => Alg::EdDsa,
        other => bail!("unknown signing algorithm {other}"),
    };
    let mut bounds = Bounds::default();
    measure_crypto_bounds(cli, alg, &mut bounds)?;
    runtime.block_on(run_scenarios(cli, bounds))
}

fn measure_crypto_bounds(cli: &RunArgs, alg: Alg, bounds: &mut Bounds) -> Result<()> {
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

/// The endpoint and key of `--connection-string` (and `--endpoint`), if given.
fn given_server(args: &ServerArgs) -> Result<Option<(url::Url, AccessKey)>> {
    let Some(value) = &args.connection_string else {
        return Ok(None);
    };
    let (endpoint, key) = target::parse_connection_string(value)?;
    let endpoint = args.endpoint.clone().unwrap_or(endpoint);
    Ok(Some((url::Url::parse(&endpoint)?, key)))
}

/// The server under test: the given one, or a `callsign serve` started here (stopped when the
/// returned guard drops).
fn server_under_test(
    cli: &RunArgs,
) -> Result<(Option<target::SpawnedServer>, url::Url, AccessKey)> {
    if let Some((endpoint, key)) = given_server(&cli.server)? {
        return Ok((None, endpoint, key));
    }
    let bin = match &cli.server_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("callsign"),
    };
    let extra: Vec<String> = match &cli.signing_alg {
        Some(alg) => vec!["--signing-alg".into(), alg.clone()],
        None => Vec::new(),
    };
    let server = target::SpawnedServer::start(
        &bin,
        cli.server_cpus.as_deref(),
        &extra,
        cli.server_log.as_deref(),
    )?;
    let (endpoint, key) = (url::Url::parse(&server.endpoint)?, server.key.clone());
    Ok((Some(server), endpoint, key))
}

async fn run_scenarios(cli: &RunArgs, mut bounds: Bounds) -> Result<()> {
    let (_server, endpoint, key) = server_under_test(cli)?;
    let (target, signer) = (
        Target::new(&endpoint)?,
        Signer::new(&endpoint, key.clone())?,
    );
    let mut job = first_job(cli, &endpoint, &key, &target, &signer).await?;
    let mut issue_rps = None;
    let mut failed = 0;
    let scenarios = match cli.scenarios.is_empty() {
        true => Scenario::all(),
        false => cli.scenarios.clone(),
    };
    for scenario in scenarios {
        job.scenario = scenario;
        job.spec.rate = None;
        if scenario == Scenario::IssueTokenHalfLoad {
            let Some(max) = issue_rps else {
                eprintln!("issue_token_half_load needs issue_token first; skipped");
                continue;
            };
            job.spec.rate = Some(max / 2.0);
        }
        let load_before = load_average();
        let report = run_one(&job, cli.processes, &target, &signer).await?;
        match scenario {
            Scenario::Healthz => bounds.healthz = Some(report.rps),
            Scenario::IssueToken => issue_rps = Some(report.rps),
            _ => {}
        }
        failed += report.errors;
        emit(scenario_line(cli, &job, &report, &bounds, load_before));
    }
    if failed > 0 {
        bail!("{failed} requests failed");
    }
    Ok(())
}

/// Creates the users every scenario shares and describes the load (the scenario and rate are
/// set per scenario).
async fn first_job(
    cli: &RunArgs,
    endpoint: &url::Url,
    key: &AccessKey,
    target: &Target,
    signer: &Signer,
) -> Result<Job> {
    let mut setup = target.connect().await?;
    let users = api::create_users(&mut setup, signer, cli.users.max(1))
        .await
        .context("creating the test users")?;
    Ok(Job {
        endpoint: endpoint.to_string(),
        key: key.to_base64(),
        scenario: Scenario::Healthz,
        users,
        spec: LoadSpec {
            connections: cli.connections,
            duration: Duration::from_secs_f64(cli.duration),
            max_requests: cli.max_requests,
            rate: None,
        },
        start_at_ms: 0,
    })
}

/// Runs one scenario from this process, or split between `processes` child processes.
async fn run_one(
    job: &Job,
    processes: usize,
    target: &Target,
    signer: &Signer,
) -> Result<LoadReport> {
    // Never more processes than connections: each needs one.
    let processes = processes.min(job.spec.connections);
    if processes > 1 {
        let job = Job {
            start_at_ms: processes::start_time(),
            ..job.clone()
        };
        return Ok(processes::run(&job, processes).await?.report(processes));
    }
    let mut workers = Vec::with_capacity(job.spec.connections);
    for index in 0..job.spec.connections {
        workers.push(Worker::connect(target, signer, job.scenario, &job.users, index).await?);
    }
    Ok(load::run(job.spec, workers, None).await?.report(1))
}

/// `callsign-bench presign`: creates the users, then prints one pre-signed request per line.
async fn print_presigned(args: PresignArgs) -> Result<()> {
    let (endpoint, key) =
        given_server(&args.server)?.context("presign needs --connection-string")?;
    let (target, signer) = (Target::new(&endpoint)?, Signer::new(&endpoint, key)?);
    let users = match (args.scenario, &args.ids_from) {
        (Scenario::Healthz | Scenario::CreateUser | Scenario::CreateUserAndToken, _) => Vec::new(),
        (_, Some(file)) => api::users_from_export(file, args.users.max(1))?,
        (_, None) => {
            let mut conn = target.connect().await?;
            api::create_users(&mut conn, &signer, args.users.max(1)).await?
        }
    };
    let now = chrono::Utc::now();
    for template in args.scenario.templates(&users) {
        println!("{}", signer.sign(&template, now).wrk_line());
    }
    let until = (now + presign::SKEW_WINDOW).format("%H:%M:%S UTC");
    eprintln!(
        "signed for {}; the server accepts them until {until}",
        callsign_common::hmac::host_header(&endpoint).unwrap_or_default()
    );
    Ok(())
}

fn scenario_line(
    cli: &RunArgs,
    job: &Job,
    report: &LoadReport,
    bounds: &Bounds,
    load_before: Value,
) -> Value {
    let (scenario, spec) = (job.scenario, &job.spec);
    let ratio = |bound: Option<f64>| bound.map(|b| round(report.rps / b, 3));
    let token_ratio = |bound| scenario.signs_tokens().then(|| ratio(bound)).flatten();
    let mut line = json!({
        "scenario": scenario.name(),
        "label": cli.label,
        "signing_alg": cli.signing_alg.as_deref().unwrap_or("rs256"),
        "server_cpus": cli.server_cpus,
        "server_rust_log": std::env::var("RUST_LOG").unwrap_or_else(|_| "default".into()),
        "connections": spec.connections,
        "endpoint": job.endpoint,
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

fn emit(line: Value) {
    println!("{line}");
}
