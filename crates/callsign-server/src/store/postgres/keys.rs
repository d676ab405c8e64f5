//! Keys of a cluster, kept in PostgreSQL so that every node serves the same resource: the resource
//! id, the access keys and the signing-key ring, secrets sealed with the master key
//! ([`crate::keys::sealed`]). Every change happens under one advisory lock and bumps
//! `resource.keys_version`, which nodes poll to reload.

use super::{bounded, unavailable, PostgresBackend};
use crate::domain::ids::ResourceId;
use crate::keys::access::random_key;
use crate::keys::signing::{KeyRing, RetiredKey, SigningKey, SigningKeyPem, RETIRED_KEY_RETENTION};
use crate::keys::{
    AccessKeys, KeyError, KeyKind, MasterKey, ResourceKeys, SigningAlg, TransferredKeys,
};
use crate::store::{KeyStore, KeyVersion, StoreError};
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Transaction};
use std::sync::Arc;

/// Advisory lock serialising every change of keys (first start, regeneration, rotation).
const KEYS_LOCK: i64 = 0x6361_6c6c_6b65_7973; // "callkeys"

fn db(e: impl std::error::Error) -> KeyError {
    unavailable(e).into()
}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        KeyError::Database(e.to_string())
    }
}

#[async_trait::async_trait]
impl KeyStore for PostgresBackend {
    async fn init_keys(&self, seed: Option<AccessKey>, now: DateTime<Utc>) -> Result<(), KeyError> {
        let mut client = self.key_client().await?;
        let tx = locked(&mut client).await?;
        let existing = tx
            .query_opt("SELECT primary_key FROM resource", &[])
            .await
            .map_err(db)?;
        match existing {
            Some(row) => {
                let stored = open_access(&self.master, KeyKind::Primary, row.get(0))?;
                if seed.is_some_and(|seed| seed != stored) {
                    return Err(KeyError::SeedMismatchDatabase);
                }
            }
            None => create_resource(&tx, &self.master, seed, now).await?,
        }
        tx.commit().await.map_err(db)
    }

    async fn load_keys(&self, now: DateTime<Utc>) -> Result<ResourceKeys, KeyError> {
        let client = self.key_client().await?;
        let row = client
            .query_opt(
                "SELECT resource_id, primary_key, secondary_key FROM resource",
                &[],
            )
            .await
            .map_err(db)?
            .ok_or_else(no_resource)?;
        let resource_id: String = row.get(0);
        let resource_id: ResourceId = resource_id
            .parse()
            .map_err(|_| KeyError::Database("the stored resource id is malformed".into()))?;
        let access = AccessKeys {
            primary: open_access(&self.master, KeyKind::Primary, row.get(1))?,
            secondary: open_access(&self.master, KeyKind::Secondary, row.get(2))?,
        };
        let rows = client
            .query(
                "SELECT kid, private_key, certificate, retired_at_us FROM signing_keys \
                 ORDER BY retired_at_us DESC NULLS FIRST",
                &[],
            )
            .await
            .map_err(db)?;
        let mut current = None;
        let mut retired = Vec::new();
        for row in rows {
            let kid: String = row.get(0);
            let retired_at: Option<i64> = row.get(3);
            let retired_at = retired_at.and_then(DateTime::from_timestamp_micros);
            if retired_at.is_some_and(|at| now - at >= RETIRED_KEY_RETENTION) {
                continue;
            }
            let key = Arc::new(open_signing_key(
                &self.master,
                &kid,
                row.get(1),
                row.get(2),
            )?);
            match retired_at {
                None => current = Some(key),
                Some(retired_at) => retired.push(RetiredKey { key, retired_at }),
            }
        }
        let current = current.ok_or_else(|| KeyError::Database("no current signing key".into()))?;
        Ok(ResourceKeys {
            resource_id,
            access,
            ring: KeyRing { current, retired },
        })
    }

    async fn key_version(&self) -> Result<KeyVersion, KeyError> {
        let row = self
            .query_opt("SELECT keys_version FROM resource", &[])
            .await?
            .ok_or_else(no_resource)?;
        let version: i64 = row.get(0);
        Ok(KeyVersion(version as u64))
    }

