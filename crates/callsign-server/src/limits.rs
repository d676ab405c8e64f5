//! The process's open-file limit, and how many connections it leaves room for.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// File descriptors kept back from connections: standard streams, the runtime's own, the
/// listener, the data dir's SQLite files (writer and pooled readers, three files each) or the
/// PostgreSQL pool (16), key files read on reload, JWKS fetches and logs.
pub const RESERVED_FILES: u64 = 128;

/// The most connections a server takes without being told otherwise, however high the open-file
/// limit: each one costs a task and buffers, and the budget for unfinished requests is shared.
pub const DEFAULT_CONNECTION_CEILING: usize = 16_384;

/// The fewest connections a server takes, even under a tiny open-file limit.
const MIN_CONNECTIONS: usize = 16;

/// The soft and hard open-file limits (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The limit in force.
    pub soft: Option<u64>,
    /// What the soft limit may be raised to.
    pub hard: Option<u64>,
}

impl OpenFiles {
    /// The limits in force now.
    pub fn current() -> Self {
        let limit = getrlimit(Resource::Nofile);
        Self {
            soft: limit.current,
            hard: limit.maximum,
        }
    }

    /// How many connections leave [`RESERVED_FILES`] free under the soft limit, at most
    /// [`DEFAULT_CONNECTION_CEILING`].
    pub fn connection_limit(&self) -> usize {
        let room = self
            .soft
            .map_or(u64::MAX, |soft| soft.saturating_sub(RESERVED_FILES));
        usize::try_from(room).unwrap_or(usize::MAX).clamp(
            MIN_CONNECTIONS,
            DEFAULT_CONNECTION_CEILING.max(MIN_CONNECTIONS),
        )
    }

    /// The most connections the soft limit allows at all (what an explicit `max_connections` is
    /// held to).
    pub fn connection_room(&self) -> usize {
        let room = self
            .soft
            .map_or(u64::MAX, |soft| soft.saturating_sub(RESERVED_FILES));
        usize::try_from(room)
            .unwrap_or(usize::MAX)
            .max(MIN_CONNECTIONS)
    }
}

/// Raises the soft open-file limit to the hard one (a server that holds one socket per client
/// should not stop at the 1,024 many systems start processes with). Returns the limits in force
/// afterwards; when raising fails, the limits are left as they were.
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    let before = OpenFiles::current();
    if before.soft != before.hard {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: before.hard,
                maximum: before.hard,
            },
        )?;
    }
    Ok(OpenFiles::current())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_keeps_the_reserve_free() {
        let limits = |soft| OpenFiles {
            soft: Some(soft),
            hard: Some(soft),
        };
        assert_eq!(limits(1024).connection_limit(), 896);
        assert_eq!(limits(100).connection_limit(), MIN_CONNECTIONS);
        assert_eq!(
            limits(1 << 20).connection_limit(),
            DEFAULT_CONNECTION_CEILING
        );
        assert_eq!(limits(1 << 20).connection_room(), (1 << 20) - 128);
        let unlimited = OpenFiles {
            soft: None,
            hard: None,
        };
        assert_eq!(unlimited.connection_limit(), DEFAULT_CONNECTION_CEILING);
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let after = raise_open_files().unwrap();
        assert_eq!(after.soft, after.hard);
    }
}
