//! Groups of a realm and their members. Which grants name a group is the business of `grants`
//! and the policy engine.

use sqlx::Row;

use super::{unix_now, Store, StoreError};
use crate::names::{RealmName, Username};

impl Store {
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
}
