//! What a directory login did, step by step, for `portcullis ldap test`: which URL it connected
//! to and how, which identity searched, which filter found which entry, the groups and what they
//! map to, and whether the user's bind was accepted. The request path passes [`Trace::off`] and
//! builds nothing. No step holds a password.

use std::fmt;

/// One step of a directory login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A connection was opened; `tls` is `none`, `StartTLS` or `LDAPS`; `verified` tells whether
    /// the server's certificate was checked.
    Connected {
        url: String,
        tls: String,
        verified: bool,
    },
    ConnectFailed {
        url: String,
        error: String,
    },
    /// The search identity's bind (`dn` `None`: anonymous).
    ServiceBind {
        dn: Option<String>,
        accepted: bool,
    },
    /// A search and the DNs it found.
    Search {
        base: String,
        filter: String,
        found: Vec<String>,
    },
    /// The user's bind.
    UserBind {
        dn: String,
        accepted: bool,
    },
    /// The groups found, each with the policy group it maps to (`None`: not mapped).
    Groups {
        groups: Vec<(String, Option<String>)>,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = |accepted: bool| if accepted { "accepted" } else { "refused" };
        match self {
            Step::Connected { url, tls, verified } => {
                let check = match (tls.as_str(), verified) {
                    ("none", _) => "",
                    (_, true) => ", certificate verified",
                    (_, false) => ", certificate NOT verified (insecure_skip_verify)",
                };
                write!(f, "connected to {url} (TLS: {tls}{check})")
            }
            Step::ConnectFailed { url, error } => write!(f, "cannot connect to {url}: {error}"),
            Step::ServiceBind {
                dn: Some(dn),
                accepted,
            } => {
                write!(f, "service bind as {dn}: {}", outcome(*accepted))
            }
            Step::ServiceBind { dn: None, accepted } => {
                write!(f, "anonymous bind: {}", outcome(*accepted))
            }
            Step::Search {
                base,
                filter,
                found,
            } => {
                write!(f, "search {filter} under {base}: ")?;
                if found.is_empty() {
                    f.write_str("nothing found")
                } else {
                    write!(f, "found {}", found.join("; "))
                }
            }
            Step::UserBind { dn, accepted } => {
                write!(f, "user bind as {dn}: {}", outcome(*accepted))
            }
            Step::Groups { groups } if groups.is_empty() => f.write_str("groups: none"),
            Step::Groups { groups } => {
                f.write_str("groups:")?;
                for (group, policy) in groups {
                    match policy {
                        Some(policy) => write!(f, "\n  {group} -> group:{policy}")?,
                        None => write!(f, "\n  {group} -> (not mapped: set group_map)")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// The steps of one login when recorded.
#[derive(Debug, Default)]
pub struct Trace(Option<Vec<Step>>);

impl Trace {
    /// Records nothing (the request path).
    pub fn off() -> Trace {
        Trace(None)
    }

    /// Records every step.
    pub fn on() -> Trace {
        Trace(Some(Vec::new()))
    }

    /// Records the step `make` builds, when recording.
    pub fn note(&mut self, make: impl FnOnce() -> Step) {
        if let Some(steps) = &mut self.0 {
            steps.push(make());
        }
    }

    /// The steps recorded.
    pub fn steps(self) -> Vec<Step> {
        self.0.unwrap_or_default()
    }
}
