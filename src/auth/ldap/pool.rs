//! Connections to one directory: opened to its URLs in order (failover), upgraded with StartTLS or
//! opened with LDAPS, kept open for reuse up to `pool_size`, each bound as the service account (or
//! anonymous) before it searches. Every connect and operation is bounded by its timeout; a
//! connection that failed or timed out is dropped, never reused. Measured per operation in the
//! metrics. This module knows nothing of users or groups.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::settings::DirectorySettings;
use super::trace::{Step, Trace};
use super::{DirectoryError, Failure};
use crate::auth::trust;
use crate::metrics::Metrics;
use crate::names::DirectoryName;

/// LDAP result code of a bind with wrong credentials (RFC 4511, `invalidCredentials`).
pub const INVALID_CREDENTIALS: u32 = 49;
/// LDAP result code of a search whose base does not exist (RFC 4511, `noSuchObject`).
const NO_SUCH_OBJECT: u32 = 32;
/// LDAP result code of a search that found more entries than its size limit (`sizeLimitExceeded`).
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// What a bind answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    Accepted,
    /// `invalidCredentials`: no such DN, or the wrong password.
    Refused,
}

/// Who a connection is bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// The service account, or anonymous when there is none (what searches run as).
    Service,
    /// Anything else: a user's bind, successful or not.
    Other,
}

struct Connection {
    ldap: Ldap,
    identity: Identity,
}

/// One directory's connections.
pub struct Pool {
    directory: DirectoryName,
    settings: Arc<DirectorySettings>,
    tls: Option<Arc<rustls::ClientConfig>>,
    service_password: Option<SecretString>,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Pool {
    /// A pool for `settings`: reads the CA file (if any) now; connects on first use.
    pub fn new(
        settings: Arc<DirectorySettings>,
        service_password: Option<SecretString>,
        metrics: Arc<Metrics>,
    ) -> Result<Pool, String> {
        let tls = match &settings.ca_file {
            Some(path) => Some(client_config(path)?),
            None => None,
        };
        Ok(Pool {
            directory: settings.name.clone(),
            permits: Arc::new(Semaphore::new(settings.pool_size)),
            settings,
            tls,
            service_password,
            idle: Mutex::new(Vec::new()),
            metrics,
        })
    }

    /// A connection bound as the service account, reused or opened (its URLs in order); waits at
    /// most the operation timeout for a free one when all `pool_size` are in use.
    pub async fn lease(&self, trace: &mut Trace) -> Result<Lease<'_>, DirectoryError> {
        let permit = tokio::time::timeout(
            self.settings.operation_timeout,
            self.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| self.error(Failure::Busy(self.settings.pool_size)))?
        .map_err(|_| self.error(Failure::Busy(self.settings.pool_size)))?;
        let reused = {
            let mut idle = self.idle.lock().expect("directory pool lock");
            let mut found = None;
            while let Some(mut connection) = idle.pop() {
                if !connection.ldap.is_closed() {
                    found = Some(connection);
                    break;
                }
            }
            found
        };
        let connection = match reused {
            Some(connection) => connection,
            None => self.connect(trace).await?,
        };
        let mut lease = Lease {
            pool: self,
            connection: Some(connection),
            _permit: permit,
        };
        lease.as_service(trace).await?;
        Ok(lease)
    }

    /// Opens a connection to the first URL that answers.
    async fn connect(&self, trace: &mut Trace) -> Result<Connection, DirectoryError> {
        let settings = &self.settings;
        let mut last = None;
        for url in &settings.urls {
            let tls = match (url.scheme(), settings.start_tls) {
                ("ldaps", _) => "LDAPS",
                (_, true) => "StartTLS",
                _ => "none",
            };
            let mut options = LdapConnSettings::new()
                .set_conn_timeout(settings.connect_timeout)
                .set_starttls(settings.start_tls);
            if let Some(config) = &self.tls {
                options = options.set_config(config.clone());
            }
            if settings.insecure_skip_verify && settings.uses_tls() {
                tracing::warn!(
                    directory = %self.directory,
                    url = %url,
                    "insecure_skip_verify: connecting WITHOUT checking the directory's \
                     certificate; anyone on the path can read the passwords sent to it"
                );
                options = options.set_no_tls_verify(true);
            }
            let started = Instant::now();
            let opened = LdapConnAsync::from_url_with_settings(options, url).await;
            self.observe("connect", started);
            match opened {
                Ok((driver, ldap)) => {
                    let directory = self.directory.clone();
                    tokio::spawn(async move {
                        if let Err(error) = driver.drive().await {
                            tracing::debug!(%directory, %error, "directory connection closed");
                        }
                    });
                    trace.note(|| Step::Connected {
                        url: url.to_string(),
                        tls: tls.to_owned(),
                        verified: settings.uses_tls() && !settings.insecure_skip_verify,
                    });
                    return Ok(Connection {
                        ldap,
                        // A new connection is anonymous: the service identity when there is no
                        // service account.
                        identity: if self.service_password.is_some() {
                            Identity::Other
                        } else {
                            Identity::Service
                        },
                    });
                }
                Err(error) => {
                    let error = describe(&error);
                    tracing::warn!(directory = %self.directory, url = %url, %error, "cannot connect to the directory");
                    trace.note(|| Step::ConnectFailed {
                        url: url.to_string(),
                        error: error.clone(),
                    });
                    last = Some(error);
                }
            }
        }
        Err(self.error(Failure::Connect(last.unwrap_or_default())))
    }

