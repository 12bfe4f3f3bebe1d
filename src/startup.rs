//! Builds the running server from settings. `main` and the tests both go through
//! [`Application::build`], so tests exercise the real wiring on a real socket (port 0 in tests).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::time::{Duration, Instant};
use tracing_actix_web::TracingLogger;

use crate::admin::realms::KeyPlace;
use crate::admin::{self, AdminError};
use crate::api::{self, ApiState};
use crate::audit::Trail;
use crate::auth::ldap::{Directories, LoadError};
use crate::auth::munge::{DoorError, MungeDoors};
use crate::auth::oidc::{self, Issuers};
use crate::auth::password::{Hasher, PasswordError, Verifier};
use crate::auth::{Authenticator, Federation};
use crate::config::{KeySettings, Settings};
use crate::console::{self, ConsoleState};
use crate::http::body::UnreadBody;
use crate::http::{self, AppState};
use crate::issue::TokenService;
use crate::keys::ring::NoSigningKey;
use crate::keys::{format_ms, now_ms};
use crate::metrics::Metrics;
use crate::names::RealmName;
use crate::policy::source::{Policies, PoliciesError};
use crate::realm::{self, Realm, RealmError, Realms};
use crate::store::{Store, StoreError};
use crate::telemetry::RequestSpan;
use tokio::signal::unix::{signal, SignalKind};

