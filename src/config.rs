//! The settings tree: defaults, then one TOML file, then `PORTCULLIS__SECTION__KEY` environment
//! variables. Loading checks every value, so the rest of the program never re-validates settings.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::auth::ldap::settings::DirectorySettings;
use crate::auth::oidc::settings::IssuerSettings;
use crate::names::RealmName;

/// Longest publication before use a key may be given: 30 days.
pub const MAX_PUBLISH_BEFORE_USE_SECS: u64 = 30 * 86_400;
/// Shortest automatic rotation period (short ones are for tests; a day is usual).
pub const MIN_ROTATE_EVERY: Period = Period::from_secs(10);
/// Shortest validity of a CA-issued key certificate: a day of tokens, and a day to rotate in.
pub const MIN_LEAF_LIFETIME: Period = Period::from_secs(2 * 86_400);

/// Prefix of environment overrides; `__` separates section and key (`PORTCULLIS__SERVER__LISTEN`).
pub const ENV_PREFIX: &str = "PORTCULLIS__";
/// Environment variable naming the config file when `--config` is absent.
pub const CONFIG_FILE_ENV: &str = "PORTCULLIS_CONFIG";
/// Longest `server.client_timeout_secs`: an hour is already far beyond any real client.
const MAX_CLIENT_TIMEOUT_SECS: u64 = 3_600;
/// Longest `database.acquire_timeout_ms`: ten minutes.
const MAX_ACQUIRE_TIMEOUT_MS: u64 = 600_000;

/// Everything the server and the operator commands read from configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub keys: KeySettings,
    pub passwords: PasswordSettings,
    pub tokens: TokenSettings,
    pub lockout: LockoutSettings,
    pub log: LogSettings,
    pub tls: TlsSettings,
    pub console: ConsoleSettings,
    pub audit: AuditSettings,
    /// Per-realm settings, keyed by realm name (`[realms.default]`). Realms themselves are
    /// database records (`portcullis realm add`); this only adds file-based settings to them.
    pub realms: BTreeMap<String, RealmSettings>,
}

/// `[console]`: the web console's sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// A session ends after this long without a request.
    pub idle_timeout_secs: u64,
    /// A session ends this long after sign-in, however busy.
    pub absolute_timeout_secs: u64,
    /// The registry's host (and port) as clients name it, for the `docker login` line the console
    /// shows with a new token; empty: a placeholder.
    pub registry: String,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            idle_timeout_secs: 1_800,
            absolute_timeout_secs: 43_200,
            registry: String::new(),
        }
    }
}

/// `[audit]`: the recent audit trail that the admin API and the console show (`crate::audit`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// How long an audit event stays in the database; 0 keeps none (the log has them all).
    pub keep_secs: u64,
    /// The most events kept, all realms together: older ones go first, whatever their age.
    pub max_events: u64,
    /// Keep the token endpoint's grants too (nearly every request), not only its refusals.
    pub keep_grants: bool,
}

/// Longest `audit.keep_secs`: a year.
pub const MAX_AUDIT_KEEP_SECS: u64 = 366 * 86_400;
/// Most `audit.max_events`.
pub const MAX_AUDIT_EVENTS: u64 = 100_000_000;

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            keep_secs: 7 * 86_400,
            max_events: 200_000,
            keep_grants: false,
        }
    }
}

/// `[realms.NAME]`: settings of one realm that live in files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RealmSettings {
    /// The realm's policy file (TOML); without one the shipped default policy applies. Reloaded
    /// when it changes and on SIGHUP.
    pub policy_file: Option<PathBuf>,
    /// The MUNGE front door: accept credentials of these platforms (HPC image gateways).
    pub munge: Option<MungeSettings>,
    /// LDAP or Active Directory servers whose accounts log in to this realm, tried in this order
    /// (`[[realms.NAME.ldap]]`; see docs/ldap.md).
    pub ldap: Vec<LdapSettings>,
    /// OpenID issuers whose JWTs (CI jobs, Kubernetes service accounts) log in to this realm
    /// (`[[realms.NAME.oidc]]`; see docs/workload-identity.md).
    pub oidc: Vec<OidcSettings>,
}

