//! A directory's settings, typed: `[[realms.R.ldap]]` as written ([`LdapSettings`]) checked into
//! [`DirectorySettings`] when the settings load, each problem naming its key. Files (the bind
//! password, the CA certificates) are read when the server starts, not here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::escape::{filter_value, Template};
use crate::config::LdapSettings;
use crate::names::{is_policy_group, DirectoryName};

/// The placeholder of a user filter and a bind template.
pub const USERNAME: &str = "username";
/// The placeholder of a group filter for the member's DN.
pub const DN: &str = "dn";
/// Placeholders of `user_filter` and `bind_template`.
pub const USER_PLACEHOLDERS: [&str; 1] = [USERNAME];
/// Placeholders of `group_filter`, in the order [`Template::fill`] takes their values.
pub const GROUP_PLACEHOLDERS: [&str; 2] = [USERNAME, DN];
/// Active Directory's LDAP_MATCHING_RULE_IN_CHAIN (MS-ADTS 3.1.1.3.4.4.3): `member` through any
/// number of nested groups.
pub const IN_CHAIN_FILTER: &str = "(member:1.2.840.113556.1.4.1941:={dn})";
/// Deepest `nested_groups_depth` accepted.
const MAX_NESTED_GROUPS_DEPTH: u32 = 10;
/// Longest connect or operation timeout, in milliseconds.
const MAX_TIMEOUT_MS: u64 = 60_000;
/// Most connections per directory.
const MAX_POOL_SIZE: usize = 64;
/// Longest `groups_refresh_secs`: a day.
const MAX_GROUPS_REFRESH_SECS: u64 = 86_400;

/// A setting that cannot be used: its key (within the directory's entry) and why.
#[derive(Debug)]
pub struct SettingsError {
    pub key: &'static str,
    pub problem: String,
}

/// One directory, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectorySettings {
    pub name: DirectoryName,
    /// Tried in order.
    pub urls: Vec<Url>,
    pub start_tls: bool,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    /// The service account; `None`: anonymous searches.
    pub service: Option<ServiceAccount>,
    pub users: UserLookup,
    pub username_attribute: String,
    pub groups: GroupSettings,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    pub pool_size: usize,
    pub groups_refresh_secs: u64,
}

/// The account searches run as.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAccount {
    pub dn: String,
    pub password_file: PathBuf,
}

/// How a login name becomes an entry.
#[derive(Debug, Clone, PartialEq)]
pub enum UserLookup {
    /// Search `base` (subtree) with `filter`, then bind as the one entry found.
    Search { base: String, filter: Template },
    /// Bind as the DN `template` makes of the name.
    Bind { template: Template },
}

/// Where a user's groups come from and how they are named.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSettings {
    /// A user attribute listing group DNs (`memberOf`).
    pub attribute: Option<String>,
    pub search: Option<GroupSearch>,
    pub name_attribute: String,
    /// Levels of nesting a group search follows (0 with AD's in-chain rule, which resolves all).
    pub nested_depth: u32,
    /// Lowercased directory group name → policy group.
    pub map: HashMap<String, String>,
}

/// A group search: `filter` (placeholders [`GROUP_PLACEHOLDERS`]) under `base`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSearch {
    pub base: String,
    pub filter: Template,
}

impl GroupSearch {
    /// Whether the filter names the member's DN, so groups within groups can be searched.
    pub fn by_dn(&self) -> bool {
        self.filter.uses(1)
    }
}

