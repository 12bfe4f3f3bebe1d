//! A synchronous SQLite connection for the two statements on the request path: reading the change
//! counters and recording a MUNGE credential's use. sqlx hands every SQLite statement to a worker
//! thread and back, which costs ~80 µs of CPU (three signatures) per statement; here the statement
//! runs on the calling thread in a few microseconds, and the counters are read only when the WAL
//! index shows a commit since the last read ([`WalIndex`]). Everything else goes through sqlx.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::changes::{Counters, READ_COUNTERS};
use super::wal_index::{Header, WalIndex};
use super::{BUSY_TIMEOUT_MS, RECORD_REPLAY};

/// One connection to the server's SQLite file, shared by the request workers; each statement holds
/// the lock for microseconds.
pub struct DirectSqlite {
    connected: Mutex<Connected>,
    /// `None` when the database has no WAL index: then every call reads the counters.
    wal_index: Option<WalIndex>,
}

struct Connected {
    connection: Connection,
    /// The counters read last, and the WAL-index header read just before them.
    last_read: Option<(Header, Counters)>,
}

impl DirectSqlite {
    /// Opens the existing database file (migrations have created it). WAL mode is a property of
    /// the file; durability and the lock wait are per connection, so they are set here as on
    /// sqlx's connections.
    pub fn open(path: &Path) -> Result<DirectSqlite, rusqlite::Error> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        let wal_index = WalIndex::open(path);
        if wal_index.is_none() {
            tracing::warn!(database = %path.display(), "no WAL index: every request reads the change counters");
        }
        Ok(DirectSqlite {
            connected: Mutex::new(Connected {
                connection,
                last_read: None,
            }),
            wal_index,
        })
    }

    /// The change counters as committed now: those read last when the WAL index shows no commit
    /// since, else read now.
    pub fn counters(&self) -> Result<Counters, rusqlite::Error> {
        let mut connected = self.connected.lock().expect("direct SQLite lock");
        // Looked at before reading: a commit between the two shows at the next call.
        let header = self.wal_index.as_ref().and_then(WalIndex::header);
        if let (Some(now), Some((seen, counters))) = (header, connected.last_read) {
            if now == seen {
                return Ok(counters);
            }
        }
        let counters = connected
            .connection
            .prepare_cached(READ_COUNTERS)?
            .query_row([], |row| {
                Ok(Counters {
                    accounts: row.get(0)?,
                    grants: row.get(1)?,
                    locks: row.get(2)?,
                })
            })?;
        connected.last_read = header.map(|header| (header, counters));
        Ok(counters)
    }

    /// Records a MUNGE credential's use; false when it was recorded before (a replay).
    pub fn record_replay(
        &self,
        replay_key: &str,
        expires_at: i64,
    ) -> Result<bool, rusqlite::Error> {
        let connected = self.connected.lock().expect("direct SQLite lock");
        let mut statement = connected.connection.prepare_cached(RECORD_REPLAY)?;
        Ok(statement.execute((replay_key, expires_at))? == 1)
    }
}