/// `[[realms.NAME.oidc]]`: one trusted issuer, as written in the file. Checked when the settings
/// load (`auth::oidc::settings` turns it into typed settings); keys are fetched when first needed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer's name, unique in the realm: principals are `oidc:<name>:<subject>`, groups
    /// `oidc:<name>:<group>`.
    pub name: String,
    /// The `iss` claim, compared exactly; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Accepted `aud` values of workload JWTs: the token's audience (a string or a list) must hold
    /// one of them. May be empty only for an issuer that only signs people in to the console.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The issuer's JWKS URL, instead of discovery.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// A local JWKS file, instead of discovery (clusters without public discovery).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// PEM certificates of a CA trusted for the discovery and JWKS fetches, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Signature algorithms accepted (never `none`, never HS256/HS384/HS512).
    #[serde(default = "default_oidc_algorithms")]
    pub algorithms: Vec<String>,
    /// Seconds of clock difference allowed on `exp`, `nbf` and `iat`.
    #[serde(default = "default_clock_skew_secs")]
    pub clock_skew_secs: u64,
    /// Oldest `iat` accepted, in seconds before now.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Keys older than this many seconds are fetched again at the next request.
    #[serde(default = "default_jwks_refresh_secs")]
    pub jwks_refresh_secs: u64,
    /// At most one fetch per this many seconds, whatever unknown `kid`s arrive.
    #[serde(default = "default_jwks_min_refetch_secs")]
    pub jwks_min_refetch_secs: u64,
    /// Milliseconds one discovery or JWKS fetch may take, connection included.
    #[serde(default = "default_fetch_timeout_ms")]
    pub fetch_timeout_ms: u64,
    /// The principal's name after `oidc:`: `${iss-name}`, `${sub}` and `${claim.PATH}` placeholders.
    #[serde(default = "default_oidc_subject")]
    pub subject: String,
    /// Claim rules, tried in order: the first whose conditions all hold maps the token.
    #[serde(default)]
    pub rules: Vec<OidcRuleSettings>,
    /// People sign in to the web console with this issuer (`[realms.NAME.oidc.console]`).
    #[serde(default)]
    pub console: Option<OidcConsoleSettings>,
}

/// `[realms.NAME.oidc.console]`: the console's OpenID Connect client at this issuer. People sign
/// in with the authorization code flow (PKCE, `state`, `nonce`); the ID token passes the issuer's
/// checks and claim rules with the client id as its audience, and its groups count for the
/// account's tokens until `groups_valid_secs` after the sign-in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcConsoleSettings {
    /// The client id registered at the issuer, with the redirect URI
    /// `<public URL>/console/sso/callback`.
    pub client_id: String,
    /// A file holding the client secret (first line, mode 0600); none: a public client (PKCE only).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The claim whose text, in lower case, is the account's user name.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The sign-in button says "Sign in with <label>"; default: the issuer's name.
    #[serde(default)]
    pub label: Option<String>,
    /// Scopes asked for; `openid` is always among them.
    #[serde(default = "default_console_scopes")]
    pub scopes: Vec<String>,
    /// How long the groups of a sign-in count for the account's access tokens.
    #[serde(default = "default_groups_valid_secs")]
    pub groups_valid_secs: u64,
}

fn default_username_claim() -> String {
    "preferred_username".to_owned()
}

fn default_console_scopes() -> Vec<String> {
    ["openid", "profile"].map(String::from).to_vec()
}

fn default_groups_valid_secs() -> u64 {
    7 * 86_400
}

/// `[[realms.NAME.oidc.rules]]`: conditions on a token's claims, and the groups it then gets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcRuleSettings {
    /// Named in audit events and `portcullis oidc test`.
    pub name: String,
    /// Claim path (a top-level name or a JSON Pointer) → a value, `{ glob = "…" }` or
    /// `{ one_of = […] }`; every condition must hold.
    #[serde(default)]
    pub conditions: BTreeMap<String, OidcCondition>,
    /// Policy groups, each `oidc:<issuer name>:<group>`, from templates like the subject's.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A claim (a string or a list of strings) whose values are groups too.
    #[serde(default)]
    pub groups_claim: Option<String>,
}

/// One condition on a claim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OidcCondition {
    /// Exactly this text.
    Equals(String),
    /// `*` matches any run of characters, `/` and `:` included.
    Glob { glob: String },
    /// One of these texts.
    OneOf { one_of: Vec<String> },
}

fn default_oidc_algorithms() -> Vec<String> {
    ["RS256", "ES256", "EdDSA"].map(String::from).to_vec()
}

fn default_clock_skew_secs() -> u64 {
    60
}

fn default_max_age_secs() -> u64 {
    3_600
}

fn default_jwks_refresh_secs() -> u64 {
    300
}

fn default_jwks_min_refetch_secs() -> u64 {
    60
}

fn default_fetch_timeout_ms() -> u64 {
    5_000
}

fn default_oidc_subject() -> String {
    "${iss-name}:${sub}".into()
}

