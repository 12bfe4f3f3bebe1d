//! The database a test server runs on: SQLite in the test's temp dir, or a new database in the
//! throwaway PostgreSQL named by `PORTCULLIS_TEST_POSTGRES_URL` (`scripts/test.sh` starts one).

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;

/// The environment variable `scripts/test.sh` sets to the throwaway PostgreSQL's URL.
pub const POSTGRES_URL_ENV: &str = "PORTCULLIS_TEST_POSTGRES_URL";

/// The engine a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Creates a database named `{prefix}_{unique suffix}` in the test PostgreSQL; its URL.
pub async fn create_postgres_database(prefix: &str) -> String {
    let base = std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| {
        panic!("{POSTGRES_URL_ENV} is not set: run scripts/test.sh, which starts a throwaway PostgreSQL")
    });
    let name = format!("{prefix}_{}", unique_suffix());
    let mut connection = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("create test database");
    let (url_prefix, _) = base.rsplit_once('/').expect("URL with a database");
    format!("{url_prefix}/{name}")
}

/// Unique across the processes and moments of one machine: the time in nanoseconds and the pid.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{:x}", std::process::id())
}
