//! Bad requests get a clear status and a stable problem code, and leave nothing behind.

use entities::prelude::Jobs;
use sea_orm::{EntityTrait, PaginatorTrait};
use tempfile::TempDir;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, assert_problem, base_settings, db};

async fn app(max_upload_bytes: u64) -> (TestApp, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.max_upload_bytes = max_upload_bytes;
    (TestApp::spawn(&settings).await, dir)
}

#[tokio::test]
async fn health_answers_ok() {
    let (app, _dir) = app(1024).await;
    let body = app.get_json("/healthz", 200).await;
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404_and_400() {
    let (app, _dir) = app(1024).await;
    let missing = app.http.get(format!("{}/v1/jobs/{}", app.address, uuid::Uuid::new_v4())).send().await.expect("get");
    assert_problem(missing, 404, "not-found").await;
    let missing =
        app.http.get(format!("{}/v1/images/{}", app.address, uuid::Uuid::new_v4())).send().await.expect("get");
    assert_problem(missing, 404, "not-found").await;
    let malformed = app.http.get(format!("{}/v1/jobs/not-a-uuid", app.address)).send().await.expect("get");
    assert_problem(malformed, 400, "bad-request").await;
}

#[tokio::test]
async fn non_image_content_types_are_415_and_record_nothing() {
    let (app, _dir) = app(1024 * 1024).await;
    let response = app.upload_raw("notimage.jpg", "text/plain").await;
    assert_problem(response, 415, "unsupported-media-type").await;
    let response = app.http.post(format!("{}/v1/images", app.address)).body("x").send().await.expect("post");
    assert_problem(response, 415, "unsupported-media-type").await;
    assert_eq!(Jobs::find().count(&app.backends.db).await.expect("count"), 0);
}

#[tokio::test]
async fn uploads_over_the_limit_are_413_and_leave_no_object_or_job() {
    let (app, dir) = app(10_000).await;
    let response = app.upload_raw("astronaut.png", "image/png").await;
    assert_problem(response, 413, "payload-too-large").await;
    let response = app.upload_multipart("astronaut.png", "image/png").await;
    assert_problem(response, 413, "payload-too-large").await;
    assert_eq!(Jobs::find().count(&app.backends.db).await.expect("count"), 0);
    let originals = dir.path().join("objects").join("originals");
    let left = std::fs::read_dir(&originals).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "partial uploads are removed");
}

#[tokio::test]
async fn on_s3_uploads_over_the_limit_are_413_and_leave_no_object() {
    // On S3 a raw upload of declared length streams into one PutObject,
    // and a multipart one is buffered a part at a time: both must be cut off.
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    settings.max_upload_bytes = 10_000;
    let app = TestApp::spawn(&settings).await;

    let response = app.upload_raw("astronaut.png", "image/png").await;
    assert_problem(response, 413, "payload-too-large").await;
    let response = app.upload_multipart("astronaut.png", "image/png").await;
    assert_problem(response, 413, "payload-too-large").await;

    assert_eq!(Jobs::find().count(&app.backends.db).await.expect("count"), 0);
    let listed = aws.s3.list_objects_v2().bucket(&aws.bucket).send().await.expect("list bucket");
    assert_eq!(listed.key_count(), Some(0), "no object is left: {:?}", listed.contents());
}

#[tokio::test]
async fn multipart_without_a_file_field_is_400() {
    let (app, _dir) = app(1024).await;
    let response = app
        .http
        .post(format!("{}/v1/images", app.address))
        .header("content-type", "multipart/form-data; boundary=xyz")
        .body("--xyz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhello\r\n--xyz--\r\n")
        .send()
        .await
        .expect("post");
    assert_problem(response, 400, "bad-request").await;
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let (app, _dir) = app(1024).await;
    let body = app.get_json("/readyz", 200).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"], serde_json::json!({ "database": true, "queue": true, "store": true }));
}

#[tokio::test]
async fn jobs_are_listed_newest_first_by_status_with_a_cursor() {
    // Arrange: three failed jobs and one bad filter.
    let (app, _dir) = app(1024 * 1024).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.ingest("notimage.jpg").await.to_string());
    }
    app.worker.drain().await.expect("drain");

    // Act
    let first = app.get_json("/v1/jobs?status=failed&limit=2", 200).await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let second = app.get_json(&format!("/v1/jobs?status=failed&limit=2&cursor={cursor}"), 200).await;
    let queued = app.get_json("/v1/jobs?status=queued", 200).await;
    let bad = app.http.get(format!("{}/v1/jobs?status=lost", app.address)).send().await.expect("get");

    // Assert
    let listed: Vec<&str> = first["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(second["jobs"].as_array().into_iter().flatten())
        .filter_map(|j| j["id"].as_str())
        .collect();
    ids.reverse();
    assert_eq!(listed, ids, "newest first, each once");
    assert!(second["next_cursor"].is_null());
    assert_eq!(queued["jobs"].as_array().map(Vec::len), Some(0));
    assert_problem(bad, 400, "bad-request").await;
}

/// `--help` lists every setting with its variable, and never the value a
/// secret variable holds.
#[test]
fn help_never_prints_a_secret_value() {
    let secrets = [
        ("DATABASE_URL", "postgres://app:hunter2@db/images"),
        ("REDIS_URL", "rediss://u:redis-secret@cache:6379"),
        ("ADMIN_API_KEY", "admin-secret"),
        ("UPLOAD_SIGNING_KEY", "upload-secret"),
        ("DELIVERY_SIGNING_KEY", "delivery-secret"),
        ("WEBHOOK_URL", "https://example.com/hook?token=hk-tok-77"),
        ("WEBHOOK_SECRETS", "whsec_c2lnbmluZy1rZXktb2YtdGhlLXdlYmhvb2stdGVzdA=="),
        ("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/slack-secret"),
        ("DISCORD_WEBHOOK_URL", "https://discord.com/api/webhooks/1/discord-secret"),
    ];
    for command in [&["--help"][..], &["migrate", "--help"][..]] {
        let mut help = std::process::Command::new(env!("CARGO_BIN_EXE_image-service"));
        help.args(command).env("DATABASE_APP_PASSWORD", "app-password-secret");
        for (name, value) in secrets {
            help.env(name, value);
        }
        let output = help.output().expect("the binary runs");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command:?}: {text}");
        // Each lists the secret variables it reads, only without their values.
        let listed = if command[0] == "migrate" { "DATABASE_APP_PASSWORD" } else { "DATABASE_URL" };
        assert!(text.contains(listed), "{command:?}: {text}");
        for secret in [
            "hunter2",
            "redis-secret",
            "admin-secret",
            "upload-secret",
            "delivery-secret",
            "hk-tok-77",
            "c2lnbmluZy1rZXktb2YtdGhlLXdlYmhvb2stdGVzdA",
            "slack-secret",
            "discord-secret",
            "app-password-secret",
        ] {
            assert!(!text.contains(secret), "{command:?} --help shows {secret}");
        }
    }
}
