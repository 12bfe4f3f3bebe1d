//! The `portcullis` command line: its arguments, `serve`, and the operator's tools, which parse
//! their arguments, call the use cases in [`crate::admin`] and print the results. The tools act on
//! the same database and key directory the server uses, so an operator never edits SQL or key files
//! by hand. Prompts and reading files and standard input (passwords, imports) belong here.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::admin::{
    self,
    grants::NewGrant,
    imports::Source,
    ldap::Outcome as LdapOutcome,
    realms::{KeyPlace, NewRealm},
    tokens::{Lifetime, ListedToken, NewAccessToken},
    users::{Login, NewPassword, NewUser},
};
use crate::auth::oidc::{self, OidcError, Workload};
use crate::auth::password::Hasher;
use crate::config::{Settings, CONFIG_FILE_ENV};
use crate::jwt::{TokenHeader, DEFAULT_TOKEN_TTL_SECS, MIN_TOKEN_TTL_SECS};
use crate::keys::schedule::KeyState;
use crate::keys::{format_ms, now_ms};
use crate::names::{DirectoryName, GroupName, Issuer, RealmName, ServiceName, TokenName, Username};
use crate::realm::{self, DEFAULT_REALM, MAX_TOKEN_TTL_SECS};
use crate::startup::Application;
use crate::store::{unix_now, Role, Store};

/// A Docker Registry v2 token service.
#[derive(Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Every key can also be set as PORTCULLIS__SECTION__KEY.
    #[arg(long, global = true, env = CONFIG_FILE_ENV)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the token server.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage realms.
    #[command(subcommand)]
    Realm(RealmCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Show and lift locks after repeated failed passwords (accounts and client addresses).
    #[command(subcommand)]
    Lockout(LockoutCommand),
    /// Manage groups and their members.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage policy rules kept in the database (effective at once, no restart).
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Explain decisions and check policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Map cluster uids to users for the MUNGE front door.
    #[command(subcommand)]
    Munge(MungeCommand),
    /// Import users (and rules) from htpasswd files or a docker_auth configuration.
    #[command(subcommand)]
    Import(ImportCommand),
    /// List and revoke refresh and access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// List, export, rotate, activate and revoke realm signing keys; give a realm a CA.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the registry's `auth.token` configuration for a realm.
    RegistryConfig(RealmArg),
    /// Check a realm's LDAP and Active Directory servers.
    #[command(subcommand)]
    Ldap(LdapCommand),
    /// Check a realm's trusted OpenID issuers (workload identity).
    #[command(subcommand)]
    Oidc(OidcCommand),
}

