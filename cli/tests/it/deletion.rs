//! `DELETE /v1/images/{id}`: afterwards nothing of the image is left in the
//! store or the database, on both backend sets, including when its job is
//! still queued or is storing variants at that moment.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use entities::prelude::{Deletions, Images, Jobs, Variants};
use entities::{deletions, images, jobs, variants};
use pipeline::Settings;
use pipeline::event::EventKind;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::faults::FlakyStore;
use crate::support::{TestApp, WebhookSink, base_settings, db};

/// Where objects can be listed, per backend set.
enum Objects {
    Aws(AwsFixture),
    Disk(PathBuf),
}

impl Objects {
    /// Every stored key that mentions the image (its original, its variants).
    async fn of(&self, image_id: Uuid) -> BTreeSet<String> {
        let needle = image_id.to_string();
        match self {
            Self::Aws(aws) => {
                let listed = aws.s3.list_objects_v2().bucket(&aws.bucket).send().await.expect("list the bucket");
                listed
                    .contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| k.contains(&needle))
                    .map(str::to_owned)
                    .collect()
            }
            Self::Disk(root) => {
                let mut found = BTreeSet::new();
                let mut pending = vec![root.clone()];
                while let Some(dir) = pending.pop() {
                    let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                    for entry in entries {
                        let path = entry.expect("dir entry").path();
                        let key = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                        if path.is_dir() {
                            pending.push(path);
                        } else if key.contains(&needle) {
                            found.insert(key);
                        }
                    }
                }
                found
            }
        }
    }
}

/// Rows that still mention the image.
async fn rows_of(app: &TestApp, image_id: Uuid) -> u64 {
    let db = &app.backends.db;
    let images = Images::find().filter(images::Column::Id.eq(image_id)).count(db).await.expect("count");
    let jobs = Jobs::find().filter(jobs::Column::ImageId.eq(image_id)).count(db).await.expect("count");
    let variants = Variants::find().filter(variants::Column::ImageId.eq(image_id)).count(db).await.expect("count");
    images + jobs + variants
}

async fn delete(app: &TestApp, key: &str, image_id: Uuid) -> u16 {
    reqwest::Client::new()
        .delete(format!("{}/v1/images/{image_id}", app.address))
        .bearer_auth(key)
        .send()
        .await
        .expect("delete")
        .status()
        .as_u16()
}

/// Uploads a photo as the default tenant's client; returns (job, image).
async fn upload(app: &TestApp) -> (Uuid, Uuid) {
    let response = app.upload_raw("kleiber.jpg", "image/jpeg").await;
    assert_eq!(response.status(), 202);
    let job: serde_json::Value = response.json().await.expect("json");
    let id = |field: &str| job[field].as_str().and_then(|s| s.parse().ok()).expect("uuid");
    (id("id"), id("image_id"))
}

async fn embedded() -> (Settings, Objects, Option<WebhookSink>, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    let sink = WebhookSink::start().await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.webhook_url = Some(sink.url.clone().into());
    settings.redis_url = Some(crate::support::redis_url().into());
    let objects = Objects::Disk(settings.storage_dir());
    (settings, objects, Some(sink), dir)
}

async fn aws() -> (Settings, Objects, Option<WebhookSink>, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    (settings, Objects::Aws(aws), None, dir)
}

