//! The admin HTTP API (`/api/v1`): its OpenAPI document against the routes the server answers,
//! authentication by an access token with the `admin` scope, what users and admins may do, and
//! each resource's success, 400, 401, 403, 404 and 409 answers in the one error shape.

use crate::api::helpers::{claims, realm_name, TestApp};
use crate::on_both_engines;
use portcullis::api::ROUTES;
use portcullis::auth::token::{self, TokenSpec};
use portcullis::names::Username;
use portcullis::store::{Role, TokenKind};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

on_both_engines!(
    the_document_lists_exactly_the_routes_the_server_answers,
    every_route_but_the_document_needs_an_admin_scoped_token,
    users_manage_only_their_own_tokens,
    admins_manage_users_groups_and_grants_and_explain_the_policy,
    a_token_made_through_the_api_works_at_the_token_endpoint_until_revoked,
    admins_see_keys_and_clear_lockouts,
);

/// An access token for `owner` with these scopes, as its secret.
async fn token_for(app: &TestApp, owner: &str, scopes: Option<&str>) -> String {
    token_and_id(app, owner, scopes).await.0
}

/// An access token for `owner` with these scopes: its secret and id.
async fn token_and_id(app: &TestApp, owner: &str, scopes: Option<&str>) -> (String, String) {
    let user = app
        .store
        .find_user(&realm_name("default"), &Username::parse(owner).unwrap())
        .await
        .unwrap()
        .unwrap();
    static CREATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "api{}",
        CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let spec = TokenSpec {
        kind: TokenKind::Access,
        user_id: user.id,
        name: Some(&name),
        client_id: None,
        scopes,
        expires_at: None,
    };
    let created = token::create(&app.store, &spec).await.unwrap();
    (created.secret.expose_secret().to_owned(), created.id)
}

/// An admin `root` and a user `alice`, each with an admin-scoped token: (root's, alice's).
async fn people(app: &TestApp) -> (String, String) {
    app.add_user("default", "root", "root-pw", Role::Admin)
        .await;
    app.add_user("default", "alice", "alice-pw", Role::User)
        .await;
    (
        token_for(app, "root", Some("admin")).await,
        token_for(app, "alice", Some("admin")).await,
    )
}

/// A request to `path` below `/api/v1`; returns the status and the JSON body (`null` when none).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, format!("{}/api/v1{path}", app.address));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A route's path with sample values for its parameters.
fn sample_path(path: &str) -> String {
    path.replace("{realm}", "default")
        .replace("{user}", "alice")
        .replace("{group}", "devs")
        .replace("{id}", "1")
        .replace("{platform}", "perlmutter")
        .replace("{uid}", "1000")
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.to_uppercase().as_bytes()).unwrap()
}

/// The document served names every route the table registers, and nothing else; each answers
/// (whatever its answer to sample values), and a path outside it is `no_such_route`.
async fn the_document_lists_exactly_the_routes_the_server_answers(app: TestApp) {
    let (root, _) = people(&app).await;
    let (status, document) = call(&app, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut routes: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), format!("/api/v1{}", r.path)))
        .collect();
    documented.sort();
    routes.sort();
    assert_eq!(documented, routes);
    for (name, path) in &documented {
        let path = sample_path(path.strip_prefix("/api/v1").unwrap());
        let body = matches!(name.as_str(), "post" | "patch").then(|| json!({}));
        let (status, answer) = call(&app, method(name), &path, Some(&root), body).await;
        assert!(
            code(&answer) != "no_such_route" && status != 405,
            "{name} {path}: {status} {answer}"
        );
    }
    let (status, answer) = call(&app, Method::GET, "/realms/default/nope", Some(&root), None).await;
    assert_eq!((status, code(&answer)), (404, "no_such_route"));
    let (status, answer) = call(
        &app,
        Method::PUT,
        "/realms/default/users",
        Some(&root),
        None,
    )
    .await;
    assert_eq!((status, code(&answer)), (404, "no_such_route"));
}

