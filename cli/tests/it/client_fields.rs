//! What a client attaches to an upload (`external_id`, `metadata`) comes
//! back on the image, in listings and in every event, on both backend sets;
//! an external id is unique within a tenant, and only there.

use entities::deletions;
use entities::prelude::Deletions;
use pipeline::Settings;
use pipeline::event::EventKind;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, WebhookSink, assert_problem, base_settings, db, testdata};

/// A raw upload naming its client fields in headers.
async fn upload_with(app: &TestApp, key: &str, file: &str, external_id: &str, metadata: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/images", app.address))
        .bearer_auth(key)
        .header("content-type", "image/jpeg")
        .header("image-external-id", external_id)
        .header("image-metadata", metadata)
        .body(std::fs::read(testdata(file)).expect("testdata"))
        .send()
        .await
        .expect("upload")
}

/// A multipart upload with its client fields after the file.
async fn form_upload_with(app: &TestApp, file: &str, external_id: &str, metadata: &str) -> reqwest::Response {
    let boundary = format!("b{}", Uuid::new_v4().simple());
    let mut form = Vec::new();
    let part = |name: &str| format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n");
    form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
    form.extend_from_slice(&std::fs::read(testdata(file)).expect("testdata"));
    form.extend_from_slice(
        format!("\r\n{}{external_id}\r\n{}{metadata}\r\n--{boundary}--\r\n", part("external_id"), part("metadata"))
            .as_bytes(),
    );
    app.http
        .post(format!("{}/v1/images", app.address))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(form)
        .send()
        .await
        .expect("upload")
}

async fn image_of(response: reqwest::Response) -> Uuid {
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let body: serde_json::Value = response.json().await.expect("json");
    body["image_id"].as_str().and_then(|s| s.parse().ok()).expect("image id")
}

