//! The only module that speaks SQL: every aggregate the server and the operator commands keep in
//! the database, one file each (`realms`, `keys`, `users`, `tokens`, `groups`, `grants`,
//! `munge`, `lockout`, `sessions`), on SQLite (embedded, WAL) or PostgreSQL through sqlx's `Any` driver.
//! Queries use `$N` placeholders, which both engines accept, and live with their aggregate; what
//! only one engine needs is in `sqlite/` (the file, its migration lock, the synchronous connections
//! of the request path) or `postgres/` (the LISTEN/NOTIFY feed, the batched statements). Each
//! engine has its own migrations under `migrations/<engine>/`, embedded in the binary and run at
//! start. The change counters ([`changes`]) tell servers when what they keep in memory is stale.
//! A stored value this code cannot read (an unknown role, kind or token header) is
//! [`StoreError::Corrupt`], never a default.

mod audit;
pub mod changes;
mod gather;
mod grants;
mod groups;
mod keys;
mod lockout;
mod munge;
mod postgres;
mod realms;
mod sessions;
mod sqlite;
mod tokens;
mod users;

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

pub use self::audit::{AuditEventRecord, AuditQuery, NewAuditEvent};
pub use self::grants::GrantRecord;
pub use self::keys::SigningKeyRecord;
pub use self::lockout::FailureRecord;
pub use self::munge::ReplayRecord;
use self::postgres::Postgres;
pub use self::realms::RealmRecord;
pub use self::sessions::{PendingSignIn, SessionRecord};
use self::sqlite::DirectSqlite;
pub use self::tokens::{NewToken, TokenKind, TokenRecord, LAST_USED_RESOLUTION_SECS};
pub use self::users::{Role, SeenGroups, Source, UserKind, UserRecord};
use crate::config::DatabaseSettings;

/// A database failure, or a request that contradicts what is stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No connection within `database.acquire_timeout_ms` at start (refused, or never answered).
    #[error("database {url} is unreachable: no connection within {waited_ms} ms")]
    Unreachable { url: String, waited_ms: u64 },
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("cannot create or lock {path}: {error}")]
    Directory { path: String, error: std::io::Error },
    /// The SQLite database's directory exists, but this process may not create files in it: a
    /// bind-mounted directory owned by another user, typically (SQLite would only say that it is
    /// "unable to open database file").
    #[error(
        "the database directory {path} is not writable by this process (uid {uid}, gid {gid}): \
         give that user write access, e.g. chown {uid}:{gid} {path}"
    )]
    NotWritable { path: String, uid: u32, gid: u32 },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Shared: one failed commit is the answer of every MUNGE credential's use it was to record.
    #[error("database: {0}")]
    Sqlite(Arc<rusqlite::Error>),
    /// Shared, as [`StoreError::Sqlite`]: one failed statement is every use's answer.
    #[error("database: {0}")]
    Postgres(Arc<sqlx::Error>),
    /// The statement recording a MUNGE credential's use never answered: it panicked, or the
    /// server is stopping.
    #[error("the statement recording a MUNGE credential's use did not finish")]
    Unanswered,
    /// The thread that waits for SQLite's write lock off the request workers could not start.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(Arc::new(error))
    }
}

/// `owner`'s stored `column` holds a `value` this code does not know.
fn unknown(owner: &str, column: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{owner}: unknown {column} {value:?}"))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The database handle shared by the server and the operator commands.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// When expired MUNGE replay records are next deleted (Unix seconds).
    next_replay_purge: Arc<AtomicI64>,
}

/// What differs between the engines on the request path.
#[derive(Clone)]
enum Engine {
    Sqlite(Arc<DirectSqlite>),
    Postgres(Arc<Postgres>),
}

impl Store {
    /// Connects (creating a SQLite file and its directory when needed) and runs the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite_path = sqlite::path(&settings.url);
        let url = match sqlite_path {
            Some(path) => sqlite::prepare_url(&settings.url, path)?,
            None => settings.url.clone(),
        };
        let is_sqlite = sqlite_path.is_some();
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if is_sqlite {
                        sqlite::configure(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|error| match error {
                sqlx::Error::PoolTimedOut => StoreError::Unreachable {
                    url: settings.url_without_password(),
                    waited_ms: settings.acquire_timeout_ms,
                },
                error => StoreError::Database(error),
            })?;
        let engine = match sqlite_path {
            Some(path) => Engine::Sqlite(Arc::new(sqlite::migrate_and_open(&pool, path).await?)),
            None => Engine::Postgres(Arc::new(Postgres::migrate(&pool, url).await?)),
        };
        Ok(Store {
            pool,
            engine,
            next_replay_purge: Arc::default(),
        })
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// The lock, even if a thread panicked while holding it: what the store guards this way stays
/// usable (a direct connection rolls an unfinished transaction back when dropped; a queue of
/// waiting uses is a plain list).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A store on a new SQLite file, with realm `test` and its person `alice`, for the aggregates'
/// tests; the file's path, to change rows behind the store's back.
#[cfg(test)]
async fn test_store() -> (tempfile::TempDir, Store, std::path::PathBuf) {
    use crate::names::{RealmName, Username};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let settings = DatabaseSettings {
        url: format!("sqlite://{}", path.display()),
        ..DatabaseSettings::default()
    };
    let store = Store::connect(&settings).await.unwrap();
    let realm = RealmName::parse("test").unwrap();
    store
        .create_realm(&RealmRecord {
            name: realm.clone(),
            services: vec!["registry".into()],
            issuer: None,
            token_ttl_secs: 300,
            token_header: crate::jwt::TokenHeader::default(),
        })
        .await
        .unwrap();
    let alice = Username::parse("alice").unwrap();
    store
        .create_user(&realm, &alice, Some("hash"), Role::User)
        .await
        .unwrap();
    (dir, store, path)
}

/// Runs `sql` on the file at `path` with its CHECK constraints off: how a row this code does not
/// know (written by a newer version, or by hand) comes to be.
#[cfg(test)]
fn write_unchecked(path: &std::path::Path, sql: &str) {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch(&format!("PRAGMA ignore_check_constraints = ON; {sql}"))
        .unwrap();
}
