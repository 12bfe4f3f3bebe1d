//! The console's pages: each handler checks the session (and the CSRF token of a form), calls the
//! `admin` use case or the authenticator, and renders a template. No business logic here.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::session::{self, Session};
use super::{ConsoleError, ConsoleState, SIGN_IN};
use crate::admin::audit::AuditEvent;
use crate::admin::grants::NewGrant;
use crate::admin::lockouts::LockoutTarget;
use crate::admin::tokens::{Lifetime, NewAccessToken, TokenState};
use crate::admin::users::{Login, NewPassword, NewUser};
use crate::admin::{self, AdminError};
use crate::auth::{AuthnError, Binding, Credentials, Method};
use crate::http::{client_addr, AppState};
use crate::names::{GroupName, RealmName, TokenName, Username};
use crate::policy::ADMIN_SCOPE;
use crate::realm::DEFAULT_REALM;
use crate::store::{unix_now, Role, StoreError, TokenKind, TokenRecord};

type State = web::Data<ConsoleState>;
type App = web::Data<AppState>;

/// The header of a signed-in page.
struct Nav {
    user: String,
    realm: String,
    admin: bool,
    csrf: String,
}

impl Nav {
    fn of(session: &Session) -> Nav {
        Nav {
            user: session.user.username.to_string(),
            realm: session.realm().to_string(),
            admin: session.is_admin(),
            csrf: session.csrf.clone(),
        }
    }
}

fn page(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(html),
        Err(error) => {
            tracing::error!(error = %error, "a console page did not render");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[derive(Template)]
#[template(
    source = "{% extends \"base.html\" %}{% block title %}{{ message }}{% endblock %}\
              {% block content %}<h1>{{ message }}</h1><p><a href=\"/console/\">Back</a></p>{% endblock %}",
    ext = "html"
)]
struct ErrorPage<'a> {
    nav: Option<Nav>,
    message: &'a str,
}

/// A page that says what went wrong.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    page(status, &ErrorPage { nav: None, message })
}

pub async fn not_found() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound)
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("static/console.css"))
}

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("static/console.js"))
}

