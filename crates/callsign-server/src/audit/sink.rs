//! Where events are written besides the store: JSON Lines files (`--audit-log FILE`), reopened
//! on SIGHUP so that logrotate can move them away, and stdout (`--audit-log -`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where to write events, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// Appended to this file, one JSON object a line.
    File(PathBuf),
    /// Written to stdout, one JSON object a line.
    Stdout,
}

impl SinkConfig {
    /// `-` is stdout, anything else a file.
    pub fn parse(value: &str) -> Self {
        if value == "-" {
            Self::Stdout
        } else {
            Self::File(PathBuf::from(value))
        }
    }
}

/// A sink could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("the audit log {path}: {source}")]
pub struct SinkError {
    /// The file (or `-`).
    pub path: String,
    /// The cause.
    pub source: std::io::Error,
}

/// An open sink.
pub(crate) enum Sink {
    File {
        path: PathBuf,
        /// Reopened in place on SIGHUP; one line is written whole under the lock.
        file: Mutex<File>,
    },
    Stdout,
}

fn open_append(path: &Path) -> Result<File, SinkError> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| SinkError {
            path: path.display().to_string(),
            source,
        })
}

impl Sink {
    pub(crate) fn open(config: &SinkConfig) -> Result<Self, SinkError> {
        Ok(match config {
            SinkConfig::File(path) => Self::File {
                path: path.clone(),
                file: Mutex::new(open_append(path)?),
            },
            SinkConfig::Stdout => Self::Stdout,
        })
    }

    /// Writes one line (`line` has no newline). An `O_APPEND` write of the whole line at once
    /// never interleaves with another's.
    pub(crate) fn write_line(&self, line: &str) -> Result<(), SinkError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        match self {
            Self::File { path, file } => file
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write_all(&bytes)
                .map_err(|source| SinkError {
                    path: path.display().to_string(),
                    source,
                }),
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)
                    .and_then(|()| out.flush())
                    .map_err(|source| SinkError {
                        path: "-".into(),
                        source,
                    })
            }
        }
    }

    /// Reopens a file sink by its path (after logrotate renamed it, a new file is created).
    pub(crate) fn reopen(&self) -> Result<(), SinkError> {
        if let Self::File { path, file } = self {
            let reopened = open_append(path)?;
            *file.lock().unwrap_or_else(|p| p.into_inner()) = reopened;
        }
        Ok(())
    }

    pub(crate) fn is_file(&self) -> bool {
        matches!(self, Self::File { .. })
    }
}
