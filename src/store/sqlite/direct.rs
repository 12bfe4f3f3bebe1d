//! Synchronous SQLite connections for the two statements on the request path: reading the change
//! counters and recording a MUNGE credential's use. sqlx hands every SQLite statement to a worker
//! thread and back, which costs ~80 µs of CPU (three signatures) per statement; here the statement
//! runs on the calling thread in a few microseconds. The counters are read by every call, in a
//! read transaction of its own (2–5 µs, two `fcntl` calls): SQLite's supported way to see other
//! processes' commits, where anything cheaper would read its files behind its back. Neither
//! statement ever waits on the calling thread for another process's lock: in WAL mode a read waits
//! for no writer, and when SQLite answers busy anyway the caller reads through sqlx; uses of MUNGE
//! credentials that find the write lock taken are handed to a thread that waits for it, for a
//! bounded time. Uses that arrive together are recorded by one commit (see
//! [`DirectSqlite::record_replay`] and [`gather`](crate::store::gather)). Everything else goes through
//! sqlx.

use std::cell::Cell;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::store::changes::{Counters, READ_COUNTERS};
use crate::store::gather::{answer_each, Gathering, Waiting};
use crate::store::munge::{ReplayGathering, ReplayRecord};
use crate::store::{lock, StoreError};

/// Records a MUNGE credential's use unless it was recorded before.
const RECORD_REPLAY: &str =
    "INSERT INTO munge_replays (replay_key, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// A use of a MUNGE credential waiting for the commit that records it, and where its answer goes.
type Use = Waiting<ReplayRecord, Result<bool, Arc<rusqlite::Error>>>;

/// A reader and a writer connection to the server's SQLite file, shared by the request workers, so
/// a replay record being written never holds up a look at the counters. A request worker holds
/// either lock for microseconds and takes the writer's only when it is free; the thread that waits
/// for another process's write lock holds the writer's while it waits.
pub struct DirectSqlite {
    reader: Mutex<Connection>,
    writer: Arc<Mutex<Connection>>,
    /// Uses of MUNGE credentials waiting for the commit that records them.
    waiting: ReplayGathering<rusqlite::Error>,
    /// Where uses that found the write lock taken go: to the thread that waits for it.
    blocked: mpsc::Sender<Blocked>,
    /// How long a use waits for another process's write lock before its request fails.
    lock_wait: Duration,
}

/// Uses that found the write lock taken, and when they stop waiting for it.
struct Blocked {
    uses: Vec<Use>,
    give_up_at: Instant,
}

impl DirectSqlite {
    /// Opens the existing database file (migrations have created it) and starts the thread that
    /// waits for the write lock when another process holds it, at most `lock_wait` per use. WAL
    /// mode is a property of the file; durability is per connection, so it is set here as on sqlx's
    /// connections. A statement that finds a lock taken fails at once with `SQLITE_BUSY`
    /// ([`is_busy`]), except on the thread that waits for the write lock ([`retry_until_give_up`]).
    pub fn open(path: &Path, lock_wait: Duration) -> Result<DirectSqlite, StoreError> {
        let writer = connect(path)?;
        writer.busy_handler(Some(retry_until_give_up))?;
        let writer = Arc::new(Mutex::new(writer));
        let (blocked, handed_off) = mpsc::channel();
        let waiting_writer = writer.clone();
        std::thread::Builder::new()
            .name("sqlite-lock-wait".into())
            .spawn(move || wait_for_lock(&waiting_writer, &handed_off))
            .map_err(StoreError::Thread)?;
        Ok(DirectSqlite {
            reader: Mutex::new(connect(path)?),
            writer,
            waiting: Gathering::default(),
            blocked,
            lock_wait,
        })
    }

    /// The change counters as committed now.
    pub fn counters(&self) -> Result<Counters, rusqlite::Error> {
        lock(&self.reader)
            .prepare_cached(READ_COUNTERS)?
            .query_row([], |row| {
                Ok(Counters {
                    accounts: row.get(0)?,
                    grants: row.get(1)?,
                    locks: row.get(2)?,
                })
            })
    }

    /// Records a MUNGE credential's use; false when it was recorded before (a replay), including
    /// earlier in the same commit. Uses that arrive together share one commit, which costs about
    /// as much as a commit of one (the WAL frame of the same page, the same file locks). If the
    /// request of the use that gathers them is dropped meanwhile, the commit still happens (see
    /// [`CommitWaiting`]). While another process holds the write lock, the uses wait for it off the
    /// request worker, and fail with `SQLITE_BUSY` after the `lock_wait` given to
    /// [`DirectSqlite::open`].
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

