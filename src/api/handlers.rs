//! The admin API's handlers: each checks the caller's role, parses the path and body into the
//! `admin` use case's types, calls it, and shapes the answer. No business logic here.

use std::path::PathBuf;

use actix_web::{web, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::caller::{Admin, Caller};
use super::error::ApiError;
use super::page::{self, Page, PageQuery};
use super::{openapi, ApiState};
use crate::admin::grants::NewGrant;
use crate::admin::lockouts::LockoutTarget;
use crate::admin::tokens::{Lifetime, NewAccessToken};
use crate::admin::users::{Login, NewPassword, NewUser};
use crate::admin::{self, AdminError};
use crate::keys::schedule::KeyState;
use crate::keys::{format_ms, now_ms};
use crate::names::{GroupName, NameError, TokenName, Username};
use crate::store::{unix_now, Role, TokenRecord, UserRecord};

type Data = web::Data<ApiState>;

/// A name from the path or body, or a 400 saying why not.
fn parse<T>(parse: impl Fn(&str) -> Result<T, NameError>, text: &str) -> Result<T, ApiError> {
    parse(text).map_err(|e| ApiError::from(AdminError::Name(e)))
}

/// The path's `{user}`.
fn user_in(path: &web::Path<(String, String)>) -> Result<Username, ApiError> {
    parse(Username::parse, &path.1)
}

pub async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok().json(openapi::document())
}

#[derive(Serialize)]
struct RealmView {
    name: String,
    services: Vec<String>,
    issuer: String,
    token_ttl_secs: u64,
    token_header: &'static str,
}

pub async fn realm(Admin(caller): Admin, state: Data) -> Result<HttpResponse, ApiError> {
    let summary = admin::realms::list(&state.store, &state.place.public_url)
        .await?
        .into_iter()
        .find(|summary| summary.record.name == caller.realm)
        .ok_or_else(|| ApiError::from(AdminError::NoSuchRealm(caller.realm.clone())))?;
    Ok(HttpResponse::Ok().json(RealmView {
        name: summary.record.name.to_string(),
        services: summary.record.services,
        issuer: summary.issuer,
        token_ttl_secs: summary.record.token_ttl_secs,
        token_header: summary.record.token_header.as_str(),
    }))
}

#[derive(Serialize)]
struct MeView {
    realm: String,
    user: String,
    role: &'static str,
}

pub async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(MeView {
        realm: caller.realm.to_string(),
        user: caller.user.to_string(),
        role: caller.role.as_str(),
    })
}

#[derive(Serialize)]
struct UserView {
    name: String,
    role: &'static str,
    kind: &'static str,
    disabled: bool,
    /// `local` or `ldap:<directory>`.
    source: String,
    created_at: i64,
}

impl From<UserRecord> for UserView {
    fn from(user: UserRecord) -> Self {
        UserView {
            name: user.username.to_string(),
            role: user.role.as_str(),
            kind: user.kind.as_str(),
            disabled: user.disabled,
            source: user.source.as_stored(),
            created_at: user.created_at,
        }
    }
}

pub async fn list_users(
    Admin(caller): Admin,
    state: Data,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let users = admin::users::list(&state.store, &caller.realm).await?;
    let views: Vec<UserView> = users.into_iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok().json(query.page(views, |u| u.name.clone())?))
}

/// A user to add: a person with a password, or a robot (`"kind": "robot"`, no password).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    name: String,
    #[serde(default)]
    role: RoleBody,
    #[serde(default)]
    kind: KindBody,
    password: Option<SecretString>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RoleBody {
    #[default]
    User,
    Admin,
}

