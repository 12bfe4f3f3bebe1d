//! A trusted issuer's settings, typed: `[[realms.R.oidc]]` as written ([`OidcSettings`]) checked into
//! [`IssuerSettings`] when the settings load, each problem naming its key. Keys are not fetched
//! and files are not read here.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use url::Url;

use super::rules::{ClaimRule, Condition, Glob, Template};
use crate::claims::ClaimPath;
use crate::config::{OidcCondition, OidcConsoleSettings, OidcSettings};
use crate::names::IssuerName;

/// Longest clock skew accepted: five minutes.
const MAX_CLOCK_SKEW_SECS: u64 = 300;
/// Longest `max_age_secs`: a day (a service-account token projected for longer is refreshed
/// by the kubelet well before).
const MAX_MAX_AGE_SECS: u64 = 86_400;
/// Longest fetch timeout, in milliseconds.
const MAX_FETCH_TIMEOUT_MS: u64 = 60_000;
/// Longest `console.groups_valid_secs`: a year.
const MAX_GROUPS_VALID_SECS: u64 = 366 * 86_400;
/// Longest console button label, in characters.
const MAX_LABEL_CHARS: usize = 64;

/// A setting that cannot be used: its key (within the issuer's entry) and why.
#[derive(Debug)]
pub struct SettingsError {
    pub key: String,
    pub problem: String,
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// `<issuer>/.well-known/openid-configuration`, then its `jwks_uri`.
    Discovery(Url),
    /// A JWKS URL.
    Uri(Url),
    /// A local JWKS file, read again when keys are refreshed.
    File(PathBuf),
}

/// The console's client at an issuer (`[realms.R.oidc.console]`), checked; its secret is read
/// when the issuers load.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleClient {
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    pub username_claim: ClaimPath,
    pub label: String,
    /// Space-separated, `openid` first.
    pub scopes: String,
    pub groups_valid_secs: u64,
    /// `<issuer>/.well-known/openid-configuration`: the authorization and token endpoints.
    pub discovery: Url,
}

impl ConsoleClient {
    fn parse(
        raw: &OidcConsoleSettings,
        issuer_name: &IssuerName,
        issuer: &str,
    ) -> Result<ConsoleClient, SettingsError> {
        let fail = |key: &str, problem: String| SettingsError {
            key: format!("console.{key}"),
            problem,
        };
        let visible = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic());
        if !visible(&raw.client_id) {
            return Err(fail(
                "client_id",
                "name the client id registered at the issuer (visible ASCII, no spaces)".into(),
            ));
        }
        let username_claim = ClaimPath::parse(&raw.username_claim)
            .map_err(|e| fail("username_claim", e.to_string()))?;
        let label = raw.label.clone().unwrap_or_else(|| issuer_name.to_string());
        if label.is_empty()
            || label.chars().count() > MAX_LABEL_CHARS
            || label.chars().any(char::is_control)
        {
            return Err(fail(
                "label",
                format!("1 to {MAX_LABEL_CHARS} characters, no control characters"),
            ));
        }
        if let Some(bad) = raw.scopes.iter().find(|scope| !visible(scope)) {
            return Err(fail(
                "scopes",
                format!("{bad:?} is not a scope (visible ASCII, no spaces)"),
            ));
        }
        let mut scopes = vec!["openid"];
        scopes.extend(
            raw.scopes
                .iter()
                .map(String::as_str)
                .filter(|s| *s != "openid"),
        );
        if raw.groups_valid_secs < 60 || raw.groups_valid_secs > MAX_GROUPS_VALID_SECS {
            return Err(fail(
                "groups_valid_secs",
                format!("between 60 and {MAX_GROUPS_VALID_SECS}"),
            ));
        }
        let base = issuer.trim_end_matches('/');
        let discovery = Url::parse(&format!("{base}/.well-known/openid-configuration"))
            .map_err(|e| fail("client_id", format!("the issuer's discovery URL: {e}")))?;
        Ok(ConsoleClient {
            client_id: raw.client_id.clone(),
            client_secret_file: raw.client_secret_file.clone(),
            username_claim,
            label,
            scopes: scopes.join(" "),
            groups_valid_secs: raw.groups_valid_secs,
            discovery,
        })
    }
}