/// Without a token, with a token lacking the admin scope, with a revoked one or one of another
/// realm: 401 with `WWW-Authenticate: Bearer`, on every route but the document.
async fn every_route_but_the_document_needs_an_admin_scoped_token(app: TestApp) {
    let (root, _) = people(&app).await;
    let registry_only = token_for(&app, "root", Some("repository:root/**:pull")).await;
    let unscoped = token_for(&app, "root", None).await;
    let (revoked, revoked_id) = token_and_id(&app, "root", Some("admin")).await;
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/realms/default/tokens/{revoked_id}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 204);
    for route in ROUTES.iter().filter(|r| r.access != "anyone") {
        let path = sample_path(route.path);
        for bearer in [
            None,
            Some(registry_only.as_str()),
            Some(unscoped.as_str()),
            Some("pcat_not-a-token"),
            Some("Basic cm9vdDpyb290LXB3"),
        ] {
            let response = app.client.request(
                method(route.method),
                format!("{}/api/v1{path}", app.address),
            );
            let response = match bearer {
                Some(token) => response.bearer_auth(token),
                None => response,
            };
            let response = response.send().await.unwrap();
            assert_eq!(response.status(), 401, "{} {path} {bearer:?}", route.method);
            assert!(response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"));
            let body: Value = response.json().await.unwrap();
            assert_eq!(code(&body), "unauthenticated");
        }
    }
    let (status, answer) = call(
        &app,
        Method::GET,
        "/realms/default/me",
        Some(&revoked),
        None,
    )
    .await;
    assert_eq!((status, code(&answer)), (401, "unauthenticated"), "revoked");
    assert_eq!(
        call(&app, Method::GET, "/realms/default/me", Some(&root), None)
            .await
            .0,
        200
    );
    // A token of this realm does not open another.
    let (status, _) = call(&app, Method::GET, "/realms/other/me", Some(&root), None).await;
    assert_eq!(status, 401);
}