/// `[[realms.NAME.ldap]]`: one directory, as written in the file. Checked when the settings load
/// (`auth::ldap::settings` turns it into typed settings); the bind password file is read at start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// The directory's name, unique in the realm: accounts it creates have the source
    /// `ldap:<name>`, its groups map to `ldap:<name>:<group>` by default.
    pub name: String,
    /// `ldap://host:port` or `ldaps://host:port`, or a list of them tried in order (failover).
    pub url: OneOrMore,
    /// Upgrade `ldap://` connections with StartTLS (refused with `ldaps://`).
    #[serde(default)]
    pub start_tls: bool,
    /// PEM certificates of the CAs the server's certificate must chain to (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate: for tests only, warned about at start and per connection.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// The service account that searches users and groups; absent: anonymous searches.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// The file holding the service account's password (mode 0600 or stricter).
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched (subtree).
    #[serde(default)]
    pub user_base: Option<String>,
    /// The user search filter; `{username}` is replaced by the login name, RFC 4515-escaped.
    /// Default: `(<username_attribute>={username})`.
    #[serde(default)]
    pub user_filter: Option<String>,
    /// The attribute holding the login name.
    #[serde(default = "default_username_attribute")]
    pub username_attribute: String,
    /// Bind directly as this DN instead of searching first, e.g.
    /// `uid={username},ou=people,dc=example,dc=org` (`{username}` RFC 4514-escaped).
    #[serde(default)]
    pub bind_template: Option<String>,
    /// A user attribute listing the DNs of the user's groups (`memberOf`).
    #[serde(default)]
    pub group_attribute: Option<String>,
    /// Where groups are searched (subtree), with `group_filter`.
    #[serde(default)]
    pub group_base: Option<String>,
    /// The group search filter: `{dn}` (the user's DN, or a group's for nested groups) and
    /// `{username}`, both RFC 4515-escaped; e.g. `(member={dn})` or `(memberUid={username})`.
    #[serde(default)]
    pub group_filter: Option<String>,
    /// The attribute holding a group's name.
    #[serde(default = "default_group_name_attribute")]
    pub group_name_attribute: String,
    /// How many levels of groups within groups a group search follows (0: none).
    #[serde(default = "default_nested_groups_depth")]
    pub nested_groups_depth: u32,
    /// Active Directory: search groups with `(member:1.2.840.113556.1.4.1941:={dn})`, which the
    /// server resolves through every level of nesting in one search.
    #[serde(default)]
    pub ad_matching_rule_in_chain: bool,
    /// Directory group name → policy group name, replacing the default `ldap:<name>:<group>`.
    #[serde(default)]
    pub group_map: BTreeMap<String, String>,
    /// Milliseconds to open a connection (TCP and TLS) to one URL.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds one directory operation (bind, search) may take.
    #[serde(default = "default_operation_timeout_ms")]
    pub operation_timeout_ms: u64,
    /// Connections kept open and used at once.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Seconds the groups read at a login count for later refresh and access token requests;
    /// older ones are read again with the service account.
    #[serde(default = "default_groups_refresh_secs")]
    pub groups_refresh_secs: u64,
}

/// One value or a list of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl OneOrMore {
    /// The values, in order.
    pub fn values(&self) -> &[String] {
        match self {
            OneOrMore::One(one) => std::slice::from_ref(one),
            OneOrMore::More(more) => more,
        }
    }
}

fn default_username_attribute() -> String {
    "uid".into()
}

fn default_group_name_attribute() -> String {
    "cn".into()
}

fn default_nested_groups_depth() -> u32 {
    5
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}

fn default_operation_timeout_ms() -> u64 {
    5_000
}

fn default_pool_size() -> usize {
    4
}

fn default_groups_refresh_secs() -> u64 {
    300
}

/// `[realms.NAME.munge]`: which clusters' MUNGE credentials this realm accepts and how.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MungeSettings {
    /// The platforms (clusters), each with its munge key.
    pub platforms: Vec<PlatformSettings>,
    /// Names under which gateways list this realm's registry in `authorized_locations`.
    pub locations: Vec<String>,
    /// This realm is the gateway's default location: the `default` entry of
    /// `authorized_locations` is used when no entry names one of `locations`.
    pub default_location: bool,
    /// Our uid, for credentials restricted with `munge -u`; unset: such credentials are refused.
    pub service_uid: Option<u32>,
    /// Our gid, for credentials restricted with `munge -g`; unset: such credentials are refused.
    pub service_gid: Option<u32>,
    /// Refuse credentials restricted to no uid or gid (they could be relayed from another service).
    pub require_restriction: bool,
}

/// `[[realms.NAME.munge.platforms]]`: one cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatformSettings {
    /// The platform's name, in mappings (`portcullis munge map --platform`) and audit events.
    pub name: String,
    /// The cluster's munge key file (at least 32 bytes, not readable by group or others).
    pub key_file: PathBuf,
    /// Largest credential lifetime honoured, in seconds (munged's maximum, 3600, by default).
    #[serde(default = "default_max_ttl_secs")]
    pub max_ttl_secs: u32,
    /// Extra seconds of clock difference allowed at both ends of a credential's window.
    #[serde(default)]
    pub clock_skew_secs: u32,
}

fn default_max_ttl_secs() -> u32 {
    crate::munge::MAX_TTL_SECS
}

/// `[server]`: where to listen and how clients reach us.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Socket address to bind, e.g. `127.0.0.1:5001` (port 0 picks a free port).
    pub listen: String,
    /// Base URL clients and registries use to reach this server; the token URLs and default issuers
    /// are derived from it. Empty: `http(s)://<listen>`, with `localhost` for 127.0.0.1 and ::1.
    pub public_url: String,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Largest accepted POST body in bytes.
    pub max_body_bytes: usize,
    /// Seconds a client may take to send a request's head, and then as long again for its body;
    /// slower clients get 408 and are disconnected.
    pub client_timeout_secs: u64,
    /// Open client connections, all workers together; further connections wait in the kernel's
    /// queue. 0: as many as the open-file limit leaves room for.
    pub max_connections: usize,
    /// Proxies whose `X-Forwarded-For` is believed for the client address (lockout, audit);
    /// from anyone else the socket's peer address is used.
    pub trusted_proxies: Vec<IpAddr>,
}