async fn client_fields_come_back_everywhere(settings: Settings, mut sink: WebhookSink) {
    // Arrange
    let app = TestApp::spawn(&settings).await;
    let other = pipeline::tenants::create(&app.backends.db, "other").await.expect("tenant");
    let (_, other_key) =
        pipeline::api_keys::create(&app.backends.db, other.id, "other", entities::api_keys::Scope::Client)
            .await
            .expect("key");
    let metadata = json!({"album": "Kleiber", "tags": ["concert", 1984]});

    // Act: raw, multipart (fields after the file) and presigned uploads;
    // a taken external id; the same one in another tenant.
    let raw = image_of(upload_with(&app, &app.client_key, "kleiber.jpg", "photo-1", &metadata.to_string()).await).await;
    let form = image_of(form_upload_with(&app, "orient3.jpg", "photo-2", r#"{"n":2}"#).await).await;
    let presigned = app
        .http
        .post(format!("{}/v1/uploads", app.address))
        .json(
            &json!({"content_type": "image/png", "content_length": 10, "external_id": "photo-3", "metadata": {"n": 3}}),
        )
        .send()
        .await
        .expect("presign");
    let taken_raw = upload_with(&app, &app.client_key, "orient5.jpg", "photo-1", "{}").await;
    let taken_form = form_upload_with(&app, "orient5.jpg", "photo-2", "{}").await;
    let elsewhere = image_of(upload_with(&app, &other_key, "kleiber.jpg", "photo-1", "{}").await).await;
    app.worker.drain().await.expect("drain");

    // Assert
    assert_eq!(presigned.status(), 201);
    let taken = assert_problem(taken_raw, 409, "external-id-taken").await;
    assert!(taken["detail"].as_str().is_some_and(|d| d.contains(&raw.to_string())), "{taken}");
    assert_problem(taken_form, 409, "external-id-taken").await;
    let image = app.get_json(&format!("/v1/images/{raw}"), 200).await;
    assert_eq!((&image["external_id"], &image["metadata"]), (&json!("photo-1"), &metadata));
    let found = app.get_json("/v1/images?external_id=photo-1", 200).await;
    let ids: Vec<&str> = found["images"].as_array().expect("images").iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, vec![raw.to_string()], "the tenant's own image only, not {elsewhere}");
    let page = app.get_json("/v1/images?limit=2", 200).await;
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let rest = app.get_json(&format!("/v1/images?limit=2&cursor={cursor}"), 200).await;
    let listed: Vec<serde_json::Value> =
        [&page, &rest].iter().flat_map(|p| p["images"].as_array().cloned().unwrap_or_default()).collect();
    let external: Vec<&str> = listed.iter().filter_map(|i| i["external_id"].as_str()).collect();
    assert_eq!(external, vec!["photo-3", "photo-2", "photo-1"], "newest first, each once");
    assert!(rest["next_cursor"].is_null());
    assert_eq!(listed[1]["metadata"], json!({"n": 2}));
    let events = sink.take_exactly(3).await;
    let processed = events.iter().find(|e| e.image_id == Some(raw)).expect("the raw upload's event");
    assert_eq!(processed.event, EventKind::ImageProcessed);
    assert_eq!((processed.external_id.as_deref(), processed.metadata.as_ref()), (Some("photo-1"), Some(&metadata)));
    assert_eq!(events.iter().filter(|e| e.image_id == Some(form)).count(), 1);

    // And deletion: the event carries them, the audit record does not.
    let deleted = app.http.delete(format!("{}/v1/images/{raw}", app.address)).send().await.expect("delete");
    assert_eq!(deleted.status(), 204);
    let event = sink.take_exactly(1).await.remove(0);
    assert_eq!(event.event, EventKind::ImageDeleted);
    assert_eq!((event.external_id.as_deref(), event.metadata.as_ref()), (Some("photo-1"), Some(&metadata)));
    let record = Deletions::find().filter(deletions::Column::ImageId.eq(raw)).one(&app.backends.db).await;
    let record = record.expect("query").expect("audit record");
    assert_eq!((record.external_id, record.metadata), (None, None), "the audit record keeps no client data");
    let again = upload_with(&app, &app.client_key, "orient5.jpg", "photo-1", "{}").await;
    assert_eq!(again.status(), 202, "a deleted image's external id is free again");
}

#[tokio::test]
async fn embedded_client_fields_come_back_everywhere() {
    let dir = TempDir::new().expect("temp dir");
    let sink = WebhookSink::start().await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.webhook_url = Some(sink.url.clone().into());
    client_fields_come_back_everywhere(settings, sink).await;
}

#[tokio::test]
async fn aws_client_fields_come_back_everywhere() {
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let sink = WebhookSink::start().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    settings.webhook_url = Some(sink.url.clone().into());
    client_fields_come_back_everywhere(settings, sink).await;
}

#[tokio::test]
async fn bad_client_fields_are_refused_and_nothing_is_kept() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    let big = json!({"blob": "x".repeat(4100)}).to_string();

    // Act
    let not_an_object = upload_with(&app, &app.client_key, "kleiber.jpg", "a", "[1,2]").await;
    let too_big = form_upload_with(&app, "kleiber.jpg", "b", &big).await;
    let not_json = upload_with(&app, &app.client_key, "kleiber.jpg", "c", "{nope").await;
    let long_id = upload_with(&app, &app.client_key, "kleiber.jpg", &"x".repeat(201), "{}").await;
    let presigned = app
        .http
        .post(format!("{}/v1/uploads", app.address))
        .json(&json!({"content_type": "image/png", "content_length": 10, "metadata": "text"}))
        .send()
        .await
        .expect("presign");

    // Assert
    for response in [not_an_object, too_big, not_json, long_id, presigned] {
        assert_problem(response, 400, "bad-request").await;
    }
    let page = app.get_json("/v1/images", 200).await;
    assert_eq!(page["images"], json!([]), "no image was recorded");
    let objects = std::fs::read_dir(settings.storage_dir().join("originals")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(objects, 0, "no original was kept");
}

#[tokio::test]
async fn two_uploads_racing_for_one_external_id_make_one_image() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::postgres().await);
    let app = TestApp::spawn(&settings).await;

    // Act
    let files = ["kleiber.jpg", "orient3.jpg", "orient5.jpg", "orient8.jpg"];
    let racing = files.iter().map(|file| form_upload_with(&app, file, "same", "{}"));
    let statuses: Vec<u16> = futures::future::join_all(racing).await.iter().map(|r| r.status().as_u16()).collect();

    // Assert
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![202, 409, 409, 409], "{statuses:?}");
    let found = app.get_json("/v1/images?external_id=same", 200).await;
    assert_eq!(found["images"].as_array().map(Vec::len), Some(1));
}