#[derive(Subcommand)]
pub enum OidcCommand {
    /// Verify a JWT (from standard input) as a token request would, printing each check, the
    /// claims, the claim rule that matched and the principal. Writes nothing, logs no token.
    Test {
        #[command(flatten)]
        realm: RealmArg,
        /// Read the JWT from standard input (required: a token is never an argument).
        #[arg(long, required = true)]
        token_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum LdapCommand {
    /// Walk one user's login through the realm's directories, printing each step: connection and
    /// TLS, the search identity's bind, the search filter (with the name escaped) and the entry
    /// found, the groups and their policy names, and with a password the user's bind. Writes
    /// nothing.
    Test {
        #[command(flatten)]
        realm: RealmArg,
        /// The login name.
        #[arg(long)]
        user: Username,
        /// Only this directory of the realm (default: all, in order, as a login tries them).
        #[arg(long)]
        directory: Option<DirectoryName>,
        /// Read the user's password from the first line of standard input and bind with it.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Args)]
pub struct RealmArg {
    /// The realm.
    #[arg(long, default_value = DEFAULT_REALM)]
    pub realm: RealmName,
}

#[derive(Subcommand)]
pub enum RealmCommand {
    /// Add a realm; its keys are generated at once.
    Add {
        name: RealmName,
        /// Accepted `service` value (the registry's auth.token.service); repeat for several.
        #[arg(long = "service", required = true)]
        services: Vec<ServiceName>,
        /// Token issuer, an absolute http(s) URL; default: the realm's token URL.
        #[arg(long)]
        issuer: Option<Issuer>,
        /// Token lifetime in seconds (60 to 86400).
        #[arg(
            long,
            default_value_t = DEFAULT_TOKEN_TTL_SECS,
            value_parser = clap::value_parser!(u64).range(MIN_TOKEN_TTL_SECS..=MAX_TOKEN_TTL_SECS)
        )]
        token_ttl_secs: u64,
        /// Key fields in the token header: `x5c` (with `kid`; registries verify through
        /// rootcertbundle) or `kid` alone (for registry 3.x configured with jwks).
        #[arg(long, default_value_t = TokenHeader::X5c)]
        token_header: TokenHeader,
    },
    /// Change a realm's settings (running servers apply them when restarted).
    Set {
        name: RealmName,
        /// Key fields in the token header: `x5c` or `kid`.
        #[arg(long)]
        token_header: TokenHeader,
    },
    /// List realms.
    List,
}

#[derive(Args)]
pub struct UserArgs {
    /// The user's name.
    pub name: Username,
    #[command(flatten)]
    pub realm: RealmArg,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is prompted for, or read from standard input.
    Add {
        #[command(flatten)]
        user: UserArgs,
        /// Make the user a realm admin (every action on every repository, and the catalog).
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "robot")]
        password_stdin: bool,
        /// A robot account: no password, authenticates only with its access tokens.
        #[arg(long)]
        robot: bool,
    },
    /// Change a user's password.
    Passwd {
        #[command(flatten)]
        user: UserArgs,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: their credentials are refused until enabled again.
    Disable(UserArgs),
    /// Enable a disabled user.
    Enable(UserArgs),
    /// Delete a user.
    Delete(UserArgs),
    /// Lift a lock after repeated failed passwords.
    Unlock(UserArgs),
    /// Set a user's role.
    Role {
        #[command(flatten)]
        user: UserArgs,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// List a realm's users.
    List(RealmArg),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    User,
    Admin,
}

#[derive(Subcommand)]
pub enum LockoutCommand {
    /// List the accounts and addresses whose failures still count: failures, last failure, and
    /// the end of their lock.
    List,
    /// Forget one account's or one client address's failures and lift its lock.
    Clear(LockoutTarget),
}

/// Whose failures `lockout clear` forgets: an account or a client address.
#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["user", "address"])))]
pub struct LockoutTarget {
    /// The account of this user (in --realm).
    #[arg(long)]
    pub user: Option<Username>,
    /// The client address, as an IP address (IPv4 or IPv6).
    #[arg(long)]
    pub address: Option<IpAddr>,
    /// The user's realm.
    #[arg(long, default_value = DEFAULT_REALM, conflicts_with = "address")]
    pub realm: RealmName,
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Add a group.
    Add {
        name: GroupName,
        #[command(flatten)]
        realm: RealmArg,
    },
    /// Delete a group (its grants stay; they match nobody until the group exists again).
    Delete {
        name: GroupName,
        #[command(flatten)]
        realm: RealmArg,
    },
    /// List groups and their members.
    List(RealmArg),
    /// Add or remove members.
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Put a user into a group.
    Add {
        group: GroupName,
        user: Username,
        #[command(flatten)]
        realm: RealmArg,
    },
    /// Take a user out of a group.
    Remove {
        group: GroupName,
        user: Username,
        #[command(flatten)]
        realm: RealmArg,
    },
}

/// The fields of one rule, as in a policy file.
#[derive(Args)]
pub struct RuleArgs {
    /// user:NAME, group:NAME, anonymous, authenticated or any.
    #[arg(long)]
    pub subject: String,
    /// repository or registry.
    #[arg(long, default_value = "repository")]
    pub resource: String,
    /// Name pattern: a glob (`*` within a segment, `**` across) or `re:` and a regular expression;
    /// may hold ${account} and ${group}.
    #[arg(long)]
    pub name: String,
    /// Comma-separated actions: pull, push, delete, * (registry: search, *).
    #[arg(long, value_delimiter = ',', required = true)]
    pub actions: Vec<String>,
    /// allow or deny.
    #[arg(long, default_value = "allow")]
    pub effect: String,
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// Add a rule after the realm's file rules.
    Add {
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        realm: RealmArg,
    },
    /// Remove a rule by id.
    Remove {
        id: i64,
        #[command(flatten)]
        realm: RealmArg,
    },
    /// List the realm's database rules.
    List(RealmArg),
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Show, per scope and action, whether it is granted and which rules decided it.
    Explain {
        #[command(flatten)]
        realm: RealmArg,
        /// The user to decide for (with their groups).
        #[arg(
            long,
            required_unless_present_any = ["anonymous", "oidc_token_stdin"],
            conflicts_with_all = ["anonymous", "oidc_token_stdin"]
        )]
        user: Option<Username>,
        /// Decide for an anonymous caller.
        #[arg(long, conflicts_with = "oidc_token_stdin")]
        anonymous: bool,
        /// Decide for the workload a JWT read from standard input proves (verified now, as a
        /// token request would verify it).
        #[arg(long)]
        oidc_token_stdin: bool,
        /// A scope as a client would request it; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// Validate a policy file offline.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
pub enum MungeCommand {
    /// Map a platform's uid to a user (credentials with an empty payload then act as that user).
    Map {
        #[command(flatten)]
        realm: RealmArg,
        #[arg(long)]
        platform: String,
        #[arg(long)]
        uid: u32,
        #[arg(long)]
        user: Username,
    },
    /// Remove a uid's mapping.
    Unmap {
        #[command(flatten)]
        realm: RealmArg,
        #[arg(long)]
        platform: String,
        #[arg(long)]
        uid: u32,
    },
    /// List the mappings.
    List(RealmArg),
    /// Map every uid of a passwd file whose name is an existing user.
    ImportPasswd {
        #[command(flatten)]
        realm: RealmArg,
        #[arg(long)]
        platform: String,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Users with bcrypt hashes from an htpasswd file (`htpasswd -B`); other hash types and bcrypt
    /// costs above 14 are listed as skipped. The hashes are replaced with argon2id at each user's
    /// first login.
    Htpasswd {
        file: PathBuf,
        #[command(flatten)]
        realm: RealmArg,
    },
    /// Users and ACL of a cesanta/docker_auth configuration: the users are created, the ACL is
    /// written as a first-match policy file; everything that cannot be carried over is listed.
    DockerAuth {
        file: PathBuf,
        #[command(flatten)]
        realm: RealmArg,
        /// Where to write the policy file (then set [realms.R] policy_file to it).
        #[arg(long)]
        policy_out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an access token for a user or robot; its secret is printed once.
    Create {
        #[command(flatten)]
        realm: RealmArg,
        /// The owner.
        #[arg(long)]
        user: Username,
        /// A label, unique among the owner's tokens.
        #[arg(long)]
        name: TokenName,
        /// What the token may reach at most, e.g. 'repository:team/**:pull'; repeat for several.
        /// Without any, it reaches what its owner may on the registry. 'admin' lets it call the
        /// admin HTTP API (/api/v1) as its owner, and reaches nothing on the registry by itself.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime: a number with d, h, m or s (30d, 12h), at most 3650d. Without it, the token
        /// never expires.
        #[arg(long, value_parser = Lifetime::parse)]
        expires: Option<Lifetime>,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        realm: RealmArg,
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<Username>,
    },
    /// Revoke one token by id, or every token of a user.
    Revoke {
        #[command(flatten)]
        realm: RealmArg,
        /// The token id, as `token list` shows it.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Revoke this user's tokens (needs --all).
        #[arg(long, requires = "all")]
        user: Option<Username>,
        /// With --user: every token of that user.
        #[arg(long, requires = "user")]
        all: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List each realm's keys: state (pending, active, published, retired, revoked), schedule and
    /// certificate.
    List,
    /// Print a realm's public keys for registries, as published now.
    Export {
        #[command(flatten)]
        realm: RealmArg,
        #[arg(long, value_enum)]
        format: KeyFormat,
    },
    /// Make the realm's next key: published at once, signing after keys.publish_before_use_secs
    /// (in a CA realm with x5c tokens: within seconds).
    Rotate {
        #[command(flatten)]
        realm: RealmArg,
        /// The CA's private key, when it is not in <keys.dir>/<realm>/ca/key.pem.
        #[arg(long, value_name = "FILE")]
        ca_key: Option<PathBuf>,
    },
    /// Make a pending key sign now (within seconds, on every instance at the same moment).
    Activate {
        #[command(flatten)]
        realm: RealmArg,
        /// The key id, as `keys list` shows it.
        kid: String,
    },
    /// Stop a key at once: it never signs again and leaves the JWKS and bundle.
    Revoke {
        #[command(flatten)]
        realm: RealmArg,
        /// The key id, as `keys list` shows it.
        kid: String,
        /// The CA's private key, when it is not in <keys.dir>/<realm>/ca/key.pem.
        #[arg(long, value_name = "FILE")]
        ca_key: Option<PathBuf>,
    },
    /// A realm's certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
}

#[derive(Subcommand)]
pub enum CaCommand {
    /// Give a realm a certificate authority and its first CA-issued key; registries that trust the
    /// CA accept every later key with no restart.
    Init(RealmArg),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KeyFormat {
    /// PEM certificates, for the registry's `rootcertbundle`.
    PemBundle,
    /// JWKS, for registry 3.x's `jwks`.
    Jwks,
}

/// An error and its causes on one line, `: `-separated, leaving out each cause whose text the line
/// already ends with (an error that shows its source, as `database: {0}` does, would repeat it).
pub fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs a command that needs no server; `serve` is handled by `main`.
pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            open_store(settings).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Realm(command) => realm_command(settings, command).await,
        Command::User(command) => user_command(settings, command).await,
        Command::Lockout(command) => lockout_command(settings, command).await,
        Command::Group(command) => group_command(settings, command).await,
        Command::Grant(command) => grant_command(settings, command).await,
        Command::Policy(command) => policy_command(settings, command).await,
        Command::Munge(command) => munge_command(settings, command).await,
        Command::Import(command) => import_command(settings, command).await,
        Command::Token(command) => token_command(settings, command).await,
        Command::Keys(command) => keys_command(settings, command).await,
        Command::Ldap(command) => ldap_command(settings, command).await,
        Command::Oidc(command) => oidc_command(settings, command).await,
        Command::RegistryConfig(arg) => {
            let store = open_store(settings).await?;
            let place = key_place(settings);
            let realm = admin::realms::load(&store, &place, &arg.realm).await?;
            // The files it names exist before a server ever ran.
            admin::keys::republish(&store, &place, &arg.realm).await?;
            print!("{}", registry_config(settings, &realm));
            Ok(())
        }
    }
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.keep_audit_trail();
    tracing::info!(port = app.port(), "listening on {}", settings.server.listen);
    if let Some(warning) = settings.public_url_warning() {
        tracing::warn!("{warning}");
    }
    let mut out = std::io::stdout().lock();
    for realm in app.realms() {
        // A closed stdout (a supervisor that does not read it) must not stop the server.
        let _ = writeln!(
            out,
            "# Registry configuration for realm {}:\n{}",
            realm.name,
            registry_config(settings, realm)
        );
    }
    drop(out);
    app.run_until_stopped().await?;
    Ok(())
}

/// A realm's registry configuration as printed, headed by a YAML comment when the public URL had
/// to be guessed ([`Settings::public_url_warning`]), so that it is seen where it is copied from.
fn registry_config(settings: &Settings, realm: &realm::Realm) -> String {
    let warning = settings
        .public_url_warning()
        .map(|warning| format!("# WARNING: {warning}\n"));
    format!("{}{}", warning.unwrap_or_default(), realm.registry_config())
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database)
        .await
        .with_context(|| "opening the database (database.url)".to_string())?;
    realm::bootstrap(&store).await?;
    Ok(store)
}

/// Where the realms' keys are and the URL their token endpoints are under.
fn key_place(settings: &Settings) -> KeyPlace {
    KeyPlace {
        keys_dir: settings.keys.dir.clone(),
        public_url: settings.public_url(),
    }
}

async fn realm_command(settings: &Settings, command: RealmCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let place = key_place(settings);
    match command {
        RealmCommand::Add {
            name,
            services,
            issuer,
            token_ttl_secs,
            token_header,
        } => {
            let realm = NewRealm {
                name: name.clone(),
                services,
                issuer,
                token_ttl_secs,
                token_header,
            };
            let added = admin::realms::add(&store, &place, realm).await?;
            println!("realm {name} added; registry configuration:");
            print!("{}", registry_config(settings, &added));
        }
        RealmCommand::Set { name, token_header } => {
            let realm =
                admin::realms::set_token_header(&store, &place, &name, token_header).await?;
            println!(
                "realm {name}: token header {token_header}; restart running servers to apply it. \
                 Registry configuration:"
            );
            print!("{}", registry_config(settings, &realm));
        }
        RealmCommand::List => {
            println!(
                "{:<20} {:<10} {:<6} {:<30} ISSUER",
                "REALM", "TTL_SECS", "HEADER", "SERVICES"
            );
            for realm in admin::realms::list(&store, &place.public_url).await? {
                let r = realm.record;
                println!(
                    "{:<20} {:<10} {:<6} {:<30} {}",
                    r.name,
                    r.token_ttl_secs,
                    r.token_header,
                    r.services.join(","),
                    realm.issuer
                );
            }
        }
    }
    Ok(())
}

async fn user_command(settings: &Settings, command: UserCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let hasher = || Hasher::new(&settings.passwords);
    match command {
        UserCommand::Add {
            user,
            admin,
            password_stdin,
            robot,
        } => {
            let hasher = hasher()?;
            let login = if robot {
                Login::Robot
            } else {
                Login::Password(read_password(password_stdin)?)
            };
            let new = NewUser {
                realm: user.realm.realm.clone(),
                name: user.name.clone(),
                role: if admin { Role::Admin } else { Role::User },
                login,
            };
            admin::users::add(&store, &hasher, new).await?;
            let what = if robot { "robot" } else { "user" };
            println!("{what} {} added to realm {}", user.name, user.realm.realm);
        }
        UserCommand::Passwd {
            user,
            password_stdin,
        } => {
            // A robot is refused before a password is asked for.
            admin::users::check_has_password(&store, &user.realm.realm, &user.name).await?;
            let password = read_password(password_stdin)?;
            let hasher = hasher()?;
            admin::users::set_password(&store, &hasher, &user.realm.realm, &user.name, password)
                .await?;
            println!("password of {} changed", user.name);
        }
        UserCommand::Disable(user) => {
            admin::users::set_disabled(&store, &user.realm.realm, &user.name, true).await?;
            println!("user {} disabled", user.name);
        }
        UserCommand::Enable(user) => {
            admin::users::set_disabled(&store, &user.realm.realm, &user.name, false).await?;
            println!("user {} enabled", user.name);
        }
        UserCommand::Unlock(user) => {
            if admin::lockouts::unlock_user(&store, &user.realm.realm, &user.name).await? {
                println!("user {} unlocked", user.name);
            } else {
                println!("user {} was not locked", user.name);
            }
        }
        UserCommand::Delete(user) => {
            admin::users::delete(&store, &user.realm.realm, &user.name).await?;
            println!("user {} deleted", user.name);
        }
        UserCommand::Role { user, role } => {
            let role = match role {
                RoleArg::User => Role::User,
                RoleArg::Admin => Role::Admin,
            };
            admin::users::set_role(&store, &user.realm.realm, &user.name, role).await?;
            println!("role of {} set", user.name);
        }
        UserCommand::List(arg) => {
            println!(
                "{:<32} {:<6} {:<7} {:<9} {:<20} CREATED",
                "USER", "ROLE", "KIND", "STATE", "SOURCE"
            );
            for u in admin::users::list(&store, &arg.realm).await? {
                let role = u.role.as_str();
                let kind = u.kind.as_str();
                let state = if u.disabled { "disabled" } else { "enabled" };
                println!(
                    "{:<32} {role:<6} {kind:<7} {state:<9} {:<20} {}",
                    u.username,
                    u.source.as_stored(),
                    date(Some(u.created_at))
                );
            }
        }
    }
    Ok(())
}

async fn lockout_command(settings: &Settings, command: LockoutCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        LockoutCommand::List => {
            let lockouts =
                admin::lockouts::list(&store, unix_now(), settings.lockout.reset_after_secs)
                    .await?;
            const SUBJECT: &str = "SUBJECT";
            let width = lockouts
                .iter()
                .map(|lockout| lockout.subject.chars().count())
                .chain([SUBJECT.len()])
                .max()
                .unwrap_or_default();
            println!(
                "{SUBJECT:<width$} {:>8} {:<25} LOCKED_UNTIL",
                "FAILURES", "LAST_FAILURE"
            );
            for lockout in lockouts {
                println!(
                    "{:<width$} {:>8} {:<25} {}",
                    lockout.subject,
                    lockout.failures,
                    date(Some(lockout.last_failure)),
                    date(lockout.locked_until)
                );
            }
        }
        LockoutCommand::Clear(target) => {
            let target = match (target.user, target.address) {
                (Some(user), _) => admin::lockouts::LockoutTarget::Account {
                    realm: target.realm,
                    user,
                },
                (None, Some(address)) => admin::lockouts::LockoutTarget::Address(address),
                (None, None) => bail!("name --user or --address"),
            };
            admin::lockouts::clear(&store, &target).await?;
            println!("failures of {target} cleared; it is not locked");
        }
    }
    Ok(())
}

async fn group_command(settings: &Settings, command: GroupCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        GroupCommand::Add { name, realm } => {
            admin::groups::add(&store, &realm.realm, &name).await?;
            println!("group {name} added");
        }
        GroupCommand::Delete { name, realm } => {
            admin::groups::delete(&store, &realm.realm, &name).await?;
            println!("group {name} deleted");
        }
        GroupCommand::List(realm) => {
            for group in admin::groups::list(&store, &realm.realm).await? {
                println!("{}: {}", group.name, group.members.join(" "));
            }
        }
        GroupCommand::Member(MemberCommand::Add { group, user, realm }) => {
            admin::groups::set_member(&store, &realm.realm, &group, &user, true).await?;
            println!("{user} added to {group}");
        }
        GroupCommand::Member(MemberCommand::Remove { group, user, realm }) => {
            admin::groups::set_member(&store, &realm.realm, &group, &user, false).await?;
            println!("{user} removed from {group}");
        }
    }
    Ok(())
}

async fn grant_command(settings: &Settings, command: GrantCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        GrantCommand::Add { rule, realm } => {
            let grant = NewGrant {
                subject: rule.subject,
                resource: rule.resource,
                name: rule.name,
                actions: rule.actions,
                effect: rule.effect,
            };
            let (id, rule) = admin::grants::add(&store, &realm.realm, grant).await?;
            println!("grant {id} added: {rule}");
        }
        GrantCommand::Remove { id, realm } => {
            admin::grants::remove(&store, &realm.realm, id).await?;
            println!("grant {id} removed");
        }
        GrantCommand::List(realm) => {
            for grant in admin::grants::list(&store, &realm.realm).await? {
                match grant.rule {
                    Ok(rule) => println!("{:<6} {rule}", grant.id),
                    Err(e) => println!("{:<6} INVALID: {e}", grant.id),
                }
            }
        }
    }
    Ok(())
}

