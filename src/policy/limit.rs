//! What an access token may reach at most: its scopes (`repository:team/**:pull`, space-separated,
//! the name a policy pattern) as a policy granting exactly them to anyone. The scope [`ADMIN_SCOPE`]
//! lets a token call the admin API and reaches nothing on the registry.

use super::{Evaluation, Policy, Rule, RuleError, RuleText};

/// The scope that lets an access token call the admin API (`/api/v1`) as its owner.
pub const ADMIN_SCOPE: &str = "admin";

/// The policy granting exactly `scopes` to anyone (the admin API's scope grants nothing here).
pub fn scope_limit(scopes: &str) -> Result<Policy, ScopeLimitError> {
    let rules = scopes
        .split(' ')
        .filter(|s| !s.is_empty() && *s != ADMIN_SCOPE)
        .map(|scope| {
            let shape = || ScopeLimitError::Shape(scope.chars().take(80).collect());
            let (resource, rest) = scope.split_once(':').ok_or_else(shape)?;
            let (name, actions) = rest.rsplit_once(':').ok_or_else(shape)?;
            let actions: Vec<&str> = actions.split(',').collect();
            Rule::parse(&RuleText {
                subject: ANY_SUBJECT,
                resource,
                name,
                actions: &actions,
                effect: ALLOW,
            })
            .map_err(|error| ScopeLimitError::Rule {
                scope: scope.to_owned(),
                error,
            })
        })
        .collect::<Result<Vec<Rule>, ScopeLimitError>>()?;
    Ok(Policy::new(Evaluation::Union, rules))
}

/// An access token scope that is not `type:pattern:actions` with a valid pattern and actions.
#[derive(Debug, thiserror::Error)]
pub enum ScopeLimitError {
    #[error("scope {0:?}: expected type:name-pattern:actions, e.g. repository:team/**:pull")]
    Shape(String),
    #[error("scope {scope:?}: {error}")]
    Rule { scope: String, error: RuleError },
}

/// The subject and effect of the rules [`scope_limit`] builds.
const ANY_SUBJECT: &str = "any";
const ALLOW: &str = "allow";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_s_choices_are_scopes() {
        assert!(scope_limit("repository:alice/**:pull,push repository:**:pull admin").is_ok());
        assert!(scope_limit("repository:alice").is_err());
    }
}