/// `[database]`: `sqlite://...` (embedded default) or `postgres://...`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// Milliseconds a request (or a command) waits for a database connection before it is answered
    /// 503 (or fails): how long a database outage can hold anything up.
    pub acquire_timeout_ms: u64,
}

/// `[keys]`: where realm signing keys and certificates live (`<dir>/<realm>/`) and how they rotate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    pub dir: PathBuf,
    /// How long a key made by `keys rotate` is published before it signs, so registries that read
    /// a bundle or JWKS file at start can be given it and restarted. Not applied in CA realms whose
    /// tokens carry `x5c`: their registries trust the CA already.
    pub publish_before_use_secs: u64,
    /// Rotate the keys of CA realms this often, in the server (`24h`, `90m`, `7d`); unset: only
    /// by `keys rotate`.
    pub rotate_every: Option<Period>,
    /// Validity of the certificates a realm's CA issues to its signing keys.
    pub leaf_lifetime: Period,
    /// Validity of a realm CA's own certificate.
    pub ca_lifetime: Period,
}

/// A length of time written as whole numbers with units, largest first: `90s`, `30m`, `24h`,
/// `7d`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    secs: u64,
}

impl Period {
    pub const fn from_secs(secs: u64) -> Period {
        Period { secs }
    }

    pub fn as_secs(self) -> u64 {
        self.secs
    }

    /// In milliseconds, as key schedules count.
    pub fn as_millis(self) -> i64 {
        i64::try_from(self.secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

impl TryFrom<String> for Period {
    type Error = String;

    fn try_from(text: String) -> Result<Period, String> {
        let bad = || format!("{text:?} is not a period like 90s, 30m, 24h, 7d or 1h30m");
        let mut secs: u64 = 0;
        let mut digits = String::new();
        let mut last_unit = u64::MAX;
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            let count: u64 = digits.parse().map_err(|_| bad())?;
            if unit >= last_unit {
                return Err(bad());
            }
            last_unit = unit;
            secs = count
                .checked_mul(unit)
                .and_then(|n| secs.checked_add(n))
                .ok_or_else(bad)?;
            digits.clear();
        }
        if !digits.is_empty() || last_unit == u64::MAX {
            return Err(bad());
        }
        Ok(Period { secs })
    }
}

impl From<Period> for String {
    fn from(period: Period) -> String {
        period.to_string()
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut left = self.secs;
        let mut text = String::new();
        for (unit, name) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
            if left >= unit {
                text.push_str(&format!("{}{name}", left / unit));
                left %= unit;
            }
        }
        if text.is_empty() {
            text.push_str("0s");
        }
        f.pad(&text)
    }
}

/// `[passwords]`: argon2id parameters for new hashes and the size of the verification pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// Memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// Time cost, iterations (OWASP: 2).
    pub argon2_iterations: u32,
    /// Lanes (OWASP: 1).
    pub argon2_parallelism: u32,
    /// How many password checks may run at once (each holds `argon2_memory_kib` of memory); 0 means
    /// one per CPU.
    pub max_concurrent_checks: usize,
    /// How many password checks may wait for a free slot; more get 503 with Retry-After at once.
    pub max_queued_checks: usize,
    /// Seconds a verified (realm, user, password) is accepted again without argon2; 0 disables.
    pub cache_ttl_secs: u64,
}

/// `[tokens]`: lifetimes of the refresh tokens handed to `docker login` and friends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// A refresh token unused for this many days stops working.
    pub refresh_idle_days: u32,
    /// A refresh token stops working this many days after it was issued, however often it is used.
    pub refresh_lifetime_days: u32,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            refresh_idle_days: 30,
            refresh_lifetime_days: 365,
        }
    }
}

/// `[lockout]`: back-off and temporary locks after failed password attempts, counted per account and
/// per client address in the database (so every instance sees them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutSettings {
    /// Failed attempts on one account before it is locked.
    pub account_threshold: u32,
    /// Failed attempts from one client address before it is locked.
    pub address_threshold: u32,
    /// The first lock, in seconds; each further failure doubles it.
    pub base_lock_secs: u32,
    /// The longest lock, in seconds.
    pub max_lock_secs: u32,
    /// Failures older than this many seconds are forgotten.
    pub reset_after_secs: u32,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        LockoutSettings {
            account_threshold: 5,
            address_threshold: 20,
            base_lock_secs: 30,
            max_lock_secs: 900,
            reset_after_secs: 900,
        }
    }
}

/// `[log]`: `format = "human" | "json"`, `level` as an env-filter directive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// `[tls]`: serve HTTPS when both files are set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:5001".into(),
            public_url: String::new(),
            workers: 0,
            max_body_bytes: 16 * 1024,
            client_timeout_secs: 5,
            max_connections: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://data/portcullis.db".into(),
            max_connections: 8,
            acquire_timeout_ms: 1_000,
        }
    }
}

