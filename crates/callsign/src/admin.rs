//! The commands that act on a data dir or a cluster's database directly (connection string,
//! keys, export, import, backup), and `healthz`.

use crate::failure::Failure;
use anyhow::{Context, Result};
use callsign_server::audit::{AuditLog, EventType};
use callsign_server::clock::{Clock, SystemClock};
use callsign_server::export::ExportFile;
use callsign_server::keys::access::dev_access_key;
use callsign_server::keys::{DataDir, KeyKind, MasterKey};
use callsign_server::server::connection_string as format_connection_string;
use callsign_server::store::{self, Backend, OpenMode};
use callsign_server::{PostgresConfig, StorageConfig};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `callsign connection-string`: the string of `--dev`, of a data dir (saying on stderr whether
/// its server runs) or of a cluster (with `--endpoint`).
pub fn connection_string(
    dev: bool,
    data: &Path,
    endpoint: Option<String>,
    database: Option<String>,
) -> Result<(), Failure> {
    if dev {
        let endpoint = endpoint.unwrap_or_else(|| "http://127.0.0.1:8080/".to_owned());
        println!("{}", format_connection_string(&endpoint, &dev_access_key()));
        return Ok(());
    }
    let on_database = database.is_some();
    let now = chrono::Utc::now();
    let keys = with_storage(data, database, |backend| async move {
        Ok(backend.load_keys(now).await?)
    })
    .context("reading the keys")?;
    let dir = absolute(data);
    let endpoint = match endpoint {
        Some(e) => e,
        None => std::fs::read_to_string(DataDir::new(&dir).endpoint_path()).map_err(|_| {
            Failure::usage_msg(format!(
                "no server has listened for {} yet, so its endpoint is unknown: pass --endpoint, \
                 or run `callsign serve --data {}` once",
                dir.display(),
                dir.display()
            ))
        })?,
    };
    println!(
        "{}",
        format_connection_string(endpoint.trim(), &keys.access.primary)
    );
    if !on_database {
        match store::sqlite::serving_pid(&dir) {
            Ok(Some(_)) => {}
            Ok(None) => eprintln!(
                "server not running (data dir {}): `callsign serve --data {}` starts it",
                dir.display(),
                dir.display()
            ),
            Err(e) => eprintln!(
                "could not tell whether a server runs on {}: {e}",
                dir.display()
            ),
        }
    }
    Ok(())
}

/// `callsign keys regenerate`.
pub fn regenerate(kind: KeyKind, data: &Path, database: Option<String>) -> Result<(), Failure> {
    with_storage(data, database, |backend| async move {
        backend.regenerate_access_key(kind).await?;
        let which = match kind {
            KeyKind::Primary => "primary",
            KeyKind::Secondary => "secondary",
        };
        record(
            &backend,
            EventType::AccessKeyRegenerated,
            Some(which),
            json!({}),
        )
        .await
    })
    .context("regenerating the access key")?;
    eprintln!(
        "regenerated the {} key; a running server picks it up within seconds",
        match kind {
            KeyKind::Primary => "primary",
            KeyKind::Secondary => "secondary",
        }
    );
    Ok(())
}

/// `callsign signing-key rotate`: prints the new key's id.
pub fn rotate(data: &Path, database: Option<String>) -> Result<(), Failure> {
    let now = chrono::Utc::now();
    let kid = with_storage(data, database, |backend| async move {
        let kid = backend.rotate_signing_key(now).await?;
        record(
            &backend,
            EventType::SigningKeyRotated,
            Some(&kid),
            json!({}),
        )
        .await?;
        Ok(kid)
    })
    .context("rotating the signing key")?;
    println!("{kid}");
    eprintln!(
        "new tokens are signed with the key above; the previous key stays published for 25 hours"
    );
    Ok(())
}

/// `callsign backup`: a copy of a data dir that `serve --data` can start from.
pub fn backup(data: &Path, out: &Path) -> Result<(), Failure> {
    store::sqlite::backup(data, out)
        .with_context(|| format!("backing up {} to {}", data.display(), out.display()))?;
    eprintln!(
        "backed up {} to {}; `callsign serve --data {}` starts from it",
        data.display(),
        out.display(),
        out.display()
    );
    Ok(())
}

/// `callsign healthz`: succeeds when `url` answers 200 within `timeout`, saying so on stdout;
/// any other status, no answer or a refused connection fails.
pub fn healthz(url: &str, timeout: Duration) -> Result<(), Failure> {
    let get = async {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()?;
        Ok::<_, reqwest::Error>(client.get(url).send().await?.status())
    };
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(get)
        .map_err(|e| anyhow::Error::new(e.without_url()).context(format!("unhealthy: {url}")))?;
    if status != reqwest::StatusCode::OK {
        return Err(anyhow::anyhow!("unhealthy: {url} answered {status}").into());
    }
    println!("healthy: {url} answered 200");
    Ok(())
}

/// `path` made absolute, or as given if the current directory is gone: the paths callsign prints
/// (data dirs, the CA) must work from any directory.
pub(crate) fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The master key sealing a cluster's keys in its database (`CALLSIGN_MASTER_KEY`, required).
fn master_key() -> Result<MasterKey> {
    let text = std::env::var("CALLSIGN_MASTER_KEY").map_err(|_| {
        anyhow::anyhow!(
            "a PostgreSQL database needs CALLSIGN_MASTER_KEY (base64 of 32 random bytes, \
             e.g. `openssl rand -base64 32`), the same on every node"
        )
    })?;
    Ok(MasterKey::from_base64(&text)?)
}

/// Reads an export file, naming it in any error.
pub fn read_export(path: &Path) -> Result<ExportFile> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening the export file {}", path.display()))?;
    ExportFile::read(std::io::BufReader::new(file))
        .with_context(|| format!("reading the export file {}", path.display()))
}