impl From<RoleBody> for Role {
    fn from(role: RoleBody) -> Role {
        match role {
            RoleBody::User => Role::User,
            RoleBody::Admin => Role::Admin,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum KindBody {
    #[default]
    Person,
    Robot,
}

pub async fn add_user(
    Admin(caller): Admin,
    state: Data,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = parse(Username::parse, &body.name)?;
    let login = match (body.kind, body.password) {
        (KindBody::Person, Some(password)) => Login::Password(NewPassword::parse(password)?),
        (KindBody::Person, None) => {
            return Err(ApiError::Invalid("a person needs a password".to_owned()))
        }
        (KindBody::Robot, None) => Login::Robot,
        (KindBody::Robot, Some(_)) => {
            return Err(ApiError::Invalid(
                "a robot has no password, only access tokens".to_owned(),
            ))
        }
    };
    let user = NewUser {
        realm: caller.realm.clone(),
        name: name.clone(),
        role: body.role.into(),
        login,
    };
    admin::users::add(&state.store, &state.hasher, user).await?;
    tracing::info!(target: "audit", event = "user_added", realm = %caller.realm, by = %caller.user, user = %name);
    let stored = find_user(&state, &caller, &name).await?;
    Ok(HttpResponse::Created().json(UserView::from(stored)))
}

async fn find_user(
    state: &ApiState,
    caller: &Caller,
    name: &Username,
) -> Result<UserRecord, ApiError> {
    Ok(state
        .store
        .find_user(&caller.realm, name)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser {
            user: name.clone(),
            realm: caller.realm.clone(),
        })?)
}

pub async fn user(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let name = user_in(&path)?;
    Ok(HttpResponse::Ok().json(UserView::from(find_user(&state, &caller, &name).await?)))
}

/// What may change about a user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    role: Option<RoleBody>,
    disabled: Option<bool>,
}

pub async fn change_user(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String)>,
    body: web::Json<UserChange>,
) -> Result<HttpResponse, ApiError> {
    let name = user_in(&path)?;
    find_user(&state, &caller, &name).await?;
    if let Some(role) = body.role {
        let role = role.into();
        admin::users::set_role(&state.store, &caller.realm, &name, role).await?;
        tracing::info!(target: "audit", event = "user_role_set", realm = %caller.realm, by = %caller.user, user = %name, role = role.as_str());
    }
    if let Some(disabled) = body.disabled {
        admin::users::set_disabled(&state.store, &caller.realm, &name, disabled).await?;
        tracing::info!(target: "audit", event = if disabled { "user_disabled" } else { "user_enabled" }, realm = %caller.realm, by = %caller.user, user = %name);
    }
    Ok(HttpResponse::Ok().json(UserView::from(find_user(&state, &caller, &name).await?)))
}

