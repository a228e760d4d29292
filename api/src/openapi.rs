//! The OpenAPI 3.1 document, generated from the handlers and their types,
//! and its 3.0 rendering. `docs/openapi.json` and `docs/openapi-3.0.json` are
//! them as committed; a test fails when either differs (`image-service
//! openapi` and `image-service openapi --spec-version 3.0` refresh them).

use axum::Json;
use std::collections::btree_map::Entry;

use image_service_client::ErrorCode;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Required};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::responses::{TenantProblems, listed_codes, problem};
use crate::{admin, delivery, error, health, images, jobs, presigned, status};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "image-service",
        description = "Upload images; get them back compressed, resized and stripped of metadata, \
                       with an event when each job ends.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    servers((url = "/", description = "The API serving this document")),
    paths(
        health::healthz,
        health::readyz,
        jobs::list_jobs,
        jobs::get_job,
        images::list_images,
        images::create_image,
        images::get_image,
        images::delete_image,
        images::get_variant,
        delivery::public,
        status::get_status,
        delivery::signed,
        presigned::create_upload,
        presigned::receive_upload,
        admin::replay_dlq,
        admin::replay_jobs,
        admin::reprocess,
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth, &TenantParameter, &ResponseHeaders),
    security(("api_key" = [])),
    tags(
        (name = "images", description = "Uploads, images and their variants"),
        (name = "jobs", description = "Processing jobs"),
        (name = "delivery", description = "Variants by their delivery URLs, for web pages: no key"),
        (name = "admin", description = "Operators' replays (admin keys)"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `image-service keys create`"))
                    .build(),
            ),
        );
    }
}

/// `?tenant=NAME` on every endpoint behind an API key. The auth middleware
/// takes it off the query before any handler runs, so it is added here once
/// rather than to each handler's parameters.
struct TenantParameter;

/// The operations `?tenant=` does not change: the presigned upload's PUT and
/// the status page (authorised by their signatures, not a key), and the
/// operators' runs that act on the whole deployment (the DLQ holds every
/// tenant's messages).
const UNSCOPED: [&str; 4] = ["receive_upload", "get_status", "replay_dlq", "reprocess"];

impl Modify for TenantParameter {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let parameter = ParameterBuilder::new()
            .name("tenant")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[a-z0-9_-]{1,64}$"))))
            .description(Some("Admin keys only: act for the tenant of this name (`docs/api.md#tenants`)"))
            .build();
        for (path, item) in &mut openapi.paths.paths {
            if !path.starts_with("/v1/") {
                continue;
            }
            for operation in operations(item) {
                if UNSCOPED.contains(&operation.operation_id.as_deref().unwrap_or_default()) {
                    continue;
                }
                operation.parameters.get_or_insert_with(Vec::new).push(parameter.clone());
                for (status, added) in TenantProblems::responses() {
                    merge_problem(&mut operation.responses.responses, status, added);
                }
            }
        }
    }
}

/// Adds a problem response to an operation's; where the operation answers
/// that status already, the two become one response listing both's codes.
fn merge_problem(
    responses: &mut std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>>,
    status: String,
    added: RefOr<utoipa::openapi::Response>,
) {
    let (Entry::Occupied(mut entry), RefOr::T(added)) = (responses.entry(status.clone()), &added) else {
        responses.entry(status).or_insert(added);
        return;
    };
    let RefOr::T(existing) = entry.get() else { return };
    let mut codes = listed_codes(existing);
    for code in listed_codes(added) {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let codes: Vec<ErrorCode> = codes.iter().map(|code| ErrorCode::parse(code)).collect();
    let description = format!("{}; or: {}", existing.description, added.description.to_lowercase());
    if let Some(merged) = problem(&status, &description, &codes).remove(&status) {
        entry.insert(merged);
    }
}

/// The headers responses carry besides their own:
/// - `x-request-id` on every one;
/// - on an endpoint behind a key, `RateLimit-Policy` and `RateLimit` (the
///   buckets that charged it) on all but a 401 (no key, no bucket of its);
/// - on an endpoint that takes `Idempotency-Key`, `Idempotent-Replayed` on
///   success.
struct ResponseHeaders;

fn string_header(description: &str) -> Header {
    HeaderBuilder::new().schema(ObjectBuilder::new().schema_type(Type::String)).description(Some(description)).build()
}

impl Modify for ResponseHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let request_id = string_header(
            "The request's id: the request's own `x-request-id`, or a new UUID; the server's logs carry it",
        );
        let policy = string_header(
            "The rate-limit buckets that charged this request, as `\"key\";q=20;w=2, \"tenant\";q=100;w=5`: \
             a quota of `q` requests per `w` seconds each (IETF draft-ietf-httpapi-ratelimit-headers)",
        );
        let usage = string_header(
            "What each bucket has left, as `\"key\";r=19;t=1, \"tenant\";r=99;t=1`: `r` requests, full again \
             in `t` seconds. On a 429, the bucket that refused, with `r=0` and `t` its `Retry-After`",
        );
        let replayed = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["true"])))
            .description(Some("`true` when this answers an earlier request with the same `Idempotency-Key`"))
            .build();
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let keyed = operation.security.is_none();
                let idempotent = operation.parameters.iter().flatten().any(|p| p.name == "Idempotency-Key");
                for (status, response) in &mut operation.responses.responses {
                    let RefOr::T(response) = response else { continue };
                    response.headers.insert("x-request-id".into(), request_id.clone());
                    if keyed && status != "401" {
                        response.headers.insert("RateLimit-Policy".into(), policy.clone());
                        response.headers.insert("RateLimit".into(), usage.clone());
                    }
                    if idempotent && status.starts_with('2') {
                        response.headers.insert("Idempotent-Replayed".into(), replayed.clone());
                    }
                }
            }
        }
    }
}

