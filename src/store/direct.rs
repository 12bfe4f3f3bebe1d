//! Synchronous SQLite connections for the two statements on the request path: reading the change
//! counters and recording a MUNGE credential's use. sqlx hands every SQLite statement to a worker
//! thread and back, which costs ~80 µs of CPU (three signatures) per statement; here the statement
//! runs on the calling thread in a few microseconds, and the counters are read only when the WAL
//! index shows a commit since the last read ([`WalIndex`]) other than this module's own replay
//! records. Everything else goes through sqlx.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::changes::{Counters, READ_COUNTERS};
use super::wal_index::{Header, WalIndex};
use super::{BUSY_TIMEOUT_MS, RECORD_REPLAY};

/// A reader and a writer connection to the server's SQLite file, shared by the request workers, so
/// a replay record being written never holds up a look at the counters. Each holds its lock for
/// microseconds; when both are needed, the writer's is taken first.
pub struct DirectSqlite {
    reader: Mutex<Reader>,
    writer: Mutex<Connection>,
    /// `None` when the database has no WAL index: then every call reads the counters.
    wal_index: Option<WalIndex>,
}

struct Reader {
    connection: Connection,
    /// The counters read last, and the WAL-index header that showed no later commit.
    last_read: Option<(Header, Counters)>,
}

impl DirectSqlite {
    /// Opens the existing database file (migrations have created it). WAL mode is a property of
    /// the file; durability and the lock wait are per connection, so they are set here as on
    /// sqlx's connections.
    pub fn open(path: &Path) -> Result<DirectSqlite, rusqlite::Error> {
        let wal_index = WalIndex::open(path);
        if wal_index.is_none() {
            tracing::warn!(database = %path.display(), "no WAL index: every request reads the change counters");
        }
        Ok(DirectSqlite {
            reader: Mutex::new(Reader {
                connection: connect(path)?,
                last_read: None,
            }),
            writer: Mutex::new(connect(path)?),
            wal_index,
        })
    }

    /// The change counters as committed now: those read last when the WAL index shows no commit
    /// since, else read now.
    pub fn counters(&self) -> Result<Counters, rusqlite::Error> {
        let mut reader = self.reader.lock().expect("direct SQLite reader lock");
        // Looked at before reading: a commit between the two shows at the next call.
        let header = self.header();
        if let (Some(now), Some((seen, counters))) = (header, reader.last_read) {
            if now == seen {
                return Ok(counters);
            }
        }
        let counters = reader
            .connection
            .prepare_cached(READ_COUNTERS)?
            .query_row([], |row| {
                Ok(Counters {
                    accounts: row.get(0)?,
                    grants: row.get(1)?,
                    locks: row.get(2)?,
                })
            })?;
        reader.last_read = header.map(|header| (header, counters));
        Ok(counters)
    }

    /// Records a MUNGE credential's use; false when it was recorded before (a replay). The replay
    /// table has no trigger, so when this insert is the only commit since the counters were last
    /// read, they still hold and the next request need not read them.
    pub fn record_replay(
        &self,
        replay_key: &str,
        expires_at: i64,
    ) -> Result<bool, rusqlite::Error> {
        let writer = self.writer.lock().expect("direct SQLite writer lock");
        let before = self.header();
        let recorded = writer
            .prepare_cached(RECORD_REPLAY)?
            .execute((replay_key, expires_at))?
            == 1;
        let after = self.header();
        let mut reader = self.reader.lock().expect("direct SQLite reader lock");
        if let (Some(before), Some(after), Some((seen, counters))) =
            (before, after, reader.last_read)
        {
            if seen == before && before.one_commit_before(&after) {
                reader.last_read = Some((after, counters));
            }
        }
        Ok(recorded)
    }

    fn header(&self) -> Option<Header> {
        self.wal_index.as_ref().and_then(WalIndex::header)
    }
}

/// How long a direct statement sleeps between two tries of a lock another writer holds. SQLite's
/// own wait sleeps 1, 2, 5, … 100 ms, and here a request worker with all its connections sleeps:
/// other writers hold the lock for well under a millisecond.
const BUSY_RETRY_INTERVAL: Duration = Duration::from_micros(50);

fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_handler(Some(wait_briefly))?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

/// SQLite's busy handler: sleep [`BUSY_RETRY_INTERVAL`] and try again, for at most
/// [`BUSY_TIMEOUT_MS`] in all (counting the sleeps only, which is close enough).
fn wait_briefly(tries: i32) -> bool {
    let waited = BUSY_RETRY_INTERVAL * u32::try_from(tries).unwrap_or(u32::MAX);
    if waited >= Duration::from_millis(BUSY_TIMEOUT_MS) {
        return false;
    }
    std::thread::sleep(BUSY_RETRY_INTERVAL);
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The two tables these statements use, as the migrations make them.
    const SCHEMA: &str = "
        PRAGMA journal_mode = WAL;
        CREATE TABLE change_counters (id INTEGER PRIMARY KEY, accounts BIGINT, grants BIGINT, locks BIGINT);
        INSERT INTO change_counters VALUES (1, 0, 0, 0);
        CREATE TABLE munge_replays (expires_at BIGINT, replay_key TEXT, PRIMARY KEY (expires_at, replay_key)) WITHOUT ROWID;";

    /// Another writer, waiting for the lock as operator commands do.
    fn connect_new(path: &Path) -> Connection {
        let connection = Connection::open(path).unwrap();
        connection
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .unwrap();
        connection
    }

    #[test]
    fn a_foreign_commit_shows_at_the_next_read_whatever_replays_are_recorded_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("direct.db");
        let other = connect_new(&path);
        other.execute_batch(SCHEMA).unwrap();
        let direct = Arc::new(DirectSqlite::open(&path).unwrap());
        assert!(direct.wal_index.is_some());

        let recorder = direct.clone();
        let replays = std::thread::spawn(move || {
            for n in 0..2_000 {
                assert!(recorder.record_replay(&format!("{n:032x}"), 1).unwrap());
                recorder.counters().unwrap();
            }
            assert!(!recorder.record_replay(&format!("{:032x}", 7), 1).unwrap());
        });
        let mut committed = 0;
        while !replays.is_finished() {
            other
                .execute("UPDATE change_counters SET accounts = accounts + 1", [])
                .unwrap();
            committed += 1;
            assert_eq!(direct.counters().unwrap().accounts, committed);
        }
        replays.join().unwrap();
        assert!(committed > 0);
    }
}
