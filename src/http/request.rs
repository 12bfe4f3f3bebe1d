//! Parses the two shapes of a token request — GET with query and HTTP Basic, and the OAuth2 POST
//! form — into one [`TokenRequest`], enforcing the size limits. What clients send: docs/clients.md.

use std::borrow::Cow;

use actix_web::http::header::HeaderValue;
use secrecy::SecretString;

use super::error::ApiError;
use crate::auth::Credentials;
use crate::issue::TokenRequest;
use crate::scope;

/// Most parameters (query or form fields) in one request.
pub const MAX_PARAMS: usize = 64;
/// Longest value of one parameter; a `scope` value may hold several space-separated scopes.
pub const MAX_PARAM_LEN: usize = 4096;
/// Most distinct scopes in one request (a push with blob mounts asks for a handful).
pub const MAX_SCOPES: usize = 32;
/// The only POST body type the OAuth2 token endpoint takes.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The OAuth2 grant types (RFC 6749) a POST may name.
const GRANT_PASSWORD: &str = "password";
const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// RFC 8693 token exchange: `subject_token` (an external JWT) of `subject_token_type`.
const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523 JWT bearer: `assertion` (an external JWT).
const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `subject_token_type`s of a token exchange that carry a JWT (RFC 8693 section 3).
const JWT_TOKEN_TYPES: [&str; 3] = [
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:access_token",
];
/// `offline_token=true` (GET) and `access_type=offline` (POST) ask for a refresh token.
const OFFLINE_TOKEN_TRUE: &str = "true";
const ACCESS_TYPE_OFFLINE: &str = "offline";

/// Decoded parameters, in order, repeats kept; borrowed from the request where nothing needed
/// decoding. Decoding never fails: bytes that are not UTF-8 become U+FFFD, which no parameter we
/// read accepts.
struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    fn parse(encoded: &'a [u8]) -> Result<Params<'a>, ApiError> {
        let mut pairs = Vec::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if pairs.len() == MAX_PARAMS {
                return Err(ApiError::InvalidRequest(format!(
                    "more than {MAX_PARAMS} parameters"
                )));
            }
            if value.len() > MAX_PARAM_LEN {
                let name: String = name.chars().take(32).collect();
                return Err(ApiError::InvalidRequest(format!(
                    "parameter {name:?} is longer than {MAX_PARAM_LEN} bytes"
                )));
            }
            pairs.push((name, value));
        }
        Ok(Params(pairs))
    }

    /// A parameter that may appear at most once.
    fn single(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::InvalidRequest(format!(
                "parameter {name:?} is repeated"
            )));
        }
        Ok(first)
    }

    fn required(&self, name: &'static str) -> Result<&str, ApiError> {
        self.single(name)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::InvalidRequest(format!("missing parameter {name:?}")))
    }

    fn all<'p>(&'p self, name: &'static str) -> impl Iterator<Item = &'p str> + 'p {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    fn scopes(&self) -> Result<Vec<scope::Scope>, ApiError> {
        let scopes = scope::parse_all(self.all("scope"))?;
        if scopes.len() > MAX_SCOPES {
            return Err(ApiError::InvalidRequest(format!(
                "more than {MAX_SCOPES} scopes"
            )));
        }
        Ok(scopes)
    }
}

/// GET: `service`, `scope` (repeated and/or space-separated), `account`, `client_id`, `offline_token`,
/// credentials from HTTP Basic (none: anonymous).
pub fn from_query(
    query: &str,
    headers: CredentialHeaders<'_>,
    client_addr: String,
) -> Result<TokenRequest, ApiError> {
    let params = Params::parse(query.as_bytes())?;
    let service = params.required("service")?.to_owned();
    let scopes = params.scopes()?;
    let client_id = params.single("client_id")?.map(str::to_owned);
    let account = params.single("account")?;
    let offline = params.single("offline_token")? == Some(OFFLINE_TOKEN_TRUE);
    let credentials = match (headers.munge()?, headers.authorization) {
        (Some(munge), _) => munge,
        (None, None) => Credentials::Anonymous,
        (None, Some(value)) => Credentials::from_authorization(value.as_bytes())?,
    };
    let claimed = credentials.claimed_user();
    if account.is_some_and(|account| !claimed.is_empty() && account != claimed) {
        return Err(ApiError::InvalidRequest(
            "parameter \"account\" does not match the Basic user".into(),
        ));
    }
    Ok(TokenRequest {
        service,
        scopes,
        credentials,
        client_id,
        offline,
        client_addr,
    })
}