async fn policy_command(settings: &Settings, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check { file } => {
            let policy = admin::policy::check(&file)?;
            println!("{}: {} rules, valid", file.display(), policy.rules().len());
        }
        PolicyCommand::Explain {
            realm,
            oidc_token_stdin: true,
            scopes,
            ..
        } => {
            let token = read_token_stdin()?;
            let realm = realm.realm;
            let report = admin::oidc::test(settings, &realm, &token).await?;
            let workload = match report.outcome {
                Ok(workload) => workload,
                Err(e) => bail!("the token would be refused: {e}"),
            };
            print_workload(&workload);
            let store = open_store(settings).await?;
            let file = settings.policy_files().remove(&realm);
            let decisions = admin::policy::explain_workload(
                &store,
                file.as_deref(),
                &realm,
                &workload,
                &scopes,
            )
            .await?;
            for decision in decisions {
                println!("{decision}");
            }
        }
        PolicyCommand::Explain {
            realm,
            user,
            scopes,
            ..
        } => {
            let store = open_store(settings).await?;
            let realm = realm.realm;
            let file = settings.policy_files().remove(&realm);
            let explanation =
                admin::policy::explain(&store, file.as_deref(), &realm, user.as_ref(), &scopes)
                    .await?;
            if let Some(seen) = &explanation.directory_groups {
                println!(
                    "directory groups, as last read at {}: {}",
                    date(Some(seen.at)),
                    if seen.groups.is_empty() {
                        "none".to_owned()
                    } else {
                        seen.groups.join(" ")
                    }
                );
            }
            for decision in explanation.decisions {
                println!("{decision}");
            }
        }
    }
    Ok(())
}