pub async fn delete_user(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let name = user_in(&path)?;
    if name == caller.user {
        return Err(ApiError::Conflict(
            "you cannot delete yourself: another admin must".to_owned(),
        ));
    }
    admin::users::delete(&state.store, &caller.realm, &name).await?;
    tracing::info!(target: "audit", event = "user_deleted", realm = %caller.realm, by = %caller.user, user = %name);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct GroupView {
    name: String,
    members: Vec<String>,
}

pub async fn list_groups(
    Admin(caller): Admin,
    state: Data,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let groups = admin::groups::list(&state.store, &caller.realm).await?;
    let views: Vec<GroupView> = groups
        .into_iter()
        .map(|group| GroupView {
            name: group.name,
            members: group.members.iter().map(ToString::to_string).collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(query.page(views, |g| g.name.clone())?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroupBody {
    name: String,
}

pub async fn add_group(
    Admin(caller): Admin,
    state: Data,
    body: web::Json<NewGroupBody>,
) -> Result<HttpResponse, ApiError> {
    let name = parse(GroupName::parse, &body.name)?;
    admin::groups::add(&state.store, &caller.realm, &name).await?;
    tracing::info!(target: "audit", event = "group_added", realm = %caller.realm, by = %caller.user, group = %name);
    Ok(HttpResponse::Created().json(GroupView {
        name: name.to_string(),
        members: Vec::new(),
    }))
}

pub async fn delete_group(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let group = parse(GroupName::parse, &path.1)?;
    admin::groups::delete(&state.store, &caller.realm, &group).await?;
    tracing::info!(target: "audit", event = "group_deleted", realm = %caller.realm, by = %caller.user, group = %group);
    Ok(HttpResponse::NoContent().finish())
}

async fn set_member(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String, String)>,
    member: bool,
) -> Result<HttpResponse, ApiError> {
    let group = parse(GroupName::parse, &path.1)?;
    let user = parse(Username::parse, &path.2)?;
    admin::groups::set_member(&state.store, &caller.realm, &group, &user, member).await?;
    let event = if member {
        "group_member_added"
    } else {
        "group_member_removed"
    };
    tracing::info!(target: "audit", event, realm = %caller.realm, by = %caller.user, user = %user, group = %group);
    Ok(HttpResponse::NoContent().finish())
}

pub async fn add_member(
    caller: Admin,
    state: Data,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    set_member(caller, state, path, true).await
}

pub async fn remove_member(
    caller: Admin,
    state: Data,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    set_member(caller, state, path, false).await
}

#[derive(Serialize)]
struct GrantView {
    id: i64,
    /// The rule as a policy file line, or why its stored text no longer parses.
    rule: String,
    valid: bool,
}

pub async fn list_grants(
    Admin(caller): Admin,
    state: Data,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let grants = admin::grants::list(&state.store, &caller.realm).await?;
    let views: Vec<GrantView> = grants
        .into_iter()
        .map(|grant| GrantView {
            id: grant.id,
            valid: grant.rule.is_ok(),
            rule: match grant.rule {
                Ok(rule) => rule.to_string(),
                Err(error) => error.to_string(),
            },
        })
        .collect();
    // Keys sort as text: zero-padded ids keep the order they apply in.
    Ok(HttpResponse::Ok().json(query.page(views, |g| format!("{:020}", g.id))?))
}

/// A rule's fields, as in a policy file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGrantBody {
    subject: String,
    #[serde(default = "repository")]
    resource: String,
    name: String,
    actions: Vec<String>,
    #[serde(default = "allow")]
    effect: String,
}

fn repository() -> String {
    "repository".to_owned()
}

fn allow() -> String {
    "allow".to_owned()
}

pub async fn add_grant(
    Admin(caller): Admin,
    state: Data,
    body: web::Json<NewGrantBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let grant = NewGrant {
        subject: body.subject,
        resource: body.resource,
        name: body.name,
        actions: body.actions,
        effect: body.effect,
    };
    let (id, rule) = admin::grants::add(&state.store, &caller.realm, grant).await?;
    tracing::info!(target: "audit", event = "grant_added", realm = %caller.realm, by = %caller.user, grant = id, rule = %rule);
    Ok(HttpResponse::Created().json(GrantView {
        id,
        rule: rule.to_string(),
        valid: true,
    }))
}

pub async fn remove_grant(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path
        .1
        .parse()
        .map_err(|_| ApiError::Invalid(format!("{:?} is not a grant id", path.1)))?;
    admin::grants::remove(&state.store, &caller.realm, id).await?;
    tracing::info!(target: "audit", event = "grant_removed", realm = %caller.realm, by = %caller.user, grant = id);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct TokenView {
    id: String,
    kind: &'static str,
    user: String,
    name: Option<String>,
    client_id: Option<String>,
    scopes: Vec<String>,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    state: &'static str,
}

fn token_view(record: TokenRecord, state: &'static str) -> TokenView {
    TokenView {
        id: record.id,
        kind: record.kind.as_str(),
        user: record.username.to_string(),
        name: record.name,
        client_id: record.client_id,
        scopes: record
            .scopes
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default(),
        created_at: record.created_at,
        last_used_at: record.last_used_at,
        expires_at: record.expires_at,
        revoked_at: record.revoked_at,
        state,
    }
}

/// `?user=NAME` (admins only) besides the page.
#[derive(Deserialize)]
pub struct TokenQuery {
    user: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub async fn list_tokens(
    caller: Caller,
    state: Data,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let user = match (&query.user, caller.role) {
        (Some(name), _) => Some(parse(Username::parse, name)?),
        (None, Role::Admin) => None,
        (None, Role::User) => Some(caller.user.clone()),
    };
    if let Some(user) = &user {
        caller.require_self_or_admin(user)?;
    }
    let tokens =
        admin::tokens::list(&state.store, &caller.realm, user.as_ref(), unix_now()).await?;
    let views: Vec<TokenView> = tokens
        .into_iter()
        .map(|t| token_view(t.record, t.state.as_str()))
        .collect();
    Ok(HttpResponse::Ok().json(query.page.page(views, |t| t.id.clone())?))
}

/// An access token to create: for the caller, or (admins) for `user`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    name: String,
    user: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    /// `30d`, `12h`, ...; none: it never expires.
    expires: Option<String>,
}

#[derive(Serialize)]
struct CreatedView {
    id: String,
    /// Shown in this answer only; only its digest is stored.
    secret: String,
    user: String,
    name: String,
    docker_login: String,
}

pub async fn create_token(
    caller: Caller,
    state: Data,
    body: web::Json<NewTokenBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = match &body.user {
        Some(name) => parse(Username::parse, name)?,
        None => caller.user.clone(),
    };
    caller.require_self_or_admin(&user)?;
    let name = parse(TokenName::parse, &body.name)?;
    let lifetime = body.expires.as_deref().map(Lifetime::parse).transpose()?;
    let created = admin::tokens::create(
        &state.store,
        NewAccessToken {
            realm: caller.realm.clone(),
            user: user.clone(),
            name: name.clone(),
            scopes: body.scopes,
            lifetime,
        },
    )
    .await?;
    tracing::info!(target: "audit", event = "access_token_created", realm = %caller.realm, by = %caller.user, user = %user, token_id = %created.id);
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedView {
            docker_login: format!("docker login -u {user} --password-stdin <registry>"),
            id: created.id,
            secret: created.secret.expose_secret().to_owned(),
            user: user.to_string(),
            name: name.to_string(),
        }))
}

pub async fn revoke_token(
    caller: Caller,
    state: Data,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = &path.1;
    if caller.role != Role::Admin {
        let own = admin::tokens::list(&state.store, &caller.realm, Some(&caller.user), unix_now())
            .await?
            .iter()
            .any(|t| &t.record.id == id);
        if !own {
            // Not told apart from a token that does not exist.
            return Err(ApiError::NotFound(format!("token {id} not found")));
        }
    }
    admin::tokens::revoke(&state.store, &caller.realm, id).await?;
    tracing::info!(target: "audit", event = "token_revoked", realm = %caller.realm, by = %caller.user, token_id = %id);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct KeyView {
    generation: i64,
    kid: String,
    state: &'static str,
    /// For a pending key, when it signs from; for a published one, when it retires.
    until: Option<String>,
    certificate_expires_at: String,
    ca_issued: bool,
}

pub async fn list_keys(
    Admin(caller): Admin,
    state: Data,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let realm = admin::realms::load(&state.store, &state.place, &caller.realm).await?;
    let keys = realm.keys();
    let views: Vec<KeyView> = keys
        .states(now_ms())
        .into_iter()
        .map(|(key, key_state)| KeyView {
            generation: key.record.generation,
            kid: key.record.kid.clone(),
            state: key_state.name(),
            until: match key_state {
                KeyState::Pending { activates_at_ms } => Some(format_ms(activates_at_ms)),
                KeyState::Superseded { retires_at_ms, .. } => Some(format_ms(retires_at_ms)),
                _ => None,
            },
            certificate_expires_at: format_ms(key.certificate.not_after_ms()),
            ca_issued: key.record.ca_issued,
        })
        .collect();
    Ok(HttpResponse::Ok().json(query.page(views, |k| format!("{:020}", k.generation))?))
}

/// Whom to explain for (none: an anonymous caller) and the scopes as a client would request them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    user: Option<String>,
    scopes: Vec<String>,
}

#[derive(Serialize)]
struct DecisionView {
    requested: String,
    granted: Option<String>,
    /// The explanation `policy explain` prints: one line per action with the deciding rules.
    explanation: Vec<String>,
}

pub async fn explain(
    Admin(caller): Admin,
    state: Data,
    body: web::Json<ExplainBody>,
) -> Result<HttpResponse, ApiError> {
    let user = body
        .user
        .as_deref()
        .map(|name| parse(Username::parse, name))
        .transpose()?;
    if body.scopes.is_empty() {
        return Err(ApiError::Invalid("name at least one scope".to_owned()));
    }
    let file = state.policy_files.get(&caller.realm);
    let explanation = admin::policy::explain(
        &state.store,
        file.map(PathBuf::as_path),
        &caller.realm,
        user.as_ref(),
        &body.scopes,
    )
    .await?;
    let decisions: Vec<DecisionView> = explanation
        .decisions
        .iter()
        .map(|decision| DecisionView {
            requested: decision.requested().to_string(),
            granted: decision.granted().map(ToString::to_string),
            explanation: decision.to_string().lines().map(str::to_owned).collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "decisions": decisions })))
}