/// One trusted issuer, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerSettings {
    pub name: IssuerName,
    /// The exact `iss`.
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub ca_file: Option<PathBuf>,
    pub algorithms: Vec<Algorithm>,
    pub clock_skew_secs: u64,
    pub max_age_secs: u64,
    pub jwks_refresh: Duration,
    pub jwks_min_refetch: Duration,
    pub fetch_timeout: Duration,
    pub subject: Template,
    pub rules: Vec<ClaimRule>,
    /// The console signs people in with this issuer.
    pub console: Option<ConsoleClient>,
}

impl IssuerSettings {
    /// Checks one `[[realms.R.oidc]]` entry.
    pub fn parse(raw: &OidcSettings) -> Result<IssuerSettings, SettingsError> {
        let fail = |key: &str, problem: String| SettingsError {
            key: key.to_owned(),
            problem,
        };
        let name = IssuerName::parse(&raw.name).map_err(|e| fail("name", e.to_string()))?;
        http_url(&raw.issuer).map_err(|p| fail("issuer", p))?;
        let console = raw
            .console
            .as_ref()
            .map(|console| ConsoleClient::parse(console, &name, &raw.issuer))
            .transpose()?;
        if (raw.audiences.is_empty() && console.is_none())
            || raw.audiences.iter().any(String::is_empty)
        {
            return Err(fail(
                "audiences",
                "name at least one audience (the aud your tokens are minted for); empty values \
                 are refused (an issuer with a console client alone may have none)"
                    .into(),
            ));
        }
        let keys = match (&raw.jwks_uri, &raw.jwks_file) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    "jwks_file",
                    "set jwks_uri or jwks_file, not both".into(),
                ))
            }
            (Some(uri), None) => KeySource::Uri(http_url(uri).map_err(|p| fail("jwks_uri", p))?),
            (None, Some(file)) => KeySource::File(file.clone()),
            (None, None) => {
                let base = raw.issuer.trim_end_matches('/');
                let discovery = format!("{base}/.well-known/openid-configuration");
                KeySource::Discovery(
                    Url::parse(&discovery).map_err(|e| fail("issuer", e.to_string()))?,
                )
            }
        };
        if raw.ca_file.is_some() && matches!(keys, KeySource::File(_)) {
            return Err(fail(
                "ca_file",
                "keys come from jwks_file: nothing is fetched over TLS".into(),
            ));
        }
        let algorithms = parse_algorithms(&raw.algorithms).map_err(|p| fail("algorithms", p))?;
        if raw.clock_skew_secs > MAX_CLOCK_SKEW_SECS {
            return Err(fail(
                "clock_skew_secs",
                format!("at most {MAX_CLOCK_SKEW_SECS}"),
            ));
        }
        if raw.max_age_secs == 0 || raw.max_age_secs > MAX_MAX_AGE_SECS {
            return Err(fail(
                "max_age_secs",
                format!("between 1 and {MAX_MAX_AGE_SECS}"),
            ));
        }
        if raw.fetch_timeout_ms == 0 || raw.fetch_timeout_ms > MAX_FETCH_TIMEOUT_MS {
            return Err(fail(
                "fetch_timeout_ms",
                format!("between 1 and {MAX_FETCH_TIMEOUT_MS}"),
            ));
        }
        if raw.jwks_refresh_secs == 0 {
            return Err(fail("jwks_refresh_secs", "at least 1".into()));
        }
        let subject = Template::parse(&raw.subject).map_err(|p| fail("subject", p))?;
        if raw.rules.is_empty() {
            return Err(fail(
                "rules",
                "add at least one [[realms.R.oidc.rules]]: without a rule no token maps to a \
                 principal"
                    .into(),
            ));
        }
        let mut rules: Vec<ClaimRule> = Vec::with_capacity(raw.rules.len());
        for (index, rule) in raw.rules.iter().enumerate() {
            let at = |field: &str| format!("rules[{index}].{field}");
            if rule.name.is_empty() {
                return Err(fail(&at("name"), "name the rule".into()));
            }
            if rules.iter().any(|r| r.name == rule.name) {
                return Err(fail(
                    &at("name"),
                    format!("another rule is named {:?}", rule.name),
                ));
            }
            let conditions = rule
                .conditions
                .iter()
                .map(|(path, condition)| {
                    let path = ClaimPath::parse(path)
                        .map_err(|e| fail(&at("conditions"), e.to_string()))?;
                    let condition = match condition {
                        OidcCondition::Equals(value) => Condition::Equals(value.clone()),
                        OidcCondition::Glob { glob } => Condition::Glob(Glob::new(glob)),
                        OidcCondition::OneOf { one_of } if one_of.is_empty() => {
                            return Err(fail(
                                &at("conditions"),
                                format!("{path}: one_of lists nothing"),
                            ))
                        }
                        OidcCondition::OneOf { one_of } => Condition::OneOf(one_of.clone()),
                    };
                    Ok((path, condition))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let groups = rule
                .groups
                .iter()
                .map(|g| Template::parse(g).map_err(|p| fail(&at("groups"), p)))
                .collect::<Result<Vec<_>, _>>()?;
            let groups_claim = rule
                .groups_claim
                .as_deref()
                .map(ClaimPath::parse)
                .transpose()
                .map_err(|e| fail(&at("groups_claim"), e.to_string()))?;
            rules.push(ClaimRule {
                name: rule.name.clone(),
                conditions,
                groups,
                groups_claim,
            });
        }
        Ok(IssuerSettings {
            name,
            issuer: raw.issuer.clone(),
            audiences: raw.audiences.clone(),
            keys,
            ca_file: raw.ca_file.clone(),
            algorithms,
            clock_skew_secs: raw.clock_skew_secs,
            max_age_secs: raw.max_age_secs,
            jwks_refresh: Duration::from_secs(raw.jwks_refresh_secs),
            jwks_min_refetch: Duration::from_secs(raw.jwks_min_refetch_secs),
            fetch_timeout: Duration::from_millis(raw.fetch_timeout_ms),
            subject,
            rules,
            console,
        })
    }
}

