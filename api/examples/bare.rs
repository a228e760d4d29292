//! The baseline of `scripts/bench-api`: a bare axum handler that answers
//! every `GET /v1/jobs/{id}` with a fixed job-sized JSON body, on the same
//! runtime and HTTP stack as the API. Whatever the real endpoint costs
//! beyond this is auth, the rate limit, the cache and the database.
//!
//! It also answers `GET /variants/{*path}` with the bytes of FILE, held in
//! memory, and the delivery path's headers: the baseline of
//! `scripts/bench-delivery`.
//!
//! Usage: `bare ADDRESS [FILE]`

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const BODY: &str = r#"{"id":"019ac0b4-0000-7000-8000-000000000000","image_id":"019ac0b4-0000-7000-8000-000000000001","status":"succeeded","attempts":1,"error":null,"created_at":"2026-11-26T12:00:00Z","updated_at":"2026-11-26T12:00:01Z","finished_at":"2026-11-26T12:00:01Z","links":{"self":"/v1/jobs/019ac0b4-0000-7000-8000-000000000000","image":"/v1/images/019ac0b4-0000-7000-8000-000000000001"}}"#;

async fn job(Path(_id): Path<String>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], BODY)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8090".into());
    let file = std::env::args().nth(2).map(std::fs::read).transpose()?.unwrap_or_default();
    let bytes = axum::body::Bytes::from(file);
    let variant = get(move |Path(_path): Path<String>| async move {
        let headers = [
            (header::CONTENT_TYPE, "image/webp"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::ETAG, "\"0123456789abcdef0123456789abcdef\""),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ];
        (headers, bytes.clone())
    });
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, Router::new().route("/v1/jobs/{id}", get(job)).route("/variants/{*path}", variant)).await
}