#[derive(Serialize)]
struct MappingView {
    uid: i64,
    user: String,
}

pub async fn list_munge(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let platform = &path.1;
    let views: Vec<MappingView> = admin::munge::list(&state.store, &caller.realm)
        .await?
        .into_iter()
        .filter(|m| &m.platform == platform)
        .map(|m| MappingView {
            uid: m.uid,
            user: m.user,
        })
        .collect();
    Ok(HttpResponse::Ok().json(query.page(views, |m| format!("{:020}", m.uid))?))
}

/// The user a uid maps to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    user: String,
}

fn uid_in(path: &web::Path<(String, String, String)>) -> Result<u32, ApiError> {
    path.2
        .parse()
        .map_err(|_| ApiError::Invalid(format!("{:?} is not a uid (0 to 4294967295)", path.2)))
}

pub async fn map_munge(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String, String)>,
    body: web::Json<MappingBody>,
) -> Result<HttpResponse, ApiError> {
    let uid = uid_in(&path)?;
    let user = parse(Username::parse, &body.user)?;
    find_user(&state, &caller, &user).await?;
    admin::munge::map(&state.store, &caller.realm, &path.1, uid, &user).await?;
    tracing::info!(target: "audit", event = "munge_mapped", realm = %caller.realm, by = %caller.user, platform = %path.1, uid, user = %user);
    Ok(HttpResponse::NoContent().finish())
}