/// A user's admin-scoped token: every admin route is 403; tokens are their own to list, create
/// and revoke, and another's are out of reach.
async fn users_manage_only_their_own_tokens(app: TestApp) {
    let (root, alice) = people(&app).await;
    for route in ROUTES.iter().filter(|r| r.access == "admin") {
        let path = sample_path(route.path);
        let body = matches!(route.method, "post" | "patch").then(|| json!({}));
        let (status, answer) = call(&app, method(route.method), &path, Some(&alice), body).await;
        assert_eq!(
            (status, code(&answer)),
            (403, "forbidden"),
            "{} {path}",
            route.method
        );
    }
    let (status, me) = call(&app, Method::GET, "/realms/default/me", Some(&alice), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        me,
        json!({"realm": "default", "user": "alice", "role": "user"})
    );

    let (status, created) = call(
        &app,
        Method::POST,
        "/realms/default/tokens",
        Some(&alice),
        Some(json!({"name": "laptop", "scopes": ["repository:alice/**:pull"], "expires": "30d"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("pcat_"));
    let (status, refused) = call(
        &app,
        Method::POST,
        "/realms/default/tokens",
        Some(&alice),
        Some(json!({"name": "theirs", "user": "root"})),
    )
    .await;
    assert_eq!((status, code(&refused)), (403, "forbidden"));
    let (status, refused) = call(
        &app,
        Method::GET,
        "/realms/default/tokens?user=root",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!((status, code(&refused)), (403, "forbidden"));

    let (_, own) = call(
        &app,
        Method::GET,
        "/realms/default/tokens",
        Some(&alice),
        None,
    )
    .await;
    let own = own["items"].as_array().unwrap().clone();
    assert!(own.iter().all(|t| t["user"] == "alice"), "{own:?}");
    assert!(
        own.iter().all(|t| t.get("secret").is_none()),
        "secrets are never listed"
    );
    let laptop = own.iter().find(|t| t["name"] == "laptop").unwrap();
    assert_eq!(laptop["scopes"], json!(["repository:alice/**:pull"]));
    assert!(laptop["expires_at"].is_i64());

    let (_, all) = call(
        &app,
        Method::GET,
        "/realms/default/tokens?user=root",
        Some(&root),
        None,
    )
    .await;
    let roots = all["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, answer) = call(
        &app,
        Method::DELETE,
        &format!("/realms/default/tokens/{roots}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&answer)),
        (404, "not_found"),
        "another's token is not found"
    );
    let id = laptop["id"].as_str().unwrap();
    let path = format!("/realms/default/tokens/{id}");
    assert_eq!(
        call(&app, Method::DELETE, &path, Some(&alice), None)
            .await
            .0,
        204
    );
    let (_, own) = call(
        &app,
        Method::GET,
        "/realms/default/tokens",
        Some(&alice),
        None,
    )
    .await;
    let laptop = own["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(laptop["state"], "revoked");
}

/// Users, groups, grants and `policy/explain`: created, read, changed and removed, with 400 for
/// what does not parse, 404 for what does not exist and 409 for what exists already.
async fn admins_manage_users_groups_and_grants_and_explain_the_policy(app: TestApp) {
    let (root, _) = people(&app).await;
    let r = Some(root.as_str());
    let post = |path: &'static str, body: Value| {
        let app = &app;
        async move { call(app, Method::POST, path, r, Some(body)).await }
    };
    let (status, bob) = post(
        "/realms/default/users",
        json!({"name": "bob", "password": "bob-password"}),
    )
    .await;
    assert_eq!(status, 201, "{bob}");
    assert_eq!(bob["role"], "user");
    assert_eq!(bob["kind"], "person");
    let (status, robot) = post(
        "/realms/default/users",
        json!({"name": "ci", "kind": "robot"}),
    )
    .await;
    assert_eq!((status, &robot["kind"]), (201, &json!("robot")));
    for (body, expected) in [
        (
            json!({"name": "bob", "password": "another-pw"}),
            (409, "conflict"),
        ),
        (
            json!({"name": "Bob Smith", "password": "pw-pw-pw"}),
            (400, "invalid"),
        ),
        (json!({"name": "carol"}), (400, "invalid")),
        (
            json!({"name": "dave", "kind": "robot", "password": "x"}),
            (400, "invalid"),
        ),
        (
            json!({"name": "erin", "password": "pw", "role": "owner"}),
            (400, "invalid"),
        ),
        (
            json!({"name": "frank", "password": "pw", "extra": 1}),
            (400, "invalid"),
        ),
        (json!({"name": "gina", "password": ""}), (400, "invalid")),
    ] {
        let (status, answer) = post("/realms/default/users", body.clone()).await;
        assert_eq!((status, code(&answer)), expected, "{body}: {answer}");
    }
    let (status, answer) = call(&app, Method::POST, "/realms/default/users", r, None).await;
    assert_eq!((status, code(&answer)), (400, "invalid"), "no body");
    let huge =
        json!({"name": "x".repeat(app.settings.server.max_body_bytes), "password": "pw-pw-pw"});
    let (status, answer) = post("/realms/default/users", huge).await;
    assert_eq!((status, code(&answer)), (413, "too_large"));

    let (status, answer) = call(&app, Method::GET, "/realms/default/users/nobody", r, None).await;
    assert_eq!((status, code(&answer)), (404, "not_found"));
    let (status, changed) = call(
        &app,
        Method::PATCH,
        "/realms/default/users/bob",
        r,
        Some(json!({"role": "admin", "disabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&changed["role"], &changed["disabled"]),
        (&json!("admin"), &json!(true))
    );

    // Pages walk every user once, in name order.
    let mut names = Vec::new();
    let mut path = "/realms/default/users?limit=2".to_owned();
    loop {
        let (status, page) = call(&app, Method::GET, &path, r, None).await;
        assert_eq!(status, 200);
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["name"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/realms/default/users?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(names, ["alice", "bob", "ci", "root"]);
    let (status, answer) = call(&app, Method::GET, "/realms/default/users?limit=0", r, None).await;
    assert_eq!((status, code(&answer)), (400, "invalid"));

    // A group with alice, a grant to it, and the explanation that shows it.
    assert_eq!(
        post("/realms/default/groups", json!({"name": "devs"}))
            .await
            .0,
        201
    );
    assert_eq!(
        post("/realms/default/groups", json!({"name": "devs"}))
            .await
            .0,
        409
    );
    let member = "/realms/default/groups/devs/members/alice";
    assert_eq!(call(&app, Method::PUT, member, r, None).await.0, 204);
    let (status, grant) = post(
        "/realms/default/grants",
        json!({"subject": "group:devs", "name": "shared/**", "actions": ["pull", "push"]}),
    )
    .await;
    assert_eq!(status, 201, "{grant}");
    let (status, answer) = post(
        "/realms/default/grants",
        json!({"subject": "group:devs", "name": "shared/**", "actions": ["fly"]}),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "invalid"), "{answer}");
    let explain = json!({"user": "alice", "scopes": ["repository:shared/app:pull,push"]});
    let (status, explained) = post("/realms/default/policy/explain", explain.clone()).await;
    assert_eq!(status, 200, "{explained}");
    assert_eq!(
        explained["decisions"][0]["granted"],
        "repository:shared/app:pull,push"
    );
    let (_, groups) = call(&app, Method::GET, "/realms/default/groups", r, None).await;
    assert_eq!(
        groups["items"][0],
        json!({"name": "devs", "members": ["alice"]})
    );

    let grant_path = format!("/realms/default/grants/{}", grant["id"]);
    assert_eq!(
        call(&app, Method::DELETE, &grant_path, r, None).await.0,
        204
    );
    assert_eq!(
        call(&app, Method::DELETE, &grant_path, r, None).await.0,
        404
    );
    let (status, answer) = call(&app, Method::DELETE, "/realms/default/grants/x", r, None).await;
    assert_eq!((status, code(&answer)), (400, "invalid"));
    let (_, explained) = post("/realms/default/policy/explain", explain).await;
    assert!(
        explained["decisions"][0]["granted"].is_null(),
        "{explained}"
    );
    let (status, answer) = post(
        "/realms/default/policy/explain",
        json!({"user": "nobody", "scopes": ["repository:a/b:pull"]}),
    )
    .await;
    assert_eq!((status, code(&answer)), (404, "not_found"));
    let (status, _) = post(
        "/realms/default/policy/explain",
        json!({"scopes": ["nonsense"]}),
    )
    .await;
    assert_eq!(status, 400);

    assert_eq!(call(&app, Method::DELETE, member, r, None).await.0, 204);
    assert_eq!(
        call(&app, Method::DELETE, "/realms/default/groups/devs", r, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&app, Method::DELETE, "/realms/default/groups/devs", r, None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(&app, Method::DELETE, "/realms/default/users/bob", r, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&app, Method::DELETE, "/realms/default/users/bob", r, None)
            .await
            .0,
        404
    );
    let (status, answer) = call(&app, Method::DELETE, "/realms/default/users/root", r, None).await;
    assert_eq!((status, code(&answer)), (409, "conflict"), "not oneself");
    let (status, realm) = call(&app, Method::GET, "/realms/default", r, None).await;
    assert_eq!((status, &realm["services"]), (200, &json!(["registry"])));
}

/// An admin makes alice a token through the API; it logs in at the token endpoint within its
/// scopes, and stops working when revoked through the API. The admin scope alone reaches nothing
/// on the registry.
async fn a_token_made_through_the_api_works_at_the_token_endpoint_until_revoked(app: TestApp) {
    let (root, _) = people(&app).await;
    let (status, created) = call(
        &app,
        Method::POST,
        "/realms/default/tokens",
        Some(&root),
        Some(json!({"name": "ci", "user": "alice", "scopes": ["repository:alice/**:pull"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap();
    let query = "service=registry&scope=repository:alice/app:pull,push";
    let response = app.get_token(query, Some(("alice", secret))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([{"type": "repository", "name": "alice/app", "actions": ["pull"]}])
    );
    let path = format!("/realms/default/tokens/{}", created["id"].as_str().unwrap());
    assert_eq!(
        call(&app, Method::DELETE, &path, Some(&root), None).await.0,
        204
    );
    app.after_change("revoked through the API", 401, async || {
        app.get_token(query, Some(("alice", secret)))
            .await
            .status()
            .as_u16()
    })
    .await;

    let response = app.get_token(query, Some(("root", &root))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(claims(body["token"].as_str().unwrap())["access"], json!([]));
    let (status, answer) = call(
        &app,
        Method::POST,
        "/realms/default/tokens",
        Some(&root),
        Some(json!({"name": "bad", "scopes": ["repository:x"], "expires": "forever"})),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "invalid"));
    let (status, answer) = call(
        &app,
        Method::POST,
        "/realms/default/tokens",
        Some(&root),
        Some(json!({"name": "x", "user": "nobody"})),
    )
    .await;
    assert_eq!((status, code(&answer)), (404, "not_found"));
}

/// The key list names the active key; failed passwords show in the lockout list until cleared;
/// MUNGE uids map to users and back.
async fn admins_see_keys_and_clear_lockouts(app: TestApp) {
    let (root, _) = people(&app).await;
    let r = Some(root.as_str());
    let uid = "/realms/default/munge/perlmutter/1000";
    let map = |user: &str| Some(json!({ "user": user }));
    assert_eq!(call(&app, Method::PUT, uid, r, map("alice")).await.0, 204);
    let (status, answer) = call(&app, Method::PUT, uid, r, map("nobody")).await;
    assert_eq!((status, code(&answer)), (404, "not_found"));
    let (status, answer) = call(
        &app,
        Method::PUT,
        "/realms/default/munge/perlmutter/-1",
        r,
        map("alice"),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "invalid"));
    let (_, listed) = call(
        &app,
        Method::GET,
        "/realms/default/munge/perlmutter",
        r,
        None,
    )
    .await;
    assert_eq!(listed["items"], json!([{"uid": 1000, "user": "alice"}]));
    assert_eq!(call(&app, Method::DELETE, uid, r, None).await.0, 204);
    let (_, listed) = call(
        &app,
        Method::GET,
        "/realms/default/munge/perlmutter",
        r,
        None,
    )
    .await;
    assert_eq!(listed["items"], json!([]));
    let (status, keys) = call(&app, Method::GET, "/realms/default/keys", r, None).await;
    assert_eq!(status, 200);
    assert_eq!(keys["items"][0]["state"], "active");
    assert!(keys["items"][0]["kid"].as_str().unwrap().contains(':'));

    let response = app
        .get_token("service=registry", Some(("alice", "wrong")))
        .await;
    assert_eq!(response.status(), 401);
    let (status, lockouts) = call(&app, Method::GET, "/realms/default/lockouts", r, None).await;
    assert_eq!(status, 200);
    let subjects: Vec<&str> = lockouts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["subject"].as_str().unwrap())
        .collect();
    assert!(subjects.contains(&"account:default/alice"), "{lockouts}");
    let path = "/realms/default/lockouts/users/alice";
    assert_eq!(call(&app, Method::DELETE, path, r, None).await.0, 204);
    let (status, answer) = call(&app, Method::DELETE, path, r, None).await;
    assert_eq!(
        (status, code(&answer)),
        (409, "conflict"),
        "nothing left to clear"
    );
}
