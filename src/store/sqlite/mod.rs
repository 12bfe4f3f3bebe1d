//! What only SQLite needs: the file and its directory, the settings of every connection, the lock
//! that serialises two processes' migrations, and the synchronous connections of the request path
//! ([`direct`]). The queries themselves are shared with PostgreSQL and live with their aggregate.

mod direct;

use std::path::Path;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor};

pub use self::direct::{is_busy, DirectSqlite};
use super::StoreError;

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Settings of every SQLite connection: write-ahead logging (readers never wait for the writer),
/// foreign keys enforced, and `NORMAL` durability, which WAL makes safe against corruption; and
/// [`BUSY_TIMEOUT_MS`].
const PRAGMAS: [&str; 3] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];
/// How long a SQLite statement waits for another writer before failing with "database is locked";
/// on the request path, how long a MUNGE credential's use waits (off the request worker) before its
/// request gets 503.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// The file path of a `sqlite:` URL; `None` for any other engine's URL.
pub fn path(url: &str) -> Option<&str> {
    url.starts_with("sqlite:").then(|| {
        url.trim_start_matches("sqlite:")
            .trim_start_matches("//")
            .split('?')
            .next()
            .unwrap_or_default()
    })
}

/// Makes sure the SQLite file's directory exists and asks sqlx to create the file.
pub fn prepare_url(url: &str, path: &str) -> Result<String, StoreError> {
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        let path = || dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Directory {
            path: path(),
            error,
        })?;
        // SQLite creates its journal files beside the database: try to create a file there.
        tempfile::tempfile_in(dir).map_err(|error| {
            if error.kind() == std::io::ErrorKind::PermissionDenied {
                // SAFETY: geteuid and getegid cannot fail and touch no memory.
                let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
                StoreError::NotWritable {
                    path: path(),
                    uid,
                    gid,
                }
            } else {
                StoreError::Directory {
                    path: path(),
                    error,
                }
            }
        })?;
    }
    Ok(if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Applies [`PRAGMAS`] and [`BUSY_TIMEOUT_MS`] to a new pool connection: the Any driver does not
/// pass SQLite's own defaults on.
pub async fn configure(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for pragma in PRAGMAS {
        conn.execute(pragma).await?;
    }
    conn.execute(format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}").as_str())
        .await?;
    Ok(())
}

/// Runs the migrations and opens the direct connections to the file at `path`.
pub async fn migrate_and_open(pool: &AnyPool, path: &str) -> Result<DirectSqlite, StoreError> {
    // sqlx locks PostgreSQL migrations itself (an advisory lock) but not SQLite ones: two
    // processes starting on a new file (the server and an operator command) would both try
    // to create the tables. An exclusive file lock serialises them.
    let lock_path = format!("{path}.migrate-lock");
    let lock = std::fs::File::create(&lock_path).map_err(|error| StoreError::Directory {
        path: lock_path.clone(),
        error,
    })?;
    lock.lock().map_err(|error| StoreError::Directory {
        path: lock_path,
        error,
    })?;
    MIGRATIONS.run(pool).await?;
    DirectSqlite::open(Path::new(path), Duration::from_millis(BUSY_TIMEOUT_MS))
}