async fn munge_command(settings: &Settings, command: MungeCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        MungeCommand::Map {
            realm,
            platform,
            uid,
            user,
        } => {
            admin::munge::map(&store, &realm.realm, &platform, uid, &user).await?;
            println!("{platform} uid {uid} is {user}");
        }
        MungeCommand::Unmap {
            realm,
            platform,
            uid,
        } => {
            admin::munge::unmap(&store, &realm.realm, &platform, uid).await?;
            println!("{platform} uid {uid} unmapped");
        }
        MungeCommand::List(realm) => {
            println!("{:<20} {:<10} USER", "PLATFORM", "UID");
            for mapping in admin::munge::list(&store, &realm.realm).await? {
                println!(
                    "{:<20} {:<10} {}",
                    mapping.platform, mapping.uid, mapping.user
                );
            }
        }
        MungeCommand::ImportPasswd {
            realm,
            platform,
            file,
        } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
            let counts =
                admin::munge::import_passwd(&store, &realm.realm, &platform, &text).await?;
            println!(
                "{} uid(s) of {platform} mapped; {} line(s) name no user of realm {}",
                counts.mapped, counts.skipped, realm.realm
            );
        }
    }
    Ok(())
}

async fn import_command(settings: &Settings, command: ImportCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let (file, realm, source) = match &command {
        ImportCommand::Htpasswd { file, realm } => (file, &realm.realm, Source::Htpasswd),
        ImportCommand::DockerAuth { file, realm, .. } => (file, &realm.realm, Source::DockerAuth),
    };
    let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let imported =
        admin::imports::read(source, &text).with_context(|| file.display().to_string())?;
    let users = admin::imports::create_users(&store, realm, &imported).await?;
    for name in &users.existing {
        println!("skipped user {name}: already exists in realm {realm}");
    }
    println!("{} user(s) imported into realm {realm}", users.created);
    if let ImportCommand::DockerAuth { policy_out, .. } = &command {
        std::fs::write(
            policy_out,
            imported.policy_file(&file.display().to_string()),
        )
        .with_context(|| policy_out.display().to_string())?;
        println!(
            "{} rule(s) written to {} (first-match); to use them set:\n  [realms.{}]\n  policy_file = {:?}",
            imported.rules.len(),
            policy_out.display(),
            realm,
            policy_out.display().to_string()
        );
    }
    for skipped in &imported.skipped {
        println!("not imported: {}: {}", skipped.what, skipped.why);
    }
    Ok(())
}