/// POST: an OAuth2 form with `grant_type=password` (`username`, `password`),
/// `grant_type=refresh_token` (`refresh_token`), or an external JWT in a token exchange
/// (`subject_token`, `subject_token_type`) or a jwt-bearer grant (`assertion`); plus `client_id`
/// (optional with a JWT), `service`, `scope` (one space-separated field or repeated) and
/// `access_type=offline` (ignored with a JWT, which never yields a refresh token). Other grant
/// types are refused with 400 `unsupported_grant_type`, never 403/405, which containerd treats as
/// fatal.
pub fn from_form(
    content_type: Option<&HeaderValue>,
    headers: CredentialHeaders<'_>,
    body: &[u8],
    client_addr: String,
) -> Result<TokenRequest, ApiError> {
    if let Some(content_type) = content_type {
        let essence = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default();
        if !essence.trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE) {
            return Err(ApiError::InvalidRequest(format!(
                "Content-Type must be {FORM_CONTENT_TYPE}"
            )));
        }
    }
    let params = Params::parse(body)?;
    let grant_type = params.required("grant_type")?;
    let jwt_grant = grant_type == GRANT_TOKEN_EXCHANGE || grant_type == GRANT_JWT_BEARER;
    if grant_type != GRANT_PASSWORD && grant_type != GRANT_REFRESH_TOKEN && !jwt_grant {
        return Err(ApiError::UnsupportedGrantType(
            grant_type.chars().take(64).collect(),
        ));
    }
    let client_id = if jwt_grant {
        params.single("client_id")?.map(str::to_owned)
    } else {
        Some(params.required("client_id")?.to_owned())
    };
    let service = params.required("service")?.to_owned();
    let scopes = params.scopes()?;
    let offline = params.single("access_type")? == Some(ACCESS_TYPE_OFFLINE);
    let credentials = if let Some(munge) = headers.munge()? {
        munge
    } else if grant_type == GRANT_PASSWORD {
        let username = params.required("username")?.to_owned();
        let password = params
            .single("password")?
            .ok_or_else(|| ApiError::InvalidRequest("missing parameter \"password\"".into()))?;
        Credentials::from_user_and_secret(username, SecretString::from(password))
    } else if grant_type == GRANT_TOKEN_EXCHANGE {
        let token_type = params.required("subject_token_type")?;
        if !JWT_TOKEN_TYPES.contains(&token_type) {
            return Err(ApiError::InvalidRequest(format!(
                "subject_token_type must be one of {}",
                JWT_TOKEN_TYPES.join(", ")
            )));
        }
        if params.single("actor_token")?.is_some() {
            return Err(ApiError::InvalidRequest(
                "actor_token (delegation) is not supported".into(),
            ));
        }
        Credentials::Oidc {
            username: String::new(),
            token: SecretString::from(params.required("subject_token")?),
        }
    } else if grant_type == GRANT_JWT_BEARER {
        Credentials::Oidc {
            username: String::new(),
            token: SecretString::from(params.required("assertion")?),
        }
    } else {
        Credentials::RefreshToken {
            username: None,
            token: SecretString::from(params.required("refresh_token")?),
        }
    };
    Ok(TokenRequest {
        service,
        scopes,
        credentials,
        client_id,
        offline,
        client_addr,
    })
}

/// The headers that may carry credentials: `Authorization` (Basic) and the image gateways'
/// `authentication` (a MUNGE credential), which wins when both are present.
#[derive(Clone, Copy, Default)]
pub struct CredentialHeaders<'a> {
    pub authorization: Option<&'a HeaderValue>,
    pub authentication: Option<&'a HeaderValue>,
}

