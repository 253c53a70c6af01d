//! `/openapi.json` against the server: the document names exactly the routes
//! the server registers, and real answers of all three APIs match the schema
//! the document gives for their (path, method, status).
//!
//! The schema check is a small structural validator over the JSON Schema
//! keywords utoipa emits (`$ref`, `type`, `properties`, `required`,
//! `additionalProperties`, `items`, `allOf` / `oneOf` / `anyOf`, `enum`,
//! `format: uuid`, bounds). A keyword it does not know fails the test rather
//! than passing unchecked. Objects are closed: an answer may not carry a
//! field its schema does not name unless the schema says
//! `additionalProperties`, so a field added to a handler and not to the
//! document is caught.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{now, spawn_app, token, token_with, Backend, Resp, TestApp};
use crate::sila_client::{Key, SilaClient};

backend_tests!(responses_match_their_schemas);

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `{name:regex}` → `{name}`: actix's segment syntax to OpenAPI's.
fn openapi_path(actix: &str) -> String {
    let mut out = String::new();
    let mut rest = actix;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let inner = &rest[open + 1..close];
        out.push('{');
        out.push_str(inner.split(':').next().unwrap_or(inner));
        out.push('}');
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// Every (method, path) the document has an operation for.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

fn registered() -> BTreeSet<(String, String)> {
    walletd::api::routes()
        .iter()
        .map(|r| (r.method.to_string(), openapi_path(r.path)))
        .collect()
}

async fn served_document(app: &TestApp) -> Value {
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The difference between the route table and the document, both ways.
fn drift(
    routes: &BTreeSet<(String, String)>,
    doc: &BTreeSet<(String, String)>,
) -> (Vec<String>, Vec<String>) {
    let undocumented = routes
        .difference(doc)
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    let unrouted = doc
        .difference(routes)
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    (undocumented, unrouted)
}

#[test]
fn drift_is_seen_both_ways() {
    let routes: BTreeSet<_> = [("get", "/a"), ("post", "/b/{id}")]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let doc: BTreeSet<_> = [("get", "/a"), ("get", "/c")]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let (undocumented, unrouted) = drift(&routes, &doc);
    assert_eq!(undocumented, vec!["POST /b/{id}"]);
    assert_eq!(unrouted, vec!["GET /c"]);
    assert_eq!(openapi_path("/docs/{file:.*}"), "/docs/{file}");
    assert_eq!(
        openapi_path("/api/wallets/{id}/sign"),
        "/api/wallets/{id}/sign"
    );
}

/// The route table and the served document name the same operations, and
/// every operation in the table is live (none falls through to the
/// server's "no such endpoint").
#[actix_web::test]
async fn every_route_is_documented_and_every_documented_route_exists() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let doc = served_document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let routes = registered();
    let (undocumented, unrouted) = drift(&routes, &documented(&doc));
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
    // The table is what the server registers: each entry answers something
    // other than the fallback 404.
    for (method, path) in &routes {
        let concrete = path
            .replace("{id}", "probe-user")
            .replace("{handle}", "probe.user")
            .replace("{file}", "index.html");
        let req = match method.as_str() {
            "get" => app.client.get(app.url(&concrete)),
            "post" => app.client.post(app.url(&concrete)),
            other => panic!("no probe for method {other}"),
        };
        let res = req.send().await.expect("request sent");
        let r = crate::helpers::into_resp_lenient(res).await;
        let fell_through = r
            .as_ref()
            .is_some_and(|(status, body)| *status == 404 && body["error"] == "no such endpoint");
        assert!(
            !fell_through,
            "{method} {path} is in the table but not served"
        );
    }
    // Every operation says how it is secured (or that it is open), and
    // every scheme it names exists.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    for name in [
        "api_key",
        "jwt",
        "sila_token",
        "authsignature",
        "usersignature",
    ] {
        assert!(schemes.contains_key(name), "security scheme {name}");
    }
    assert_eq!(schemes["authsignature"]["type"], "apiKey");
    assert_eq!(schemes["authsignature"]["in"], "header");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    let mut operation_ids = BTreeSet::new();
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][&method];
        let id = op["operationId"].as_str().unwrap_or_default().to_string();
        assert!(
            !id.is_empty() && operation_ids.insert(id.clone()),
            "{method} {path}: operationId {id:?} missing or not unique"
        );
        for requirement in op["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().expect("requirement").keys() {
                assert!(schemes.contains_key(name), "{method} {path}: scheme {name}");
            }
        }
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            ["200", "201", "202", "308"]
                .iter()
                .any(|status| responses.contains_key(*status)),
            "{method} {path}: no success answer"
        );
        if path.starts_with("/api/") || (path.starts_with("/0.2/") && method == "post") {
            assert!(
                op["security"].as_array().is_some_and(|s| !s.is_empty()),
                "{method} {path}: no security requirement"
            );
            for status in ["400", "401"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
        }
    }
    // The rendered page and its assets come from the binary.
    let res = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(app.url("/docs"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status().as_u16(), 308);
    assert_eq!(
        res.headers().get("location").map(|v| v.as_bytes()),
        Some(&b"/docs/"[..])
    );
    for (file, kind) in [
        ("", "text/html"),
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-initializer.js", "javascript"),
    ] {
        let mut res = app
            .client
            .get(app.url(&format!("/docs/{file}")))
            .send()
            .await
            .expect("request sent");
        assert_eq!(res.status().as_u16(), 200, "/docs/{file}");
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(content_type.contains(kind), "/docs/{file}: {content_type}");
        let body = res.body().limit(8 << 20).await.expect("body");
        if file == "swagger-initializer.js" {
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains("/openapi.json"), "{text}");
        }
    }
    app.stop().await;
}

