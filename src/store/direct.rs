//! Synchronous SQLite connections for the two statements on the request path: reading the change
//! counters and recording a MUNGE credential's use. sqlx hands every SQLite statement to a worker
//! thread and back, which costs ~80 µs of CPU (three signatures) per statement; here the statement
//! runs on the calling thread in a few microseconds, and the counters are read only when the WAL
//! index shows a commit since the last read ([`WalIndex`]) other than this module's own replay
//! records. Uses of MUNGE credentials that arrive together are recorded by one commit (see
//! [`DirectSqlite::record_replay`] and [`gather`](super::gather)). Everything else goes through
//! sqlx.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::changes::{Counters, READ_COUNTERS};
use super::gather::{answer_each, Gathering, Waiting};
use super::wal_index::{Header, WalIndex};
use super::{lock, ReplayGathering, ReplayRecord, StoreError, BUSY_TIMEOUT_MS, RECORD_REPLAY};

/// A reader and a writer connection to the server's SQLite file, shared by the request workers, so
/// a replay record being written never holds up a look at the counters. Each holds its lock for
/// microseconds; when both are needed, the writer's is taken first.
pub struct DirectSqlite {
    reader: Mutex<Reader>,
    writer: Mutex<Connection>,
    /// Uses of MUNGE credentials waiting for the commit that records them.
    waiting: ReplayGathering<rusqlite::Error>,
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
            waiting: Gathering::default(),
            wal_index,
        })
    }

    /// The change counters as committed now: those read last when the WAL index shows no commit
    /// since, else read now.
    pub fn counters(&self) -> Result<Counters, rusqlite::Error> {
        let mut reader = lock(&self.reader);
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

    /// Records a MUNGE credential's use; false when it was recorded before (a replay), including
    /// earlier in the same commit. Uses that arrive together share one commit, which costs about
    /// as much as a commit of one (the WAL frame of the same page, the same file locks). If the
    /// request of the use that gathers them is dropped meanwhile, the commit still happens (see
    /// [`CommitWaiting`]).
    pub async fn record_replay(&self, record: ReplayRecord) -> Result<bool, StoreError> {
        let joined = self.waiting.join(record);
        if joined.first {
            let commit = CommitWaiting(self);
            self.waiting.gather().await;
            drop(commit);
        }
        match joined.answer.await {
            Ok(answer) => answer.map_err(StoreError::Sqlite),
            Err(_) => Err(StoreError::Unanswered),
        }
    }

    /// Commits every waiting use in one transaction and answers each.
    fn commit_waiting(&self) {
        let uses = self.waiting.take();
        if uses.is_empty() {
            return;
        }
        let recorded = self.insert_uses(&uses);
        answer_each(uses, recorded);
    }

    /// Inserts the uses in one transaction; for each, whether it was new. The replay table has no
    /// trigger, so when this is the only commit since the counters were last read, they still
    /// hold and the next request need not read them.
    fn insert_uses(
        &self,
        uses: &[Waiting<ReplayRecord, Result<bool, Arc<rusqlite::Error>>>],
    ) -> Result<Vec<bool>, rusqlite::Error> {
        let mut writer = lock(&self.writer);
        let before = self.header();
        let transaction = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let recorded = {
            let mut insert = transaction.prepare_cached(RECORD_REPLAY)?;
            uses.iter()
                .map(|waiting| {
                    let use_ = &waiting.item;
                    Ok(insert.execute((&use_.replay_key, use_.expires_at))? == 1)
                })
                .collect::<Result<Vec<_>, rusqlite::Error>>()?
        };
        transaction.commit()?;
        let after = self.header();
        let mut reader = lock(&self.reader);
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

/// Held by the first waiting use while it yields: dropping it commits every waiting use, whether
/// the yield ended or the request was dropped during it, so no use waits for a commit nobody will
/// make.
struct CommitWaiting<'a>(&'a DirectSqlite);

impl Drop for CommitWaiting<'_> {
    fn drop(&mut self) {
        self.0.commit_waiting();
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
    use futures_util::future::join_all;
    use futures_util::FutureExt;

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
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let record_nth =
                |n: u32| runtime.block_on(recorder.record_replay(record(&format!("{n:032x}"))));
            for n in 0..2_000 {
                assert!(record_nth(n).unwrap());
                recorder.counters().unwrap();
            }
            assert!(!record_nth(7).unwrap());
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

    /// A use of a credential that expires at 1.
    fn record(replay_key: &str) -> ReplayRecord {
        ReplayRecord {
            replay_key: replay_key.to_owned(),
            expires_at: 1,
        }
    }

    /// A database with the two tables, opened directly, and another connection to it (which keeps
    /// the WAL index in place, as the server's sqlx pool does).
    fn open() -> (tempfile::TempDir, DirectSqlite, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("direct.db");
        let other = connect_new(&path);
        other.execute_batch(SCHEMA).unwrap();
        let direct = DirectSqlite::open(&path).unwrap();
        (dir, direct, other)
    }

    #[tokio::test]
    async fn uses_that_arrive_together_share_one_commit_and_each_gets_its_own_answer() {
        let (_dir, direct, _other) = open();
        let before = direct.header().unwrap();
        // "a" twice in the same commit: the second is a replay of the first.
        let answers =
            join_all(["a", "b", "a", "c"].map(|key| direct.record_replay(record(key)))).await;
        let answers = answers.into_iter().map(Result::unwrap).collect::<Vec<_>>();
        assert_eq!(answers, [true, true, false, true]);
        assert!(before.one_commit_before(&direct.header().unwrap()));
        assert!(!direct.record_replay(record("b")).await.unwrap());
    }

    #[tokio::test]
    async fn the_uses_waiting_on_a_dropped_request_are_still_committed() {
        let (_dir, direct, _other) = open();
        let mut first = Box::pin(direct.record_replay(record("dropped")));
        assert!(
            (&mut first).now_or_never().is_none(),
            "the first use waits for the others"
        );
        let mut second = Box::pin(direct.record_replay(record("kept")));
        assert!((&mut second).now_or_never().is_none());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), second).await;
        assert!(second.expect("answered, not left waiting").unwrap());
        assert!(!direct.record_replay(record("dropped")).await.unwrap());
    }

    #[tokio::test]
    async fn a_failed_commit_is_the_answer_of_every_use_it_was_to_record() {
        let (_dir, direct, other) = open();
        other.execute_batch("DROP TABLE munge_replays").unwrap();
        let answers = join_all(["a", "b"].map(|key| direct.record_replay(record(key)))).await;
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
    }
}
