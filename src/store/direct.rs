//! A synchronous SQLite connection for the two statements on the request path: reading the change
//! counters and recording a MUNGE credential's use. sqlx hands every SQLite statement to a worker
//! thread and back, which costs ~80 µs of CPU (three signatures) per statement; here the statement
//! runs on the calling thread in a few microseconds. Everything else goes through sqlx.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::changes::{Counters, READ_COUNTERS};
use super::{BUSY_TIMEOUT_MS, RECORD_REPLAY};

/// One connection to the server's SQLite file, shared by the request workers; each statement holds
/// the lock for microseconds.
pub struct DirectSqlite {
    connection: Mutex<Connection>,
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
        Ok(DirectSqlite {
            connection: Mutex::new(connection),
        })
    }

    /// The change counters as committed now.
    pub fn counters(&self) -> Result<Counters, rusqlite::Error> {
        let connection = self.connection.lock().expect("direct SQLite lock");
        let mut statement = connection.prepare_cached(READ_COUNTERS)?;
        statement.query_row([], |row| {
            Ok(Counters {
                accounts: row.get(0)?,
                grants: row.get(1)?,
                locks: row.get(2)?,
            })
        })
    }

    /// Records a MUNGE credential's use; false when it was recorded before (a replay).
    pub fn record_replay(
        &self,
        replay_key: &str,
        expires_at: i64,
    ) -> Result<bool, rusqlite::Error> {
        let connection = self.connection.lock().expect("direct SQLite lock");
        let mut statement = connection.prepare_cached(RECORD_REPLAY)?;
        Ok(statement.execute((replay_key, expires_at))? == 1)
    }
}
