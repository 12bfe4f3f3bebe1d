//! The only module that speaks SQL: realms and users, on SQLite (embedded, WAL) or PostgreSQL through
//! sqlx's `Any` driver. Queries use `$N` placeholders, which both engines accept; each engine has its
//! own migrations under `migrations/<engine>/`, embedded in the binary and run at start. The change
//! counters ([`changes`]) tell servers when what they keep in memory is stale; on SQLite the two
//! statements of the request path run on synchronous connections ([`direct`]) that never make a
//! request worker wait for another process's lock. MUNGE credentials' uses that arrive together
//! are recorded by one statement on either engine ([`gather`]).

pub mod changes;
mod direct;
mod gather;

use std::collections::HashSet;
use std::fmt::Write;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

use self::changes::{Counters, PgFeed};
use self::direct::DirectSqlite;
use self::gather::{answer_each, Gathering, Waiting};
use crate::config::{DatabaseSettings, LockoutSettings};
use crate::domain::{RealmName, Username};
use crate::token::TokenHeader;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// Whether a change to a user also revokes their refresh tokens (password change, disable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RevokeRefreshTokens {
    Yes,
    No,
}

/// Settings of every SQLite connection: write-ahead logging (readers never wait for the writer),
/// foreign keys enforced, and `NORMAL` durability, which WAL makes safe against corruption; and
/// [`BUSY_TIMEOUT_MS`].
const SQLITE_PRAGMAS: [&str; 3] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];
/// How long a SQLite statement waits for another writer before failing with "database is locked";
/// on the request path, how long a MUNGE credential's use waits (off the request worker) before its
/// request gets 503.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Records a MUNGE credential's use unless it was recorded before.
const RECORD_REPLAY: &str =
    "INSERT INTO munge_replays (replay_key, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";
/// Uses of MUNGE credentials recorded by one PostgreSQL statement at most: a power of two (see
/// [`insert_replays`]); two parameters each, far below the protocol's limit of 65,535.
const MAX_REPLAYS_PER_STATEMENT: usize = 1_024;
/// How often expired replay records are deleted.
const REPLAY_PURGE_INTERVAL_SECS: i64 = 60;

/// Granularity of a token's recorded last use.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

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

/// A MUNGE credential's use: the key its replays share, and when replays become impossible.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplayRecord {
    pub replay_key: String,
    pub expires_at: i64,
}

/// Uses of MUNGE credentials waiting for the statement that records them, and their answers.
type ReplayGathering<E> = Gathering<ReplayRecord, Result<bool, Arc<E>>>;

/// A realm as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmRecord {
    pub name: RealmName,
    /// Accepted `service` values.
    pub services: Vec<String>,
    /// Explicit issuer; `None` means the realm's token URL.
    pub issuer: Option<String>,
    pub token_ttl_secs: u64,
    /// Which key-identifying fields its tokens carry.
    pub token_header: TokenHeader,
}

/// A user's role in its realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub realm: RealmName,
    pub username: Username,
    pub password_hash: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub kind: UserKind,
    pub created_at: i64,
}

/// Whether an account belongs to a person (password login) or is a robot (access tokens only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    Person,
    Robot,
}

impl UserKind {
    fn as_str(self) -> &'static str {
        match self {
            UserKind::Person => "person",
            UserKind::Robot => "robot",
        }
    }
}

/// The two kinds of long-lived secret Portcullis mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// What `docker login` stores as `identitytoken`; used through the refresh-token grant.
    Refresh,
    /// A personal or robot access token, used as a password.
    Access,
}

impl TokenKind {
    /// The name stored and shown in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Refresh => "refresh",
            TokenKind::Access => "access",
        }
    }
}

/// A token to store; only the digest of its secret.
pub struct NewToken<'a> {
    pub id: &'a str,
    pub kind: TokenKind,
    pub user_id: i64,
    pub secret_sha256: &'a str,
    pub name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub scopes: Option<&'a str>,
    pub expires_at: Option<i64>,
}