/// A path's operations.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten()
}

/// The document as JSON, pretty-printed with a trailing newline (as committed).
pub fn document() -> String {
    pretty(&value())
}

/// Its OpenAPI 3.0 rendering, for generators that read only 3.0
/// (`docs/openapi-3.0.json`, served at `/openapi-3.0.json`).
pub fn document_3_0() -> String {
    pretty(&crate::openapi_3_0::downgrade(value()))
}

fn value() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

fn pretty(value: &serde_json::Value) -> String {
    let mut json = serde_json::to_string_pretty(value).unwrap_or_default();
    json.push('\n');
    json
}

/// `GET /openapi.json`.
pub(crate) async fn serve() -> Json<serde_json::Value> {
    Json(value())
}

/// `GET /openapi-3.0.json`.
pub(crate) async fn serve_3_0() -> Json<serde_json::Value> {
    Json(crate::openapi_3_0::downgrade(value()))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::error::tests::status_of;

    fn document() -> Value {
        super::value()
    }

    /// Every operation, as (`METHOD path`, operation).
    fn operations(document: &Value) -> Vec<(String, Value)> {
        let paths = document["paths"].as_object().expect("paths");
        let mut found = Vec::new();
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("path item") {
                found.push((format!("{} {path}", method.to_uppercase()), operation.clone()));
            }
        }
        found
    }

    #[test]
    fn every_operation_has_a_short_summary_and_a_description() {
        for (name, operation) in operations(&document()) {
            let summary = operation["summary"].as_str().unwrap_or_default();
            assert!(!summary.is_empty() && summary.len() <= 60, "{name}: summary {summary:?} (1 to 60 characters)");
            let description = operation["description"].as_str().unwrap_or_default();
            assert!(description.len() > summary.len(), "{name}: no description");
        }
    }

    #[test]
    fn every_schema_has_an_example() {
        let document = document();
        for (name, schema) in document["components"]["schemas"].as_object().expect("schemas") {
            let examples = schema["examples"].as_array().map_or(0, Vec::len);
            assert!(examples > 0, "schema {name} has no example");
        }
    }

    /// Each error response lists the codes it can carry, and each of those
    /// is a code the API answers with that status; so a client switching on
    /// `code` per status sees every case, and only real ones.
    #[test]
    fn every_problem_response_lists_codes_of_its_own_status() {
        for (name, operation) in operations(&document()) {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                // `/readyz`'s 503 is its own body, saying which check failed.
                if response["content"].get("application/json").is_some() {
                    continue;
                }
                let schema = &response["content"]["application/problem+json"]["schema"];
                let codes = schema["allOf"][1]["properties"]["code"]["enum"].as_array();
                let codes = codes.unwrap_or_else(|| panic!("{name} {status}: no problem+json with its codes"));
                assert!(!codes.is_empty(), "{name} {status}: lists no code");
                for code in codes {
                    let code = code.as_str().expect("a code is a string");
                    assert_eq!(
                        status_of(code).map(|s| s.to_string()).as_deref(),
                        Some(status.as_str()),
                        "{name}: `{code}` listed under {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn responses_document_the_headers_they_carry() {
        for (name, operation) in operations(&document()) {
            let keyed = operation.get("security").is_none();
            let idempotent =
                operation["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == "Idempotency-Key");
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let headers = &response["headers"];
                assert!(headers.get("x-request-id").is_some(), "{name} {status}: no x-request-id");
                let limited = keyed && status != "401";
                assert_eq!(headers.get("RateLimit").is_some(), limited, "{name} {status}: RateLimit");
                assert_eq!(headers.get("RateLimit-Policy").is_some(), limited, "{name} {status}: RateLimit-Policy");
                let problem = response["content"].get("application/problem+json").is_some();
                if problem && matches!(status.as_str(), "429" | "503") {
                    assert!(headers.get("Retry-After").is_some(), "{name} {status}: no Retry-After");
                }
                if idempotent && status.starts_with('2') {
                    assert!(headers.get("Idempotent-Replayed").is_some(), "{name} {status}: no Idempotent-Replayed");
                }
            }
        }
    }

    #[test]
    fn the_3_0_rendering_keeps_every_operation_and_schema() {
        let (document, downgraded) = (document(), crate::openapi_3_0::downgrade(document()));
        let names = |d: &Value| operations(d).into_iter().map(|(name, _)| name).collect::<Vec<_>>();
        assert_eq!(names(&downgraded), names(&document));
        let schemas = |d: &Value| d["components"]["schemas"].as_object().map(|s| s.keys().cloned().collect::<Vec<_>>());
        assert_eq!(schemas(&downgraded), schemas(&document));
        let text = downgraded.to_string();
        for only_3_1 in ["\"type\":[", "\"examples\":[", "\"const\":", "\"identifier\":", "\"type\":\"null\""] {
            assert!(!text.contains(only_3_1), "3.0 rendering still has {only_3_1}");
        }
    }
}
