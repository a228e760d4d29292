//! The OpenAPI 3.1 document, generated from the handlers and their types.
//! `docs/openapi.json` is this document as committed; a test fails when the
//! two differ (`image-service openapi > docs/openapi.json` refreshes it).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{admin, error, health, images, jobs, presigned};

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
        images::create_image,
        images::get_image,
        images::get_variant,
        presigned::create_upload,
        presigned::receive_upload,
        admin::replay_dlq,
        admin::replay_jobs,
        admin::reprocess,
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    tags(
        (name = "images", description = "Uploads, images and their variants"),
        (name = "jobs", description = "Processing jobs"),
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
