//! The OpenAPI document's examples, one per schema, built from each other so
//! a page of jobs shows the same job as the job itself. The document's lint
//! (`scripts/check-api-schema`) validates every one against its schema.

use serde_json::{Value, json};

const JOB: &str = "01938c3e-7b7d-7f1a-9c41-5d2b8e6f0a13";
const IMAGE: &str = "01938c3e-7b7c-7c55-8f0e-2a9d4b7c6e01";
const AT: &str = "2026-12-07T10:15:30.123Z";
const DONE: &str = "2026-12-07T10:15:31.870Z";
const CURSOR: &str = "01938c3e-7b7c-7c55-8f0e-2a9d4b7c6e01";

pub(crate) fn job_links() -> Value {
    json!({ "self": format!("/v1/jobs/{JOB}"), "image": format!("/v1/images/{IMAGE}") })
}

pub(crate) fn job() -> Value {
    json!({
        "id": JOB, "image_id": IMAGE, "status": "succeeded", "attempts": 1, "error": null,
        "created_at": AT, "updated_at": DONE, "finished_at": DONE, "links": job_links(),
    })
}

pub(crate) fn error_view() -> Value {
    json!({ "code": "image-too-large", "message": "the image is 30000x20000, over MAX_PIXELS" })
}

pub(crate) fn job_page() -> Value {
    json!({ "jobs": [job()], "next_cursor": CURSOR })
}

pub(crate) fn variant() -> Value {
    json!({
        "preset": "thumb", "preset_version": "3f2a91c0", "format": "webp", "width": 320, "height": 213,
        "bytes": 11482, "key": format!("variants/{IMAGE}/thumb-3f2a91c0.webp"), "mime_type": "image/webp",
        "delivery_url": format!("https://cdn.example.com/variants/{IMAGE}/k3Jd9sQ2/thumb-3f2a91c0.webp"),
        "url": format!("https://cdn.example.com/variants/{IMAGE}/k3Jd9sQ2/thumb-3f2a91c0.webp"),
    })
}

pub(crate) fn placeholder() -> Value {
    json!({ "thumbhash": "1QcSHQRnh493V4dIh4eXh1h4kJUI", "dominant_colour": "#6b7a5c" })
}

pub(crate) fn image() -> Value {
    let url = format!("https://cdn.example.com/variants/{IMAGE}/k3Jd9sQ2/thumb-3f2a91c0.webp");
    json!({
        "id": IMAGE, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "bytes": 2_481_920, "format": "jpeg", "width": 4032, "height": 2688, "created_at": AT,
        "external_id": "user-42/avatar", "metadata": { "album": "holidays" },
        "original_expires_at": null, "original_removed_at": null,
        "placeholder": placeholder(), "srcset": { "image/webp": format!("{url} 320w") }, "variants": [variant()],
    })
}

pub(crate) fn image_page() -> Value {
    json!({ "images": [image()], "next_cursor": CURSOR })
}

pub(crate) fn upload_request() -> Value {
    json!({
        "content_type": "image/jpeg", "content_length": 2_481_920,
        "external_id": "user-42/avatar", "metadata": { "album": "holidays" },
    })
}

pub(crate) fn upload_instructions() -> Value {
    json!({
        "method": "PUT",
        "url": format!("https://image-service-uploads.s3.eu-west-1.amazonaws.com/uploads/{JOB}?X-Amz-Signature=…"),
        "headers": { "content-type": "image/jpeg", "content-length": "2481920" },
        "expires_at": "2026-12-07T10:30:30Z",
    })
}

pub(crate) fn upload_ticket() -> Value {
    let mut queued = job();
    queued["status"] = json!("awaiting_upload");
    queued["updated_at"] = json!(AT);
    queued["finished_at"] = Value::Null;
    json!({
        "job": queued, "upload": upload_instructions(),
        "status_url": format!("https://api.example.com/v1/status/{JOB}?Expires=1796644530&Signature=…&Key-Pair-Id=K2JCJMDEHXQW5F"),
    })
}

pub(crate) fn status() -> Value {
    json!({ "job": job(), "image": image() })
}

pub(crate) fn problem() -> Value {
    json!({
        "type": "https://image-service.dev/problems/not-found", "title": "Not Found", "status": 404,
        "code": "not-found", "detail": "image not found",
    })
}

pub(crate) fn health() -> Value {
    json!({ "status": "ok" })
}

pub(crate) fn readiness_checks() -> Value {
    json!({ "database": true, "queue": true, "store": true })
}

pub(crate) fn readiness() -> Value {
    json!({ "status": "ready", "checks": readiness_checks() })
}

pub(crate) fn dlq_request() -> Value {
    json!({ "mode": "auto", "max_per_second": 50, "dry_run": true })
}

pub(crate) fn jobs_request() -> Value {
    json!({
        "statuses": ["failed", "dead"], "since": "2026-12-06T00:00:00Z", "until": "2026-12-07T00:00:00Z",
        "error_code": "deadline-exceeded", "max_per_second": 50, "dry_run": false,
    })
}

pub(crate) fn reprocess_request() -> Value {
    json!({ "preset": "thumb", "stale_only": true, "resume": false, "page_size": 500, "max_per_second": 50, "dry_run": false })
}

pub(crate) fn job_status() -> Value {
    json!("succeeded")
}

pub(crate) fn upload_form() -> Value {
    json!({ "file": "(the image file's bytes)" })
}

pub(crate) fn image_bytes() -> Value {
    json!("(the image file's bytes)")
}