impl DatabaseSettings {
    /// The URL without its password (in the user information or a `password` parameter), for
    /// messages.
    pub fn url_without_password(&self) -> String {
        let url = self.url.as_str();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut shown = match base.split_once("://") {
            // The user information ends at the last '@': a password may hold '@' or '/'.
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((user_info, host_and_path)) => {
                    let user = user_info.split(':').next().unwrap_or_default();
                    format!("{scheme}://{user}@{host_and_path}")
                }
                None => base.to_owned(),
            },
            None => base.to_owned(),
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| {
                !pair
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .eq_ignore_ascii_case("password")
            })
            .collect();
        if !kept.is_empty() {
            shown.push('?');
            shown.push_str(&kept.join("&"));
        }
        shown
    }
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            dir: "keys".into(),
            publish_before_use_secs: 86_400,
            rotate_every: None,
            leaf_lifetime: Period::from_secs(30 * 86_400),
            ca_lifetime: Period::from_secs(10 * 365 * 86_400),
        }
    }
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_checks: 0,
            max_queued_checks: 64,
            cache_ttl_secs: 300,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// A configuration problem, naming the key (or file) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0}: not found")]
    MissingFile(PathBuf),
    #[error("{0}")]
    Parse(Box<figment::Error>),
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
    /// A key inside a list, such as `realms.default.ldap[0].user_filter`.
    #[error("{key}: {problem}")]
    InvalidEntry { key: String, problem: String },
}