/// `callsign export`: the storage's data, and keys when asked, on stdout.
pub fn export(data: &Path, database: Option<String>, include_keys: bool) -> Result<(), Failure> {
    if include_keys {
        eprintln!("warning: the export holds the access and signing keys: keep it secret");
    }
    let now = chrono::Utc::now();
    let file = with_storage(data, database, |backend| async move {
        let keys = backend.load_keys(now).await?;
        Ok(ExportFile {
            resource_id: keys.resource_id,
            keys: include_keys.then(|| keys.transfer()),
            data: backend.export_data().await?,
        })
    })
    .context("exporting")?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    file.write(&mut out, now).context("writing the export")?;
    Ok(())
}

/// `callsign import`: an export into empty storage, which becomes the file's resource.
pub fn import(path: &Path, data: &Path, database: Option<String>) -> Result<(), Failure> {
    let file = read_export(path)?;
    let storage = storage_config(data, database)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let imported = runtime.block_on(async move {
        // Claimed like a server would: no server may run on it meanwhile.
        let backend = store::open(&storage, OpenMode::Serve)
            .await
            .context("opening the storage")?;
        if !backend.export_data().await?.is_empty() {
            anyhow::bail!(
                "the storage already holds identities or assignments; import into an empty data \
                 dir or database (or use `serve --seed` to add fixtures)"
            );
        }
        let now = chrono::Utc::now();
        backend.adopt_keys(file.resource_id, file.keys, now).await?;
        let imported = backend.import_data(file.data).await?;
        let details = json!({
            "source": "import",
            "identities": imported.identities,
            "assignments": imported.assignments,
        });
        record(&backend, EventType::DataImported, None, details).await?;
        Ok(imported)
    })?;
    eprintln!(
        "imported {} identities and {} assignments",
        imported.identities, imported.assignments
    );
    Ok(())
}

/// Records an operator's change in the storage's audit trail (actor `operator`), for the
/// resource the storage holds.
async fn record(
    backend: &Arc<dyn Backend>,
    event_type: EventType,
    subject: Option<&str>,
    details: serde_json::Value,
) -> Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let resource = backend
        .load_keys(clock.now())
        .await?
        .resource_id
        .to_string();
    AuditLog::for_operator(backend.clone(), resource, clock)
        .record_operator(event_type, subject.map(str::to_owned), details)
        .await
        .context("recording the change in the audit trail")?;
    Ok(())
}

/// The storage a command acts on: the cluster's database when one is given, else the data dir.
pub fn storage_config(data: &Path, database: Option<String>) -> Result<StorageConfig> {
    Ok(match database {
        Some(url) => StorageConfig::Postgres(PostgresConfig {
            url,
            master_key: Arc::new(master_key()?),
        }),
        None => StorageConfig::DataDir(data.to_owned()),
    })
}

/// Runs an admin command against storage a server has initialised; a database serialises it
/// with the running nodes, a data dir is picked up by the running server within a second.
fn with_storage<T, F, Fut>(data: &Path, database: Option<String>, f: F) -> Result<T>
where
    F: FnOnce(Arc<dyn Backend>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    // Absolute, so that messages naming it work from any directory.
    let storage = storage_config(&absolute(data), database)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let backend = store::open(&storage, OpenMode::Existing)
            .await
            .context("opening the storage")?;
        f(backend).await
    })
}