async fn a_deleted_image_leaves_nothing_behind(
    (settings, objects, sink, _dir): (Settings, Objects, Option<WebhookSink>, TempDir),
) {
    // Arrange: a processed image, read once so that the cache holds it.
    let app = TestApp::spawn(&settings).await;
    let (job_id, image_id) = upload(&app).await;
    app.worker.drain().await.expect("drain");
    app.get_json(&format!("/v1/images/{image_id}"), 200).await;
    assert!(objects.of(image_id).await.len() >= 2, "an original and variants were stored");
    let tenant = pipeline::tenants::create(&app.backends.db, "other").await.expect("tenant");
    let (_, other_key) =
        pipeline::api_keys::create(&app.backends.db, tenant.id, "other", entities::api_keys::Scope::Client)
            .await
            .expect("key");

    // Act
    let by_another_tenant = delete(&app, &other_key, image_id).await;
    let first = delete(&app, &app.client_key, image_id).await;
    let second = delete(&app, &app.client_key, image_id).await;

    // Assert
    assert_eq!(by_another_tenant, 404, "another tenant cannot delete it, nor learn it exists");
    assert_eq!(first, 204);
    assert_eq!(second, 404);
    assert_eq!(objects.of(image_id).await, BTreeSet::new(), "no object of the image is left");
    assert_eq!(rows_of(&app, image_id).await, 0, "no row of the image is left");
    app.get_json(&format!("/v1/images/{image_id}"), 404).await;
    app.get_json(&format!("/v1/jobs/{job_id}"), 404).await;
    let record = Deletions::find().filter(deletions::Column::ImageId.eq(image_id)).one(&app.backends.db).await;
    let record = record.expect("query").expect("an audit record of the deletion");
    assert!(record.completed_at.is_some());
    assert_eq!(record.job_ids, job_id.to_string());
    assert!(record.requested_by.is_some(), "it names the key that asked");
    if let Some(mut sink) = sink {
        let events = sink.take_exactly(2).await;
        assert_eq!(events[0].event, EventKind::ImageProcessed);
        assert_eq!(events[1].event, EventKind::ImageDeleted);
        assert_eq!(events[1].image_id, Some(image_id));
    }
}

#[tokio::test]
async fn embedded_a_deleted_image_leaves_nothing_behind() {
    a_deleted_image_leaves_nothing_behind(embedded().await).await;
}

#[tokio::test]
async fn aws_a_deleted_image_leaves_nothing_behind() {
    a_deleted_image_leaves_nothing_behind(aws().await).await;
}