/// A stored token (never its secret) with its owner's name.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub kind: TokenKind,
    pub user_id: i64,
    pub username: Username,
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A policy rule kept in the database, as text; `policy::Rule::parse` checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// Assigned by the database; 0 before insertion.
    pub id: i64,
    pub subject: String,
    pub resource: String,
    pub name: String,
    pub actions: Vec<String>,
    pub effect: String,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A lock's state as stored: failures counted so far, the last one's time, and the deadline (0
/// when not locked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureRecord {
    pub failures: i64,
    pub last_failure: i64,
    pub locked_until: i64,
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
    Postgres {
        url: String,
        feed: Arc<PgFeed>,
        replays: Arc<ReplayGathering<sqlx::Error>>,
    },
}

impl Store {
    /// Connects (creating a SQLite file and its directory when needed) and runs the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = &settings.url;
        let sqlite = url.starts_with("sqlite:");
        let (url, migration_lock) = if sqlite {
            let path = sqlite_path(url);
            (
                prepare_sqlite_url(url, path)?,
                Some(format!("{path}.migrate-lock")),
            )
        } else {
            (url.clone(), None)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // The Any driver does not pass SQLite's own defaults on: ask for them.
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(pragma).await?;
                        }
                        conn.execute(format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}").as_str())
                            .await?;
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
        let engine = if let Some(lock_path) = migration_lock {
            // sqlx locks PostgreSQL migrations itself (an advisory lock) but not SQLite ones: two
            // processes starting on a new file (the server and an operator command) would both try
            // to create the tables. An exclusive file lock serialises them.
            let lock =
                std::fs::File::create(&lock_path).map_err(|error| StoreError::Directory {
                    path: lock_path.clone(),
                    error,
                })?;
            lock.lock().map_err(|error| StoreError::Directory {
                path: lock_path,
                error,
            })?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            Engine::Sqlite(Arc::new(DirectSqlite::open(
                Path::new(sqlite_path(&settings.url)),
                Duration::from_millis(BUSY_TIMEOUT_MS),
            )?))
        } else {
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Engine::Postgres {
                url,
                feed: Arc::default(),
                replays: Arc::default(),
            }
        };
        Ok(Store {
            pool,
            engine,
            next_replay_purge: Arc::default(),
        })
    }

    /// Keeps the change counters fresh without a query per request (PostgreSQL: a LISTEN
    /// connection and a poll, see [`changes`]); SQLite needs nothing. For servers, not commands.
    pub fn watch_changes(&self) {
        if let Engine::Postgres { url, feed, .. } = &self.engine {
            changes::watch_postgres(self.clone(), url.clone(), feed.clone());
        }
    }

    /// The change counters: on SQLite as committed now (through sqlx, which waits off the request
    /// worker, when the direct read finds the database locked); on PostgreSQL as last notified or
    /// polled ([`Store::watch_changes`]), or read now when that is older than
    /// [`changes::FRESHNESS`].
    pub async fn counters(&self) -> Result<Counters, StoreError> {
        match &self.engine {
            Engine::Sqlite(direct) => match direct.counters() {
                Err(error) if direct::is_busy(&error) => self.read_counters().await,
                counters => Ok(counters?),
            },
            Engine::Postgres { feed, .. } => match feed.fresh() {
                Some(counters) => Ok(counters),
                None => self.read_counters().await,
            },
        }
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Adds a realm.
    pub async fn create_realm(&self, realm: &RealmRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO realms (name, services, issuer, token_ttl_secs, token_header, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(realm.name.as_str())
        .bind(realm.services.join(" "))
        .bind(realm.issuer.clone())
        .bind(realm.token_ttl_secs as i64)
        .bind(realm.token_header.as_str())
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("realm {}", realm.name)));
        }
        Ok(())
    }

    /// Every realm, by name.
    pub async fn list_realms(&self) -> Result<Vec<RealmRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, services, issuer, token_ttl_secs, token_header FROM realms ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(realm_from_row).collect()
    }

    /// One realm.
    pub async fn find_realm(&self, name: &RealmName) -> Result<Option<RealmRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, services, issuer, token_ttl_secs, token_header FROM realms WHERE name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(realm_from_row).transpose()
    }

    /// Changes which key-identifying fields a realm's tokens carry; `NotFound` when no such realm.
    pub async fn set_realm_token_header(
        &self,
        name: &RealmName,
        header: TokenHeader,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE realms SET token_header = $2 WHERE name = $1")
            .bind(name.as_str())
            .bind(header.as_str())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("realm {name}")));
        }
        Ok(())
    }

    /// Adds a user; `Conflict` when the name is taken in that realm.
    /// A robot has no password: `password_hash` must be `None` for robots and `Some` for persons.
    pub async fn create_user(
        &self,
        realm: &RealmName,
        username: &Username,
        password_hash: Option<&str>,
        role: Role,
    ) -> Result<(), StoreError> {
        self.require_realm(realm).await?;
        let kind = match password_hash {
            Some(_) => UserKind::Person,
            None => UserKind::Robot,
        };
        let now = unix_now();
        let result = sqlx::query(
            "INSERT INTO users (realm, username, password_hash, role, kind, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (realm, username) DO NOTHING",
        )
        .bind(realm.as_str())
        .bind(username.as_str())
        .bind(password_hash.map(str::to_owned))
        .bind(role.as_str())
        .bind(kind.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "user {username} in realm {realm}"
            )));
        }
        Ok(())
    }

    /// One user, enabled or not.
    pub async fn find_user(
        &self,
        realm: &RealmName,
        username: &Username,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, realm, username, password_hash, role, disabled_at, kind, created_at FROM users \
             WHERE realm = $1 AND username = $2",
        )
        .bind(realm.as_str())
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user of a realm, by name.
    pub async fn list_users(&self, realm: &RealmName) -> Result<Vec<UserRecord>, StoreError> {
        self.require_realm(realm).await?;
        let rows = sqlx::query(
            "SELECT id, realm, username, password_hash, role, disabled_at, kind, created_at FROM users \
             WHERE realm = $1 ORDER BY username",
        )
        .bind(realm.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Replaces a user's password hash.
    pub async fn set_password(
        &self,
        realm: &RealmName,
        username: &Username,
        hash: &str,
    ) -> Result<(), StoreError> {
        self.update_user(
            "UPDATE users SET password_hash = $3, updated_at = $4 WHERE realm = $1 AND username = $2",
            realm,
            username,
            hash.to_owned(),
            RevokeRefreshTokens::Yes,
        )
        .await
    }

    /// Disables (`true`) or enables (`false`) a user.
    pub async fn set_disabled(
        &self,
        realm: &RealmName,
        username: &Username,
        disabled: bool,
    ) -> Result<(), StoreError> {
        self.update_user(
            "UPDATE users SET disabled_at = $3, updated_at = $4 WHERE realm = $1 AND username = $2",
            realm,
            username,
            disabled.then(unix_now),
            if disabled {
                RevokeRefreshTokens::Yes
            } else {
                RevokeRefreshTokens::No
            },
        )
        .await
    }

    /// Sets a user's role.
    pub async fn set_role(
        &self,
        realm: &RealmName,
        username: &Username,
        role: Role,
    ) -> Result<(), StoreError> {
        self.update_user(
            "UPDATE users SET role = $3, updated_at = $4 WHERE realm = $1 AND username = $2",
            realm,
            username,
            role.as_str().to_owned(),
            RevokeRefreshTokens::No,
        )
        .await
    }

    /// Deletes a user.
    pub async fn delete_user(
        &self,
        realm: &RealmName,
        username: &Username,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("DELETE FROM users WHERE realm = $1 AND username = $2")
            .bind(realm.as_str())
            .bind(username.as_str())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "user {username} in realm {realm}"
            )));
        }
        Ok(())
    }

    /// Runs an `UPDATE users` whose parameters are realm, username, `value`, now; in the same
    /// transaction, revokes the user's refresh tokens when asked to.
    async fn update_user<V>(
        &self,
        sql: &'static str,
        realm: &RealmName,
        username: &Username,
        value: V,
        revoke: RevokeRefreshTokens,
    ) -> Result<(), StoreError>
    where
        V: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    {
        let now = unix_now();
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(sql)
            .bind(realm.as_str())
            .bind(username.as_str())
            .bind(value)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "user {username} in realm {realm}"
            )));
        }
        if revoke == RevokeRefreshTokens::Yes {
            sqlx::query(
                "UPDATE tokens SET revoked_at = $3 WHERE kind = 'refresh' AND revoked_at IS NULL \
                 AND user_id IN (SELECT id FROM users WHERE realm = $1 AND username = $2)",
            )
            .bind(realm.as_str())
            .bind(username.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a minted token; `Conflict` when an access token of that name exists for the user.
    pub async fn insert_token(&self, token: &NewToken<'_>) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO tokens (id, kind, user_id, secret_sha256, name, client_id, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(token.id)
        .bind(token.kind.as_str())
        .bind(token.user_id)
        .bind(token.secret_sha256)
        .bind(token.name.map(str::to_owned))
        .bind(token.client_id.map(str::to_owned))
        .bind(token.scopes.map(str::to_owned))
        .bind(unix_now())
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            let name = token.name.unwrap_or_default();
            return Err(StoreError::Conflict(format!(
                "{} token {name:?}",
                token.kind.as_str()
            )));
        }
        Ok(())
    }

    /// The token of `kind` whose secret has this digest, with its owner, in `realm`.
    pub async fn find_token(
        &self,
        realm: &RealmName,
        kind: TokenKind,
        secret_sha256: &str,
    ) -> Result<Option<(TokenRecord, UserRecord)>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.kind AS token_kind, t.user_id, t.name, t.client_id, t.scopes, \
                    t.created_at AS token_created_at, t.last_used_at, t.expires_at, t.revoked_at, \
                    u.id, u.realm, u.username, u.password_hash, u.role, u.disabled_at, u.kind, u.created_at \
             FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.secret_sha256 = $1 AND t.kind = $2 AND u.realm = $3",
        )
        .bind(secret_sha256)
        .bind(kind.as_str())
        .bind(realm.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| Ok((token_from_row(row)?, user_from_row(row)?)))
            .transpose()
    }

    /// Records a use; writes at most once a minute per token so busy clients do not turn every token
    /// request into a database write.
    pub async fn touch_token(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - LAST_USED_RESOLUTION_SECS)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Tokens of a realm (of one user when given), newest first.
    pub async fn list_tokens(
        &self,
        realm: &RealmName,
        username: Option<&Username>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id AS token_id, t.kind AS token_kind, t.user_id, t.name, t.client_id, t.scopes, \
                    t.created_at AS token_created_at, t.last_used_at, t.expires_at, t.revoked_at, u.username \
             FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE u.realm = $1 AND ($2 = '' OR u.username = $2) ORDER BY t.created_at DESC, t.id",
        )
        .bind(realm.as_str())
        .bind(username.map_or(String::new(), |u| u.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes one token of a realm by id.
    pub async fn revoke_token(&self, realm: &RealmName, id: &str) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE tokens SET revoked_at = $3 WHERE id = $2 AND revoked_at IS NULL \
             AND user_id IN (SELECT id FROM users WHERE realm = $1)",
        )
        .bind(realm.as_str())
        .bind(id)
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "unrevoked token {id} in realm {realm}"
            )));
        }
        Ok(())
    }

    /// Revokes a user's tokens (of one kind, or all); returns how many.
    pub async fn revoke_user_tokens(
        &self,
        realm: &RealmName,
        username: &Username,
        kind: Option<TokenKind>,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE tokens SET revoked_at = $4 WHERE revoked_at IS NULL AND ($3 = '' OR kind = $3) \
             AND user_id IN (SELECT id FROM users WHERE realm = $1 AND username = $2)",
        )
        .bind(realm.as_str())
        .bind(username.as_str())
        .bind(kind.map_or("", TokenKind::as_str))
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Adds a group.
    pub async fn create_group(&self, realm: &RealmName, name: &str) -> Result<(), StoreError> {
        self.require_realm(realm).await?;
        let result = sqlx::query(
            "INSERT INTO groups (realm, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(realm.as_str())
        .bind(name)
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "group {name} in realm {realm}"
            )));
        }
        Ok(())
    }

    /// Deletes a group and its memberships.
    pub async fn delete_group(&self, realm: &RealmName, name: &str) -> Result<(), StoreError> {
        let result = sqlx::query("DELETE FROM groups WHERE realm = $1 AND name = $2")
            .bind(realm.as_str())
            .bind(name)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "group {name} in realm {realm}"
            )));
        }
        Ok(())
    }

    /// Every group of a realm with its members, by name.
    pub async fn list_groups(
        &self,
        realm: &RealmName,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.name AS group_name, COALESCE(u.username, '') AS member FROM groups g \
             LEFT JOIN group_members m ON m.group_id = g.id LEFT JOIN users u ON u.id = m.user_id \
             WHERE g.realm = $1 ORDER BY g.name, u.username",
        )
        .bind(realm.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for row in &rows {
            let group: String = row.try_get("group_name")?;
            let member: String = row.try_get("member")?;
            if groups.last().is_none_or(|(name, _)| *name != group) {
                groups.push((group, Vec::new()));
            }
            if let (Some((_, members)), false) = (groups.last_mut(), member.is_empty()) {
                members.push(member);
            }
        }
        Ok(groups)
    }

    /// Adds (`member = true`) or removes a user from a group.
    pub async fn set_membership(
        &self,
        realm: &RealmName,
        group: &str,
        username: &Username,
        member: bool,
    ) -> Result<(), StoreError> {
        let sql = if member {
            "INSERT INTO group_members (group_id, user_id) \
             SELECT g.id, u.id FROM groups g, users u \
             WHERE g.realm = $1 AND g.name = $2 AND u.realm = $1 AND u.username = $3 \
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM group_members WHERE group_id IN (SELECT id FROM groups WHERE realm = $1 AND name = $2) \
             AND user_id IN (SELECT id FROM users WHERE realm = $1 AND username = $3)"
        };
        let result = sqlx::query(sql)
            .bind(realm.as_str())
            .bind(group)
            .bind(username.as_str())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            let what = if member {
                "group or user"
            } else {
                "membership"
            };
            return Err(StoreError::NotFound(format!(
                "{what} ({group}, {username}) in realm {realm}"
            )));
        }
        Ok(())
    }

    /// The names of the groups a user belongs to.
    pub async fn user_groups(&self, user_id: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id \
             WHERE m.user_id = $1 ORDER BY g.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>("name").map_err(StoreError::from))
            .collect()
    }

    /// Adds a grant (a policy rule kept in the database) and returns its id.
    pub async fn add_grant(
        &self,
        realm: &RealmName,
        grant: &GrantRecord,
    ) -> Result<i64, StoreError> {
        self.require_realm(realm).await?;
        let row = sqlx::query(
            "INSERT INTO grants (realm, subject, resource, name, actions, effect, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(realm.as_str())
        .bind(&grant.subject)
        .bind(&grant.resource)
        .bind(&grant.name)
        .bind(grant.actions.join(" "))
        .bind(&grant.effect)
        .bind(unix_now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Removes a grant by id.
    pub async fn remove_grant(&self, realm: &RealmName, id: i64) -> Result<(), StoreError> {
        let result = sqlx::query("DELETE FROM grants WHERE realm = $1 AND id = $2")
            .bind(realm.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("grant {id} in realm {realm}")));
        }
        Ok(())
    }

    /// A realm's grants, in the order they were added (their order in first-match mode).
    pub async fn list_grants(&self, realm: &RealmName) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subject, resource, name, actions, effect FROM grants WHERE realm = $1 ORDER BY id",
        )
        .bind(realm.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let actions: String = row.try_get("actions")?;
                Ok(GrantRecord {
                    id: row.try_get("id")?,
                    subject: row.try_get("subject")?,
                    resource: row.try_get("resource")?,
                    name: row.try_get("name")?,
                    actions: actions.split(' ').map(str::to_owned).collect(),
                    effect: row.try_get("effect")?,
                })
            })
            .collect()
    }

    /// Maps a platform's uid to a user (replacing an earlier mapping of that uid).
    pub async fn munge_map(
        &self,
        realm: &RealmName,
        platform: &str,
        uid: u32,
        username: &Username,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO munge_mappings (realm, platform, uid, user_id) \
             SELECT $1, $2, $3, id FROM users WHERE realm = $1 AND username = $4 \
             ON CONFLICT (realm, platform, uid) DO UPDATE SET user_id = excluded.user_id",
        )
        .bind(realm.as_str())
        .bind(platform)
        .bind(i64::from(uid))
        .bind(username.as_str())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "user {username} in realm {realm}"
            )));
        }
        Ok(())
    }

    /// Removes a uid's mapping.
    pub async fn munge_unmap(
        &self,
        realm: &RealmName,
        platform: &str,
        uid: u32,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "DELETE FROM munge_mappings WHERE realm = $1 AND platform = $2 AND uid = $3",
        )
        .bind(realm.as_str())
        .bind(platform)
        .bind(i64::from(uid))
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "mapping of uid {uid} on {platform}"
            )));
        }
        Ok(())
    }

    /// Every mapping of a realm: (platform, uid, user name).
    pub async fn munge_mappings(
        &self,
        realm: &RealmName,
    ) -> Result<Vec<(String, i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.platform, m.uid, u.username FROM munge_mappings m JOIN users u ON u.id = m.user_id \
             WHERE m.realm = $1 ORDER BY m.platform, m.uid",
        )
        .bind(realm.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("platform")?,
                    row.try_get("uid")?,
                    row.try_get("username")?,
                ))
            })
            .collect()
    }

    /// The user a platform's uid is mapped to.
    pub async fn munge_user(
        &self,
        realm: &RealmName,
        platform: &str,
        uid: u32,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.realm, u.username, u.password_hash, u.role, u.disabled_at, u.kind, u.created_at \
             FROM munge_mappings m JOIN users u ON u.id = m.user_id \
             WHERE m.realm = $1 AND m.platform = $2 AND m.uid = $3",
        )
        .bind(realm.as_str())
        .bind(platform)
        .bind(i64::from(uid))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Records a credential's use; false when it was used before (a replay). Expired records are
    /// purged every [`REPLAY_PURGE_INTERVAL_SECS`] on the way, as no replay of them can succeed.
    pub async fn record_munge_use(
        &self,
        replay_key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let due = self.next_replay_purge.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_replay_purge
                .compare_exchange(
                    due,
                    now + REPLAY_PURGE_INTERVAL_SECS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            sqlx::query("DELETE FROM munge_replays WHERE expires_at < $1")
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        let record = ReplayRecord {
            replay_key: replay_key.to_owned(),
            expires_at,
        };
        match &self.engine {
            Engine::Sqlite(direct) => direct.record_replay(record).await,
            Engine::Postgres { replays, .. } => {
                // The statement runs on its own task: a dropped request cannot leave the uses
                // gathered with it unanswered.
                let joined = replays.join(record);
                if joined.first {
                    tokio::spawn(record_gathered_replays(self.pool.clone(), replays.clone()));
                }
                match joined.answer.await {
                    Ok(answer) => answer.map_err(StoreError::Postgres),
                    Err(_) => Err(StoreError::Unanswered),
                }
            }
        }
    }

    /// Replaces an imported (bcrypt) hash with an argon2id one after a successful login, unless
    /// the password changed meanwhile; refresh tokens stay valid (the password did not change).
    pub async fn replace_imported_hash(
        &self,
        user_id: i64,
        old: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
            .bind(user_id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The failures recorded for `subject` (none: the default record).
    pub async fn failure_record(&self, subject: &str) -> Result<FailureRecord, StoreError> {
        let row = sqlx::query(
            "SELECT failures, last_failure, locked_until FROM login_failures WHERE subject = $1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map_or(Ok(FailureRecord::default()), failure_record)
    }

    /// The subjects whose failures still count at `now` (locked, or failed within the last
    /// `reset_after_secs`), by subject.
    pub async fn list_failures(
        &self,
        now: i64,
        reset_after_secs: u32,
    ) -> Result<Vec<(String, FailureRecord)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject, failures, last_failure, locked_until FROM login_failures \
             WHERE locked_until > $1 OR last_failure + $2 >= $1 ORDER BY subject",
        )
        .bind(now)
        .bind(i64::from(reset_after_secs))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("subject")?, failure_record(row)?)))
            .collect()
    }

    /// Counts a failed attempt for `subject` and, from the lockout's threshold on, locks it for
    /// exponentially longer; returns the record as written. The count is one atomic upsert, so
    /// concurrent failures (many instances, a flood) are all counted and never wait on a read lock
    /// upgrade; the deadline is then written while the row is still ours.
    pub async fn record_failure(
        &self,
        subject: &str,
        now: i64,
        lockout: &LockoutSettings,
        threshold: u32,
    ) -> Result<FailureRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO login_failures (subject, failures, last_failure, locked_until) \
             VALUES ($1, 1, $2, 0) \
             ON CONFLICT (subject) DO UPDATE SET failures = CASE \
                 WHEN login_failures.last_failure + $3 < $2 THEN 1 \
                 ELSE login_failures.failures + 1 END, \
             last_failure = $2 \
             RETURNING failures, locked_until",
        )
        .bind(subject)
        .bind(now)
        .bind(i64::from(lockout.reset_after_secs))
        .fetch_one(&mut *tx)
        .await?;
        let failures: i64 = row.try_get("failures")?;
        let stored_deadline: i64 = row.try_get("locked_until")?;
        let locked_until = lockout.lock_deadline(failures, threshold, now);
        if locked_until != stored_deadline {
            sqlx::query("UPDATE login_failures SET locked_until = $2 WHERE subject = $1")
                .bind(subject)
                .bind(locked_until)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(FailureRecord {
            failures,
            last_failure: now,
            locked_until,
        })
    }

    /// Forgets `subject`'s failures and lock (a successful login, `portcullis lockout clear`); false
    /// when none were recorded.
    pub async fn clear_failures(&self, subject: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn require_realm(&self, realm: &RealmName) -> Result<(), StoreError> {
        match self.find_realm(realm).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("realm {realm}"))),
        }
    }
}

