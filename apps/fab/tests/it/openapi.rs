//! `/openapi.json`: a valid OpenAPI 3.1 document, generated from the routes the process serves,
//! with nothing served that it leaves out and nothing in it that is not served.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use fab::api::{Services, openapi_document};
use serde_json::Value;

use crate::support::{Backend, ENGINEER, Fab};

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The structure rules of OpenAPI 3.1 the document must follow (those a generator can break).
fn check_structure(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["info"]["title"].is_string() && doc["info"]["version"].is_string(),
        "{}",
        doc["info"]
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http", "{schemes}");
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    assert!(schemas.contains_key("ApiError"));

    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }

    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    let mut ids = BTreeSet::new();
    for op in paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
    {
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id), "operationId {id} used twice");
    }
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(
                        p["required"], true,
                        "{method} {path}: path parameters are required"
                    );
                    p["name"].as_str().unwrap()
                })
                .collect();
            assert_eq!(templated, declared, "{method} {path}: path parameters");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
            if method == "post" && path != "/v1/apc/subrecipe/preview" {
                assert_eq!(
                    op["security"][0]["bearer"],
                    Value::Array(vec![]),
                    "{method} {path}"
                );
                let has_key = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key");
                assert!(has_key, "{method} {path}: no Idempotency-Key header");
            }
        }
    }
}

/// `path` with each `{param}` filled with a plausible value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{technology}" => "N5",
            "{version}" | "{id}" => "1",
            "{action}" => "approve",
            s if s.starts_with('{') => "X-1",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_is_valid_and_matches_the_routes_served() {
    let fab = Fab::start(Backend::Sqlite).await;
    let (status, doc) = fab.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    check_structure(&doc);

    // Everything documented is served: not the fallback's 404, not a 405.
    let auth = format!("Bearer {ENGINEER}");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method == Method::POST).then(|| "{}".to_owned());
            let (status, answer, _) = fab
                .send(
                    method.clone(),
                    &concrete(path),
                    &[("authorization", &auth), ("idempotency-key", "probe")],
                    body,
                )
                .await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !(status == StatusCode::NOT_FOUND && answer["error"] == "no such route"),
                "{method} {path} is documented but not served"
            );
            assert!(status.as_u16() < 500, "{method} {path}: {status} {answer}");
            operations += 1;
        }
    }
    // Each route of the route tables (apc 11, tool jobs 5, spec 6, fdc 4 operations).
    assert_eq!(operations, 26);
    fab.stop().await;
}

#[test]
fn each_process_documents_only_the_services_it_runs() {
    let paths = |services| -> BTreeSet<String> {
        let doc = serde_json::to_value(openapi_document(services)).unwrap();
        check_structure(&doc);
        doc["paths"].as_object().unwrap().keys().cloned().collect()
    };
    let (apc, spec, fdc) = (
        paths(Services::Apc),
        paths(Services::Spec),
        paths(Services::Fdc),
    );
    // The tool job queues are served with the APC.
    assert!(
        apc.iter()
            .all(|p| p.starts_with("/v1/apc/") || p.starts_with("/v1/tools/")),
        "{apc:?}"
    );
    assert!(spec.iter().all(|p| p.starts_with("/v1/spec/")), "{spec:?}");
    assert!(fdc.iter().all(|p| p.starts_with("/v1/fdc/")), "{fdc:?}");
    let union: BTreeSet<String> = apc.iter().chain(&spec).chain(&fdc).cloned().collect();
    assert_eq!(union, paths(Services::All));
}

/// The other direction: nothing is served that the document leaves out. Routes reach the router
/// only through `OpenApiRouter::routes(routes!(…))`, which documents them; a plain axum
/// `.route(…)` in a service's route table would bypass the document, so there is none (the
/// document's own route, in `openapi.rs`, is the one exception).
#[test]
fn no_route_bypasses_the_document() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut checked = 0;
    // The route tables and their submodules (`src/api/apc/…`).
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            files.push(path);
        }
    }
    for path in files {
        if path.file_name().unwrap() == "openapi.rs" {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for bypass in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            assert!(
                !source.contains(bypass),
                "{} registers a route with {bypass}…): use .routes(routes!(handler))",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "no route table found in {}", dir.display());
}
