//! An online copy of a data dir: the database through SQLite's `VACUUM INTO` (a consistent
//! snapshot, taken beside a running server's writes), the key files copied with their modes.

use super::unavailable;
use crate::keys::{files, DataDir, KeyError};
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The source is not a data dir a server has made.
    #[error("{0} holds no callsign data")]
    NotADataDir(String),
    /// The target exists and is not empty.
    #[error("{0} exists and is not empty; back up into a new directory")]
    TargetNotEmpty(String),
    /// Copying a file failed.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Copying the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies the data dir `from` into the new directory `to`, which `serve --data` can start from.
pub fn backup(from: &Path, to: &Path) -> Result<(), BackupError> {
    let source = DataDir::new(from);
    if !source.is_initialised() {
        return Err(BackupError::NotADataDir(from.display().to_string()));
    }
    let target_used = std::fs::read_dir(to).is_ok_and(|mut entries| entries.next().is_some());
    if target_used {
        return Err(BackupError::TargetNotEmpty(to.display().to_string()));
    }
    files::create_private_dir(to).map_err(|e| KeyError::io("creating", to, e))?;
    copy_tree(from, to, &["resource-id", "access-keys.json", "signing"])?;
    let conn = Connection::open_with_flags(
        source.database_path(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(unavailable)?;
    let target = DataDir::new(to).database_path();
    conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])
        .map_err(unavailable)?;
    Ok(())
}

/// Copies the named entries of `from` (files, and directories one level deep) into `to`;
/// `std::fs::copy` keeps each file's permissions, so secrets stay owner-only.
fn copy_tree(from: &Path, to: &Path, names: &[&str]) -> Result<(), KeyError> {
    for name in names {
        let (src, dst) = (from.join(name), to.join(name));
        if src.is_dir() {
            files::create_private_dir(&dst).map_err(|e| KeyError::io("creating", &dst, e))?;
            let entries = std::fs::read_dir(&src).map_err(|e| KeyError::io("reading", &src, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| KeyError::io("reading", &src, e))?;
                let target = dst.join(entry.file_name());
                std::fs::copy(entry.path(), &target)
                    .map_err(|e| KeyError::io("copying", &entry.path(), e))?;
            }
        } else {
            std::fs::copy(&src, &dst).map_err(|e| KeyError::io("copying", &src, e))?;
        }
    }
    Ok(())
}