impl Settings {
    /// Defaults, then `file` (when given), then the environment; then every value is checked.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            figment = figment.merge(Toml::file(file));
        }
        let settings: Settings = figment
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return invalid("server.listen", "expected an address like 127.0.0.1:5001");
        }
        let public = &self.server.public_url;
        if !(public.is_empty() || public.starts_with("http://") || public.starts_with("https://")) {
            return invalid("server.public_url", "expected an http:// or https:// URL");
        }
        if self.server.max_body_bytes < 1024 {
            return invalid("server.max_body_bytes", "must be at least 1024");
        }
        if !(1..=MAX_CLIENT_TIMEOUT_SECS).contains(&self.server.client_timeout_secs) {
            return invalid(
                "server.client_timeout_secs",
                &format!("must be 1 to {MAX_CLIENT_TIMEOUT_SECS}"),
            );
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return invalid("database.url", "expected sqlite://PATH or postgres://...");
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        if !(1..=MAX_ACQUIRE_TIMEOUT_MS).contains(&self.database.acquire_timeout_ms) {
            return invalid(
                "database.acquire_timeout_ms",
                &format!("must be 1 to {MAX_ACQUIRE_TIMEOUT_MS}"),
            );
        }
        let p = &self.passwords;
        if argon2::Params::new(
            p.argon2_memory_kib,
            p.argon2_iterations,
            p.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return invalid(
                "passwords",
                "argon2_memory_kib, argon2_iterations, argon2_parallelism are out of argon2's range",
            );
        }
        let l = &self.lockout;
        if l.account_threshold == 0
            || l.address_threshold == 0
            || l.base_lock_secs > l.max_lock_secs
        {
            return invalid(
                "lockout",
                "thresholds must be at least 1 and base_lock_secs at most max_lock_secs",
            );
        }
        let t = &self.tokens;
        if t.refresh_idle_days == 0 || t.refresh_lifetime_days < t.refresh_idle_days {
            return invalid(
                "tokens",
                "refresh_idle_days must be at least 1 and at most refresh_lifetime_days",
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return invalid(
                "log.level",
                "expected a level (error, warn, info, debug, trace) or directives",
            );
        }
        if self
            .realms
            .keys()
            .any(|name| RealmName::parse(name).is_err())
        {
            return invalid(
                "realms",
                "every [realms.NAME] must name a valid realm (a-z, 0-9, '.', '_', '-')",
            );
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return invalid("tls", "set both cert_file and key_file, or neither");
        }
        let c = &self.console;
        if c.idle_timeout_secs < 60 || c.absolute_timeout_secs < c.idle_timeout_secs {
            return invalid(
                "console",
                "idle_timeout_secs must be at least 60 and at most absolute_timeout_secs",
            );
        }
        if self.audit.keep_secs > MAX_AUDIT_KEEP_SECS {
            return invalid(
                "audit.keep_secs",
                &format!("must be at most {MAX_AUDIT_KEEP_SECS} (a year)"),
            );
        }
        if !(1_000..=MAX_AUDIT_EVENTS).contains(&self.audit.max_events) {
            return invalid(
                "audit.max_events",
                &format!("must be 1000 to {MAX_AUDIT_EVENTS}"),
            );
        }
        let k = &self.keys;
        if k.publish_before_use_secs > MAX_PUBLISH_BEFORE_USE_SECS {
            return invalid(
                "keys.publish_before_use_secs",
                &format!("must be at most {MAX_PUBLISH_BEFORE_USE_SECS} (30 days)"),
            );
        }
        if k.leaf_lifetime < MIN_LEAF_LIFETIME || k.ca_lifetime <= k.leaf_lifetime {
            return invalid(
                "keys",
                &format!(
                    "leaf_lifetime must be at least {MIN_LEAF_LIFETIME} and shorter than ca_lifetime"
                ),
            );
        }
        if let Some(every) = k.rotate_every {
            // A key signs for `every`, then its tokens live up to a day (plus leeway): its
            // certificate must outlast both.
            if every < MIN_ROTATE_EVERY
                || every.as_secs() + 86_400 + 3_600 > k.leaf_lifetime.as_secs()
            {
                return invalid(
                    "keys.rotate_every",
                    &format!(
                        "must be at least {MIN_ROTATE_EVERY} and at least 25h shorter than \
                         keys.leaf_lifetime ({})",
                        k.leaf_lifetime
                    ),
                );
            }
        }
        for (realm, settings) in &self.realms {
            directory_settings(realm, &settings.ldap)?;
            issuer_settings(realm, &settings.oidc)?;
        }
        Ok(())
    }

    /// The base URL that clients reach us at, without a trailing slash. Without `server.public_url`
    /// it is derived from `server.listen`, naming the loopback address `localhost`: clients built
    /// on go-containerregistry (crane, ko) refuse a token realm on a loopback or private IP
    /// literal. Only 127.0.0.1 and ::1 are named so; `localhost` does not reach 127.0.0.2. An
    /// unspecified address (`0.0.0.0`, `::`) is no address a client can use: it is named
    /// `localhost` too, which serves clients on this host (and, in a container, through a published
    /// port), and [`Settings::public_url_warning`] says that `server.public_url` must be set.
    pub fn public_url(&self) -> String {
        if self.server.public_url.is_empty() {
            let scheme = if self.tls.cert_file.is_some() {
                "https"
            } else {
                "http"
            };
            let named_localhost = |ip: IpAddr| {
                ip.is_unspecified()
                    || ip == IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
                    || ip == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            };
            match self.server.listen.parse::<SocketAddr>() {
                Ok(addr) if named_localhost(addr.ip()) => {
                    format!("{scheme}://localhost:{}", addr.port())
                }
                _ => format!("{scheme}://{}", self.server.listen),
            }
        } else {
            self.server.public_url.trim_end_matches('/').to_owned()
        }
    }

    /// Why the derived public URL will not reach most clients, when `server.listen` is an
    /// unspecified address (`0.0.0.0`, `::`, as in a container) and `server.public_url` is unset.
    /// The server starts anyway; the caller shows this where the operator looks (the start-up log,
    /// printed registry configurations).
    pub fn public_url_warning(&self) -> Option<String> {
        let unspecified = self
            .server
            .listen
            .parse::<SocketAddr>()
            .is_ok_and(|addr| addr.ip().is_unspecified());
        (unspecified && self.server.public_url.is_empty()).then(|| {
            format!(
                "server.public_url is not set and server.listen {} names no address a client can \
                 use: token URLs and issuers say {}, which only clients on this host reach. Set \
                 server.public_url (environment: PORTCULLIS__SERVER__PUBLIC_URL) to the URL \
                 registries and clients use to reach this server.",
                self.server.listen,
                self.public_url()
            )
        })
    }

    /// The policy file of each realm that has one.
    pub fn policy_files(&self) -> HashMap<RealmName, PathBuf> {
        self.realms
            .iter()
            .filter_map(|(name, realm)| {
                let file = realm.policy_file.clone()?;
                Some((RealmName::parse(name).ok()?, file))
            })
            .collect()
    }

    /// Every realm's directories, checked and typed, in their order.
    pub fn directories(&self) -> Result<Vec<(RealmName, Vec<DirectorySettings>)>, ConfigError> {
        self.realms
            .iter()
            .filter(|(_, settings)| !settings.ldap.is_empty())
            .map(|(realm, settings)| {
                let name = RealmName::parse(realm).map_err(|e| ConfigError::InvalidEntry {
                    key: format!("realms.{realm}"),
                    problem: e.to_string(),
                })?;
                Ok((name, directory_settings(realm, &settings.ldap)?))
            })
            .collect()
    }

    /// Every realm's trusted OIDC issuers, checked and typed, in their order.
    pub fn issuers(&self) -> Result<Vec<(RealmName, Vec<IssuerSettings>)>, ConfigError> {
        self.realms
            .iter()
            .filter(|(_, settings)| !settings.oidc.is_empty())
            .map(|(realm, settings)| {
                let name = RealmName::parse(realm).map_err(|e| ConfigError::InvalidEntry {
                    key: format!("realms.{realm}"),
                    problem: e.to_string(),
                })?;
                Ok((name, issuer_settings(realm, &settings.oidc)?))
            })
            .collect()
    }

    /// Password checks allowed at once.
    pub fn password_check_slots(&self) -> usize {
        match self.passwords.max_concurrent_checks {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        }
    }
}

