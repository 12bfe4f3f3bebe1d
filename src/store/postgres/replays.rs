//! Uses of MUNGE credentials that arrive together, recorded by one PostgreSQL statement: a commit
//! of a few rows costs about a round trip, whatever their number (see [`gather`](crate::store::gather)).

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::Arc;

use sqlx::{AnyPool, Row};

use crate::store::gather::{answer_each, Waiting};
use crate::store::munge::{ReplayGathering, ReplayRecord};

/// Uses of MUNGE credentials recorded by one PostgreSQL statement at most: a power of two (see
/// [`insert_replays`]); two parameters each, far below the protocol's limit of 65,535.
const MAX_REPLAYS_PER_STATEMENT: usize = 1_024;

/// Gathers the uses of MUNGE credentials that arrive with the first, records them with one
/// statement per [`MAX_REPLAYS_PER_STATEMENT`] and answers each.
pub async fn record_gathered(pool: AnyPool, replays: Arc<ReplayGathering<sqlx::Error>>) {
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