impl DirectorySettings {
    /// Checks one `[[realms.R.ldap]]` entry.
    pub fn parse(raw: &LdapSettings) -> Result<DirectorySettings, SettingsError> {
        let fail = |key, problem: String| SettingsError { key, problem };
        let name = DirectoryName::parse(&raw.name).map_err(|e| fail("name", e.to_string()))?;
        let urls = raw
            .url
            .values()
            .iter()
            .map(|url| parse_url(url).map_err(|problem| fail("url", problem)))
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(fail(
                "url",
                "name at least one ldap:// or ldaps:// URL".into(),
            ));
        }
        if raw.start_tls && urls.iter().any(|u| u.scheme() == "ldaps") {
            return Err(fail(
                "start_tls",
                "StartTLS upgrades ldap:// connections; an ldaps:// URL is TLS already".into(),
            ));
        }
        if raw.insecure_skip_verify && raw.ca_file.is_some() {
            return Err(fail(
                "insecure_skip_verify",
                "set ca_file (verify against it) or insecure_skip_verify, not both".into(),
            ));
        }
        let service = match (&raw.bind_dn, &raw.bind_password_file) {
            (Some(dn), Some(file)) if !dn.trim().is_empty() => Some(ServiceAccount {
                dn: dn.clone(),
                password_file: file.clone(),
            }),
            (Some(_), Some(_)) => return Err(fail("bind_dn", "is empty".into())),
            (Some(_), None) => {
                return Err(fail(
                    "bind_password_file",
                    "bind_dn needs bind_password_file, the file holding its password".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(fail(
                    "bind_dn",
                    "bind_password_file is set without the bind_dn it is the password of".into(),
                ))
            }
            (None, None) => None,
        };
        attribute(&raw.username_attribute).map_err(|p| fail("username_attribute", p))?;
        let users = user_lookup(raw)?;
        let groups = group_settings(&name, raw)?;
        let timeout = |key, ms: u64| {
            if (1..=MAX_TIMEOUT_MS).contains(&ms) {
                Ok(Duration::from_millis(ms))
            } else {
                Err(fail(key, format!("must be 1 to {MAX_TIMEOUT_MS}")))
            }
        };
        let connect_timeout = timeout("connect_timeout_ms", raw.connect_timeout_ms)?;
        let operation_timeout = timeout("operation_timeout_ms", raw.operation_timeout_ms)?;
        if !(1..=MAX_POOL_SIZE).contains(&raw.pool_size) {
            return Err(fail("pool_size", format!("must be 1 to {MAX_POOL_SIZE}")));
        }
        if raw.groups_refresh_secs > MAX_GROUPS_REFRESH_SECS {
            return Err(fail(
                "groups_refresh_secs",
                format!("must be at most {MAX_GROUPS_REFRESH_SECS}"),
            ));
        }
        Ok(DirectorySettings {
            name,
            urls,
            start_tls: raw.start_tls,
            ca_file: raw.ca_file.clone(),
            insecure_skip_verify: raw.insecure_skip_verify,
            service,
            users,
            username_attribute: raw.username_attribute.clone(),
            groups,
            connect_timeout,
            operation_timeout,
            pool_size: raw.pool_size,
            groups_refresh_secs: raw.groups_refresh_secs,
        })
    }

    /// Whether connections use TLS (LDAPS or StartTLS).
    pub fn uses_tls(&self) -> bool {
        self.start_tls || self.urls.iter().any(|u| u.scheme() == "ldaps")
    }
}

/// An `ldap://` or `ldaps://` URL naming a host (and port), nothing else.
fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "ldap" | "ldaps") {
        return Err(format!(
            "{text:?}: unknown URL scheme {:?}; expected ldap:// or ldaps://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} names no host"));
    }
    let bare = matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !bare {
        return Err(format!(
            "{text:?}: name only the server (scheme://host:port); bases and filters have their \
             own keys"
        ));
    }
    Ok(url)
}

/// An attribute description: a name (letters, digits, `-`, starting with a letter) or an OID.
fn attribute(name: &str) -> Result<(), String> {
    let descriptor = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !name.is_empty()
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if descriptor || oid {
        Ok(())
    } else {
        Err(format!("{name:?} is not an attribute name"))
    }
}

/// A filter template whose every filling is a valid filter.
fn filter(text: &str, names: &[&str]) -> Result<Template, String> {
    let template = Template::parse(text, names)?;
    let sample: Vec<String> = names.iter().map(|_| filter_value("x")).collect();
    let sample: Vec<&str> = sample.iter().map(String::as_str).collect();
    ldap3::parse_filter(template.fill(&sample))
        .map_err(|()| format!("{text:?} is not an LDAP filter (RFC 4515)"))?;
    Ok(template)
}

fn user_lookup(raw: &LdapSettings) -> Result<UserLookup, SettingsError> {
    let fail = |key, problem: String| SettingsError { key, problem };
    match (&raw.bind_template, &raw.user_base) {
        (Some(_), Some(_)) => Err(fail(
            "bind_template",
            "set bind_template (direct bind) or user_base (search, then bind), not both".into(),
        )),
        (Some(_), None) if raw.user_filter.is_some() => Err(fail(
            "user_filter",
            "a direct bind (bind_template) searches no user; remove user_filter".into(),
        )),
        (Some(text), None) => {
            let template =
                Template::parse(text, &USER_PLACEHOLDERS).map_err(|p| fail("bind_template", p))?;
            if !template.uses(0) {
                return Err(fail(
                    "bind_template",
                    format!("{text:?} lacks {{username}}: every user would bind as one DN"),
                ));
            }
            Ok(UserLookup::Bind { template })
        }
        (None, Some(base)) => {
            let text = raw
                .user_filter
                .clone()
                .unwrap_or_else(|| format!("({}={{username}})", raw.username_attribute));
            let template = filter(&text, &USER_PLACEHOLDERS).map_err(|p| fail("user_filter", p))?;
            if !template.uses(0) {
                return Err(fail(
                    "user_filter",
                    format!(
                        "{text:?} lacks {{username}}: it would find the same entries for anyone"
                    ),
                ));
            }
            Ok(UserLookup::Search {
                base: base.clone(),
                filter: template,
            })
        }
        (None, None) => Err(fail(
            "user_base",
            "set user_base (search, then bind) or bind_template (direct bind)".into(),
        )),
    }
}