/// A realm's `[[realms.R.ldap]]` entries, checked: each on its own, and their names unique.
fn directory_settings(
    realm: &str,
    entries: &[LdapSettings],
) -> Result<Vec<DirectorySettings>, ConfigError> {
    let mut parsed: Vec<DirectorySettings> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let at = |field: &str| format!("realms.{realm}.ldap[{index}].{field}");
        let directory = DirectorySettings::parse(entry).map_err(|e| ConfigError::InvalidEntry {
            key: at(e.key),
            problem: e.problem,
        })?;
        if parsed.iter().any(|d| d.name == directory.name) {
            return Err(ConfigError::InvalidEntry {
                key: at("name"),
                problem: format!(
                    "another directory of this realm is named {}",
                    directory.name
                ),
            });
        }
        parsed.push(directory);
    }
    Ok(parsed)
}

/// A realm's `[[realms.R.oidc]]` entries, checked: each on its own, and their names and issuers
/// unique.
fn issuer_settings(
    realm: &str,
    entries: &[OidcSettings],
) -> Result<Vec<IssuerSettings>, ConfigError> {
    let mut parsed: Vec<IssuerSettings> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let at = |field: &str| format!("realms.{realm}.oidc[{index}].{field}");
        let issuer = IssuerSettings::parse(entry).map_err(|e| ConfigError::InvalidEntry {
            key: at(&e.key),
            problem: e.problem,
        })?;
        if parsed.iter().any(|i| i.name == issuer.name) {
            return Err(ConfigError::InvalidEntry {
                key: at("name"),
                problem: format!("another issuer of this realm is named {}", issuer.name),
            });
        }
        if parsed.iter().any(|i| i.issuer == issuer.issuer) {
            return Err(ConfigError::InvalidEntry {
                key: at("issuer"),
                problem: format!("another entry of this realm trusts {}", issuer.issuer),
            });
        }
        parsed.push(issuer);
    }
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return its large error type
mod tests {
    use super::*;

