//! A user's directory groups: the DNs in the user's group attribute (`memberOf`), the groups a
//! group search finds for the user's DN or name, and, level by level up to the nesting depth, the
//! groups that contain those (a group's own DN as `{dn}`). Each group is named by its
//! `group_name_attribute` and mapped to a policy group: the directory's `group_map`, else
//! `ldap:<directory>:<name>` (`names::directory_group`: lowercased, spaces as `-`), else not at all.
//! Membership is the union of every source; a group found twice counts once; at most
//! [`MAX_GROUPS`] are collected. Groups are read with the search identity, never the user's.

use std::collections::HashSet;

use ldap3::Scope;

use super::escape::{filter_value, first_rdn_value};
use super::pool::Lease;
use super::settings::{DirectorySettings, GroupSettings};
use super::trace::{Step, Trace};
use super::DirectoryError;
use crate::names::{directory_group, DirectoryName, Username};

/// Most groups collected for one user; a directory that nests more is cut off there (logged).
pub const MAX_GROUPS: usize = 1_000;
/// Most entries one group search returns.
const GROUP_SEARCH_LIMIT: i32 = MAX_GROUPS as i32;

/// A group the user is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub dn: String,
    /// Its `group_name_attribute`; `None` when the directory gave none.
    pub name: Option<String>,
    /// The policy group it maps to.
    pub policy: Option<String>,
}

/// A user as a group search needs it: the entry's DN and its group attribute's values.
pub struct Member<'a> {
    pub dn: &'a str,
    pub username: &'a Username,
    pub group_dns: Vec<String>,
}

/// Groups collected so far, each DN once (compared without case), at most [`MAX_GROUPS`].
#[derive(Debug, Default)]
pub struct Collected {
    seen: HashSet<String>,
    groups: Vec<(String, Option<String>)>,
    pub truncated: bool,
}

impl Collected {
    /// Adds a group; false when it was known already or the collection is full.
    pub fn add(&mut self, dn: String, name: Option<String>) -> bool {
        if self.groups.len() >= MAX_GROUPS {
            self.truncated = true;
            return false;
        }
        if !self.seen.insert(dn.to_lowercase()) {
            return false;
        }
        self.groups.push((dn, name));
        true
    }

    /// The groups, named and mapped to policy groups.
    pub fn mapped(
        self,
        directory: &DirectoryName,
        settings: &GroupSettings,
    ) -> Vec<DirectoryGroup> {
        self.groups
            .into_iter()
            .map(|(dn, name)| {
                let policy = name.as_deref().and_then(|name| {
                    settings
                        .map
                        .get(&name.to_lowercase())
                        .cloned()
                        .or_else(|| directory_group(directory, name))
                });
                DirectoryGroup { dn, name, policy }
            })
            .collect()
    }
}

/// The policy groups of `groups`, each once, in the order found.
pub fn policy_groups(groups: &[DirectoryGroup]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for policy in groups.iter().filter_map(|g| g.policy.as_ref()) {
        if !names.contains(policy) {
            names.push(policy.clone());
        }
    }
    names
}

/// Every group `member` is in, as the settings say to find them.
pub async fn resolve(
    settings: &DirectorySettings,
    lease: &mut Lease<'_>,
    member: Member<'_>,
    trace: &mut Trace,
) -> Result<Vec<DirectoryGroup>, DirectoryError> {
    let groups = &settings.groups;
    let mut collected = Collected::default();
    for dn in member.group_dns {
        let name = match first_rdn_value(&dn, &groups.name_attribute) {
            Some(name) => Some(name),
            None => read_name(lease, &dn, &groups.name_attribute).await?,
        };
        collected.add(dn, name);
    }
    if let Some(search) = &groups.search {
        let username = filter_value(member.username.as_str());
        let mut frontier = vec![member.dn.to_owned()];
        let mut level = 0;
        loop {
            let mut next = Vec::new();
            for dn in &frontier {
                let filter = search.filter.fill(&[&username, &filter_value(dn)]);
                let entries = lease
                    .search(
                        &search.base,
                        Scope::Subtree,
                        &filter,
                        &[groups.name_attribute.as_str()],
                        GROUP_SEARCH_LIMIT,
                    )
                    .await?;
                trace.note(|| Step::Search {
                    base: search.base.clone(),
                    filter: filter.clone(),
                    found: entries.iter().map(|e| e.dn.clone()).collect(),
                });
                for entry in entries {
                    let name = first_value(&entry.attrs, &groups.name_attribute);
                    if collected.add(entry.dn.clone(), name) {
                        next.push(entry.dn);
                    }
                }
            }
            if level == 0 && search.by_dn() {
                // Groups from the attribute are starting points for nesting too.
                let from_attribute: Vec<String> = collected
                    .groups
                    .iter()
                    .map(|(dn, _)| dn.clone())
                    .filter(|dn| !next.contains(dn))
                    .collect();
                next.extend(from_attribute);
            }
            level += 1;
            if level > groups.nested_depth || !search.by_dn() || next.is_empty() {
                break;
            }
            frontier = next;
        }
    }
    if collected.truncated {
        tracing::warn!(
            directory = %settings.name,
            user = %member.username,
            "the user's groups were cut off at {MAX_GROUPS}"
        );
    }
    let mapped = collected.mapped(&settings.name, groups);
    trace.note(|| Step::Groups {
        groups: mapped
            .iter()
            .map(|g| {
                (
                    g.name.clone().unwrap_or_else(|| g.dn.clone()),
                    g.policy.clone(),
                )
            })
            .collect(),
    });
    Ok(mapped)
}

