//! The only module that speaks SQL: realms and users, on SQLite (embedded, WAL) or PostgreSQL through
//! sqlx's `Any` driver. Queries use `$N` placeholders, which both engines accept; each engine has its
//! own migrations under `migrations/<engine>/`, embedded in the binary and run at start.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

use crate::config::DatabaseSettings;
use crate::domain::{RealmName, Username};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A database failure, or a request that contradicts what is stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("cannot create the database directory {path}: {error}")]
    Directory { path: String, error: std::io::Error },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// A realm as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmRecord {
    pub name: RealmName,
    /// Accepted `service` values.
    pub services: Vec<String>,
    /// Explicit issuer; `None` means the realm's token URL.
    pub issuer: Option<String>,
    pub token_ttl_secs: u64,
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
    pub created_at: i64,
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
}

impl Store {
    /// Connects (creating a SQLite file and its directory when needed) and runs the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = &settings.url;
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite {
            prepare_sqlite_url(url)?
        } else {
            url.clone()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .connect(&url)
            .await?;
        let migrator = if sqlite {
            &SQLITE_MIGRATIONS
        } else {
            &POSTGRES_MIGRATIONS
        };
        migrator.run(&pool).await?;
        Ok(Store { pool })
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Adds a realm.
    pub async fn create_realm(&self, realm: &RealmRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO realms (name, services, issuer, token_ttl_secs, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(realm.name.as_str())
        .bind(realm.services.join(" "))
        .bind(realm.issuer.clone())
        .bind(realm.token_ttl_secs as i64)
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
        let rows =
            sqlx::query("SELECT name, services, issuer, token_ttl_secs FROM realms ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(realm_from_row).collect()
    }

    /// One realm.
    pub async fn find_realm(&self, name: &RealmName) -> Result<Option<RealmRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, services, issuer, token_ttl_secs FROM realms WHERE name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(realm_from_row).transpose()
    }

    /// Adds a user; `Conflict` when the name is taken in that realm.
    pub async fn create_user(
        &self,
        realm: &RealmName,
        username: &Username,
        password_hash: Option<&str>,
        role: Role,
    ) -> Result<(), StoreError> {
        self.require_realm(realm).await?;
        let now = unix_now();
        let result = sqlx::query(
            "INSERT INTO users (realm, username, password_hash, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (realm, username) DO NOTHING",
        )
        .bind(realm.as_str())
        .bind(username.as_str())
        .bind(password_hash.map(str::to_owned))
        .bind(role.as_str())
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
            "SELECT id, realm, username, password_hash, role, disabled_at, created_at FROM users \
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
            "SELECT id, realm, username, password_hash, role, disabled_at, created_at FROM users \
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

    /// Runs an `UPDATE users` whose parameters are realm, username, `value`, now.
    async fn update_user<V>(
        &self,
        sql: &'static str,
        realm: &RealmName,
        username: &Username,
        value: V,
    ) -> Result<(), StoreError>
    where
        V: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    {
        let result = sqlx::query(sql)
            .bind(realm.as_str())
            .bind(username.as_str())
            .bind(value)
            .bind(unix_now())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "user {username} in realm {realm}"
            )));
        }
        Ok(())
    }

    async fn require_realm(&self, realm: &RealmName) -> Result<(), StoreError> {
        match self.find_realm(realm).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("realm {realm}"))),
        }
    }
}

/// Makes sure the SQLite file's directory exists and asks sqlx to create the file.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Directory {
            path: dir.display().to_string(),
            error,
        })?;
    }
    Ok(if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    })
}

fn realm_from_row(row: &AnyRow) -> Result<RealmRecord, StoreError> {
    let name: String = row.try_get("name")?;
    let services: String = row.try_get("services")?;
    let ttl: i64 = row.try_get("token_ttl_secs")?;
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
        created_at: row.try_get("created_at")?,
    })
}