    fn error(&self, failure: Failure) -> DirectoryError {
        self.metrics
            .directory_error(self.directory.as_str(), failure.kind());
        DirectoryError {
            directory: self.directory.clone(),
            failure,
        }
    }

    fn observe(&self, operation: &str, started: Instant) {
        self.metrics.directory_operation(
            self.directory.as_str(),
            operation,
            started.elapsed().as_secs_f64(),
        );
    }
}

/// One connection in use; returned to the pool when dropped, unless it failed.
pub struct Lease<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Lease<'_> {
    /// Binds as the service account (or anonymous) unless already bound so.
    pub async fn as_service(&mut self, trace: &mut Trace) -> Result<(), DirectoryError> {
        if self.identity() == Some(Identity::Service) {
            return Ok(());
        }
        let settings = &self.pool.settings;
        let (dn, password) = match (&settings.service, &self.pool.service_password) {
            (Some(service), Some(password)) => (service.dn.clone(), password.clone()),
            _ => (String::new(), SecretString::from("")),
        };
        let answer = self.bind_raw(&dn, &password).await?;
        let shown = (!dn.is_empty()).then(|| dn.clone());
        trace.note(|| Step::ServiceBind {
            dn: shown.clone(),
            accepted: answer == Bind::Accepted,
        });
        if answer == Bind::Refused {
            self.connection = None;
            return Err(self.pool.error(Failure::ServiceRefused(shown)));
        }
        if let Some(connection) = &mut self.connection {
            connection.identity = Identity::Service;
        }
        Ok(())
    }

    /// Binds as `dn` with `password` (never empty: the caller refuses that first).
    pub async fn bind(
        &mut self,
        dn: &str,
        password: &SecretString,
    ) -> Result<Bind, DirectoryError> {
        self.bind_raw(dn, password).await
    }

    async fn bind_raw(
        &mut self,
        dn: &str,
        password: &SecretString,
    ) -> Result<Bind, DirectoryError> {
        let timeout = self.pool.settings.operation_timeout;
        let connection = self.connection()?;
        connection.identity = Identity::Other;
        let started = Instant::now();
        let answer = tokio::time::timeout(
            timeout,
            connection.ldap.simple_bind(dn, password.expose_secret()),
        )
        .await;
        let result = self.finish("bind", started, timeout, answer)?;
        match result.rc {
            0 => Ok(Bind::Accepted),
            INVALID_CREDENTIALS => Ok(Bind::Refused),
            rc => Err(self.fail(Failure::Answered {
                operation: "bind",
                rc,
                text: result.text,
            })),
        }
    }

    /// The entries `filter` finds under `base`: at most `limit` (a search that finds more answers
    /// `limit + 1` entries' worth: the caller only learns there are more). A base search of an
    /// entry that does not exist finds nothing.
    pub async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        limit: i32,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let timeout = self.pool.settings.operation_timeout;
        let connection = self.connection()?;
        let started = Instant::now();
        let answer = tokio::time::timeout(
            timeout,
            connection
                .ldap
                .with_search_options(SearchOptions::new().sizelimit(limit))
                .search(base, scope, filter, attributes.to_vec()),
        )
        .await;
        let result = self.finish("search", started, timeout, answer)?;
        // ldap3 panics on an entry whose encoding it cannot read; a directory's bad answer must
        // cost this request a 503, not the worker thread.
        let entries = result
            .0
            .into_iter()
            .map(|entry| {
                std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(entry)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                self.fail(Failure::Broken {
                    operation: "search",
                    error: "an entry in the answer could not be decoded".to_owned(),
                })
            })?;
        match result.1.rc {
            0 | SIZE_LIMIT_EXCEEDED => Ok(entries),
            NO_SUCH_OBJECT if scope == Scope::Base => Ok(Vec::new()),
            rc => Err(self.fail(Failure::Answered {
                operation: "search",
                rc,
                text: result.1.text,
            })),
        }
    }

    fn identity(&self) -> Option<Identity> {
        self.connection.as_ref().map(|c| c.identity)
    }

    fn connection(&mut self) -> Result<&mut Connection, DirectoryError> {
        match self.connection {
            Some(ref mut connection) => Ok(connection),
            None => Err(self.pool.error(Failure::Connect("connection lost".into()))),
        }
    }

    /// The operation's answer; a timeout or a broken connection drops the connection.
    fn finish<T>(
        &mut self,
        operation: &'static str,
        started: Instant,
        timeout: Duration,
        answer: Result<Result<T, LdapError>, tokio::time::error::Elapsed>,
    ) -> Result<T, DirectoryError> {
        match answer {
            Ok(Ok(value)) => {
                self.pool.observe(operation, started);
                Ok(value)
            }
            Ok(Err(error)) => {
                self.pool.observe(operation, started);
                self.connection = None;
                Err(self.pool.error(Failure::Broken {
                    operation,
                    error: describe(&error),
                }))
            }
            Err(_) => {
                self.pool.observe(operation, started);
                self.connection = None;
                Err(self.pool.error(Failure::Timeout {
                    operation,
                    after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                }))
            }
        }
    }

    fn fail(&mut self, failure: Failure) -> DirectoryError {
        self.connection = None;
        self.pool.error(failure)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            let mut idle = self.pool.idle.lock().expect("directory pool lock");
            if idle.len() < self.pool.settings.pool_size {
                idle.push(connection);
            }
        }
    }
}

/// An ldap3 error and its causes as one line (a refused certificate says why).
fn describe(error: &LdapError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A TLS client configuration that trusts the CA certificates in `path` only.
fn client_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    trust::add_ca_file(&mut roots, path)?;
    Ok(Arc::new(trust::client_config(roots)?))
}