/// A group's name read from its entry, when its DN does not start with it.
async fn read_name(
    lease: &mut Lease<'_>,
    dn: &str,
    attribute: &str,
) -> Result<Option<String>, DirectoryError> {
    let entries = lease
        .search(dn, Scope::Base, "(objectClass=*)", &[attribute], 1)
        .await?;
    Ok(entries
        .into_iter()
        .next()
        .and_then(|entry| first_value(&entry.attrs, attribute)))
}

/// The first value of `attribute` (compared without case, as LDAP does).
pub fn first_value(
    attributes: &std::collections::HashMap<String, Vec<String>>,
    attribute: &str,
) -> Option<String> {
    all_values(attributes, attribute).next().cloned()
}

/// Every value of `attribute` (compared without case).
pub fn all_values<'a>(
    attributes: &'a std::collections::HashMap<String, Vec<String>>,
    attribute: &'a str,
) -> impl Iterator<Item = &'a String> {
    attributes
        .iter()
        .filter(move |(name, _)| name.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, values)| values.iter())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(map: &[(&str, &str)]) -> GroupSettings {
        GroupSettings {
            attribute: None,
            search: None,
            name_attribute: "cn".into(),
            nested_depth: 5,
            map: map
                .iter()
                .map(|(k, v)| (k.to_lowercase(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn groups_count_once_and_map_by_explicit_entry_then_default() {
        let corp = DirectoryName::parse("corp").unwrap();
        let mut collected = Collected::default();
        assert!(collected.add(
            "cn=Registry-Admins,ou=groups".into(),
            Some("Registry-Admins".into())
        ));
        assert!(!collected.add("CN=registry-admins,OU=groups".into(), Some("x".into())));
        assert!(collected.add(
            "cn=Domain Users,ou=groups".into(),
            Some("Domain Users".into())
        ));
        assert!(collected.add("cn=Ärzte,ou=groups".into(), Some("Ärzte".into())));
        assert!(collected.add("cn=Wheel,ou=groups".into(), Some("Wheel".into())));
        assert!(collected.add("cn=odd,ou=groups".into(), None));
        let mapped = collected.mapped(&corp, &settings(&[("wheel", "admins")]));
        let policies: Vec<Option<&str>> = mapped.iter().map(|g| g.policy.as_deref()).collect();
        assert_eq!(
            policies,
            [
                Some("ldap:corp:registry-admins"),
                Some("ldap:corp:domain-users"),
                None,
                Some("admins"),
                None
            ]
        );
        assert_eq!(
            policy_groups(&mapped),
            [
                "ldap:corp:registry-admins",
                "ldap:corp:domain-users",
                "admins"
            ]
        );
    }

    #[test]
    fn a_collection_stops_at_its_bound() {
        let mut collected = Collected::default();
        for i in 0..MAX_GROUPS {
            assert!(collected.add(format!("cn=g{i}"), None));
        }
        assert!(!collected.add("cn=one-more".into(), None));
        assert!(collected.truncated);
    }

    #[test]
    fn attribute_values_are_found_without_case() {
        let attributes = HashMap::from([(
            "memberOf".to_owned(),
            vec!["cn=a,dc=x".to_owned(), "cn=b,dc=x".to_owned()],
        )]);
        assert_eq!(all_values(&attributes, "memberof").count(), 2);
        assert_eq!(
            first_value(&attributes, "MEMBEROF").as_deref(),
            Some("cn=a,dc=x")
        );
        assert_eq!(first_value(&attributes, "cn"), None);
    }
}