pub async fn index(session: Option<Session>) -> HttpResponse {
    match session {
        Some(_) => see_other("/console/tokens"),
        None => see_other(SIGN_IN),
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    nav: Option<Nav>,
    realm: String,
    username: String,
    message: Option<String>,
    /// The realm's OpenID providers, as buttons.
    providers: Vec<ProviderLink>,
}

/// A "Sign in with …" button.
pub struct ProviderLink {
    href: String,
    label: String,
}

#[derive(Template)]
#[template(path = "signed_in.html")]
struct SignedInPage {
    nav: Option<Nav>,
    user: String,
}

/// The page after a provider's sign-in, which moves on to the tokens page by itself.
pub fn signed_in_page(user: &Username) -> HttpResponse {
    page(
        StatusCode::OK,
        &SignedInPage {
            nav: None,
            user: user.to_string(),
        },
    )
}

/// The sign-in page of `realm` (as typed), with its providers' buttons when it names a realm.
pub fn sign_in_page(
    state: &ConsoleState,
    status: StatusCode,
    realm: &str,
    username: &str,
    message: Option<String>,
) -> HttpResponse {
    let providers = match RealmName::parse(realm) {
        Ok(name) => state
            .authenticator
            .console_providers(&name)
            .into_iter()
            .map(|provider| ProviderLink {
                href: format!("/console/sso/{}/start?realm={name}", provider.name),
                label: provider.label,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    page(
        status,
        &SignInPage {
            nav: None,
            realm: realm.to_owned(),
            username: username.to_owned(),
            message,
            providers,
        },
    )
}

#[derive(Deserialize)]
pub struct RealmQuery {
    realm: Option<String>,
}

pub async fn sign_in_form(state: State, query: web::Query<RealmQuery>) -> HttpResponse {
    let realm = query.realm.as_deref().unwrap_or(DEFAULT_REALM);
    sign_in_page(&state, StatusCode::OK, realm, "", None)
}

#[derive(Deserialize)]
pub struct SignInForm {
    realm: String,
    username: String,
    password: SecretString,
}

/// Audit events the admin page shows.
const RECENT_EVENTS: usize = 50;
/// What a person is told when sign-in fails, whatever was wrong (as at the token endpoint).
const BAD_SIGN_IN: &str = "Incorrect realm, user name or password.";

pub async fn sign_in(
    request: HttpRequest,
    state: State,
    app: App,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ConsoleError> {
    let SignInForm {
        realm,
        username,
        password,
    } = form.into_inner();
    let refused = |status: StatusCode, message: &'static str, realm: &str, username: &str| {
        sign_in_page(&state, status, realm, username, Some(message.to_owned()))
    };
    let found = match RealmName::parse(&realm) {
        Ok(name) => app.realms.get(&name).await.map_err(|e| {
            tracing::error!(error = %e, "console sign-in: realm not loaded");
            ConsoleError::Unavailable
        })?,
        Err(_) => None,
    };
    let Some(found) = found else {
        return Ok(refused(
            StatusCode::UNAUTHORIZED,
            BAD_SIGN_IN,
            &realm,
            &username,
        ));
    };
    let counters = state.store.counters().await?;
    let address = client_addr(&request, &state.trusted_proxies);
    let binding = Binding {
        service: found.services.first().map_or("", String::as_str),
        scopes: &[],
        client_addr: &address,
    };
    let credentials = Credentials::Password {
        username: username.clone(),
        password,
    };
    let principal = state
        .authenticator
        .authenticate(&found, credentials, &binding, &counters)
        .await;
    let user = match principal {
        Ok(principal) if principal.method == Method::Password => principal.user,
        Ok(_) => None,
        Err(AuthnError::Locked { .. } | AuthnError::Throttled { .. }) => {
            tracing::warn!(target: "audit", event = "console_sign_in_refused", realm = %realm, user = %username, reason = "locked");
            return Ok(refused(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts: try again later.",
                &realm,
                &username,
            ));
        }
        Err(error) => {
            tracing::warn!(target: "audit", event = "console_sign_in_refused", realm = %realm, user = %username, reason = error.audit_reason());
            None
        }
    };
    let Some(user) = user else {
        return Ok(refused(
            StatusCode::UNAUTHORIZED,
            BAD_SIGN_IN,
            &realm,
            &username,
        ));
    };
    let record = state
        .store
        .find_user(&found.name, &user.username)
        .await?
        .ok_or(ConsoleError::SignIn)?;
    let cookie = session::start(&state, &record).await?;
    tracing::info!(target: "audit", event = "console_signed_in", realm = %found.name, user = %record.username, client = %address);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/tokens"))
        .cookie(cookie)
        .finish())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    session: Session,
    state: State,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    session.check_csrf(&form.csrf)?;
    session.end(&state).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, SIGN_IN))
        .cookie(session::removal(&state))
        .finish())
}

pub async fn sign_out_everywhere(
    session: Session,
    state: State,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    session.check_csrf(&form.csrf)?;
    let ended = state.store.delete_user_sessions(session.user.id).await?;
    tracing::info!(target: "audit", event = "console_signed_out_everywhere", realm = %session.realm(), user = %session.user.username, sessions = ended);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, SIGN_IN))
        .cookie(session::removal(&state))
        .finish())
}

/// One token as the tokens page shows it.
struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    created: String,
    last_used: String,
    expires: String,
    state: &'static str,
    active: bool,
}