    async fn regenerate_access_key(&self, which: KeyKind) -> Result<(), KeyError> {
        let mut client = self.key_client().await?;
        let tx = locked(&mut client).await?;
        let sealed = self
            .master
            .seal(access_purpose(which), random_key().as_bytes());
        let sql = match which {
            KeyKind::Primary => {
                "UPDATE resource SET primary_key = $1, keys_version = keys_version + 1"
            }
            KeyKind::Secondary => {
                "UPDATE resource SET secondary_key = $1, keys_version = keys_version + 1"
            }
        };
        if tx.execute(sql, &[&sealed]).await.map_err(db)? != 1 {
            return Err(no_resource());
        }
        tx.commit().await.map_err(db)
    }

    async fn rotate_signing_key(&self, now: DateTime<Utc>) -> Result<String, KeyError> {
        let mut client = self.key_client().await?;
        let tx = locked(&mut client).await?;
        let alg = current_alg(&tx, &self.master).await?;
        let kid = rotate(&tx, &self.master, alg, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(kid)
    }

    async fn adopt_keys(
        &self,
        resource_id: ResourceId,
        keys: Option<TransferredKeys>,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        let mut client = self.key_client().await?;
        let tx = locked(&mut client).await?;
        let stored = tx
            .query_opt("SELECT resource_id FROM resource", &[])
            .await
            .map_err(db)?
            .map(|row| row.get::<_, String>(0));
        match stored {
            Some(stored) if stored == resource_id.to_string() => return Ok(()),
            Some(stored) => {
                return Err(KeyError::OtherResource {
                    stored,
                    given: resource_id.to_string(),
                })
            }
            None => insert_transferred(&tx, &self.master, resource_id, keys, now).await?,
        }
        tx.commit().await.map_err(db)
    }

    async fn ensure_signing_alg(
        &self,
        alg: SigningAlg,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        let mut client = self.key_client().await?;
        let tx = locked(&mut client).await?;
        if current_alg(&tx, &self.master).await? != alg {
            rotate(&tx, &self.master, alg, now).await?;
        }
        tx.commit().await.map_err(db)
    }
}

impl PostgresBackend {
    async fn key_client(&self) -> Result<Object, KeyError> {
        Ok(bounded(self.client()).await?)
    }
}

/// The algorithm of the current signing key.
async fn current_alg(tx: &Transaction<'_>, master: &MasterKey) -> Result<SigningAlg, KeyError> {
    let row = tx
        .query_opt(
            "SELECT kid, private_key, certificate FROM signing_keys WHERE retired_at_us IS NULL",
            &[],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| KeyError::Database("no current signing key".into()))?;
    let kid: String = row.get(0);
    Ok(open_signing_key(master, &kid, row.get(1), row.get(2))?.alg())
}

/// Retires the current signing key, drops keys past their retention, makes a new `alg` key
/// current and bumps the key version; returns the new `kid`.
async fn rotate(
    tx: &Transaction<'_>,
    master: &MasterKey,
    alg: SigningAlg,
    now: DateTime<Utc>,
) -> Result<String, KeyError> {
    let now_us = now.timestamp_micros();
    tx.execute(
        "UPDATE signing_keys SET retired_at_us = $1 WHERE retired_at_us IS NULL",
        &[&now_us],
    )
    .await
    .map_err(db)?;
    // Keys past their retention are of no use to anyone any more.
    let cutoff = (now - RETIRED_KEY_RETENTION).timestamp_micros();
    tx.execute(
        "DELETE FROM signing_keys WHERE retired_at_us < $1",
        &[&cutoff],
    )
    .await
    .map_err(db)?;
    let kid = insert_signing_key(tx, master, alg, now_us).await?;
    let bumped = tx
        .execute("UPDATE resource SET keys_version = keys_version + 1", &[])
        .await
        .map_err(db)?;
    if bumped != 1 {
        return Err(no_resource());
    }
    Ok(kid)
}

/// Opens a transaction holding the keys lock (released at commit or rollback).
async fn locked(client: &mut Object) -> Result<Transaction<'_>, KeyError> {
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&KEYS_LOCK])
        .await
        .map_err(db)?;
    Ok(tx)
}