async fn token_command(settings: &Settings, command: TokenCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        TokenCommand::List { realm, user } => {
            println!(
                "{:<16} {:<8} {:<20} {:<20} {:<10} {:<20} {:<20} STATE",
                "ID", "KIND", "USER", "NAME/CLIENT", "SCOPES", "CREATED", "LAST USED"
            );
            let tokens =
                admin::tokens::list(&store, &realm.realm, user.as_ref(), unix_now()).await?;
            for ListedToken { record: t, state } in tokens {
                let label = t.name.as_deref().or(t.client_id.as_deref()).unwrap_or("-");
                println!(
                    "{:<16} {:<8} {:<20} {:<20} {:<10} {:<20} {:<20} {}",
                    t.id,
                    t.kind.as_str(),
                    t.username,
                    label,
                    t.scopes.as_deref().unwrap_or("-"),
                    date(Some(t.created_at)),
                    date(t.last_used_at),
                    state.as_str(),
                );
            }
        }
        TokenCommand::Create {
            realm,
            user,
            name,
            scopes,
            expires,
        } => {
            let token = NewAccessToken {
                realm: realm.realm,
                user: user.clone(),
                name: name.clone(),
                scopes,
                lifetime: expires,
            };
            let created = admin::tokens::create(&store, token).await?;
            eprintln!(
                "access token {} ({name}) created for {user}; it is shown only now:",
                created.id
            );
            println!("{}", created.secret.expose_secret());
        }
        TokenCommand::Revoke {
            realm, id, user, ..
        } => match (id, user) {
            (Some(id), _) => {
                admin::tokens::revoke(&store, &realm.realm, &id).await?;
                println!("token {id} revoked");
            }
            (None, Some(user)) => {
                let count = admin::tokens::revoke_all_of(&store, &realm.realm, &user).await?;
                println!("{count} token(s) of {user} revoked");
            }
            (None, None) => bail!("name a token id, or --user U --all"),
        },
    }
    Ok(())
}

