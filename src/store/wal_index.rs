//! Whether anything was committed to a SQLite database (in WAL mode) since the last look, without
//! starting a transaction. Every commit, by any process, rewrites the WAL-index header at the start
//! of the `-shm` file with a new change counter and checksum (<https://www.sqlite.org/walformat.html>,
//! "The WAL-Index Header"); SQLite's own readers compare it to decide whether their cache is stale,
//! and so does [`WalIndex::header`]. Reading it costs ~0.1 µs; a read transaction costs 4–10 µs.
//! Doubt counts as a change: the caller then reads the database.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU32, Ordering};

use memmap2::Mmap;

/// Words in one copy of the header (48 bytes): version, unused, change counter, flags and page
/// size, last valid frame, pages, frame checksum, salt, header checksum.
const HEADER_WORDS: usize = 12;
/// The WAL-index format version SQLite writes in the first word (3.7.0's number).
const WAL_INDEX_VERSION: u32 = 3_007_000;
/// The byte (in the fourth word, in native order) that is non-zero once the header is initialised.
const IS_INIT_BYTE: usize = 12;

/// The word of the header's change counter, which every commit (and every restart of the WAL)
/// increments by one.
const CHANGE_COUNTER_WORD: usize = 2;

/// One copy of the WAL-index header, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header([u32; HEADER_WORDS]);

impl Header {
    /// True when `later` was written by exactly one commit after `self`.
    pub fn one_commit_before(&self, later: &Header) -> bool {
        self.0[CHANGE_COUNTER_WORD].wrapping_add(1) == later.0[CHANGE_COUNTER_WORD]
    }
}

/// The `-shm` file of a database, mapped read-only.
pub struct WalIndex {
    map: Mmap,
}

impl WalIndex {
    /// Maps the `-shm` file beside `database`; `None` when there is none (not in WAL mode) or it
    /// is too short to hold the header.
    pub fn open(database: &Path) -> Option<WalIndex> {
        let mut shm = database.as_os_str().to_owned();
        shm.push("-shm");
        let file = File::open(shm).ok()?;
        // SAFETY: the mapping is read-only and only ever read through atomics (`words`), so the
        // other processes that write it cannot invalidate a reference this module holds.
        let map = unsafe { Mmap::map(&file) }.ok()?;
        (map.len() >= 2 * HEADER_WORDS * size_of::<u32>()).then_some(WalIndex { map })
    }

    /// The header now, or `None` when it cannot be trusted: a writer is between its two copies,
    /// or it is not initialised or of an unknown version.
    pub fn header(&self) -> Option<Header> {
        let words = self.words();
        let read = |copy: usize| {
            let mut header = [0u32; HEADER_WORDS];
            for (word, shared) in header.iter_mut().zip(&words[copy * HEADER_WORDS..]) {
                *word = shared.load(Ordering::Relaxed);
            }
            header
        };
        // SQLite writes the second copy, then the first; reading in the other order with a fence
        // between makes equal copies a complete header.
        let first = read(0);
        fence(Ordering::Acquire);
        let second = read(1);
        let initialised = first[IS_INIT_BYTE / 4].to_ne_bytes()[IS_INIT_BYTE % 4] != 0;
        (first == second && first[0] == WAL_INDEX_VERSION && initialised).then_some(Header(first))
    }

    fn words(&self) -> &[AtomicU32] {
        // SAFETY: the mapping is page-aligned and at least two headers long (checked in `open`),
        // lives as long as `self`, and AtomicU32 has the size and alignment of u32.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU32>(), 2 * HEADER_WORDS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, std::path::PathBuf, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        connection
            .execute_batch("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (0);")
            .unwrap();
        (dir, path, connection)
    }

    #[test]
    fn every_commit_of_another_connection_changes_the_header_and_reads_do_not() {
        let (_dir, path, writer) = database();
        let index = WalIndex::open(&path).expect("a WAL database has a -shm file");
        let reader = rusqlite::Connection::open(&path).unwrap();
        let mut seen = index.header().expect("initialised");
        for round in 0..300 {
            let _: i64 = reader
                .query_row("SELECT n FROM t", [], |row| row.get(0))
                .unwrap();
            assert_eq!(index.header(), Some(seen), "a read is no commit");
            if round % 50 == 0 {
                // A checkpoint moves pages into the database file; the next commit restarts the WAL.
                writer
                    .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                    .unwrap();
            }
            writer.execute("UPDATE t SET n = n + 1", []).unwrap();
            let now = index.header().expect("initialised");
            assert_ne!(now, seen, "commit {round} went unseen");
            if round % 50 != 0 {
                assert!(seen.one_commit_before(&now), "commit {round}");
            }
            seen = now;
        }
    }

    #[test]
    fn an_unchanged_header_means_an_unchanged_database_while_another_thread_commits() {
        let (_dir, path, writer) = database();
        let index = WalIndex::open(&path).unwrap();
        let commits = std::thread::spawn(move || {
            for _ in 0..2_000 {
                writer.execute("UPDATE t SET n = n + 1", []).unwrap();
            }
        });
        let reader = rusqlite::Connection::open(&path).unwrap();
        let mut recorded: Option<(Header, i64)> = None;
        let mut reused = 0;
        while !commits.is_finished() {
            let before = index.header();
            let value: i64 = reader
                .query_row("SELECT n FROM t", [], |row| row.get(0))
                .unwrap();
            let after = index.header();
            if let (Some(before), Some((seen, seen_value))) = (before, recorded) {
                if before == seen && after == Some(seen) {
                    assert_eq!(value, seen_value, "a commit left the header unchanged");
                    reused += 1;
                }
            }
            if let Some(before) = before {
                recorded = Some((before, value));
            }
        }
        commits.join().unwrap();
        assert!(
            reused > 0,
            "the writer never paused long enough to check anything"
        );
    }

    #[test]
    fn no_wal_index_without_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollback.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (n INTEGER)")
            .unwrap();
        assert!(WalIndex::open(&path).is_none());
    }
}