impl CredentialHeaders<'_> {
    fn munge(&self) -> Result<Option<Credentials>, ApiError> {
        let credentials = self
            .authentication
            .map(|value| Credentials::from_munge_header(value.as_bytes()))
            .transpose()?;
        Ok(credentials)
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::*;

    fn basic(user_pass: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(user_pass))).unwrap()
    }

    fn with_basic(header: &HeaderValue) -> CredentialHeaders<'_> {
        CredentialHeaders {
            authorization: Some(header),
            authentication: None,
        }
    }

    fn error(result: Result<TokenRequest, ApiError>) -> String {
        result.err().expect("an error").to_string()
    }

    #[test]
    fn get_with_basic_and_repeated_scopes() {
        let header = basic("alice:pa:ss");
        let request = from_query(
            "account=alice&client_id=docker&offline_token=true&service=registry&scope=repository%3Aa%2Fb%3Apull+repository%3Ac%3Apush&scope=repository:a/b:push",
            with_basic(&header),
            "127.0.0.1".into(),
        )
        .unwrap();
        assert_eq!(request.service, "registry");
        assert_eq!(
            crate::issue::join(&request.scopes),
            "repository:a/b:pull,push repository:c:push"
        );
        match request.credentials {
            Credentials::Password { username, password } => {
                use secrecy::ExposeSecret;
                assert_eq!(username, "alice");
                assert_eq!(password.expose_secret(), "pa:ss");
            }
            _ => panic!("expected a password"),
        }
    }

    #[test]
    fn get_errors() {
        assert!(error(from_query(
            "scope=repository:a:pull",
            CredentialHeaders::default(),
            String::new()
        ))
        .contains("service"));
        assert!(error(from_query(
            "service=r&service=s",
            CredentialHeaders::default(),
            String::new()
        ))
        .contains("repeated"));
        assert!(error(from_query(
            "service=r&scope=nonsense",
            CredentialHeaders::default(),
            String::new()
        ))
        .contains("malformed scope"));
        let header = basic("alice:pw");
        assert!(error(from_query(
            "service=r&account=bob",
            with_basic(&header),
            String::new()
        ))
        .contains("account"));
        let long = format!("service=r&scope={}", "a".repeat(MAX_PARAM_LEN + 1));
        assert!(error(from_query(
            &long,
            CredentialHeaders::default(),
            String::new()
        ))
        .contains("longer than"));
        let many: Vec<String> = (0..MAX_SCOPES + 1)
            .map(|i| format!("scope=repository:r{i}:pull"))
            .collect();
        assert!(error(from_query(
            &format!("service=r&{}", many.join("&")),
            CredentialHeaders::default(),
            String::new()
        ))
        .contains("scopes"));
        for bad in [
            "Basic",
            "Bearer abc",
            "Basic !!!",
            "Basic bm9jb2xvbg==",
            "Basic /w==",
        ] {
            let header = HeaderValue::from_str(bad).unwrap();
            let message = error(from_query("service=r", with_basic(&header), String::new()));
            assert!(
                message.contains("malformed Authorization header"),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn post_password_grant() {
        let form = "client_id=containerd-client&grant_type=password&username=alice&password=p%26w&scope=repository%3Aa%3Apull&service=registry";
        let request = from_form(
            None,
            CredentialHeaders::default(),
            form.as_bytes(),
            String::new(),
        )
        .unwrap();
        assert_eq!(request.client_id.as_deref(), Some("containerd-client"));
        assert_eq!(crate::issue::join(&request.scopes), "repository:a:pull");
        assert!(matches!(request.credentials, Credentials::Password { .. }));
    }

    #[test]
    fn post_jwt_grants() {
        let exchange = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&service=registry&scope=repository%3Aa%3Apull&client_id=containerd-client&access_type=offline";
        let request = from_form(
            None,
            CredentialHeaders::default(),
            exchange.as_bytes(),
            String::new(),
        )
        .unwrap();
        assert!(matches!(request.credentials, Credentials::Oidc { .. }));
        assert_eq!(request.client_id.as_deref(), Some("containerd-client"));
        let bearer = "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=a.b.c&service=registry";
        let request = from_form(
            None,
            CredentialHeaders::default(),
            bearer.as_bytes(),
            String::new(),
        )
        .unwrap();
        assert!(matches!(request.credentials, Credentials::Oidc { .. }));
        assert_eq!(request.client_id, None);
        let wrong_type = "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=a.b.c&subject_token_type=urn:ietf:params:oauth:token-type:saml2&service=r";
        assert!(error(from_form(
            None,
            CredentialHeaders::default(),
            wrong_type.as_bytes(),
            String::new()
        ))
        .contains("subject_token_type"));
        let no_assertion = "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&service=r";
        assert!(error(from_form(
            None,
            CredentialHeaders::default(),
            no_assertion.as_bytes(),
            String::new()
        ))
        .contains("assertion"));
    }

    #[test]
    fn post_errors() {
        let ct = HeaderValue::from_static("application/json");
        assert!(error(from_form(
            Some(&ct),
            CredentialHeaders::default(),
            b"grant_type=password",
            String::new()
        ))
        .contains("Content-Type"));
        let no_token = from_form(
            None,
            CredentialHeaders::default(),
            b"grant_type=refresh_token&client_id=x&service=r",
            String::new(),
        );
        assert!(error(no_token).contains("refresh_token"));
        assert!(matches!(
            from_form(
                None,
                CredentialHeaders::default(),
                b"grant_type=client_credentials",
                String::new()
            ),
            Err(ApiError::UnsupportedGrantType(_))
        ));
        assert!(error(from_form(
            None,
            CredentialHeaders::default(),
            b"",
            String::new()
        ))
        .contains("grant_type"));
        let no_client = b"grant_type=password&username=a&password=b&service=r";
        assert!(error(from_form(
            None,
            CredentialHeaders::default(),
            no_client,
            String::new()
        ))
        .contains("client_id"));
        let no_password = b"grant_type=password&username=a&client_id=c&service=r";
        assert!(error(from_form(
            None,
            CredentialHeaders::default(),
            no_password,
            String::new()
        ))
        .contains("password"));
    }
}