// ---- the structural validator ----

/// Annotations: they describe, they do not constrain.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "example",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "summary",
    "contentMediaType",
];

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local $ref: {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("dangling $ref {reference}"))
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// Problems of `v` against `schema`, each with its JSON path.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return out.push(format!("{at}: nothing is allowed here")),
            other => panic!("schema at {at} is not an object: {other}"),
        }
    };
    for (key, rule) in obj {
        match key.as_str() {
            "$ref" => check(doc, resolve(doc, rule.as_str().expect("$ref")), v, at, out),
            "type" => {
                let names: Vec<&str> = match rule {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    other => panic!("type {other}"),
                };
                if !names.iter().any(|n| type_matches(n, v)) {
                    out.push(format!("{at}: {v} is not of type {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().expect("enum").contains(v) {
                    out.push(format!("{at}: {v} is not one of {rule}"));
                }
            }
            "const" => {
                if rule != v {
                    out.push(format!("{at}: {v} is not {rule}"));
                }
            }
            "format" => {
                if rule == "uuid" {
                    if let Some(s) = v.as_str() {
                        if uuid::Uuid::parse_str(s).is_err() {
                            out.push(format!("{at}: {s:?} is not a UUID"));
                        }
                    }
                }
            }
            "minimum" | "maximum" => {
                if let (Some(n), Some(bound)) = (v.as_f64(), rule.as_f64()) {
                    if (key == "minimum" && n < bound) || (key == "maximum" && n > bound) {
                        out.push(format!("{at}: {n} is outside its {key} {bound}"));
                    }
                }
            }
            "properties" => {
                if let Some(fields) = v.as_object() {
                    for (name, sub) in rule.as_object().expect("properties") {
                        if let Some(fv) = fields.get(name) {
                            check(doc, sub, fv, &format!("{at}.{name}"), out);
                        }
                    }
                }
            }
            "required" => {
                if let Some(fields) = v.as_object() {
                    for name in rule.as_array().expect("required") {
                        let name = name.as_str().expect("required name");
                        if !fields.contains_key(name) {
                            out.push(format!("{at}: required {name} is missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let (Some(fields), Some(known)) = (v.as_object(), obj.get("properties")) {
                    for (name, fv) in fields {
                        if known.get(name).is_none() {
                            check(doc, rule, fv, &format!("{at}.{name}"), out);
                        }
                    }
                } else if let Some(fields) = v.as_object() {
                    for (name, fv) in fields {
                        check(doc, rule, fv, &format!("{at}.{name}"), out);
                    }
                }
            }
            "propertyNames" | "minProperties" | "maxProperties" => {
                panic!("the checker does not know {key} (at {at})")
            }
            "items" => {
                if let Some(items) = v.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check(doc, rule, item, &format!("{at}[{i}]"), out);
                    }
                }
            }
            "allOf" => {
                for sub in rule.as_array().expect("allOf") {
                    check(doc, &open(sub), v, at, out);
                }
            }
            "oneOf" | "anyOf" => {
                let passing = rule
                    .as_array()
                    .expect(key)
                    .iter()
                    .filter(|sub| {
                        let mut errs = Vec::new();
                        check(doc, sub, v, at, &mut errs);
                        errs.is_empty()
                    })
                    .count();
                let ok = if key == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    out.push(format!("{at}: {v} matches {passing} of {key} {rule}"));
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            other => panic!("the checker does not know the keyword {other} (at {at})"),
        }
    }
    // Closed objects: a field the schema does not name is drift.
    if let (Some(fields), Some(known)) = (v.as_object(), obj.get("properties")) {
        if !obj.contains_key("additionalProperties") && !obj.contains_key("allOf") {
            for name in fields.keys() {
                if known.get(name).is_none() {
                    out.push(format!("{at}: {name} is not in the document"));
                }
            }
        }
    }
}

/// A part of an `allOf`: checked for its own constraints, its object left
/// open (the other parts name the other fields).
fn open(schema: &Value) -> Value {
    let mut s = schema.clone();
    if let Some(obj) = s.as_object_mut() {
        if obj.contains_key("properties") && !obj.contains_key("additionalProperties") {
            obj.insert("additionalProperties".into(), Value::Bool(true));
        }
    }
    s
}

#[test]
fn the_checker_refuses_what_it_should() {
    let doc = json!({"components": {"schemas": {"W": {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string", "format": "uuid"}, "n": {"type": ["integer", "null"]}},
    }}}});
    let w = json!({"$ref": "#/components/schemas/W"});
    let problems = |v: Value| {
        let mut out = Vec::new();
        check(&doc, &w, &v, "$", &mut out);
        out
    };
    assert!(problems(json!({"id": uuid::Uuid::new_v4().to_string(), "n": null})).is_empty());
    assert_eq!(problems(json!({"n": 1})).len(), 1, "missing id");
    assert_eq!(problems(json!({"id": "x"})).len(), 1, "not a UUID");
    assert_eq!(
        problems(json!({"id": uuid::Uuid::new_v4().to_string(), "extra": 1})).len(),
        1,
        "an undocumented field"
    );
    assert_eq!(
        problems(json!({"id": uuid::Uuid::new_v4().to_string(), "n": 1.5})).len(),
        1
    );
}

/// Validates one real answer against the schema the document gives for
/// (path, method, status). An undocumented status fails.
fn conforms(doc: &Value, method: &str, path: &str, r: &Resp, seen: &mut BTreeSet<String>) {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in the document");
    let status = r.status.to_string();
    let response = &op["responses"][&status];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not list: {}",
        r.body
    );
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no application/json schema"
    );
    let mut problems = Vec::new();
    check(doc, schema, &r.body, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "{method} {path} {status}: the answer does not match the document:\n  {}\nanswer: {}",
        problems.join("\n  "),
        r.body
    );
    seen.insert(format!("{} {path} {status}", method.to_uppercase()));
}

async fn get_with(app: &TestApp, path: &str, bearer: Option<&str>) -> Resp {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = bearer {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    crate::helpers::into_resp(req.send().await.expect("request sent")).await
}

// Real answers of every dialect, successes and refusals, against the
// served document.
async fn responses_match_their_schemas(b: Backend) {
    let (log_key, _) = walletd::transparency::LogSigner::generate("walletd.test/log").unwrap();
    let Some(app) = crate::helpers::spawn_app_with(b, move |s| s.log_key = Some(log_key)).await
    else {
        return;
    };
    let doc = served_document(&app).await;
    let mut seen = BTreeSet::new();
    let seen = &mut seen;

    // Service.
    conforms(&doc, "get", "/healthz", &app.get("/healthz").await, seen);
    conforms(&doc, "get", "/readyz", &app.get("/readyz").await, seen);
    conforms(
        &doc,
        "get",
        "/openapi.json",
        &app.get("/openapi.json").await,
        seen,
    );

    // Server wallets.
    let user = format!("oa-{}", uuid::Uuid::new_v4().simple());
    let created = app
        .post_json("/api/wallets", &json!({ "userId": user }))
        .await;
    conforms(&doc, "post", "/api/wallets", &created, seen);
    assert_eq!(created.status, 200);
    let again = app
        .post_json("/api/wallets", &json!({ "userId": user }))
        .await;
    assert_eq!(again.status, 409);
    conforms(&doc, "post", "/api/wallets", &again, seen);
    let bad = app.post_json("/api/wallets", &json!({ "userId": 7 })).await;
    assert_eq!(bad.status, 400);
    conforms(&doc, "post", "/api/wallets", &bad, seen);
    let not_json = app
        .post_raw("/api/wallets", "text/plain", b"x".to_vec(), &[])
        .await;
    assert_eq!(not_json.status, 415);
    conforms(&doc, "post", "/api/wallets", &not_json, seen);
    let anonymous = crate::helpers::into_resp(
        app.client
            .post(app.url("/api/wallets"))
            .insert_header(("Content-Type", "application/json"))
            .send_body(json!({ "userId": "x" }).to_string())
            .await
            .expect("request sent"),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    conforms(&doc, "post", "/api/wallets", &anonymous, seen);

    let got = app.get(&format!("/api/wallets/{user}")).await;
    assert_eq!(got.status, 200);
    conforms(&doc, "get", "/api/wallets/{id}", &got, seen);
    let server_wallet = got.body["walletId"].as_str().expect("walletId").to_string();
    let funded = app
        .jwt(
            "POST",
            &format!("/api/wallet/{server_wallet}/issue"),
            Some(&token("oa-admin", "ADMIN")),
            Some(&json!({ "amount": "2.5", "reference": "oa-fund" })),
        )
        .await;
    assert_eq!(funded.status, 201, "{}", funded.body);
    let got = app.get(&format!("/api/wallets/{user}")).await;
    assert_eq!(
        got.body["balances"],
        json!([{ "asset": "ETH", "balance": "2.5" }])
    );
    conforms(&doc, "get", "/api/wallets/{id}", &got, seen);
    let missing = app.get("/api/wallets/nobody-here").await;
    assert_eq!(missing.status, 404);
    conforms(&doc, "get", "/api/wallets/{id}", &missing, seen);
    let malformed = app.get("/api/wallets/0xnothex").await;
    assert_eq!(malformed.status, 400);
    conforms(&doc, "get", "/api/wallets/{id}", &malformed, seen);

    let signed = app
        .post_json(
            &format!("/api/wallets/{user}/sign"),
            &json!({ "message": "hello" }),
        )
        .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    conforms(&doc, "post", "/api/wallets/{id}/sign", &signed, seen);
    let empty = app
        .post_json(
            &format!("/api/wallets/{user}/sign"),
            &json!({ "message": "" }),
        )
        .await;
    assert_eq!(empty.status, 400);
    conforms(&doc, "post", "/api/wallets/{id}/sign", &empty, seen);
    let key = [("Idempotency-Key", "oa-reused")];
    let first = app
        .post_raw(
            &format!("/api/wallets/{user}/sign"),
            "application/json",
            json!({ "message": "one" }).to_string().into_bytes(),
            &key,
        )
        .await;
    assert_eq!(first.status, 200);
    let reused = app
        .post_raw(
            &format!("/api/wallets/{user}/sign"),
            "application/json",
            json!({ "message": "two" }).to_string().into_bytes(),
            &key,
        )
        .await;
    assert_eq!(reused.status, 422, "{}", reused.body);
    conforms(&doc, "post", "/api/wallets/{id}/sign", &reused, seen);

    let typed = app
        .post_json(
            &format!("/api/wallets/{user}/sign-typed-data"),
            &json!({ "typedData": {
                "types": {
                    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
                    "Mail": [{"name": "contents", "type": "string"}],
                },
                "primaryType": "Mail",
                "domain": {"name": "Ether Mail", "chainId": 1},
                "message": {"contents": "Hello, Bob!"},
            }}),
        )
        .await;
    assert_eq!(typed.status, 200, "{}", typed.body);
    conforms(
        &doc,
        "post",
        "/api/wallets/{id}/sign-typed-data",
        &typed,
        seen,
    );
    let transaction = app
        .post_json(
            &format!("/api/wallets/{user}/sign-transaction"),
            &json!({ "transaction": {
                "type": "eip1559", "chainId": 1, "nonce": 0,
                "to": "0x3535353535353535353535353535353535353535", "value": "1",
                "gas": 21000, "maxFeePerGas": "30000000000", "maxPriorityFeePerGas": "1000000000",
            }}),
        )
        .await;
    assert_eq!(transaction.status, 200, "{}", transaction.body);
    conforms(
        &doc,
        "post",
        "/api/wallets/{id}/sign-transaction",
        &transaction,
        seen,
    );
    let bad_tx = app
        .post_json(
            &format!("/api/wallets/{user}/sign-transaction"),
            &json!({ "transaction": { "type": "eip1559", "chainId": 0 } }),
        )
        .await;
    assert_eq!(bad_tx.status, 400);
    conforms(
        &doc,
        "post",
        "/api/wallets/{id}/sign-transaction",
        &bad_tx,
        seen,
    );

    // JWT-role wallets.
    let sub = format!("oa-jwt-{}", uuid::Uuid::new_v4().simple());
    let subscriber = token(&sub, "SUBSCRIBER");
    let admin = token("oa-admin", "ADMIN");
    let visitor = token(&sub, "VISITOR");
    let create = "/api/wallet/create";
    let made = app
        .jwt(
            "POST",
            create,
            Some(&subscriber),
            Some(&json!({ "label": "Main" })),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    conforms(&doc, "post", create, &made, seen);
    let unlabelled = app.jwt("POST", create, Some(&subscriber), None).await;
    assert_eq!(unlabelled.status, 200, "{}", unlabelled.body);
    conforms(&doc, "post", create, &unlabelled, seen);
    for (r, status) in [
        (app.jwt("POST", create, None, None).await, 401),
        (app.jwt("POST", create, Some(&visitor), None).await, 403),
        (
            app.jwt(
                "POST",
                create,
                Some(&subscriber),
                Some(&json!({ "label": "no!" })),
            )
            .await,
            400,
        ),
    ] {
        assert_eq!(r.status, status, "{}", r.body);
        conforms(&doc, "post", create, &r, seen);
    }
    let wallet_id = made.body["wallet"]["id"].as_str().expect("id").to_string();
    let list = app
        .jwt("GET", "/api/wallet/list", Some(&subscriber), None)
        .await;
    assert_eq!(list.status, 200);
    conforms(&doc, "get", "/api/wallet/list", &list, seen);
    let others = get_with(
        &app,
        "/api/wallet/list?userId=someone-else",
        Some(&subscriber),
    )
    .await;
    assert_eq!(others.status, 403);
    conforms(&doc, "get", "/api/wallet/list", &others, seen);
    let primary = app
        .jwt(
            "POST",
            "/api/wallet/primary",
            Some(&subscriber),
            Some(&json!({ "walletId": wallet_id })),
        )
        .await;
    assert_eq!(primary.status, 200, "{}", primary.body);
    conforms(&doc, "post", "/api/wallet/primary", &primary, seen);
    let unknown = app
        .jwt(
            "POST",
            "/api/wallet/primary",
            Some(&subscriber),
            Some(&json!({ "walletId": uuid::Uuid::new_v4().to_string() })),
        )
        .await;
    assert_eq!(unknown.status, 404);
    conforms(&doc, "post", "/api/wallet/primary", &unknown, seen);
    let history_path = format!("/api/wallet/{wallet_id}/history");
    let history = get_with(&app, &history_path, Some(&subscriber)).await;
    assert_eq!(history.status, 200, "{}", history.body);
    conforms(&doc, "get", "/api/wallet/{id}/history", &history, seen);
    let deep = get_with(
        &app,
        &format!("{history_path}?perPage=0"),
        Some(&subscriber),
    )
    .await;
    assert_eq!(deep.status, 400);
    conforms(&doc, "get", "/api/wallet/{id}/history", &deep, seen);
    let audit = get_with(&app, "/api/admin/audit?perPage=100", Some(&admin)).await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let sources: BTreeSet<_> = audit.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["source"].as_str())
        .collect();
    assert!(
        sources.contains("event") && sources.contains("refusal"),
        "both kinds of entry are checked: {sources:?}"
    );
    conforms(&doc, "get", "/api/admin/audit", &audit, seen);
    let not_admin = get_with(&app, "/api/admin/audit", Some(&subscriber)).await;
    assert_eq!(not_admin.status, 403);
    conforms(&doc, "get", "/api/admin/audit", &not_admin, seen);

    // JWT money: issue, balance, transfer (waiting and not), transactions,
    // redeem, and their refusals.
    let issue_path = format!("/api/wallet/{wallet_id}/issue");
    let issued = app
        .jwt(
            "POST",
            &issue_path,
            Some(&admin),
            Some(&json!({ "amount": "5", "reference": "oa-wire" })),
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    conforms(&doc, "post", "/api/wallet/{id}/issue", &issued, seen);
    let not_admin_issue = app
        .jwt(
            "POST",
            &issue_path,
            Some(&subscriber),
            Some(&json!({ "amount": "5", "reference": "oa-wire" })),
        )
        .await;
    assert_eq!(not_admin_issue.status, 403);
    conforms(
        &doc,
        "post",
        "/api/wallet/{id}/issue",
        &not_admin_issue,
        seen,
    );
    let balance_path = format!("/api/wallet/{wallet_id}/balance");
    let balance = get_with(&app, &balance_path, Some(&subscriber)).await;
    assert_eq!(balance.status, 200, "{}", balance.body);
    conforms(&doc, "get", "/api/wallet/{id}/balance", &balance, seen);
    let hidden = get_with(&app, &balance_path, Some(&token("oa-other", "MEMBER"))).await;
    assert_eq!(hidden.status, 404);
    conforms(&doc, "get", "/api/wallet/{id}/balance", &hidden, seen);
    let payee = unlabelled.body["wallet"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let pay =
        json!({ "fromWalletId": wallet_id, "toWalletId": payee, "amount": "1.5", "memo": "oa" });
    let paid = app
        .jwt(
            "POST",
            "/api/wallet/transfer",
            Some(&subscriber),
            Some(&pay),
        )
        .await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    conforms(&doc, "post", "/api/wallet/transfer", &paid, seen);
    let queued = crate::helpers::into_resp(
        app.client
            .post(app.url("/api/wallet/transfer"))
            .insert_header(("Authorization", format!("Bearer {subscriber}")))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Prefer", "respond-async"))
            .send_body(pay.to_string())
            .await
            .expect("request sent"),
    )
    .await;
    assert_eq!(queued.status, 202, "{}", queued.body);
    conforms(&doc, "post", "/api/wallet/transfer", &queued, seen);
    for (body, status) in [
        (
            json!({ "fromWalletId": wallet_id, "toWalletId": payee, "amount": 1.5 }),
            400,
        ),
        (
            json!({ "fromWalletId": wallet_id, "toWalletId": payee, "amount": "1000" }),
            422,
        ),
        (
            json!({ "fromWalletId": wallet_id, "toWalletId": uuid::Uuid::new_v4().to_string(), "amount": "1" }),
            404,
        ),
    ] {
        let r = app
            .jwt(
                "POST",
                "/api/wallet/transfer",
                Some(&subscriber),
                Some(&body),
            )
            .await;
        assert_eq!(r.status, status, "{}", r.body);
        conforms(&doc, "post", "/api/wallet/transfer", &r, seen);
    }
    let redeem_path = format!("/api/wallet/{wallet_id}/redeem");
    let redeemed = app
        .jwt(
            "POST",
            &redeem_path,
            Some(&subscriber),
            Some(&json!({ "amount": "0.5", "reference": "oa-payout" })),
        )
        .await;
    assert_eq!(redeemed.status, 201, "{}", redeemed.body);
    conforms(&doc, "post", "/api/wallet/{id}/redeem", &redeemed, seen);
    let overdrawn = app
        .jwt(
            "POST",
            &redeem_path,
            Some(&subscriber),
            Some(&json!({ "amount": "100", "reference": "oa-payout-2" })),
        )
        .await;
    assert_eq!(overdrawn.status, 422, "{}", overdrawn.body);
    conforms(&doc, "post", "/api/wallet/{id}/redeem", &overdrawn, seen);
    let tx_path = format!("/api/wallet/{wallet_id}/transactions");
    let txs = get_with(&app, &tx_path, Some(&subscriber)).await;
    assert_eq!(txs.status, 200, "{}", txs.body);
    assert!(txs.body["total"].as_i64() >= Some(3), "{}", txs.body);
    conforms(&doc, "get", "/api/wallet/{id}/transactions", &txs, seen);
    let received = get_with(
        &app,
        &format!("/api/wallet/{payee}/transactions"),
        Some(&subscriber),
    )
    .await;
    assert_eq!(received.status, 200, "{}", received.body);
    conforms(
        &doc,
        "get",
        "/api/wallet/{id}/transactions",
        &received,
        seen,
    );
    let bad_type = get_with(&app, &format!("{tx_path}?type=gift"), Some(&subscriber)).await;
    assert_eq!(bad_type.status, 400);
    conforms(
        &doc,
        "get",
        "/api/wallet/{id}/transactions",
        &bad_type,
        seen,
    );
    let funded_list = app
        .jwt("GET", "/api/wallet/list", Some(&subscriber), None)
        .await;
    conforms(&doc, "get", "/api/wallet/list", &funded_list, seen);

    // Sila.
    let template = app
        .get("/0.2/getmessage?emptymessage=entityTestMessage")
        .await;
    assert_eq!(template.status, 200);
    conforms(&doc, "get", "/0.2/getmessage", &template, seen);
    let no_template = app.get("/0.2/getmessage").await;
    assert_eq!(no_template.status, 400);
    conforms(&doc, "get", "/0.2/getmessage", &no_template, seen);

    let sila = SilaClient::register_app(&app, "oa-app.eth").await;
    let handle = "oa-alice.eth";
    let free = sila.check_handle(handle).await;
    assert_eq!(free.status, 200);
    conforms(&doc, "post", "/0.2/check_handle", &free, seen);
    let alice = sila.register_user(handle).await;
    let taken = sila.check_handle(handle).await;
    assert_eq!(taken.body["success"], false, "{}", taken.body);
    conforms(&doc, "post", "/0.2/check_handle", &taken, seen);
    let mut bad_register = sila.register_body("oa-bob.eth", &Key::random(), None);
    bad_register["crypto_entry"]["crypto_address"] = json!("0x1234");
    let refused = sila
        .call("register", &bad_register, Some(&sila.key), None)
        .await;
    assert_eq!(refused.status, 400);
    conforms(&doc, "post", "/0.2/register", &refused, seen);
    let carol = Key::random();
    let body = sila.register_body("oa-carol.eth", &carol, Some(""));
    let registered = sila.call("register", &body, Some(&sila.key), None).await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    conforms(&doc, "post", "/0.2/register", &registered, seen);

    let (second, _) = sila
        .add_wallet(handle, &alice, json!({ "nickname": "second" }))
        .await;
    let third = Key::random();
    let added = sila
        .register_wallet(handle, &alice, &third, json!({}))
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    conforms(&doc, "post", "/0.2/register_wallet", &added, seen);
    let mut forged = sila.register_wallet_body(handle, &Key::random(), json!({}));
    forged["wallet_verification_signature"] = json!(Key::random().prove("0x00"));
    let forged = sila
        .call("register_wallet", &forged, Some(&sila.key), Some(&alice))
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    conforms(&doc, "post", "/0.2/register_wallet", &forged, seen);
    let mut nobody = sila.register_wallet_body(handle, &Key::random(), json!({}));
    nobody["header"]
        .as_object_mut()
        .expect("header")
        .remove("user_handle");
    let nobody = sila
        .call("register_wallet", &nobody, Some(&sila.key), Some(&alice))
        .await;
    assert_eq!(nobody.status, 401, "{}", nobody.body);
    conforms(&doc, "post", "/0.2/register_wallet", &nobody, seen);
    let stale = {
        let mut body = sila.register_wallet_body(handle, &Key::random(), json!({}));
        body["header"]["created"] = json!(now() - 86_400);
        sila.call("register_wallet", &body, Some(&sila.key), Some(&alice))
            .await
    };
    assert_eq!(stale.status, 400, "{}", stale.body);
    assert!(
        stale.body["validation_details"].is_object(),
        "{}",
        stale.body
    );
    conforms(&doc, "post", "/0.2/register_wallet", &stale, seen);
    let token_mode = sila
        .call_token(
            "register_wallet",
            &sila.body(Some(handle), json!({ "wallet": {} })),
            Some(&token_with(json!({
                "sub": handle, "aud": walletd::auth::jwt::DEFAULT_SILA_AUDIENCE, "app_handle": "oa-app.eth", "exp": now() + 600,
            }))),
        )
        .await;
    assert_eq!(token_mode.status, 200, "{}", token_mode.body);
    conforms(&doc, "post", "/0.2/register_wallet", &token_mode, seen);

    let wallet = sila.get_wallet(handle, &alice).await;
    assert_eq!(wallet.status, 200, "{}", wallet.body);
    conforms(&doc, "post", "/0.2/get_wallet", &wallet, seen);
    let wallets = sila
        .get_wallets(
            handle,
            &alice,
            Some(json!({ "per_page": 2, "sort_ascending": true })),
        )
        .await;
    assert_eq!(wallets.status, 200, "{}", wallets.body);
    conforms(&doc, "post", "/0.2/get_wallets", &wallets, seen);
    let bad_page = sila
        .get_wallets(handle, &alice, Some(json!({ "per_page": 0 })))
        .await;
    assert_eq!(bad_page.status, 400);
    conforms(&doc, "post", "/0.2/get_wallets", &bad_page, seen);
    let updated = sila
        .user_call(
            "update_wallet",
            handle,
            &second,
            json!({ "nickname": "renamed", "default": true }),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    conforms(&doc, "post", "/0.2/update_wallet", &updated, seen);
    let unchanged = sila
        .user_call("update_wallet", handle, &second, json!({}))
        .await;
    assert_eq!(unchanged.status, 400);
    conforms(&doc, "post", "/0.2/update_wallet", &unchanged, seen);
    let deleted = sila
        .user_call("delete_wallet", handle, &third, json!({}))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    conforms(&doc, "post", "/0.2/delete_wallet", &deleted, seen);
    let gone = sila
        .user_call("delete_wallet", handle, &third, json!({}))
        .await;
    assert_eq!(gone.status, 403, "{}", gone.body);
    conforms(&doc, "post", "/0.2/delete_wallet", &gone, seen);

    let before = sila.check_kyc(handle, &alice).await;
    assert_eq!(before.status, 200);
    conforms(&doc, "post", "/0.2/check_kyc", &before, seen);
    let requested = sila.request_kyc(handle, &alice).await;
    assert_eq!(requested.status, 200, "{}", requested.body);
    conforms(&doc, "post", "/0.2/request_kyc", &requested, seen);
    let after = sila
        .wait_kyc(handle, &alice, "passed", std::time::Duration::from_secs(10))
        .await;
    conforms(&doc, "post", "/0.2/check_kyc", &after, seen);

    // Money: a public balance, a page of transactions, and movements the
    // whitelist delay (300 s here) still refuses.
    let bytes = serde_json::to_vec(&json!({ "address": alice.address })).unwrap();
    let balance = sila
        .send("get_sila_balance", "application/json", bytes, &[])
        .await;
    assert_eq!(balance.status, 200, "{}", balance.body);
    conforms(&doc, "post", "/0.2/get_sila_balance", &balance, seen);
    let listed = sila
        .user_call(
            "get_transactions",
            handle,
            &alice,
            json!({"search_filters": {"per_page": 5}}),
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    conforms(&doc, "post", "/0.2/get_transactions", &listed, seen);
    for (endpoint, extra) in [
        ("issue_sila", json!({"amount": 10})),
        ("redeem_sila", json!({"amount": 10})),
        (
            "transfer_sila",
            json!({"amount": 10, "destination_handle": "oa-carol.eth"}),
        ),
    ] {
        let refused = sila.user_call(endpoint, handle, &alice, extra).await;
        assert_eq!(refused.status, 400, "{endpoint}: {}", refused.body);
        conforms(&doc, "post", &format!("/0.2/{endpoint}"), &refused, seen);
    }

    let decide = |h: &str| format!("/api/admin/kyc/{h}");
    let decided = app
        .jwt(
            "POST",
            &decide("oa-carol.eth"),
            Some(&admin),
            Some(&json!({ "decision": "pass" })),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    conforms(&doc, "post", "/api/admin/kyc/{handle}", &decided, seen);
    let unknown_user = app
        .jwt(
            "POST",
            &decide("oa-nobody.eth"),
            Some(&admin),
            Some(&json!({ "decision": "pass" })),
        )
        .await;
    assert_eq!(unknown_user.status, 404);
    conforms(&doc, "post", "/api/admin/kyc/{handle}", &unknown_user, seen);
    let not_admin = app
        .jwt(
            "POST",
            &decide("oa-carol.eth"),
            Some(&subscriber),
            Some(&json!({ "decision": "pass" })),
        )
        .await;
    assert_eq!(not_admin.status, 403);
    conforms(&doc, "post", "/api/admin/kyc/{handle}", &not_admin, seen);

    // Auditors: the transparency log, once the sealer has caught up.
    let mut checkpoint = get_with(&app, "/api/admin/log/checkpoint", Some(&admin)).await;
    for _ in 0..200 {
        if checkpoint.status == 200 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        checkpoint = get_with(&app, "/api/admin/log/checkpoint", Some(&admin)).await;
    }
    assert_eq!(checkpoint.status, 200, "{}", checkpoint.body);
    conforms(&doc, "get", "/api/admin/log/checkpoint", &checkpoint, seen);
    let size = checkpoint.body["size"].as_u64().unwrap();
    let stray = get_with(&app, "/api/admin/log/checkpoint?x=1", Some(&admin)).await;
    assert_eq!(stray.status, 400);
    conforms(&doc, "get", "/api/admin/log/checkpoint", &stray, seen);
    let path = format!("/api/admin/log/proof/inclusion?position=0&size={size}");
    let inclusion = get_with(&app, &path, Some(&admin)).await;
    assert_eq!(inclusion.status, 200, "{}", inclusion.body);
    conforms(
        &doc,
        "get",
        "/api/admin/log/proof/inclusion",
        &inclusion,
        seen,
    );
    let path = format!("/api/admin/log/proof/inclusion?position={size}&size={size}");
    let beyond = get_with(&app, &path, Some(&admin)).await;
    assert_eq!(beyond.status, 400);
    conforms(&doc, "get", "/api/admin/log/proof/inclusion", &beyond, seen);
    let path = format!("/api/admin/log/proof/consistency?from=1&to={size}");
    let consistency = get_with(&app, &path, Some(&admin)).await;
    assert_eq!(consistency.status, 200, "{}", consistency.body);
    conforms(
        &doc,
        "get",
        "/api/admin/log/proof/consistency",
        &consistency,
        seen,
    );
    let not_admin = get_with(&app, &path, Some(&subscriber)).await;
    assert_eq!(not_admin.status, 403);
    conforms(
        &doc,
        "get",
        "/api/admin/log/proof/consistency",
        &not_admin,
        seen,
    );
    for path in [
        "/api/admin/events?limit=2".to_string(),
        format!("/api/admin/events?from={}", size + 1),
    ] {
        let r = get_with(&app, &path, Some(&admin)).await;
        conforms(&doc, "get", "/api/admin/events", &r, seen);
    }
    for (path, status) in [
        ("/api/admin/reports/signing-activity", 200),
        ("/api/admin/reports/wallets-created?asOf=1", 200),
        ("/api/admin/reports/refusals?asOf=2026-01-01T00:00:00Z", 200),
        ("/api/admin/reports/unknown", 404),
        ("/api/admin/reports/kyc-changes?asOf=soon", 400),
    ] {
        let r = get_with(&app, path, Some(&admin)).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        conforms(&doc, "get", "/api/admin/reports/{name}", &r, seen);
    }

    // Every JSON operation had at least one real answer checked.
    let checked: BTreeSet<(String, String)> = seen
        .iter()
        .map(|s| {
            let mut parts = s.splitn(3, ' ');
            let m = parts.next().unwrap_or_default().to_lowercase();
            (m, parts.next().unwrap_or_default().to_string())
        })
        .collect();
    let unchecked: Vec<_> = documented(&doc)
        .into_iter()
        // Text answers, checked elsewhere (tests/api/metrics.rs for /metrics).
        .filter(|(_, p)| !p.starts_with("/docs") && p != "/metrics")
        .filter(|op| !checked.contains(op))
        .collect();
    assert!(
        unchecked.is_empty(),
        "no real answer checked for {unchecked:?}"
    );
    app.stop().await;
}
