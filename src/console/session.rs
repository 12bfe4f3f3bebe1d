//! Console sessions: a random secret in an HttpOnly, SameSite=Strict cookie (Secure when served
//! over HTTPS), stored as its digest with the session's CSRF token, idle and absolute deadlines.
//! [`Session`] is the signed-in person of a request; every form posts the session's CSRF token,
//! which [`Session::check_csrf`] compares in constant time. The admin API accepts the same
//! session ([`live`]), its changes only with the CSRF token in `X-CSRF-Token`.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::SecretString;

use super::{ConsoleError, ConsoleState};
use crate::auth::token::{random_secret, sha256_hex};
use crate::names::RealmName;
use crate::store::{unix_now, Role, Store, StoreError, UserRecord};

/// The cookie's name.
pub const COOKIE: &str = "portcullis_console";
/// The path the cookie is sent to: the console and the admin API.
const COOKIE_PATH: &str = "/";

/// The signed-in person of a request.
pub struct Session {
    id_sha256: String,
    pub user: UserRecord,
    pub csrf: String,
}

impl Session {
    pub fn realm(&self) -> &RealmName {
        &self.user.realm
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), ConsoleError> {
        let same = aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            self.csrf.as_bytes(),
        )
        .is_ok();
        if same {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }

    /// Ends this session.
    pub async fn end(&self, state: &ConsoleState) -> Result<(), ConsoleError> {
        state.store.delete_session(&self.id_sha256).await?;
        Ok(())
    }
}

/// Starts a session for `user`; returns the cookie that carries it.
pub async fn start(
    state: &ConsoleState,
    user: &UserRecord,
) -> Result<Cookie<'static>, ConsoleError> {
    let secret = random_secret().map_err(|_| ConsoleError::Unavailable)?;
    let csrf = random_secret().map_err(|_| ConsoleError::Unavailable)?;
    let now = unix_now();
    let absolute = i64::try_from(state.settings.absolute_timeout_secs).unwrap_or(i64::MAX / 2);
    state
        .store
        .create_session(
            &digest(&secret),
            user.id,
            &csrf,
            now,
            now.saturating_add(absolute),
        )
        .await?;
    Ok(Cookie::build(COOKIE, secret)
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(state.secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(absolute))
        .finish())
}

/// The cookie that removes the session's cookie from the browser.
pub fn removal(state: &ConsoleState) -> Cookie<'static> {
    let mut cookie = Cookie::build(COOKIE, "")
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(state.secure)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    cookie
}

/// What is stored of a cookie's secret: its SHA-256, hex.
pub(super) fn digest(secret: &str) -> String {
    sha256_hex(&SecretString::from(secret.to_owned()))
}

/// The live session the cookie value `secret` names, its idle deadline moved; `None` for no such
/// session, and for one past a deadline or of a disabled account (its row then deleted).
pub async fn live(
    store: &Store,
    idle_timeout_secs: u64,
    secret: &str,
) -> Result<Option<Session>, StoreError> {
    let id_sha256 = digest(secret);
    let Some(record) = store.find_session(&id_sha256).await? else {
        return Ok(None);
    };
    let now = unix_now();
    let idle = i64::try_from(idle_timeout_secs).unwrap_or(i64::MAX / 2);
    let live = record.expires_at > now
        && record.last_seen_at.saturating_add(idle) > now
        && !record.user.disabled;
    if !live {
        store.delete_session(&id_sha256).await?;
        return Ok(None);
    }
    store.touch_session(&id_sha256, now).await?;
    Ok(Some(Session {
        id_sha256,
        user: record.user,
        csrf: record.csrf,
    }))
}

impl FromRequest for Session {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Session, ConsoleError>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = request
            .app_data::<web::Data<ConsoleState>>()
            .expect("the console's state is registered")
            .clone();
        let secret = request.cookie(COOKIE).map(|c| c.value().to_owned());
        Box::pin(async move {
            let secret = secret.ok_or(ConsoleError::SignIn)?;
            live(&state.store, state.settings.idle_timeout_secs, &secret)
                .await?
                .ok_or(ConsoleError::SignIn)
        })
    }
}