fn no_resource() -> KeyError {
    KeyError::Database("the database holds no resource yet; start `callsign serve` once".into())
}

fn access_purpose(which: KeyKind) -> &'static str {
    match which {
        KeyKind::Primary => "callsign/access/primary",
        KeyKind::Secondary => "callsign/access/secondary",
    }
}

fn open_access(master: &MasterKey, which: KeyKind, sealed: Vec<u8>) -> Result<AccessKey, KeyError> {
    let bytes = master.open(access_purpose(which), &sealed)?;
    Ok(AccessKey::from_bytes(bytes))
}

fn open_signing_key(
    master: &MasterKey,
    kid: &str,
    sealed: Vec<u8>,
    certificate: String,
) -> Result<SigningKey, KeyError> {
    let private = master.open(&format!("callsign/signing/{kid}"), &sealed)?;
    let private_key = String::from_utf8(private).map_err(|_| KeyError::Crypto)?;
    SigningKey::from_pem(&SigningKeyPem {
        private_key,
        certificate,
    })
}

async fn create_resource(
    tx: &Transaction<'_>,
    master: &MasterKey,
    seed: Option<AccessKey>,
    now: DateTime<Utc>,
) -> Result<(), KeyError> {
    insert_resource(
        tx,
        master,
        ResourceId::random(),
        &AccessKeys::generate(seed),
    )
    .await?;
    insert_signing_key(tx, master, SigningAlg::Rs256, now.timestamp_micros()).await?;
    Ok(())
}

async fn insert_resource(
    tx: &Transaction<'_>,
    master: &MasterKey,
    resource_id: ResourceId,
    keys: &AccessKeys,
) -> Result<(), KeyError> {
    let primary = master.seal(access_purpose(KeyKind::Primary), keys.primary.as_bytes());
    let secondary = master.seal(
        access_purpose(KeyKind::Secondary),
        keys.secondary.as_bytes(),
    );
    tx.execute(
        "INSERT INTO resource (resource_id, primary_key, secondary_key, keys_version) \
         VALUES ($1, $2, $3, 1)",
        &[&resource_id.to_string(), &primary, &secondary],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Stores the resource `resource_id` with `keys` (an import) in a database holding none.
async fn insert_transferred(
    tx: &Transaction<'_>,
    master: &MasterKey,
    resource_id: ResourceId,
    keys: Option<TransferredKeys>,
    now: DateTime<Utc>,
) -> Result<(), KeyError> {
    let Some(keys) = keys else {
        insert_resource(tx, master, resource_id, &AccessKeys::generate(None)).await?;
        insert_signing_key(tx, master, SigningAlg::Rs256, now.timestamp_micros()).await?;
        return Ok(());
    };
    insert_resource(tx, master, resource_id, &keys.access).await?;
    let now_us = now.timestamp_micros();
    store_signing_key(
        tx,
        master,
        &SigningKey::from_pem(&keys.current)?,
        now_us,
        None,
    )
    .await?;
    for (pem, retired_at) in &keys.retired {
        let retired_us = retired_at.timestamp_micros();
        store_signing_key(
            tx,
            master,
            &SigningKey::from_pem(pem)?,
            now_us,
            Some(retired_us),
        )
        .await?;
    }
    Ok(())
}

async fn insert_signing_key(
    tx: &Transaction<'_>,
    master: &MasterKey,
    alg: SigningAlg,
    now_us: i64,
) -> Result<String, KeyError> {
    let (key, _) = SigningKey::generate_with(alg)?;
    store_signing_key(tx, master, &key, now_us, None).await?;
    Ok(key.kid().to_owned())
}

/// Stores a signing key, its private half sealed.
async fn store_signing_key(
    tx: &Transaction<'_>,
    master: &MasterKey,
    key: &SigningKey,
    created_us: i64,
    retired_us: Option<i64>,
) -> Result<(), KeyError> {
    let kid = key.kid();
    let sealed = master.seal(
        &format!("callsign/signing/{kid}"),
        key.pem().private_key.as_bytes(),
    );
    tx.execute(
        "INSERT INTO signing_keys (kid, private_key, certificate, created_at_us, retired_at_us) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &kid,
            &sealed,
            &key.pem().certificate,
            &created_us,
            &retired_us,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}
