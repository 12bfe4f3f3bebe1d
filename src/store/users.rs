//! Users: persons (password login) and robots (access tokens only), their role, password hash and
//! whether they are disabled, and where they log in ([`Source`]: here, the directory that created
//! the account, or the OpenID provider the person signs in to the console with; with the groups
//! last read from there). A password change or a disable revokes
//! the user's refresh tokens in the same transaction; the tokens themselves are stored by `tokens`.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{unix_now, unknown, Store, StoreError};
use crate::names::{DirectoryName, IssuerName, RealmName, Username, DIRECTORY_PREFIX, OIDC_PREFIX};

/// Whether a change to a user also revokes their refresh tokens (password change, disable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RevokeRefreshTokens {
    Yes,
    No,
}

/// A user's role in its realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    /// `user` or `admin`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// The role a stored name stands for; `None` for any other.
    fn from_stored(name: &str) -> Option<Role> {
        match name {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
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
    pub source: Source,
    /// The groups (policy names) of a directory's or provider's account as last read from there,
    /// and when.
    pub directory_groups: Option<SeenGroups>,
}

/// Where an account logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// With the password hash stored here (or, for robots, only with access tokens).
    Local,
    /// At the directory of this name in the realm's configuration, which created the account.
    Directory(DirectoryName),
    /// At the OpenID provider of this name (`[[realms.R.oidc]]` with a `console` client), whose
    /// console sign-in created the account: no password here.
    Provider(IssuerName),
}

impl Source {
    const LOCAL: &'static str = "local";

    /// `local`, `ldap:<directory>` or `oidc:<issuer>`, as stored and shown.
    pub fn as_stored(&self) -> String {
        match self {
            Source::Local => Source::LOCAL.to_owned(),
            Source::Directory(name) => format!("{DIRECTORY_PREFIX}{name}"),
            Source::Provider(name) => format!("{OIDC_PREFIX}{name}"),
        }
    }

    /// The source a stored name stands for; `None` for any other.
    fn from_stored(name: &str) -> Option<Source> {
        if name == Source::LOCAL {
            return Some(Source::Local);
        }
        if let Some(issuer) = name.strip_prefix(OIDC_PREFIX) {
            return IssuerName::parse(issuer).ok().map(Source::Provider);
        }
        let directory = name.strip_prefix(DIRECTORY_PREFIX)?;
        DirectoryName::parse(directory).ok().map(Source::Directory)
    }
}

/// Groups read from a directory, and when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenGroups {
    pub groups: Vec<String>,
    pub at: i64,
}

/// Whether an account belongs to a person (password login) or is a robot (access tokens only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    Person,
    Robot,
}

impl UserKind {
    /// `person` or `robot`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::Person => "person",
            UserKind::Robot => "robot",
        }
    }

    /// The kind a stored name stands for; `None` for any other.
    fn from_stored(name: &str) -> Option<UserKind> {
        match name {
            "person" => Some(UserKind::Person),
            "robot" => Some(UserKind::Robot),
            _ => None,
        }
    }
}

impl Store {
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