fn date(at: Option<i64>) -> String {
    at.and_then(|at| time::OffsetDateTime::from_unix_timestamp(at).ok())
        .and_then(|at| {
            at.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
}

fn token_row(record: TokenRecord, state: TokenState) -> TokenRow {
    TokenRow {
        name: record
            .name
            .clone()
            .or(record.client_id.clone())
            .unwrap_or_else(|| "-".to_owned()),
        scopes: record
            .scopes
            .clone()
            .unwrap_or_else(|| "everything you may reach".to_owned()),
        created: date(Some(record.created_at)),
        last_used: date(record.last_used_at),
        expires: record
            .expires_at
            .map_or_else(|| "never".to_owned(), |at| date(Some(at))),
        state: state.as_str(),
        active: state == TokenState::Active,
        id: record.id,
    }
}

/// A token just made, shown once.
struct Created {
    name: String,
    secret: String,
    login: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    nav: Option<Nav>,
    csrf: String,
    created: Option<Created>,
    message: Option<String>,
    choices: Vec<ScopeChoice>,
    access: Vec<TokenRow>,
    refresh: Vec<TokenRow>,
}

/// A scope offered as a checkbox on the token form.
struct ScopeChoice {
    /// The form field that carries it.
    field: &'static str,
    scope: String,
    label: String,
    checked: bool,
}

/// The scopes offered to `user`, the first checked: their own repositories, pull-only, every
/// repository they may pull, the admin API.
fn scope_choices(user: &Username) -> Vec<ScopeChoice> {
    vec![
        ScopeChoice {
            field: "own_push",
            scope: format!("repository:{user}/**:pull,push"),
            label: format!("Push and pull your own repositories ({user}/…)"),
            checked: true,
        },
        ScopeChoice {
            field: "own_pull",
            scope: format!("repository:{user}/**:pull"),
            label: format!("Pull your own repositories ({user}/…)"),
            checked: false,
        },
        ScopeChoice {
            field: "any_pull",
            scope: "repository:**:pull".to_owned(),
            label: "Pull every repository you may pull".to_owned(),
            checked: false,
        },
        ScopeChoice {
            field: "admin",
            scope: ADMIN_SCOPE.to_owned(),
            label: "Call the admin HTTP API as you".to_owned(),
            checked: false,
        },
    ]
}

async fn tokens_page(
    session: &Session,
    state: &ConsoleState,
    created: Option<Created>,
    message: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let listed = admin::tokens::list(
        &state.store,
        session.realm(),
        Some(&session.user.username),
        unix_now(),
    )
    .await
    .map_err(admin_error)?;
    let (mut access, mut refresh) = (Vec::new(), Vec::new());
    for token in listed {
        let kind = token.record.kind;
        let row = token_row(token.record, token.state);
        match kind {
            TokenKind::Access => access.push(row),
            TokenKind::Refresh => refresh.push(row),
        }
    }
    let status = if message.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(page(
        status,
        &TokensPage {
            nav: Some(Nav::of(session)),
            csrf: session.csrf.clone(),
            created,
            message,
            choices: scope_choices(&session.user.username),
            access,
            refresh,
        },
    ))
}

pub async fn tokens(session: Session, state: State) -> Result<HttpResponse, ConsoleError> {
    tokens_page(&session, &state, None, None).await
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    csrf: String,
    name: String,
    /// Scopes typed, one per line.
    #[serde(default)]
    scopes: String,
    /// The checkboxes of [`scope_choices`], present when checked.
    own_push: Option<String>,
    own_pull: Option<String>,
    any_pull: Option<String>,
    admin: Option<String>,
    #[serde(default)]
    expires: String,
}

pub async fn create_token(
    session: Session,
    state: State,
    form: web::Form<NewTokenForm>,
) -> Result<HttpResponse, ConsoleError> {
    session.check_csrf(&form.csrf)?;
    let name = match TokenName::parse(form.name.trim()) {
        Ok(name) => name,
        Err(error) => return tokens_page(&session, &state, None, Some(error.to_string())).await,
    };
    let lifetime = match form.expires.trim() {
        "" => None,
        text => match Lifetime::parse(text) {
            Ok(lifetime) => Some(lifetime),
            Err(error) => {
                return tokens_page(&session, &state, None, Some(error.to_string())).await
            }
        },
    };
    let checked = [&form.own_push, &form.own_pull, &form.any_pull, &form.admin];
    let mut scopes: Vec<String> = scope_choices(&session.user.username)
        .into_iter()
        .zip(checked)
        .filter(|(_, checked)| checked.is_some())
        .map(|(choice, _)| choice.scope)
        .collect();
    scopes.extend(form.scopes.split_whitespace().map(str::to_owned));
    let made = admin::tokens::create(
        &state.store,
        NewAccessToken {
            realm: session.realm().clone(),
            user: session.user.username.clone(),
            name: name.clone(),
            scopes,
            lifetime,
        },
    )
    .await;
    let made = match made {
        Ok(made) => made,
        Err(error @ (AdminError::ScopeLimit(_) | AdminError::Token(_))) => {
            return tokens_page(&session, &state, None, Some(error.to_string())).await
        }
        Err(error) => return Err(admin_error(error)),
    };
    tracing::info!(target: "audit", event = "access_token_created", realm = %session.realm(), by = %session.user.username, user = %session.user.username, token_id = %made.id);
    let registry = match state.settings.registry.as_str() {
        "" => "REGISTRY",
        host => host,
    };
    let created = Created {
        name: name.to_string(),
        secret: made.secret.expose_secret().to_owned(),
        login: format!(
            "docker login -u {} --password-stdin {registry}",
            session.user.username
        ),
    };
    tokens_page(&session, &state, Some(created), None).await
}

pub async fn revoke_token(
    session: Session,
    state: State,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    session.check_csrf(&form.csrf)?;
    let id = path.into_inner();
    let own = admin::tokens::list(
        &state.store,
        session.realm(),
        Some(&session.user.username),
        unix_now(),
    )
    .await
    .map_err(admin_error)?
    .iter()
    .any(|token| token.record.id == id);
    if !own {
        return Err(ConsoleError::NotFound);
    }
    admin::tokens::revoke(&state.store, session.realm(), &id)
        .await
        .map_err(admin_error)?;
    tracing::info!(target: "audit", event = "token_revoked", realm = %session.realm(), by = %session.user.username, token_id = %id);
    Ok(see_other("/console/tokens"))
}

fn admin_error(error: AdminError) -> ConsoleError {
    match error {
        AdminError::Store(error) => error.into(),
        AdminError::NoSuchUser { .. } | AdminError::NoSuchRealm(_) => ConsoleError::NotFound,
        other => {
            tracing::error!(error = %other, "console request failed");
            ConsoleError::Unavailable
        }
    }
}

/// One user as the admin page shows them.
struct UserRow {
    name: String,
    role: &'static str,
    kind: &'static str,
    state: &'static str,
    groups: String,
}

/// One stored grant as the admin page shows it.
struct GrantRow {
    id: i64,
    rule: String,
}

/// One lockout as the admin page shows it; `user` when it is an account of this realm.
struct LockoutRow {
    subject: String,
    failures: i64,
    locked_until: String,
    user: Option<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Option<Nav>,
    csrf: String,
    realm: String,
    message: Option<String>,
    users: Vec<UserRow>,
    groups: Vec<GroupRow>,
    grants: Vec<GrantRow>,
    lockouts: Vec<LockoutRow>,
    events: Vec<EventRow>,
    explain_user: String,
    explain_scope: String,
    explanation: String,
    registry_config: String,
}

/// A group and its members on the admin page.
struct GroupRow {
    name: String,
    members: Vec<String>,
}

/// One recent audit event on the admin page.
struct EventRow {
    at: String,
    event: String,
    level: String,
    /// The fields that say something, `name=value` apart by spaces.
    details: String,
}

impl EventRow {
    fn of(event: AuditEvent) -> EventRow {
        let details = match &event.fields {
            serde_json::Value::Object(fields) => fields
                .iter()
                .filter(|(_, value)| !matches!(value, serde_json::Value::String(s) if s.is_empty()))
                .map(|(name, value)| match value {
                    serde_json::Value::String(text) => format!("{name}={text}"),
                    other => format!("{name}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        EventRow {
            at: event.at,
            event: event.event,
            level: event.level,
            details,
        }
    }
}

/// What the admin page shows besides its lists.
#[derive(Default)]
struct AdminExtras {
    message: Option<String>,
    explain_user: String,
    explain_scope: String,
    explanation: String,
}

async fn admin_page(
    session: &Session,
    state: &ConsoleState,
    app: &AppState,
    extras: AdminExtras,
) -> Result<HttpResponse, ConsoleError> {
    if !session.is_admin() {
        return Err(ConsoleError::Forbidden);
    }
    let realm = session.realm();
    let groups = admin::groups::list(&state.store, realm)
        .await
        .map_err(admin_error)?;
    let group_rows = groups
        .iter()
        .map(|group| GroupRow {
            name: group.name.clone(),
            members: group.members.iter().map(ToString::to_string).collect(),
        })
        .collect();
    let users = admin::users::list(&state.store, realm)
        .await
        .map_err(admin_error)?
        .into_iter()
        .map(|user| UserRow {
            groups: groups
                .iter()
                .filter(|g| g.members.iter().any(|m| m == user.username.as_str()))
                .map(|g| g.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            name: user.username.to_string(),
            role: user.role.as_str(),
            kind: user.kind.as_str(),
            state: if user.disabled { "disabled" } else { "enabled" },
        })
        .collect();
    let grants = admin::grants::list(&state.store, realm)
        .await
        .map_err(admin_error)?
        .into_iter()
        .map(|grant| GrantRow {
            id: grant.id,
            rule: match grant.rule {
                Ok(rule) => rule.to_string(),
                Err(error) => format!("(no longer valid: {error})"),
            },
        })
        .collect();
    let own_prefix = format!("account:{realm}/");
    let lockouts = admin::lockouts::list(&state.store, unix_now(), state.reset_after_secs)
        .await
        .map_err(admin_error)?
        .into_iter()
        .filter(|l| l.subject.starts_with(&own_prefix) || l.subject.starts_with("address:"))
        .map(|l| LockoutRow {
            user: l.subject.strip_prefix(&own_prefix).map(str::to_owned),
            locked_until: date(l.locked_until),
            failures: l.failures,
            subject: l.subject,
        })
        .collect();
    let events = admin::audit::recent(&state.store, realm, None, None, RECENT_EVENTS)
        .await
        .map_err(admin_error)?
        .into_iter()
        .map(EventRow::of)
        .collect();
    let registry_config = match app.realms.get(realm).await {
        Ok(Some(loaded)) => loaded.registry_config(),
        _ => String::new(),
    };
    let status = if extras
        .message
        .as_deref()
        .is_some_and(|m| m.starts_with("Refused"))
    {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(page(
        status,
        &AdminPage {
            nav: Some(Nav::of(session)),
            csrf: session.csrf.clone(),
            realm: realm.to_string(),
            message: extras.message,
            users,
            groups: group_rows,
            grants,
            lockouts,
            events,
            explain_user: extras.explain_user,
            explain_scope: extras.explain_scope,
            explanation: extras.explanation,
            registry_config,
        },
    ))
}

pub async fn admin(session: Session, state: State, app: App) -> Result<HttpResponse, ConsoleError> {
    admin_page(&session, &state, &app, AdminExtras::default()).await
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    csrf: String,
    user: String,
    group: String,
}

impl MemberForm {
    /// The user and group named, or why they are not names.
    fn member(&self) -> Result<(Username, GroupName), String> {
        let user = Username::parse(self.user.trim()).map_err(|e| e.to_string())?;
        let group = GroupName::parse(self.group.trim()).map_err(|e| e.to_string())?;
        Ok((user, group))
    }
}

pub async fn add_member(
    session: Session,
    state: State,
    app: App,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, ConsoleError> {
    admin_form(&session, &form.csrf)?;
    let realm = session.realm();
    let parsed = form.member();
    let message = match parsed {
        Err(reason) => format!("Refused: {reason}"),
        Ok((user, group)) => {
            // The group is made when missing; one that exists already is fine.
            match admin::groups::add(&state.store, realm, &group).await {
                Ok(()) | Err(AdminError::Store(crate::store::StoreError::Conflict(_))) => {}
                Err(error) => return Err(admin_error(error)),
            }
            match admin::groups::set_member(&state.store, realm, &group, &user, true).await {
                Ok(()) => {
                    tracing::info!(target: "audit", event = "group_member_added", realm = %realm, by = %session.user.username, user = %user, group = %group);
                    format!("{user} is in group {group}.")
                }
                Err(error) => format!("Refused: {error}"),
            }
        }
    };
    admin_result(&session, &state, &app, message).await
}

pub async fn remove_member(
    session: Session,
    state: State,
    app: App,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, ConsoleError> {
    admin_form(&session, &form.csrf)?;
    let realm = session.realm();
    let parsed = form.member();
    let message = match parsed {
        Err(reason) => format!("Refused: {reason}"),
        Ok((user, group)) => {
            match admin::groups::set_member(&state.store, realm, &group, &user, false).await {
                Ok(()) => {
                    tracing::info!(target: "audit", event = "group_member_removed", realm = %realm, by = %session.user.username, user = %user, group = %group);
                    format!("{user} is no longer in group {group}.")
                }
                Err(error @ AdminError::Store(StoreError::Database(_))) => {
                    return Err(admin_error(error))
                }
                Err(error) => format!("Refused: {error}"),
            }
        }
    };
    admin_result(&session, &state, &app, message).await
}

#[derive(Deserialize)]
pub struct ExplainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    scope: String,
}

pub async fn explain(
    session: Session,
    state: State,
    app: App,
    form: web::Form<ExplainForm>,
) -> Result<HttpResponse, ConsoleError> {
    admin_form(&session, &form.csrf)?;
    let user_text = form.user.trim();
    let user = match user_text {
        "" => Ok(None),
        name => Username::parse(name).map(Some).map_err(|e| e.to_string()),
    };
    let explanation = match user {
        Err(reason) => format!("Refused: {reason}"),
        Ok(user) => {
            let file = state.policy_files.get(session.realm());
            match admin::policy::explain(
                &state.store,
                file.map(std::path::PathBuf::as_path),
                session.realm(),
                user.as_ref(),
                &[form.scope.trim().to_owned()],
            )
            .await
            {
                Ok(explained) => explained
                    .decisions
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(error @ AdminError::Store(_)) => return Err(admin_error(error)),
                Err(error) => format!("Refused: {error}"),
            }
        }
    };
    let extras = AdminExtras {
        explain_user: user_text.to_owned(),
        explain_scope: form.scope.trim().to_owned(),
        explanation,
        ..AdminExtras::default()
    };
    admin_page(&session, &state, &app, extras).await
}

#[derive(Deserialize)]
pub struct UnlockForm {
    #[serde(default)]
    csrf: String,
    user: String,
}

pub async fn unlock(
    session: Session,
    state: State,
    app: App,
    form: web::Form<UnlockForm>,
) -> Result<HttpResponse, ConsoleError> {
    admin_form(&session, &form.csrf)?;
    let message = match Username::parse(form.user.trim()) {
        Err(error) => format!("Refused: {error}"),
        Ok(user) => {
            let target = LockoutTarget::Account {
                realm: session.realm().clone(),
                user: user.clone(),
            };
            match admin::lockouts::clear(&state.store, &target).await {
                Ok(()) => {
                    tracing::info!(target: "audit", event = "lockout_cleared", realm = %session.realm(), by = %session.user.username, user = %user);
                    format!("{user} is unlocked.")
                }
                Err(error @ AdminError::Store(_)) => return Err(admin_error(error)),
                Err(error) => format!("Refused: {error}"),
            }
        }
    };
    admin_result(&session, &state, &app, message).await
}

/// Answers an admin form with the admin page and what became of it.
async fn admin_result(
    session: &Session,
    state: &ConsoleState,
    app: &AppState,
    message: String,
) -> Result<HttpResponse, ConsoleError> {
    let extras = AdminExtras {
        message: Some(message),
        ..AdminExtras::default()
    };
    admin_page(session, state, app, extras).await
}

/// Refuses a form without this session's CSRF token, or from anyone but an admin.
fn admin_form(session: &Session, csrf: &str) -> Result<(), ConsoleError> {
    session.check_csrf(csrf)?;
    if session.is_admin() {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden)
    }
}

#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    csrf: String,
    name: String,
    kind: String,
    password: Option<SecretString>,
    role: String,
}

pub async fn add_user(
    session: Session,
    state: State,
    app: App,
    form: web::Form<NewUserForm>,
) -> Result<HttpResponse, ConsoleError> {
    admin_form(&session, &form.csrf)?;
    let form = form.into_inner();
    let role = match form.role.as_str() {
        "admin" => Role::Admin,
        _ => Role::User,
    };
    let login = match form.kind.as_str() {
        "robot" => Ok(Login::Robot),
        _ => NewPassword::parse(form.password.unwrap_or_else(|| SecretString::from("")))
            .map(Login::Password),
    };
    let outcome = match (Username::parse(form.name.trim()), login) {
        (Err(error), _) => Err(error.to_string()),
        (_, Err(error)) => Err(error.to_string()),
        (Ok(name), Ok(login)) => {
            let user = NewUser {
                realm: session.realm().clone(),
                name: name.clone(),
                role,
                login,
            };
            match admin::users::add(&state.store, &state.hasher, user).await {
                Ok(()) => {
                    tracing::info!(target: "audit", event = "user_added", realm = %session.realm(), by = %session.user.username, user = %name);
                    Ok(format!("{name} is added."))
                }
                Err(error @ AdminError::Store(StoreError::Database(_))) => {
                    return Err(admin_error(error))
                }
                Err(error) => Err(error.to_string()),
            }
        }
    };
    let message = outcome.unwrap_or_else(|reason| format!("Refused: {reason}"));
    admin_result(&session, &state, &app, message).await
}

#[derive(Deserialize)]
pub struct NewGrantForm {
    #[serde(default)]
    csrf: String,
    subject: String,
    name: String,
    actions: String,
    effect: String,
}

pub async fn add_grant(
    session: Session,
    state: State,
    app: App,
    form: web::Form<NewGrantForm>,
) -> Result<HttpResponse, ConsoleError> {
    admin_form(&session, &form.csrf)?;
    let form = form.into_inner();
    let grant = NewGrant {
        subject: form.subject.trim().to_owned(),
        resource: "repository".to_owned(),
        name: form.name.trim().to_owned(),
        actions: form
            .actions
            .split(',')
            .map(|action| action.trim().to_owned())
            .filter(|action| !action.is_empty())
            .collect(),
        effect: form.effect.trim().to_owned(),
    };
    let message = match admin::grants::add(&state.store, session.realm(), grant).await {
        Ok((id, rule)) => {
            tracing::info!(target: "audit", event = "grant_added", realm = %session.realm(), by = %session.user.username, grant = id, rule = %rule);
            format!("Grant {id} added: {rule}")
        }
        Err(error @ AdminError::Store(StoreError::Database(_))) => return Err(admin_error(error)),
        Err(error) => format!("Refused: {error}"),
    };
    admin_result(&session, &state, &app, message).await
}

pub async fn remove_grant(
    session: Session,
    state: State,
    app: App,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    admin_form(&session, &form.csrf)?;
    let id = path.into_inner();
    let message = match admin::grants::remove(&state.store, session.realm(), id).await {
        Ok(()) => {
            tracing::info!(target: "audit", event = "grant_removed", realm = %session.realm(), by = %session.user.username, grant = id);
            format!("Grant {id} removed.")
        }
        Err(error @ AdminError::Store(StoreError::Database(_))) => return Err(admin_error(error)),
        Err(error) => format!("Refused: {error}"),
    };
    admin_result(&session, &state, &app, message).await
}