    /// Commits every waiting use in one transaction and answers each, unless the write lock is
    /// taken: then the uses go to the thread that waits for it.
    fn commit_waiting(&self) {
        let uses = self.waiting.take();
        if uses.is_empty() {
            return;
        }
        let recorded = match self.writer.try_lock() {
            Ok(mut writer) => insert_uses(&mut writer, &uses),
            Err(TryLockError::Poisoned(poisoned)) => insert_uses(&mut poisoned.into_inner(), &uses),
            // The waiting thread holds the connection while it waits for the lock.
            Err(TryLockError::WouldBlock) => return self.hand_off(uses),
        };
        match recorded {
            Err(error) if is_busy(&error) => self.hand_off(uses),
            recorded => answer_each(uses, recorded),
        }
    }

    /// Hands uses that found the write lock taken to the thread that waits for it. Were that
    /// thread gone (it panicked), the uses would be dropped here, which answers each request with
    /// [`StoreError::Unanswered`].
    fn hand_off(&self, uses: Vec<Use>) {
        let give_up_at = Instant::now() + self.lock_wait;
        let _ = self.blocked.send(Blocked { uses, give_up_at });
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

/// Whether a statement failed because another connection holds a lock it needs.
pub fn is_busy(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
}

/// The thread that records the uses handed to it: everything handed over by then in one commit,
/// waiting for the write lock until the earliest of their give-up times, then answers each. It ends
/// when the [`DirectSqlite`] that hands it uses is dropped.
fn wait_for_lock(writer: &Mutex<Connection>, handed_off: &mpsc::Receiver<Blocked>) {
    while let Ok(Blocked {
        mut uses,
        mut give_up_at,
    }) = handed_off.recv()
    {
        for more in handed_off.try_iter() {
            give_up_at = give_up_at.min(more.give_up_at);
            uses.extend(more.uses);
        }
        GIVE_UP_AT.set(Some(give_up_at));
        let recorded = insert_uses(&mut lock(writer), &uses);
        GIVE_UP_AT.set(None);
        answer_each(uses, recorded);
    }
}

/// How long the thread that waits for the write lock sleeps between two tries. SQLite's own wait
/// sleeps 1, 2, 5, … up to 100 ms between tries, and so loses the lock, again and again, to a
/// writer that takes it again within microseconds of releasing it (seen in this module's tests).
const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(1);

thread_local! {
    /// When the uses that the lock-wait thread is recording stop waiting; `None` on every other
    /// thread. SQLite's busy handler is a plain function called on the thread that runs the
    /// statement, so this is how it learns whether, and until when, to wait.
    static GIVE_UP_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The writer's busy handler: on the lock-wait thread, sleep [`LOCK_RETRY_INTERVAL`] and try again
/// until [`GIVE_UP_AT`]; on a request worker, give up at once.
fn retry_until_give_up(_tries: i32) -> bool {
    let waiting = GIVE_UP_AT
        .get()
        .is_some_and(|give_up_at| Instant::now() < give_up_at);
    if waiting {
        std::thread::sleep(LOCK_RETRY_INTERVAL);
    }
    waiting
}

/// Inserts the uses in one transaction; for each, whether it was new. A failed transaction is
/// rolled back (when the `Transaction` is dropped), so the same uses can be tried again.
fn insert_uses(writer: &mut Connection, uses: &[Use]) -> Result<Vec<bool>, rusqlite::Error> {
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
    Ok(recorded)
}

fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // rusqlite gives a new connection a busy timeout of its own.
    connection.busy_handler(None)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
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

    /// How long uses wait for another process's write lock in these tests, unless one says otherwise.
    const LOCK_WAIT: Duration = Duration::from_secs(5);

    /// Another writer, waiting for the lock as operator commands do.
    fn connect_new(path: &Path) -> Connection {
        let connection = Connection::open(path).unwrap();
        connection.busy_timeout(LOCK_WAIT).unwrap();
        connection
    }

    #[test]
    fn a_foreign_commit_shows_at_the_next_read_whatever_replays_are_recorded_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("direct.db");
        let other = connect_new(&path);
        other.execute_batch(SCHEMA).unwrap();
        let direct = Arc::new(DirectSqlite::open(&path, LOCK_WAIT).unwrap());

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

    /// A database with the two tables, opened directly with `lock_wait`, and another connection
    /// to it.
    fn open_waiting(lock_wait: Duration) -> (tempfile::TempDir, DirectSqlite, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("direct.db");
        let other = connect_new(&path);
        other.execute_batch(SCHEMA).unwrap();
        let direct = DirectSqlite::open(&path, lock_wait).unwrap();
        (dir, direct, other)
    }

    fn open() -> (tempfile::TempDir, DirectSqlite, Connection) {
        open_waiting(LOCK_WAIT)
    }

    /// Frames in the WAL since it was last emptied (`PRAGMA wal_checkpoint`'s second column).
    fn wal_frames(connection: &Connection, mode: &str) -> i64 {
        connection
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
                row.get(1)
            })
            .unwrap()
    }