/// Deletes the image while its job is queued, and (with another upload)
/// while the worker is storing its variants.
async fn a_job_in_flight_does_not_bring_a_deleted_image_back(
    (settings, objects, sink, _dir): (Settings, Objects, Option<WebhookSink>, TempDir),
) {
    // Arrange: the worker's writes wait at a gate the test opens.
    let app = TestApp::spawn(&settings).await;
    let mut backends = app.backends.clone();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut store = FlakyStore::new(backends.store.clone(), 0, false);
    store.put_gate = Some(gate.clone());
    let store = Arc::new(store);
    backends.store = store.clone();
    let worker = worker::Worker::new(backends, &settings).await.expect("worker");
    let (_, queued) = upload(&app).await;
    let (_, running) = upload(&app).await;

    // Act: delete the first while it waits in the queue.
    assert_eq!(delete(&app, &app.client_key, queued).await, 204);
    // Then start the second, and delete it once its first variant is on
    // its way to the store.
    let drained = tokio::spawn(async move { worker.drain().await });
    for _ in 0..600 {
        if store.puts_attempted.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(store.puts_attempted.load(std::sync::atomic::Ordering::SeqCst) > 0, "the worker started storing");
    assert_eq!(delete(&app, &app.client_key, running).await, 204);
    gate.add_permits(1_000);
    drained.await.expect("worker task").expect("drain");

    // Assert
    for image in [queued, running] {
        assert_eq!(objects.of(image).await, BTreeSet::new(), "nothing of {image} is left");
        assert_eq!(rows_of(&app, image).await, 0, "no row of {image} is left");
    }
    if let Some(mut sink) = sink {
        let events = sink.take_exactly(2).await;
        assert!(events.iter().all(|e| e.event == EventKind::ImageDeleted), "no image.processed goes out: {events:?}");
    }
}

#[tokio::test]
async fn embedded_a_job_in_flight_does_not_bring_a_deleted_image_back() {
    a_job_in_flight_does_not_bring_a_deleted_image_back(embedded().await).await;
}

#[tokio::test]
async fn aws_a_job_in_flight_does_not_bring_a_deleted_image_back() {
    a_job_in_flight_does_not_bring_a_deleted_image_back(aws().await).await;
}

/// Erases a tenant with the store failing part-way, then again: the second
/// run finishes, and nothing of the tenant is left while the other tenant's
/// image is untouched.
async fn an_erased_tenant_leaves_nothing_behind_even_when_cut_short(
    (settings, objects, _sink, _dir): (Settings, Objects, Option<WebhookSink>, TempDir),
) {
    // Arrange: acme has two processed images and a key; the default tenant one image.
    let app = TestApp::spawn(&settings).await;
    let db = &app.backends.db;
    let acme = pipeline::tenants::create(db, "acme").await.expect("tenant");
    // The same photo twice makes two images.
    pipeline::tenants::set_deduplicate(db, acme.id, false).await.expect("dedup off");
    let (_, acme_key) =
        pipeline::api_keys::create(db, acme.id, "acme", entities::api_keys::Scope::Client).await.expect("key");
    let mut acme_images = Vec::new();
    for _ in 0..2 {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/images", app.address))
            .bearer_auth(&acme_key)
            .header("content-type", "image/png")
            .body(std::fs::read(crate::support::testdata("dice_rgba.png")).expect("testdata"))
            .send()
            .await
            .expect("upload");
        let job: serde_json::Value = response.json().await.expect("json");
        acme_images.push(job["image_id"].as_str().and_then(|s| s.parse::<Uuid>().ok()).expect("image id"));
    }
    let (_, kept) = upload(&app).await;
    app.worker.drain().await.expect("drain");
    let mut flaky = app.backends.clone();
    let store = FlakyStore::new(flaky.store.clone(), 0, false);
    // The first image's three trees go, then the store fails.
    store.deletes_allowed.store(4, std::sync::atomic::Ordering::SeqCst);
    flaky.store = Arc::new(store);
    let env = "test";

    // Act
    let dry = pipeline::deletion::erase_tenant(&app.backends, &acme, true, &pipeline::replay::Silent, env).await;
    let cut_short = pipeline::deletion::erase_tenant(&flaky, &acme, false, &pipeline::replay::Silent, env).await;
    let resumed = pipeline::deletion::erase_tenant(&app.backends, &acme, false, &pipeline::replay::Silent, env).await;

    // Assert
    let dry = dry.expect("dry run");
    assert_eq!((dry.images, dry.keys, dry.dry_run), (2, 1, true));
    assert!(cut_short.is_err(), "the failing store stops the first run");
    let resumed = resumed.expect("the second run finishes");
    assert_eq!(resumed.keys, 0, "the first run deleted the key before any image");
    for image in acme_images {
        assert_eq!(objects.of(image).await, BTreeSet::new(), "nothing of {image} is left");
        assert_eq!(rows_of(&app, image).await, 0, "no row of {image} is left");
    }
    assert!(pipeline::tenants::find_by_name(db, "acme").await.expect("query").is_none(), "the tenant is gone");
    // (The API remembers a key lookup for 30 s, as for a revoked key.)
    assert!(pipeline::api_keys::find_live(db, &acme_key).await.expect("query").is_none(), "its key is gone");
    assert!(rows_of(&app, kept).await > 0, "the other tenant's image is untouched");
    assert!(!objects.of(kept).await.is_empty());
    let default = pipeline::tenants::find_by_name(db, "default").await.expect("query").expect("default tenant");
    let refused = pipeline::deletion::erase_tenant(&app.backends, &default, false, &pipeline::replay::Silent, env);
    assert!(matches!(refused.await, Err(pipeline::deletion::EraseError::DefaultTenant)));
}

#[tokio::test]
async fn embedded_an_erased_tenant_leaves_nothing_behind_even_when_cut_short() {
    an_erased_tenant_leaves_nothing_behind_even_when_cut_short(embedded().await).await;
}

#[tokio::test]
async fn aws_an_erased_tenant_leaves_nothing_behind_even_when_cut_short() {
    an_erased_tenant_leaves_nothing_behind_even_when_cut_short(aws().await).await;
}