fn group_settings(
    directory: &DirectoryName,
    raw: &LdapSettings,
) -> Result<GroupSettings, SettingsError> {
    let fail = |key, problem: String| SettingsError { key, problem };
    if let Some(name) = &raw.group_attribute {
        attribute(name).map_err(|p| fail("group_attribute", p))?;
    }
    attribute(&raw.group_name_attribute).map_err(|p| fail("group_name_attribute", p))?;
    let search = match (
        &raw.group_base,
        &raw.group_filter,
        raw.ad_matching_rule_in_chain,
    ) {
        (Some(_), Some(_), true) => {
            return Err(fail(
                "group_filter",
                format!(
                "ad_matching_rule_in_chain searches with {IN_CHAIN_FILTER}; remove group_filter"
            ),
            ))
        }
        (Some(base), None, true) => Some(GroupSearch {
            base: base.clone(),
            filter: filter(IN_CHAIN_FILTER, &GROUP_PLACEHOLDERS)
                .map_err(|p| fail("ad_matching_rule_in_chain", p))?,
        }),
        (None, _, true) => {
            return Err(fail(
                "group_base",
                "ad_matching_rule_in_chain searches groups under group_base; set it".into(),
            ))
        }
        (Some(base), Some(text), false) => {
            let template =
                filter(text, &GROUP_PLACEHOLDERS).map_err(|p| fail("group_filter", p))?;
            if !template.uses(0) && !template.uses(1) {
                return Err(fail(
                    "group_filter",
                    format!("{text:?} names neither {{dn}} nor {{username}}: it would find the same groups for everyone"),
                ));
            }
            Some(GroupSearch {
                base: base.clone(),
                filter: template,
            })
        }
        (Some(_), None, false) => {
            return Err(fail(
                "group_filter",
                "group_base needs group_filter, e.g. \"(member={dn})\"".into(),
            ))
        }
        (None, Some(_), false) => {
            return Err(fail(
                "group_base",
                "group_filter needs group_base, where groups are searched".into(),
            ))
        }
        (None, None, false) => None,
    };
    if raw.nested_groups_depth > MAX_NESTED_GROUPS_DEPTH {
        return Err(fail(
            "nested_groups_depth",
            format!("must be at most {MAX_NESTED_GROUPS_DEPTH}"),
        ));
    }
    let nested_depth = if raw.ad_matching_rule_in_chain {
        0
    } else {
        raw.nested_groups_depth
    };
    let mut map = HashMap::new();
    for (group, policy) in &raw.group_map {
        if !is_policy_group(policy) {
            return Err(fail(
                "group_map",
                format!(
                    "{group:?} maps to {policy:?}, which no policy rule can name: use a group \
                     name (a-z, 0-9, '.', '_', '-') or ldap:{directory}:<name>"
                ),
            ));
        }
        map.insert(group.to_lowercase(), policy.clone());
    }
    Ok(GroupSettings {
        attribute: raw.group_attribute.clone(),
        search,
        name_attribute: raw.group_name_attribute.clone(),
        nested_depth,
        map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OneOrMore;

    fn raw() -> LdapSettings {
        toml::from_str(
            r#"
            name = "corp"
            url = "ldap://127.0.0.1:389"
            user_base = "ou=people,dc=example,dc=org"
            "#,
        )
        .unwrap()
    }

    /// An edit of the default entry.
    type Change = Box<dyn FnOnce(&mut LdapSettings)>;

    fn problem(change: impl FnOnce(&mut LdapSettings)) -> (String, String) {
        let mut settings = raw();
        change(&mut settings);
        let error = DirectorySettings::parse(&settings).unwrap_err();
        (error.key.to_owned(), error.problem)
    }

    #[test]
    fn defaults_search_by_uid_and_read_no_groups() {
        let parsed = DirectorySettings::parse(&raw()).unwrap();
        let UserLookup::Search { base, filter } = &parsed.users else {
            panic!("a search");
        };
        assert_eq!(base, "ou=people,dc=example,dc=org");
        assert_eq!(filter.fill(&["alice"]), "(uid=alice)");
        assert_eq!(parsed.groups.search, None);
        assert_eq!(parsed.groups.name_attribute, "cn");
        assert_eq!(parsed.groups.nested_depth, 5);
        assert_eq!(parsed.groups_refresh_secs, 300);
        assert_eq!(parsed.service, None);
        assert!(!parsed.uses_tls());
    }

    #[test]
    fn each_problem_names_its_key() {
        let cases: Vec<(&str, Change)> = vec![
            ("name", Box::new(|s| s.name = "Corp".into())),
            (
                "url",
                Box::new(|s| s.url = OneOrMore::One("http://x".into())),
            ),
            ("url", Box::new(|s| s.url = OneOrMore::More(vec![]))),
            (
                "url",
                Box::new(|s| s.url = OneOrMore::One("ldap://h/dc=x".into())),
            ),
            (
                "url",
                Box::new(|s| s.url = OneOrMore::One("ldap:///".into())),
            ),
            (
                "start_tls",
                Box::new(|s| {
                    s.url = OneOrMore::One("ldaps://h".into());
                    s.start_tls = true;
                }),
            ),
            (
                "bind_password_file",
                Box::new(|s| s.bind_dn = Some("cn=svc".into())),
            ),
            (
                "bind_dn",
                Box::new(|s| s.bind_password_file = Some("pw".into())),
            ),
            (
                "user_filter",
                Box::new(|s| s.user_filter = Some("(objectClass=person)".into())),
            ),
            (
                "user_filter",
                Box::new(|s| s.user_filter = Some("(uid={username}".into())),
            ),
            (
                "user_filter",
                Box::new(|s| s.user_filter = Some("(uid={user})".into())),
            ),
            (
                "bind_template",
                Box::new(|s| s.bind_template = Some("uid={username}".into())),
            ),
            ("user_base", Box::new(|s| s.user_base = None)),
            (
                "bind_template",
                Box::new(|s| {
                    s.user_base = None;
                    s.bind_template = Some("cn=fixed,dc=x".into());
                }),
            ),
            (
                "group_filter",
                Box::new(|s| s.group_base = Some("ou=groups".into())),
            ),
            (
                "group_base",
                Box::new(|s| s.group_filter = Some("(member={dn})".into())),
            ),
            (
                "group_filter",
                Box::new(|s| {
                    s.group_base = Some("ou=groups".into());
                    s.group_filter = Some("(objectClass=groupOfNames)".into());
                }),
            ),
            (
                "group_base",
                Box::new(|s| s.ad_matching_rule_in_chain = true),
            ),
            (
                "group_map",
                Box::new(|s| {
                    s.group_map.insert("Admins".into(), "Domain Admins".into());
                }),
            ),
            (
                "group_attribute",
                Box::new(|s| s.group_attribute = Some("member of".into())),
            ),
            (
                "operation_timeout_ms",
                Box::new(|s| s.operation_timeout_ms = 0),
            ),
            ("pool_size", Box::new(|s| s.pool_size = 0)),
            (
                "insecure_skip_verify",
                Box::new(|s| {
                    s.insecure_skip_verify = true;
                    s.ca_file = Some("ca.pem".into());
                }),
            ),
        ];
        for (key, change) in cases {
            let (found, text) = problem(change);
            assert_eq!(found, key, "{text}");
        }
        let (_, text) = problem(|s| s.url = OneOrMore::One("http://x".into()));
        assert!(text.contains("unknown URL scheme \"http\""), "{text}");
        let (_, text) = problem(|s| s.user_filter = Some("(objectClass=person)".into()));
        assert!(text.contains("{username}"), "{text}");
    }

    #[test]
    fn group_sources_nesting_and_maps() {
        let mut settings = raw();
        settings.url = OneOrMore::More(vec!["ldaps://a:636".into(), "ldaps://b:636".into()]);
        settings.group_attribute = Some("memberOf".into());
        settings.group_base = Some("ou=groups,dc=example,dc=org".into());
        settings.group_filter = Some("(|(member={dn})(memberUid={username}))".into());
        settings
            .group_map
            .insert("Registry-Admins".into(), "admins".into());
        let parsed = DirectorySettings::parse(&settings).unwrap();
        assert_eq!(parsed.urls.len(), 2);
        assert!(parsed.uses_tls());
        let search = parsed.groups.search.as_ref().unwrap();
        assert!(search.by_dn());
        assert_eq!(
            search.filter.fill(&["bob", "uid=bob,dc=x"]),
            "(|(member=uid=bob,dc=x)(memberUid=bob))"
        );
        assert_eq!(parsed.groups.map["registry-admins"], "admins");

        settings.group_filter = None;
        settings.ad_matching_rule_in_chain = true;
        let ad = DirectorySettings::parse(&settings).unwrap();
        assert_eq!(ad.groups.nested_depth, 0, "the server follows the nesting");
        let search = ad.groups.search.unwrap();
        assert_eq!(
            search.filter.fill(&["bob", "cn=Bob,dc=x"]),
            "(member:1.2.840.113556.1.4.1941:=cn=Bob,dc=x)"
        );
    }
}