    #[tokio::test]
    async fn uses_that_arrive_together_share_one_commit_and_each_gets_its_own_answer() {
        let (_dir, direct, other) = open();
        // What a commit of one use writes to the WAL, each time from an empty WAL.
        wal_frames(&other, "TRUNCATE");
        assert!(direct.record_replay(record("0")).await.unwrap());
        let one_commit = wal_frames(&other, "PASSIVE");
        assert!(one_commit > 0);
        wal_frames(&other, "TRUNCATE");
        // "a" twice in the same commit: the second is a replay of the first.
        let answers =
            join_all(["a", "b", "a", "c"].map(|key| direct.record_replay(record(key)))).await;
        let answers = answers.into_iter().map(Result::unwrap).collect::<Vec<_>>();
        assert_eq!(answers, [true, true, false, true]);
        assert_eq!(wal_frames(&other, "PASSIVE"), one_commit, "one commit");
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

    /// Holds `statement`'s lock on another thread's connection for `hold`, from when this returns.
    fn hold_lock(
        path: &Path,
        statement: &'static str,
        hold: Duration,
    ) -> std::thread::JoinHandle<()> {
        let path = path.to_owned();
        let (taken, locked) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            let connection = Connection::open(path).unwrap();
            connection.execute_batch(statement).unwrap();
            taken.send(()).unwrap();
            std::thread::sleep(hold);
            connection.execute_batch("ROLLBACK").unwrap();
        });
        locked.recv().unwrap();
        holder
    }

    #[tokio::test]
    async fn uses_wait_for_another_writers_lock_without_holding_up_their_thread() {
        let (dir, direct, _other) = open();
        let hold = Duration::from_millis(1_500);
        let holder = hold_lock(&dir.path().join("direct.db"), "BEGIN IMMEDIATE", hold);
        let started = Instant::now();
        let mut replay = Box::pin(direct.record_replay(record("during the lock")));
        // The use waits for the lock while this thread goes on reading the counters.
        let mut reads = 0;
        let recorded = loop {
            if let Some(recorded) = (&mut replay).now_or_never() {
                break recorded;
            }
            let read = Instant::now();
            direct.counters().unwrap();
            assert!(read.elapsed() < Duration::from_millis(500), "a read waited");
            reads += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(recorded.unwrap(), "recorded once the lock was free");
        assert!(started.elapsed() >= hold - Duration::from_millis(100));
        assert!(reads >= 10, "{reads} reads while the use waited");
        holder.join().unwrap();
        assert!(!direct
            .record_replay(record("during the lock"))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn uses_give_up_after_the_bounded_wait() {
        let lock_wait = Duration::from_millis(300);
        let (dir, direct, _other) = open_waiting(lock_wait);
        let holder = hold_lock(
            &dir.path().join("direct.db"),
            "BEGIN IMMEDIATE",
            Duration::from_secs(3),
        );
        let started = Instant::now();
        let answers = join_all(["a", "b"].map(|key| direct.record_replay(record(key)))).await;
        let waited = started.elapsed();
        for answer in answers {
            match answer {
                Err(StoreError::Sqlite(error)) => assert!(is_busy(&error), "{error}"),
                other => panic!("not a busy error: {other:?}"),
            }
        }
        assert!(
            waited >= lock_wait && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        holder.join().unwrap();
        assert!(
            direct.record_replay(record("a")).await.unwrap(),
            "not recorded before"
        );
    }

    #[test]
    fn a_read_that_finds_the_database_locked_fails_at_once() {
        // Only without WAL does a writer lock readers out.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollback.db");
        connect_new(&path)
            .execute_batch(&SCHEMA.replace("PRAGMA journal_mode = WAL;", ""))
            .unwrap();
        let direct = DirectSqlite::open(&path, LOCK_WAIT).unwrap();
        let holder = hold_lock(&path, "BEGIN EXCLUSIVE", Duration::from_secs(2));
        let started = Instant::now();
        let error = direct.counters().unwrap_err();
        assert!(is_busy(&error), "{error}");
        assert!(started.elapsed() < Duration::from_millis(500));
        holder.join().unwrap();
        assert_eq!(direct.counters().unwrap(), Counters::default());
    }
}