/// An absolute `http://` or `https://` URL with a host.
fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!("{text:?}: expected an http:// or https:// URL"));
    }
    Ok(url)
}

/// The accepted algorithms: asymmetric ones only.
fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, String> {
    if names.is_empty() {
        return Err("list at least one algorithm, e.g. [\"RS256\", \"ES256\", \"EdDSA\"]".into());
    }
    names
        .iter()
        .map(|name| {
            if name.eq_ignore_ascii_case("none") || name.to_ascii_uppercase().starts_with("HS") {
                return Err(format!(
                    "{name:?} is never accepted: unsigned and shared-secret (HMAC) tokens prove nothing about their issuer"
                ));
            }
            Algorithm::from_str(name).map_err(|_| {
                format!("{name:?} is not an algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OidcRuleSettings;

    fn raw() -> OidcSettings {
        OidcSettings {
            name: "github".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            audiences: vec!["registry.example.com".into()],
            jwks_uri: None,
            jwks_file: None,
            ca_file: None,
            algorithms: vec!["RS256".into()],
            clock_skew_secs: 60,
            max_age_secs: 3600,
            jwks_refresh_secs: 300,
            jwks_min_refetch_secs: 60,
            fetch_timeout_ms: 5000,
            subject: "${iss-name}:${sub}".into(),
            rules: vec![OidcRuleSettings {
                name: "acme".into(),
                conditions: [(
                    "repository_owner".to_owned(),
                    OidcCondition::Equals("acme".into()),
                )]
                .into(),
                groups: vec![],
                groups_claim: None,
            }],
            console: None,
        }
    }

    fn problem(change: impl FnOnce(&mut OidcSettings)) -> (String, String) {
        let mut settings = raw();
        change(&mut settings);
        let e = IssuerSettings::parse(&settings).unwrap_err();
        (e.key, e.problem)
    }

    #[test]
    fn discovery_is_the_default_and_the_issuer_is_kept_exactly() {
        let parsed = IssuerSettings::parse(&raw()).unwrap();
        assert_eq!(parsed.issuer, "https://token.actions.githubusercontent.com");
        assert_eq!(
            parsed.keys,
            KeySource::Discovery(
                Url::parse(
                    "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
                )
                .unwrap()
            )
        );
        let mut slash = raw();
        slash.issuer = "https://gitlab.example.com/".into();
        assert_eq!(
            IssuerSettings::parse(&slash).unwrap().issuer,
            "https://gitlab.example.com/"
        );
    }

    #[test]
    fn each_problem_names_its_key() {
        assert_eq!(problem(|s| s.audiences.clear()).0, "audiences");
        assert_eq!(problem(|s| s.name = "Git Hub".into()).0, "name");
        assert_eq!(problem(|s| s.issuer = "token.actions".into()).0, "issuer");
        let (key, message) = problem(|s| s.algorithms = vec!["HS256".into()]);
        assert_eq!(key, "algorithms");
        assert!(message.contains("never accepted"), "{message}");
        assert_eq!(
            problem(|s| s.algorithms = vec!["none".into()]).0,
            "algorithms"
        );
        assert_eq!(
            problem(|s| s.algorithms = vec!["XS1".into()]).0,
            "algorithms"
        );
        assert_eq!(
            problem(|s| {
                s.jwks_uri = Some("https://x/jwks".into());
                s.jwks_file = Some("k.json".into());
            })
            .0,
            "jwks_file"
        );
        assert_eq!(problem(|s| s.subject = "${user}".into()).0, "subject");
        assert_eq!(problem(|s| s.rules.clear()).0, "rules");
        assert_eq!(problem(|s| s.max_age_secs = 0).0, "max_age_secs");
        assert_eq!(
            problem(|s| {
                s.rules[0].conditions.insert(
                    "kubernetes.io.namespace".into(),
                    OidcCondition::Equals("x".into()),
                );
            })
            .0,
            "rules[0].conditions"
        );
        assert_eq!(
            problem(|s| s.rules[0].groups = vec!["${nope}".into()]).0,
            "rules[0].groups"
        );
    }

    fn console() -> OidcConsoleSettings {
        OidcConsoleSettings {
            client_id: "portcullis".into(),
            client_secret_file: None,
            username_claim: "preferred_username".into(),
            label: None,
            scopes: vec!["profile".into(), "openid".into(), "groups".into()],
            groups_valid_secs: 86_400,
        }
    }

    #[test]
    fn a_console_client_asks_for_openid_first_and_may_stand_without_audiences() {
        let mut only_console = raw();
        only_console.audiences.clear();
        only_console.console = Some(console());
        let settings = IssuerSettings::parse(&only_console).unwrap();
        let client = settings.console.unwrap();
        assert_eq!(client.scopes, "openid profile groups");
        assert_eq!(client.label, "github");
        assert_eq!(
            client.discovery.as_str(),
            "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
        );
        let with = |change: fn(&mut OidcConsoleSettings)| {
            let mut entry = raw();
            let mut client = console();
            change(&mut client);
            entry.console = Some(client);
            IssuerSettings::parse(&entry).unwrap_err().key
        };
        assert_eq!(
            with(|c| c.client_id = "my client".into()),
            "console.client_id"
        );
        assert_eq!(with(|c| c.client_id.clear()), "console.client_id");
        assert_eq!(with(|c| c.scopes = vec!["a b".into()]), "console.scopes");
        assert_eq!(
            with(|c| c.groups_valid_secs = 59),
            "console.groups_valid_secs"
        );
        assert_eq!(with(|c| c.label = Some(String::new())), "console.label");
        assert_eq!(
            with(|c| c.username_claim = "a.b".into()),
            "console.username_claim"
        );
    }
}