pub async fn unmap_munge(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let uid = uid_in(&path)?;
    admin::munge::unmap(&state.store, &caller.realm, &path.1, uid).await?;
    tracing::info!(target: "audit", event = "munge_unmapped", realm = %caller.realm, by = %caller.user, platform = %path.1, uid);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct LockoutView {
    subject: String,
    failures: i64,
    last_failure: i64,
    locked_until: Option<i64>,
}

pub async fn list_lockouts(
    Admin(caller): Admin,
    state: Data,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let own_realm = format!("account:{}/", caller.realm);
    let views: Vec<LockoutView> =
        admin::lockouts::list(&state.store, unix_now(), state.reset_after_secs)
            .await?
            .into_iter()
            // An admin sees their realm's accounts and every address (addresses have no realm).
            .filter(|l| l.subject.starts_with(&own_realm) || l.subject.starts_with("address:"))
            .map(|l| LockoutView {
                subject: l.subject,
                failures: l.failures,
                last_failure: l.last_failure,
                locked_until: l.locked_until,
            })
            .collect();
    Ok(HttpResponse::Ok().json(query.page(views, |l| l.subject.clone())?))
}

pub async fn clear_user_lockout(
    Admin(caller): Admin,
    state: Data,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let user = user_in(&path)?;
    let target = LockoutTarget::Account {
        realm: caller.realm.clone(),
        user,
    };
    admin::lockouts::clear(&state.store, &target).await?;
    tracing::info!(target: "audit", event = "lockout_cleared", realm = %caller.realm, by = %caller.user, user = %path.1);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct AuditEventsQuery {
    limit: Option<usize>,
    before: Option<i64>,
    event: Option<String>,
}

pub async fn recent_audit_events(
    Admin(caller): Admin,
    state: Data,
    query: web::Query<AuditEventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = page::limit(query.limit)?;
    let event = query
        .event
        .as_deref()
        .map(admin::audit::parse_event_name)
        .transpose()?;
    let mut items =
        admin::audit::recent(&state.store, &caller.realm, query.before, event, limit + 1).await?;
    let next = (items.len() > limit).then(|| items[limit - 1].id.to_string());
    items.truncate(limit);
    Ok(HttpResponse::Ok().json(Page { items, next }))
}
