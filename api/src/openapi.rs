//! The OpenAPI 3.1 document, generated from the handlers and their types.
//! `docs/openapi.json` is this document as committed; a test fails when the
//! two differ (`image-service openapi > docs/openapi.json` refreshes it).

use axum::Json;
use utoipa::openapi::Required;
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::responses::TenantProblems;
use crate::{admin, delivery, error, health, images, jobs, presigned, status};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "image-service",
        description = "Upload images; get them back compressed, resized and stripped of metadata, \
                       with an event when each job ends.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
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
    modifiers(&BearerAuth, &TenantParameter),
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
            for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
                if UNSCOPED.contains(&operation.operation_id.as_deref().unwrap_or_default()) {
                    continue;
                }
                operation.parameters.get_or_insert_with(Vec::new).push(parameter.clone());
                for (status, response) in TenantProblems::responses() {
                    operation.responses.responses.entry(status).or_insert(response);
                }
            }
        }
    }
}

/// The document as JSON, pretty-printed with a trailing newline (as committed).
pub fn document() -> String {
    let mut json = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// `GET /openapi.json`.
pub(crate) async fn serve() -> Json<serde_json::Value> {
    Json(serde_json::to_value(ApiDoc::openapi()).unwrap_or_default())
}
