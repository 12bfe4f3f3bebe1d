//! Spawns a real Portcullis on port 0 over a fresh database (SQLite in a temp dir, or a new database
//! in the throwaway PostgreSQL named by `PORTCULLIS_TEST_POSTGRES_URL`) and talks HTTP to it.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use portcullis::auth::password::Hasher;
use portcullis::config::Settings;
use portcullis::names::{RealmName, Username};
use portcullis::startup::Application;
use portcullis::store::changes::FRESHNESS;
use portcullis::store::{Role, Store};
use secrecy::SecretString;

use crate::common::database::create_postgres_database;
pub use crate::common::database::Db;
pub use crate::common::jwt::{claims, header};

pub struct TestApp {
    pub address: String,
    pub engine: Db,
    /// A second connection to the server's database, as an operator command or another instance.
    pub store: Store,
    pub settings: Settings,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Cheap argon2 parameters: the tests check behaviour, not cost.
fn test_settings(dir: &std::path::Path, database_url: String) -> Settings {
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.database.url = database_url;
    settings.database.max_connections = 4;
    // Tests run beside one another (and beside initdb) on a loaded machine, where a connection can
    // take more than the default second to come: only the outage tests measure that bound.
    settings.database.acquire_timeout_ms = 10_000;
    settings.keys.dir = dir.join("keys");
    settings.passwords.argon2_memory_kib = 256;
    settings.passwords.argon2_iterations = 1;
    settings
}

async fn database_url(engine: Db, dir: &std::path::Path) -> String {
    match engine {
        Db::Sqlite => format!("sqlite://{}/portcullis.db", dir.display()),
        Db::Postgres => create_postgres_database("portcullis_test").await,
    }
}

pub async fn spawn_app(engine: Db) -> TestApp {
    spawn_app_with(engine, |_| {}).await
}

pub async fn spawn_app_with(engine: Db, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(engine, dir.path()).await;
    spawn_app_at(dir, url, adjust).await
}

/// A second instance beside `first`: the same database and key directory (as instances of one
/// deployment share them), its other files in a directory of its own.
pub async fn spawn_app_beside(first: &TestApp, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let keys_dir = first.settings.keys.dir.clone();
    spawn_app_at(
        tempfile::tempdir().unwrap(),
        first.settings.database.url.clone(),
        move |settings| {
            settings.keys.dir = keys_dir;
            adjust(settings);
        },
    )
    .await
}

/// A server over the database at `database_url`, its keys and files in `dir`.
pub async fn spawn_app_at(
    dir: tempfile::TempDir,
    database_url: String,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(dir.path(), database_url);
    adjust(&mut settings);
    let app = Application::build(&settings).await.expect("server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let store = Store::connect(&settings.database).await.unwrap();
    // reqwest's rustls has no crypto provider of its own (the server's issuer fetches bring theirs,
    // aws-lc-rs): this process's clients use the same one. Already installed: nothing to do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    TestApp {
        address,
        engine: if settings.database.url.starts_with("sqlite:") {
            Db::Sqlite
        } else {
            Db::Postgres
        },
        store,
        settings,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

/// Pause between two checks of a change that may take a while to arrive.
const RECHECK_INTERVAL: Duration = Duration::from_millis(10);

impl TestApp {
    /// Checks what `check` observes after a change made through [`TestApp::store`] (another
    /// connection, as an operator command or another instance would make it). On SQLite the first
    /// check must see it; on PostgreSQL the change reaches the server by notification, so `check`
    /// is repeated until it sees `expected`, for at most the documented bound.
    pub async fn after_change<T: PartialEq + Debug>(
        &self,
        what: &str,
        expected: T,
        check: impl AsyncFn() -> T,
    ) {
        let bound = match self.engine {
            Db::Sqlite => Duration::ZERO,
            Db::Postgres => FRESHNESS,
        };
        let deadline = Instant::now() + bound;
        loop {
            let observed = check().await;
            if observed == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {observed:?} instead of {expected:?} after {bound:?}"
            );
            tokio::time::sleep(RECHECK_INTERVAL).await;
        }
    }

    pub fn token_url(&self, realm: &str) -> String {
        format!(
            "{}/auth/realms/{realm}/protocol/docker-v2/auth",
            self.address
        )
    }

    pub async fn add_user(&self, realm: &str, name: &str, password: &str, role: Role) {
        let hash = Hasher::new(&self.settings.passwords)
            .unwrap()
            .hash(&SecretString::from(password))
            .unwrap();
        self.store
            .create_user(
                &realm_name(realm),
                &Username::parse(name).unwrap(),
                Some(&hash),
                role,
            )
            .await
            .unwrap();
    }

    /// GET the default realm's token endpoint with a query and optional Basic credentials.
    pub async fn get_token(&self, query: &str, basic: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self
            .client
            .get(format!("{}?{query}", self.token_url("default")));
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        request.send().await.unwrap()
    }

    /// POST a form to the default realm's token endpoint.
    pub async fn post_token(&self, form: &str) -> reqwest::Response {
        self.client
            .post(self.token_url("default"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap()
    }
}

impl TestApp {
    /// The text of `GET /metrics`, which must answer 200.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Runs raw SQL against the app's database, for states no command can produce (time travel).
    pub async fn sql(&self, statement: &str) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.settings.database.url)
            .await
            .unwrap();
        sqlx::query(statement).execute(&pool).await.unwrap();
        pool.close().await;
    }

    /// A single text value from raw SQL.
    pub async fn sql_text(&self, query: &str) -> Vec<String> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.settings.database.url)
            .await
            .unwrap();
        let rows: Vec<(String,)> = sqlx::query_as(query).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.into_iter().map(|(v,)| v).collect()
    }
}

pub fn realm_name(name: &str) -> RealmName {
    RealmName::parse(name).unwrap()
}

/// Runs each named test case (an `async fn(TestApp)`) once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                use $crate::api::helpers::{spawn_app, Db};

                #[tokio::test]
                async fn sqlite() {
                    super::$case(spawn_app(Db::Sqlite).await).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$case(spawn_app(Db::Postgres).await).await;
                }
            }
        )*
    };
}