/// How often the server checks its keys for upkeep (files to rewrite, a rotation due).
const KEY_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// The `route` label of requests that matched no route.
const UNMATCHED_ROUTE: &str = "unmatched";
/// File descriptors not given to client connections when `server.max_connections` is 0 (besides
/// the database's connections): the listener, SQLite's files, key and policy files, logs, the
/// change listener, munge key files.
const RESERVED_FILE_DESCRIPTORS: usize = 64;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Realm(#[from] RealmError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("server.listen {addr}: {error}")]
    Bind { addr: String, error: std::io::Error },
    #[error("tls: {0}")]
    Tls(String),
    /// A key that signs now or later cannot be loaded.
    #[error("realm {realm}: signing key {kid}: {reason}")]
    Key {
        realm: RealmName,
        kid: String,
        reason: String,
    },
    #[error(transparent)]
    Policy(#[from] PoliciesError),
    #[error(transparent)]
    Munge(#[from] DoorError),
    #[error(transparent)]
    Directory(#[from] LoadError),
    #[error(transparent)]
    Issuer(#[from] oidc::LoadError),
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    realms: Vec<Arc<Realm>>,
    /// The recent audit trail's writer; `None` when `audit.keep_secs` is 0.
    trail: Option<Trail>,
}

impl Application {
    /// Opens the store (migrating it), loads every realm's keys, binds the socket.
    pub async fn build(settings: &Settings) -> Result<Application, StartError> {
        let addr = settings.server.listen.clone();
        let bind_error = |error| StartError::Bind {
            addr: addr.clone(),
            error,
        };
        let listener = TcpListener::bind(&addr).map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        // With port 0 the derived public URL must name the port actually bound.
        let mut settings = settings.clone();
        settings.server.listen = bound.to_string();
        let settings = &settings;
        let port = bound.port();

        let store = Store::connect(&settings.database).await?;
        store.watch_changes();
        realm::bootstrap(&store).await?;
        let trail =
            (settings.audit.keep_secs > 0).then(|| Trail::start(store.clone(), &settings.audit));
        let realms = Realms::new(
            store.clone(),
            settings.keys.dir.clone(),
            settings.public_url(),
        );
        let loaded = realms.load_all().await?;
        for realm in &loaded {
            let keys = realm.keys();
            if let Err(NoSigningKey::Unloadable { kid, reason }) = keys.active(now_ms()) {
                return Err(StartError::Key {
                    realm: realm.name.clone(),
                    kid,
                    reason,
                });
            }
            for (key, error) in keys.unloadable() {
                tracing::warn!(realm = %realm.name, kid = %key.record.kid, error = %error, "a pending signing key cannot be loaded here: this instance answers 503 once it signs");
            }
            // Registries may be pointed at these files before the first request: write them now.
            if let Err(error) = realm.keys().write_files(&realm.keys_dir, now_ms()) {
                tracing::warn!(realm = %realm.name, error = %error, "cannot write the realm's bundle.pem and jwks.json");
            }
        }
        keep_keys(
            store.clone(),
            KeyPlace {
                keys_dir: settings.keys.dir.clone(),
                public_url: settings.public_url(),
            },
            settings.keys.clone(),
            loaded.iter().map(|realm| realm.name.clone()).collect(),
        );
        let policies = Arc::new(Policies::new(store.clone(), settings.policy_files()));
        policies.check_files()?;
        reload_policies_on_sighup(policies.clone());
        let doors = Arc::new(MungeDoors::load(settings)?);
        let metrics = Arc::new(Metrics::new());
        let directories = Arc::new(Directories::load(settings, &metrics)?);
        let issuers = Arc::new(Issuers::load(settings)?);
        let hasher = Hasher::new(&settings.passwords)?;
        let admin_hasher = hasher.clone();
        let verifier = Verifier::new(hasher, &settings.passwords, settings.password_check_slots())?;
        let authenticator = Authenticator::new(
            store.clone(),
            verifier.clone(),
            &settings.tokens,
            &settings.lockout,
            metrics.clone(),
            Federation {
                doors,
                directories,
                issuers,
            },
        )?;
        let state = web::Data::new(AppState {
            realms,
            tokens: TokenService::new(
                authenticator.clone(),
                &settings.tokens,
                store.clone(),
                policies.clone(),
                metrics.clone(),
            ),
            store,
            verifier: verifier.clone(),
            metrics: metrics.clone(),
            max_body_bytes: settings.server.max_body_bytes,
            client_timeout: Duration::from_secs(settings.server.client_timeout_secs),
            trusted_proxies: settings.server.trusted_proxies.clone(),
        });

        let api = web::Data::new(ApiState {
            store: state.store.clone(),
            hasher: admin_hasher.clone(),
            place: KeyPlace {
                keys_dir: settings.keys.dir.clone(),
                public_url: settings.public_url(),
            },
            policy_files: settings.policy_files(),
            reset_after_secs: settings.lockout.reset_after_secs,
            console_idle_timeout_secs: settings.console.idle_timeout_secs,
        });
        let console = web::Data::new(ConsoleState {
            store: state.store.clone(),
            authenticator,
            hasher: admin_hasher,
            settings: settings.console.clone(),
            secure: settings.public_url().starts_with("https://"),
            policy_files: settings.policy_files(),
            reset_after_secs: settings.lockout.reset_after_secs,
            trusted_proxies: settings.server.trusted_proxies.clone(),
            sso_redirect_uri: console::sso_redirect_uri(&settings.public_url()),
        });
        let max_body_bytes = settings.server.max_body_bytes;
        let tls = tls_config(settings)?;
        let mut server = HttpServer::new(move || {
            let series = Rc::new(state.metrics.http_series());
            App::new()
                // Innermost, where every response body is still a `BoxBody`.
                .wrap_fn(|mut request, service| {
                    let unread = UnreadBody::take(&mut request);
                    let answer = service.call(request);
                    async move { Ok(UnreadBody::keep_until_sent(unread, answer.await?)) }
                })
                .wrap_fn(move |request, service| {
                    let started = Instant::now();
                    let series = series.clone();
                    let answer = service.call(request);
                    async move {
                        let response = answer.await?;
                        series.observe(
                            response
                                .request()
                                .match_pattern()
                                .as_deref()
                                .unwrap_or(UNMATCHED_ROUTE),
                            response.status().as_u16(),
                            started.elapsed().as_secs_f64(),
                        );
                        Ok(response)
                    }
                })
                .wrap(TracingLogger::<RequestSpan>::new())
                .app_data(state.clone())
                .app_data(api.clone())
                .app_data(console.clone())
                .configure(http::routes)
                .configure(|cfg| api::routes(cfg, max_body_bytes))
                .configure(console::routes)
                .default_service(web::to(http::not_found))
        })
        // Bounds the head; the token endpoint bounds the body by the same time (`http::body::read`).
        .client_request_timeout(Duration::from_secs(settings.server.client_timeout_secs));
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        server = server.workers(workers);
        if let Some(per_worker) = connections_per_worker(settings, workers) {
            server = server.max_connections(per_worker);
        }
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        }
        .map_err(bind_error)?
        .run();
        Ok(Application {
            port,
            server,
            realms: loaded,
            trail,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The realms loaded at start.
    pub fn realms(&self) -> &[Arc<Realm>] {
        &self.realms
    }

    /// Keeps this process's audit events in the database (`crate::audit`), unless
    /// `audit.keep_secs` is 0. `serve` calls it: the events of a process are its own.
    pub fn keep_audit_trail(&self) {
        if let Some(trail) = &self.trail {
            trail.keep();
        }
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Each worker's share of `server.max_connections`, or, when that is 0, of the open-file limit less
/// [`RESERVED_FILE_DESCRIPTORS`] and the database's connections: at the limit the server stops
/// accepting (clients wait in the kernel's queue) instead of failing to open anything else. `None`:
/// no limit to respect (actix-web's own per-worker maximum applies).
fn connections_per_worker(settings: &Settings, workers: usize) -> Option<usize> {
    let total = match settings.server.max_connections {
        0 => {
            let open_files = open_file_limit()?;
            let database = settings.database.max_connections as usize;
            open_files.saturating_sub(RESERVED_FILE_DESCRIPTORS + database)
        }
        n => n,
    };
    Some((total / workers).max(1))
}

/// The soft limit on open files (`ulimit -n`), when there is one.
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` to the valid pointer it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// SIGHUP makes every realm re-read its policy file on its next request.
/// The server's key upkeep, in the background: each realm's `bundle.pem` and `jwks.json` are
/// rewritten when what is published changes (a key made, activated, revoked or retired by any
/// process), and CA realms rotate by themselves when `keys.rotate_every` is set. Every instance
/// does this; they write the same files, and a rotation that two make at once is made once.
fn keep_keys(store: Store, place: KeyPlace, settings: KeySettings, realms: Vec<RealmName>) {
    let interval = settings.rotate_every.map_or(KEY_UPKEEP_INTERVAL, |every| {
        Duration::from_secs(every.as_secs() / 4).clamp(Duration::from_secs(1), KEY_UPKEEP_INTERVAL)
    });
    tokio::spawn(async move {
        let mut published: HashMap<RealmName, String> = HashMap::new();
        let mut failing: HashMap<RealmName, String> = HashMap::new();
        loop {
            for realm in &realms {
                let outcome =
                    keep_realm_keys(&store, &place, &settings, realm, &mut published).await;
                match outcome {
                    Ok(()) => {
                        failing.remove(realm);
                    }
                    Err(error) => {
                        // Once per distinct failure, not every round.
                        let text = error.to_string();
                        if failing.get(realm) != Some(&text) {
                            tracing::warn!(realm = %realm, error = %text, "signing key upkeep failed");
                            failing.insert(realm.clone(), text);
                        }
                    }
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// One round of [`keep_keys`] for one realm.
async fn keep_realm_keys(
    store: &Store,
    place: &KeyPlace,
    settings: &KeySettings,
    realm: &RealmName,
    published: &mut HashMap<RealmName, String>,
) -> Result<(), AdminError> {
    if let Some(key) = admin::keys::rotate_if_due(store, place, settings, realm).await? {
        tracing::info!(
            target: "audit",
            event = "signing_key_rotated",
            realm = %realm,
            kid = %key.kid,
            signs_from = %format_ms(key.activates_at_ms),
        );
    }
    let bundle = admin::keys::pem_bundle(store, place, realm).await?;
    if published.get(realm) != Some(&bundle) {
        admin::keys::republish(store, place, realm).await?;
        published.insert(realm.clone(), bundle);
    }
    Ok(())
}

fn reload_policies_on_sighup(policies: Arc<Policies>) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; policy files still reload when they change");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            policies.reload();
        }
    });
}

fn tls_config(settings: &Settings) -> Result<Option<rustls::ServerConfig>, StartError> {
    let (Some(cert_file), Some(key_file)) = (&settings.tls.cert_file, &settings.tls.key_file)
    else {
        return Ok(None);
    };
    let open = |path: &std::path::Path| {
        File::open(path)
            .map(BufReader::new)
            .map_err(|e| StartError::Tls(format!("{}: {e}", path.display())))
    };
    let certs = CertificateDer::pem_reader_iter(open(cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert_file.display())))?;
    let key = PrivateKeyDer::from_pem_reader(open(key_file)?)
        .map_err(|e| StartError::Tls(format!("{}: {e}", key_file.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map(Some)
        .map_err(|e| StartError::Tls(e.to_string()))
}
