//! Lockout: the failed logins counted per subject, the last one's time and the deadline of the
//! lock. What a subject is, and how long a lock lasts (`LockoutSettings::lock_deadline`), is
//! decided outside the store.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};
use crate::config::LockoutSettings;

/// A lock's state as stored: failures counted so far, the last one's time, and the deadline (0
/// when not locked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureRecord {
    pub failures: i64,
    pub last_failure: i64,
    pub locked_until: i64,
}

impl Store {
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
}

/// A row of `login_failures`.
fn failure_record(row: &AnyRow) -> Result<FailureRecord, StoreError> {
    Ok(FailureRecord {
        failures: row.try_get("failures")?,
        last_failure: row.try_get("last_failure")?,
        locked_until: row.try_get("locked_until")?,
    })
}