    #[test]
    fn periods_read_largest_unit_first_and_print_back() {
        assert_eq!(
            Period::try_from("90s".to_owned()).unwrap().to_string(),
            "1m30s"
        );
        for (text, secs) in [
            ("45s", 45),
            ("30m", 1800),
            ("24h", 86_400),
            ("7d", 604_800),
            ("1h30m", 5400),
        ] {
            let period = Period::try_from(text.to_owned()).unwrap();
            assert_eq!(period.as_secs(), secs, "{text}");
            assert_eq!(Period::try_from(period.to_string()).unwrap(), period);
        }
        for bad in [
            "",
            "10",
            "h",
            "1x",
            "30m1h",
            "1d1d",
            "-1s",
            "99999999999999999999d",
        ] {
            assert!(Period::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }
    use figment::Jail;

    #[test]
    fn zero_config_defaults() {
        Jail::expect_with(|_| {
            let s = Settings::load(None).unwrap();
            assert_eq!(s.server.listen, "127.0.0.1:5001");
            assert_eq!(s.public_url(), "http://localhost:5001");
            assert_eq!(s.database.url, "sqlite://data/portcullis.db");
            assert_eq!(s.keys.dir, PathBuf::from("keys"));
            assert_eq!(s.passwords.argon2_memory_kib, 19_456);
            Ok(())
        });
    }

    #[test]
    fn the_shipped_example_states_the_defaults() {
        Jail::expect_with(|_| {
            let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("portcullis.example.toml");
            assert_eq!(Settings::load(Some(&example)).unwrap(), Settings::default());
            Ok(())
        });
    }

    #[test]
    fn a_derived_public_url_names_loopback_localhost_and_keeps_others() {
        let url = |listen: &str, tls: bool| {
            let mut s = Settings::default();
            s.server.listen = listen.into();
            if tls {
                s.tls.cert_file = Some("cert.pem".into());
            }
            s.public_url()
        };
        assert_eq!(url("127.0.0.1:5001", false), "http://localhost:5001");
        assert_eq!(url("127.0.0.1:443", true), "https://localhost:443");
        assert_eq!(url("127.3.2.1:5001", false), "http://127.3.2.1:5001");
        assert_eq!(url("[::1]:8080", false), "http://localhost:8080");
        assert_eq!(url("0.0.0.0:5001", false), "http://localhost:5001");
        assert_eq!(url("[::]:5001", true), "https://localhost:5001");
        assert_eq!(url("192.0.2.7:5001", true), "https://192.0.2.7:5001");
    }

    #[test]
    fn an_unspecified_listen_address_without_public_url_is_warned_about() {
        let warning = |listen: &str, public_url: &str| {
            let mut s = Settings::default();
            s.server.listen = listen.into();
            s.server.public_url = public_url.into();
            s.public_url_warning()
        };
        let text = warning("0.0.0.0:5001", "").unwrap();
        assert!(text.contains("PORTCULLIS__SERVER__PUBLIC_URL"), "{text}");
        assert!(text.contains("http://localhost:5001"), "{text}");
        assert!(warning("[::]:5001", "").is_some());
        assert_eq!(warning("0.0.0.0:5001", "https://auth.example.org"), None);
        assert_eq!(warning("127.0.0.1:5001", ""), None);
        assert_eq!(warning("192.0.2.7:5001", ""), None);
    }

    #[test]
    fn file_then_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "p.toml",
                "[server]\nlisten = \"0.0.0.0:8080\"\n[log]\nformat = \"json\"\n",
            )?;
            jail.set_env(
                "PORTCULLIS__SERVER__PUBLIC_URL",
                "https://auth.example.org/",
            );
            let s = Settings::load(Some(Path::new("p.toml"))).unwrap();
            assert_eq!(s.server.listen, "0.0.0.0:8080");
            assert_eq!(s.log.format, LogFormat::Json);
            assert_eq!(s.public_url(), "https://auth.example.org");
            Ok(())
        });
    }

    #[test]
    fn oidc_issuers_load_with_pointer_keys_and_errors_name_the_entry() {
        Jail::expect_with(|jail| {
            let entry = r#"
[[realms.default.oidc]]
name = "k8s"
issuer = "https://kubernetes.default.svc"
audiences = ["registry"]
jwks_file = "jwks.json"

[[realms.default.oidc.rules]]
name = "ci"
groups = ["builders"]
[realms.default.oidc.rules.conditions]
"/kubernetes.io/namespace" = { one_of = ["ci", "build"] }
"ref" = { glob = "refs/heads/*" }
sub = "system:serviceaccount:ci:builder"
"#;
            jail.create_file("oidc.toml", entry)?;
            let settings = Settings::load(Some(Path::new("oidc.toml"))).unwrap();
            let issuers = settings.issuers().unwrap();
            let (realm, issuers) = &issuers[0];
            assert_eq!(realm.as_str(), "default");
            assert_eq!(issuers[0].name.as_str(), "k8s");
            assert_eq!(issuers[0].rules[0].conditions.len(), 3);
            let paths: Vec<String> = issuers[0].rules[0]
                .conditions
                .iter()
                .map(|(path, _)| path.to_string())
                .collect();
            assert_eq!(paths, ["/kubernetes.io/namespace", "/ref", "/sub"]);

            jail.create_file(
                "no-aud.toml",
                &entry.replace(r#"audiences = ["registry"]"#, "audiences = []"),
            )?;
            let err = Settings::load(Some(Path::new("no-aud.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("realms.default.oidc[0].audiences"), "{err}");

            jail.create_file("twice.toml", &format!("{entry}{entry}"))?;
            let err = Settings::load(Some(Path::new("twice.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("realms.default.oidc[1].name"), "{err}");

            jail.create_file(
                "dotted.toml",
                &entry.replace(
                    "\"/kubernetes.io/namespace\"",
                    "\"kubernetes.io.namespace\"",
                ),
            )?;
            let err = Settings::load(Some(Path::new("dotted.toml")))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("realms.default.oidc[0].rules[0].conditions"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_key() {
        Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[server]\nlisten = \"nowhere\"\n")?;
            let err = Settings::load(Some(Path::new("bad.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("server.listen"), "{err}");

            jail.create_file("typo.toml", "[server]\nlisen = \"x\"\n")?;
            let err = Settings::load(Some(Path::new("typo.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("lisen"), "{err}");

            jail.create_file("type.toml", "[passwords]\nargon2_iterations = \"two\"\n")?;
            let err = Settings::load(Some(Path::new("type.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("argon2_iterations"), "{err}");

            jail.create_file("broken.toml", "[server\n")?;
            let err = Settings::load(Some(Path::new("broken.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("broken.toml"), "{err}");

            let err = Settings::load(Some(Path::new("absent.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("absent.toml"), "{err}");

            jail.create_file("slow.toml", "[database]\nacquire_timeout_ms = 600001\n")?;
            let err = Settings::load(Some(Path::new("slow.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("database.acquire_timeout_ms"), "{err}");

            jail.create_file("patient.toml", "[server]\nclient_timeout_secs = 0\n")?;
            let err = Settings::load(Some(Path::new("patient.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("server.client_timeout_secs"), "{err}");

            jail.set_env("PORTCULLIS__DATABASE__URL", "mysql://x");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("database.url"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn database_urls_are_shown_without_passwords() {
        let shown = |url: &str| {
            DatabaseSettings {
                url: url.into(),
                ..DatabaseSettings::default()
            }
            .url_without_password()
        };
        assert_eq!(
            shown("postgres://app:s3cr:et@db.example.org:5432/portcullis"),
            "postgres://app@db.example.org:5432/portcullis"
        );
        assert_eq!(
            shown("postgresql://db/p?user=app&password=s3cret&sslmode=require"),
            "postgresql://db/p?user=app&sslmode=require"
        );
        assert_eq!(shown("postgres://u:p@s/s@db/x"), "postgres://u@db/x");
        assert_eq!(
            shown("sqlite://data/portcullis.db"),
            "sqlite://data/portcullis.db"
        );
    }
}