/// A Unix time as an RFC 3339 date, `-` when absent.
fn date(at: Option<i64>) -> String {
    at.and_then(|at| time::OffsetDateTime::from_unix_timestamp(at).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
}

async fn keys_command(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let place = key_place(settings);
    let keys = &settings.keys;
    match command {
        KeysCommand::List => {
            let now = now_ms();
            println!(
                "{:<16} {:>3} {:<59} {:<9} {:<31} {:<20} CERTIFICATE",
                "REALM", "GEN", "KID", "STATE", "WHEN", "EXPIRES"
            );
            for (realm, ring) in admin::keys::list(&store, &place).await? {
                for (key, error) in ring.unloadable() {
                    eprintln!(
                        "warning: realm {} key {} cannot be loaded here: {error}",
                        realm.name, key.record.kid
                    );
                }
                for (key, state) in ring.states(now) {
                    let when = match state {
                        KeyState::Pending { activates_at_ms } => {
                            format!("signs from {}", format_ms(activates_at_ms))
                        }
                        KeyState::Active => {
                            format!(
                                "since {}",
                                format_ms(key.record.activate_at_ms.max(key.record.created_at_ms))
                            )
                        }
                        KeyState::Superseded { retires_at_ms, .. } => {
                            format!("until {}", format_ms(retires_at_ms))
                        }
                        KeyState::Retired { since_ms } => format!("since {}", format_ms(since_ms)),
                        KeyState::Revoked { at_ms } => format!("at {}", format_ms(at_ms)),
                    };
                    println!(
                        "{:<16} {:>3} {:<59} {:<9} {:<31} {:<20} {}",
                        realm.name,
                        key.record.generation,
                        key.record.kid,
                        state.name(),
                        when,
                        format_ms(key.certificate.not_after_ms()),
                        if key.record.ca_issued {
                            "issued by the realm CA"
                        } else {
                            "self-signed"
                        },
                    );
                }
            }
        }
        KeysCommand::Export { realm, format } => match format {
            KeyFormat::PemBundle => {
                print!(
                    "{}",
                    admin::keys::pem_bundle(&store, &place, &realm.realm).await?
                )
            }
            KeyFormat::Jwks => {
                let jwks = admin::keys::jwks(&store, &place, &realm.realm).await?;
                println!("{}", serde_json::to_string_pretty(&jwks)?)
            }
        },
        KeysCommand::Rotate { realm, ca_key } => {
            let key =
                admin::keys::rotate(&store, &place, keys, &realm.realm, ca_key.as_deref()).await?;
            print_new_key(&realm.realm, &key);
        }
        KeysCommand::Activate { realm, kid } => {
            let at = admin::keys::activate(&store, &place, &realm.realm, &kid).await?;
            println!("key {kid} signs from {}", format_ms(at));
        }
        KeysCommand::Revoke { realm, kid, ca_key } => {
            let revoked =
                admin::keys::revoke(&store, &place, keys, &realm.realm, &kid, ca_key.as_deref())
                    .await?;
            println!(
                "key {} is revoked: it signs nothing from now on",
                revoked.kid
            );
            match (&revoked.replacement, &revoked.no_replacement) {
                (Some(next), _) => println!("key {next} signs instead, from now"),
                (None, Some(why)) => println!(
                    "no key signs for realm {} until `keys rotate` succeeds: {why}",
                    realm.realm
                ),
                (None, None) => {}
            }
            println!(
                "Registries that read {} or {} still trust it until they are given the rewritten \
                 file and restarted: do that now.",
                revoked.bundle.display(),
                revoked.jwks.display()
            );
            if let Some(until) = revoked.ca_issued_until_ms {
                println!(
                    "Its certificate was issued by the realm's CA, and registries read no revocation \
                     list: every registry that trusts the CA accepts tokens signed with this key \
                     until the certificate expires at {}. To end that sooner, the CA itself must \
                     be replaced in every registry.",
                    format_ms(until)
                );
            }
        }
        KeysCommand::Ca(CaCommand::Init(realm)) => {
            let ca = admin::keys::ca_init(&store, &place, keys, &realm.realm).await?;
            println!(
                "realm {} has a certificate authority: {}",
                realm.realm,
                ca.certificate.display()
            );
            println!(
                "Its private key is {}; keep it there for `keys rotate` and keys.rotate_every, or \
                 move it offline and pass --ca-key FILE to `keys rotate`.",
                ca.key.display()
            );
            print_new_key(&realm.realm, &ca.first_key);
        }
    }
    Ok(())
}

/// What a new key asks of the operator.
fn print_new_key(realm: &RealmName, key: &admin::keys::NewKey) {
    println!(
        "key {} of realm {realm} signs from {}",
        key.kid,
        format_ms(key.activates_at_ms)
    );
    if key.needs_publication {
        println!(
            "Before then, give every registry the rewritten {} (rootcertbundle) or {} (jwks) and \
             restart it; or run `portcullis keys activate --realm {realm} {}` once they have it.",
            key.bundle.display(),
            key.jwks.display(),
            key.kid
        );
    } else {
        println!("Registries trust the realm's CA: nothing to do.");
    }
}

async fn ldap_command(settings: &Settings, command: LdapCommand) -> anyhow::Result<()> {
    match command {
        LdapCommand::Test {
            realm,
            user,
            directory,
            password_stdin,
        } => {
            let password = password_stdin
                .then(|| -> anyhow::Result<SecretString> {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    Ok(SecretString::from(
                        line.trim_end_matches(['\r', '\n']).to_owned(),
                    ))
                })
                .transpose()?;
            let reports =
                admin::ldap::test(settings, &realm.realm, directory.as_ref(), &user, password)
                    .await?;
            let mut failure = None;
            for report in reports {
                println!("directory {}:", report.directory);
                for step in &report.steps {
                    println!("  {}", step.to_string().replace('\n', "\n  "));
                }
                let outcome = match &report.outcome {
                    LdapOutcome::Accepted => "the password is right: login accepted".to_owned(),
                    LdapOutcome::Found => "user found (no password given: no user bind)".to_owned(),
                    LdapOutcome::WrongPassword => "wrong password: login refused (401)".to_owned(),
                    LdapOutcome::EmptyPassword => {
                        "empty password: refused before any connection (401)".to_owned()
                    }
                    LdapOutcome::NotFound => {
                        "user not found: a login tries the next directory".to_owned()
                    }
                    LdapOutcome::Ambiguous => {
                        "several entries match: login refused (401); narrow user_filter".to_owned()
                    }
                    LdapOutcome::Failed(error) => {
                        failure = Some(error.clone());
                        format!("failed: {error} (a login would get 503)")
                    }
                };
                println!("  => {outcome}");
            }
            if let Some(error) = failure {
                bail!("{error}");
            }
        }
    }
    Ok(())
}

async fn oidc_command(settings: &Settings, command: OidcCommand) -> anyhow::Result<()> {
    match command {
        OidcCommand::Test { realm, .. } => {
            let token = read_token_stdin()?;
            let report = admin::oidc::test(settings, &realm.realm, &token).await?;
            for step in &report.steps {
                println!("{step}");
            }
            if let Some(claims) = &report.claims {
                let label = if report.outcome.is_ok() {
                    "claims (verified)"
                } else {
                    "claims (NOT verified)"
                };
                println!("{label}:\n{}", serde_json::to_string_pretty(claims)?);
            }
            match report.outcome {
                Ok(workload) => {
                    print_workload(&workload);
                    println!("=> accepted");
                }
                Err(OidcError::Refused { refusal, .. }) => {
                    bail!(
                        "refused: {} (a token request would get 401)",
                        refusal.reason()
                    )
                }
                Err(OidcError::Unavailable(e)) => {
                    bail!("{e} (a token request would get 503)")
                }
            }
        }
    }
    Ok(())
}

/// The principal a verified JWT proves.
fn print_workload(workload: &Workload) {
    println!("issuer: {}", workload.issuer);
    println!("claim rule: {}", workload.rule);
    println!("principal: {}", workload.name);
    println!(
        "groups: {}",
        if workload.groups.is_empty() {
            "none".to_owned()
        } else {
            workload.groups.join(" ")
        }
    );
    println!(
        "expires: {}",
        date(Some(i64::try_from(workload.expires_at).unwrap_or(i64::MAX)))
    );
}

/// A JWT: standard input, whitespace around it ignored. Never from argv.
fn read_token_stdin() -> anyhow::Result<SecretString> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(oidc::MAX_JWT_LEN as u64 + 2)
        .read_to_string(&mut text)?;
    let token = text.trim();
    if token.is_empty() {
        bail!("no token on standard input");
    }
    Ok(SecretString::from(token.to_owned()))
}

/// A new password: the first line of standard input, or typed twice at a prompt. Never from argv.
fn read_password(from_stdin: bool) -> anyhow::Result<NewPassword> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to prompt for a password; use --password-stdin");
        }
        let first = SecretString::from(rpassword::prompt_password("Password: ")?);
        let second = SecretString::from(rpassword::prompt_password("Repeat password: ")?);
        if first.expose_secret() != second.expose_secret() {
            bail!("the passwords do not match");
        }
        first
    };
    Ok(NewPassword::parse(password)?)
}