/// A row of `login_failures`.
fn failure_record(row: &AnyRow) -> Result<FailureRecord, StoreError> {
    Ok(FailureRecord {
        failures: row.try_get("failures")?,
        last_failure: row.try_get("last_failure")?,
        locked_until: row.try_get("locked_until")?,
    })
}

/// Makes sure the SQLite file's directory exists and asks sqlx to create the file.
/// The file path of a `sqlite:` URL.
fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default()
}

fn prepare_sqlite_url(url: &str, path: &str) -> Result<String, StoreError> {
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

/// Gathers the uses of MUNGE credentials that arrive with the first, records them with one
/// statement per [`MAX_REPLAYS_PER_STATEMENT`] and answers each.
async fn record_gathered_replays(pool: AnyPool, replays: Arc<ReplayGathering<sqlx::Error>>) {
    replays.gather().await;
    let mut uses = replays.take();
    while !uses.is_empty() {
        let rest = uses.split_off(uses.len().min(MAX_REPLAYS_PER_STATEMENT));
        let recorded = insert_replays(&pool, &uses).await;
        answer_each(uses, recorded);
        uses = rest;
    }
}

/// Inserts the uses with one statement; for each, whether it was new. A use twice in the list is
/// new the first time only, as it would be in two statements.
///
/// The statement has room for a power of two of uses, the last one repeated in the rows to spare
/// (a row that conflicts with itself does nothing): a handful of statement shapes, each prepared
/// once per connection, so a batch is one round trip, and sqlx's cache of prepared statements
/// is not flooded with a shape per batch size.
async fn insert_replays(
    pool: &AnyPool,
    uses: &[Waiting<ReplayRecord, Result<bool, Arc<sqlx::Error>>>],
) -> Result<Vec<bool>, sqlx::Error> {
    let Some(last) = uses.last() else {
        return Ok(Vec::new());
    };
    let rows = uses.len().next_power_of_two();
    let mut sql = String::from("INSERT INTO munge_replays (replay_key, expires_at) VALUES ");
    for n in 0..rows {
        let separator = if n == 0 { "" } else { ", " };
        let _ = write!(sql, "{separator}(${}, ${})", 2 * n + 1, 2 * n + 2);
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING replay_key, expires_at");
    let mut insert = sqlx::query(&sql);
    let padding = std::iter::repeat_n(last, rows - uses.len());
    for waiting in uses.iter().chain(padding) {
        insert = insert
            .bind(waiting.item.replay_key.as_str())
            .bind(waiting.item.expires_at);
    }
    let mut inserted = insert
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok(ReplayRecord {
                replay_key: row.try_get("replay_key")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .collect::<Result<HashSet<_>, sqlx::Error>>()?;
    Ok(uses
        .iter()
        .map(|waiting| inserted.remove(&waiting.item))
        .collect())
}

/// The lock, even if a thread panicked while holding it: what the store guards this way stays
/// usable (a direct connection rolls an unfinished transaction back when dropped; a queue of
/// waiting uses is a plain list).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn realm_from_row(row: &AnyRow) -> Result<RealmRecord, StoreError> {
    let name: String = row.try_get("name")?;
    let services: String = row.try_get("services")?;
    let ttl: i64 = row.try_get("token_ttl_secs")?;
    let header: String = row.try_get("token_header")?;
    Ok(RealmRecord {
        name: RealmName::parse(&name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        services: services
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        issuer: row.try_get("issuer")?,
        token_ttl_secs: u64::try_from(ttl)
            .map_err(|_| StoreError::Corrupt(format!("realm {name}: token_ttl_secs")))?,
        token_header: header
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("realm {name}: {e}")))?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let kind: String = row.try_get("token_kind")?;
    let username: String = row.try_get("username")?;
    Ok(TokenRecord {
        id: row.try_get("token_id")?,
        kind: if kind == "refresh" {
            TokenKind::Refresh
        } else {
            TokenKind::Access
        },
        user_id: row.try_get("user_id")?,
        username: Username::parse(&username).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        client_id: row.try_get("client_id")?,
        scopes: row.try_get("scopes")?,
        created_at: row.try_get("token_created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let realm: String = row.try_get("realm")?;
    let username: String = row.try_get("username")?;
    let role: String = row.try_get("role")?;
    let corrupt = |e: crate::domain::NameError| StoreError::Corrupt(e.to_string());
    Ok(UserRecord {
        id: row.try_get("id")?,
        realm: RealmName::parse(&realm).map_err(corrupt)?,
        username: Username::parse(&username).map_err(corrupt)?,
        password_hash: row.try_get("password_hash")?,
        role: if role == "admin" {
            Role::Admin
        } else {
            Role::User
        },
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        kind: if row.try_get::<String, _>("kind")? == "robot" {
            UserKind::Robot
        } else {
            UserKind::Person
        },
        created_at: row.try_get("created_at")?,
    })
}