    /// Adds the account of a person a directory or provider (`source`) accepted, with no password;
    /// nothing when the name is taken (the caller reads the row and checks its source).
    pub async fn create_external_user(
        &self,
        realm: &RealmName,
        username: &Username,
        source: &Source,
    ) -> Result<(), StoreError> {
        let now = unix_now();
        sqlx::query(
            "INSERT INTO users (realm, username, role, kind, source, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (realm, username) DO NOTHING",
        )
        .bind(realm.as_str())
        .bind(username.as_str())
        .bind(Role::User.as_str())
        .bind(UserKind::Person.as_str())
        .bind(source.as_stored())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the groups a provider's sign-in gave the account `user_id`. Unlike a directory's,
    /// they move the accounts counter (through `updated_at`): a sign-in is rare, and every
    /// instance must use the new groups at once.
    pub async fn set_provider_groups(
        &self,
        user_id: i64,
        seen: &SeenGroups,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET directory_groups = $2, directory_groups_at = $3, updated_at = $3 \
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(seen.groups.join(" "))
        .bind(seen.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the groups read from a directory for the account `user_id`.
    pub async fn set_directory_groups(
        &self,
        user_id: i64,
        seen: &SeenGroups,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET directory_groups = $2, directory_groups_at = $3 WHERE id = $1",
        )
        .bind(user_id)
        .bind(seen.groups.join(" "))
        .bind(seen.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One user, enabled or not.
    pub async fn find_user(
        &self,
        realm: &RealmName,
        username: &Username,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, realm, username, password_hash, role, disabled_at, kind, created_at, \
             source, directory_groups, directory_groups_at FROM users \
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
            "SELECT id, realm, username, password_hash, role, disabled_at, kind, created_at, \
             source, directory_groups, directory_groups_at FROM users \
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
}

pub(super) fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let realm: String = row.try_get("realm")?;
    let username: String = row.try_get("username")?;
    let role: String = row.try_get("role")?;
    let kind: String = row.try_get("kind")?;
    let source: String = row.try_get("source")?;
    let groups: Option<String> = row.try_get("directory_groups")?;
    let groups_at: Option<i64> = row.try_get("directory_groups_at")?;
    let corrupt = |e: crate::names::NameError| StoreError::Corrupt(e.to_string());
    Ok(UserRecord {
        id: row.try_get("id")?,
        realm: RealmName::parse(&realm).map_err(corrupt)?,
        username: Username::parse(&username).map_err(corrupt)?,
        password_hash: row.try_get("password_hash")?,
        role: Role::from_stored(&role)
            .ok_or_else(|| unknown(&format!("user {username} in realm {realm}"), "role", &role))?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        kind: UserKind::from_stored(&kind)
            .ok_or_else(|| unknown(&format!("user {username} in realm {realm}"), "kind", &kind))?,
        created_at: row.try_get("created_at")?,
        source: Source::from_stored(&source).ok_or_else(|| {
            unknown(
                &format!("user {username} in realm {realm}"),
                "source",
                &source,
            )
        })?,
        directory_groups: groups.zip(groups_at).map(|(groups, at)| SeenGroups {
            groups: groups.split_whitespace().map(str::to_owned).collect(),
            at,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_store, write_unchecked};

    #[tokio::test]
    async fn directory_accounts_keep_their_source_and_groups_without_moving_the_counter() {
        let (_dir, store, _path) = test_store().await;
        let realm = RealmName::parse("test").unwrap();
        let carol = Username::parse("carol").unwrap();
        let corp = DirectoryName::parse("corp").unwrap();
        let source = Source::Directory(corp.clone());
        store
            .create_external_user(&realm, &carol, &source)
            .await
            .unwrap();
        store
            .create_external_user(&realm, &carol, &source)
            .await
            .unwrap();
        let record = store.find_user(&realm, &carol).await.unwrap().unwrap();
        assert_eq!(record.source, Source::Directory(corp.clone()));
        assert_eq!(record.source.as_stored(), "ldap:corp");
        assert_eq!(record.password_hash, None);
        assert_eq!(record.directory_groups, None);
        let before = store.read_counters().await.unwrap();
        let seen = SeenGroups {
            groups: vec!["ldap:corp:frontend".into(), "ldap:corp:developers".into()],
            at: 1_700_000_000,
        };
        store.set_directory_groups(record.id, &seen).await.unwrap();
        assert_eq!(
            store.read_counters().await.unwrap(),
            before,
            "recording groups invalidates no cache"
        );
        let record = store.find_user(&realm, &carol).await.unwrap().unwrap();
        assert_eq!(record.directory_groups, Some(seen));
        let alice = store
            .find_user(&realm, &Username::parse("alice").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alice.source, Source::Local);
        store.set_disabled(&realm, &carol, true).await.unwrap();
        assert_ne!(
            store.read_counters().await.unwrap(),
            before,
            "a disable still does"
        );
    }

    #[tokio::test]
    async fn provider_accounts_keep_their_source_and_their_groups_move_the_counter() {
        let (_dir, store, _path) = test_store().await;
        let realm = RealmName::parse("test").unwrap();
        let dora = Username::parse("dora").unwrap();
        let source = Source::Provider(IssuerName::parse("corp").unwrap());
        store
            .create_external_user(&realm, &dora, &source)
            .await
            .unwrap();
        let record = store.find_user(&realm, &dora).await.unwrap().unwrap();
        assert_eq!(record.source, source);
        assert_eq!(record.source.as_stored(), "oidc:corp");
        assert_eq!(record.password_hash, None);
        let before = store.read_counters().await.unwrap();
        let seen = SeenGroups {
            groups: vec!["oidc:corp:devs".into()],
            at: 1_700_000_000,
        };
        store.set_provider_groups(record.id, &seen).await.unwrap();
        assert_ne!(
            store.read_counters().await.unwrap(),
            before,
            "every instance reads the new groups"
        );
        let record = store.find_user(&realm, &dora).await.unwrap().unwrap();
        assert_eq!(record.directory_groups, Some(seen));
    }

    #[tokio::test]
    async fn a_stored_role_or_kind_this_code_does_not_know_is_corrupt_not_a_default() {
        let (_dir, store, path) = test_store().await;
        let realm = RealmName::parse("test").unwrap();
        let alice = Username::parse("alice").unwrap();
        for (column, value) in [("role", "owner"), ("kind", "service")] {
            write_unchecked(
                &path,
                &format!("UPDATE users SET role = 'user', kind = 'person'; UPDATE users SET {column} = '{value}'"),
            );
            match store.find_user(&realm, &alice).await {
                Err(StoreError::Corrupt(message)) => assert_eq!(
                    message,
                    format!("user alice in realm test: unknown {column} \"{value}\"")
                ),
                other => panic!("{column} {value}: {other:?}"),
            }
            assert!(
                matches!(store.list_users(&realm).await, Err(StoreError::Corrupt(_))),
                "{column}"
            );
        }
    }
}
