//! The OpenAPI 3.1 document of the admin API, served at `/api/v1/openapi.json`. It is made from
//! [`ROUTES`], the table the routes are registered from, so every route is in it and nothing
//! else: paths, methods, who may call each, its parameters, its success status, and the one error
//! shape of every failure.

use serde_json::{json, Map, Value};

use super::{Route, PREFIX, ROUTES};

/// The one list that goes newest first, paged by `before` (`page`).
const RECENT_AUDIT_EVENTS: &str = "recent_audit_events";

/// The failures every authenticated route may answer, with what each means.
const FAILURES: [(u16, &str); 7] = [
    (400, "The body or a parameter is invalid."),
    (413, "The body is larger than server.max_body_bytes."),
    (
        401,
        "No access token with the admin scope of this realm, nor a console session of it.",
    ),
    (403, "The caller's role does not allow it."),
    (404, "No such realm, user, group, grant, token or key."),
    (409, "It contradicts what is stored."),
    (503, "A dependency failed; retry after Retry-After seconds."),
];

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let path = paths
            .entry(format!("{PREFIX}{}", route.path))
            .or_insert_with(|| json!({}));
        path[route.method] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portcullis admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Users, groups, grants, tokens, keys, MUNGE mappings, lockouts, policy \
                explanations and the recent audit events of a realm. Authenticate with an access token that has the admin scope \
                (portcullis token create --scope admin), as Authorization: Bearer, or a web console \
                session. Admins may do \
                everything in their realm; users may list, create and revoke their own tokens.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "accessToken": { "type": "http", "scheme": "bearer" },
                "consoleSession": {
                    "type": "apiKey", "in": "cookie", "name": "portcullis_console",
                    "description": "A web console session; a change also needs the session's \
                        CSRF token in the X-CSRF-Token header.",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {
                                    "type": "string",
                                    "enum": ["unauthenticated", "forbidden", "not_found",
                                        "no_such_route", "invalid", "too_large", "conflict", "unavailable"],
                                },
                                "message": { "type": "string" },
                            },
                        },
                    },
                },
                "Page": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": { "type": "array" },
                        "next": {
                            "type": ["string", "null"],
                            "description": "The `after` of the next page (of the audit trail, its `before`); null on the last.",
                        },
                    },
                },
            },
        },
    })
}

fn operation(route: &Route) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .map(|name| {
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
        })
        .collect();
    if route.operation == RECENT_AUDIT_EVENTS {
        parameters.push(json!({
            "name": "limit", "in": "query", "required": false,
            "schema": { "type": "integer", "minimum": 1, "maximum": super::page::MAX_LIMIT },
        }));
        parameters.push(json!({
            "name": "before", "in": "query", "required": false, "schema": { "type": "integer" },
            "description": "Only events older than the event with this id.",
        }));
        parameters.push(json!({
            "name": "event", "in": "query", "required": false, "schema": { "type": "string" },
            "description": "Only events of this name (granted, refused, grant_added, ...).",
        }));
    }
    if route.operation.starts_with("list_") {
        parameters.push(json!({
            "name": "limit", "in": "query", "required": false,
            "schema": { "type": "integer", "minimum": 1, "maximum": super::page::MAX_LIMIT },
        }));
        parameters.push(json!({
            "name": "after", "in": "query", "required": false, "schema": { "type": "string" },
        }));
    }
    let success = match route.status {
        204 => json!({ "description": "Done." }),
        _ if route.operation.starts_with("list_") || route.operation == RECENT_AUDIT_EVENTS => {
            json!({
                "description": "A page of the list.",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Page" } } },
            })
        }
        _ => json!({
            "description": "Done.",
            "content": { "application/json": { "schema": { "type": "object" } } },
        }),
    };
    let mut responses = Map::new();
    responses.insert(route.status.to_string(), success);
    let anyone = route.access == "anyone";
    for (status, description) in FAILURES {
        if anyone && status != 503 {
            continue;
        }
        responses.insert(
            status.to_string(),
            json!({
                "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
            }),
        );
    }
    let mut operation = json!({
        "operationId": route.operation,
        "summary": route.summary,
        "description": format!("Who may call it: {}.", route.access),
        "parameters": parameters,
        "responses": responses,
    });
    if !anyone {
        operation["security"] = json!([{ "accessToken": [] }, { "consoleSession": [] }]);
    }
    if matches!(route.method, "post" | "patch") {
        operation["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": { "type": "object" } } },
        });
    }
    operation
}

/// The `{name}` parameters of a path template, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_once_with_its_parameters() {
        let document = document();
        let paths = document["paths"].as_object().unwrap();
        let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(operations, ROUTES.len());
        let user = &paths["/api/v1/realms/{realm}/users/{user}"]["delete"];
        let names: Vec<&str> = user["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["realm", "user"]);
        assert!(user["responses"]["204"].is_object());
        assert!(paths["/api/v1/openapi.json"]["get"]
            .get("security")
            .is_none());
        let ids: std::collections::HashSet<&str> = ROUTES.iter().map(|r| r.operation).collect();
        assert_eq!(ids.len(), ROUTES.len(), "operation ids are unique");
    }
}
