//! Per-tenant quotas (uploads per day, bytes stored) and deduplication.
//! Concurrent uploads are counted exactly: of N at once, exactly the quota's
//! worth get in, and N uploads of the same bytes make one image.

use entities::api_keys::Scope;
use entities::prelude::{Images, Tenants, Variants};
use entities::{images, variants};
use futures::future::join_all;
use pipeline::Settings;
use pipeline::quota::Limits;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, base_settings, db, testdata};

const PHOTO: &str = "dice_rgba.png";

/// A tenant with these limits and a client key for it. It does not
/// deduplicate, so that the same photo can be uploaded again and again.
async fn tenant(app: &TestApp, limits: Limits) -> (Uuid, String) {
    let tenant = pipeline::tenants::create(&app.backends.db, "acme").await.expect("tenant");
    pipeline::quota::set_limits(&app.backends.db, tenant.id, limits).await.expect("limits");
    pipeline::tenants::set_deduplicate(&app.backends.db, tenant.id, false).await.expect("dedup off");
    let (_, key) = pipeline::api_keys::create(&app.backends.db, tenant.id, "acme", Scope::Client).await.expect("key");
    (tenant.id, key)
}

/// `n` uploads of the photo at once; returns each answer's status, code and `Retry-After`.
async fn upload_at_once(app: &TestApp, key: &str, n: usize) -> Vec<(u16, String, Option<u64>)> {
    let body = std::fs::read(testdata(PHOTO)).expect("testdata");
    let client = reqwest::Client::new();
    let requests = (0..n).map(|_| {
        client
            .post(format!("{}/v1/images", app.address))
            .bearer_auth(key)
            .header("content-type", "image/png")
            .body(body.clone())
            .send()
    });
    let mut answers = Vec::new();
    for response in join_all(requests).await {
        let response = response.expect("upload");
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
        let body: serde_json::Value = response.json().await.expect("json");
        answers.push((status, body["code"].as_str().unwrap_or_default().to_owned(), retry_after));
    }
    answers
}

async fn images_of(app: &TestApp, tenant: Uuid) -> Vec<images::Model> {
    Images::find().filter(images::Column::TenantId.eq(tenant)).all(&app.backends.db).await.expect("images")
}

async fn uploads_per_day_are_counted_exactly(settings: Settings) {
    // Arrange
    let app = TestApp::spawn(&settings).await;
    let (tenant, key) = tenant(&app, Limits { uploads_per_day: Some(5), bytes_stored: None }).await;

    // Act: 16 uploads at once against a quota of 5.
    let answers = upload_at_once(&app, &key, 16).await;

    // Assert
    let accepted = answers.iter().filter(|(status, ..)| *status == 202).count();
    assert_eq!(accepted, 5, "{answers:?}");
    for (status, code, retry_after) in answers.iter().filter(|(status, ..)| *status != 202) {
        assert_eq!((*status, code.as_str()), (429, "quota-exceeded"));
        let retry_after = retry_after.expect("Retry-After: when the day's count starts again");
        assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    }
    assert_eq!(images_of(&app, tenant).await.len(), 5, "only the accepted uploads are recorded");
    let today = pipeline::quota::uploads_on(&app.backends.db, tenant, chrono::Utc::now()).await.expect("count");
    assert_eq!(today, 5);
    // Another tenant is not held back by this one's quota.
    assert_eq!(app.upload_raw(PHOTO, "image/png").await.status(), 202);
}

async fn bytes_stored_are_counted_exactly_and_freed_by_deletion(settings: Settings) {
    // Arrange: room for exactly three originals.
    let app = TestApp::spawn(&settings).await;
    let size = i64::try_from(std::fs::read(testdata(PHOTO)).expect("testdata").len()).expect("size");
    let (tenant, key) = tenant(&app, Limits { uploads_per_day: None, bytes_stored: Some(3 * size) }).await;

    // Act
    let answers = upload_at_once(&app, &key, 10).await;
    let image = images_of(&app, tenant).await[0].id;
    let deleted = reqwest::Client::new()
        .delete(format!("{}/v1/images/{image}", app.address))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete");
    let after_delete = upload_at_once(&app, &key, 2).await;
    app.worker.drain().await.expect("drain");

    // Assert
    let accepted = answers.iter().filter(|(status, ..)| *status == 202).count();
    assert_eq!(accepted, 3, "{answers:?}");
    for (status, code, retry_after) in answers.iter().filter(|(status, ..)| *status != 202) {
        assert_eq!((*status, code.as_str()), (429, "quota-exceeded"));
        assert_eq!(*retry_after, None, "waiting does not free bytes");
    }
    assert_eq!(deleted.status(), 204);
    let statuses: Vec<u16> = after_delete.iter().map(|(status, ..)| *status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "a deletion frees one original's room: {statuses:?}");
    // What the tenant is charged for is what it has stored: originals and variants.
    let kept = images_of(&app, tenant).await;
    let ids: Vec<Uuid> = kept.iter().map(|i| i.id).collect();
    let variants = Variants::find().filter(variants::Column::ImageId.is_in(ids)).all(&app.backends.db).await;
    let stored: i64 =
        kept.iter().map(|i| i.bytes).sum::<i64>() + variants.expect("variants").iter().map(|v| v.bytes).sum::<i64>();
    let row = Tenants::find_by_id(tenant).one(&app.backends.db).await.expect("query").expect("tenant");
    assert_eq!(row.bytes_stored, stored);
}

fn embedded(dir: &TempDir) -> Settings {
    base_settings(dir.path(), db::sqlite(dir))
}

async fn aws(dir: &TempDir) -> (Settings, AwsFixture) {
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    (settings, aws)
}

#[tokio::test]
async fn embedded_uploads_per_day_are_counted_exactly() {
    let dir = TempDir::new().expect("temp dir");
    uploads_per_day_are_counted_exactly(embedded(&dir)).await;
}

#[tokio::test]
async fn aws_uploads_per_day_are_counted_exactly() {
    let dir = TempDir::new().expect("temp dir");
    let (settings, _aws) = aws(&dir).await;
    uploads_per_day_are_counted_exactly(settings).await;
}

#[tokio::test]
async fn embedded_bytes_stored_are_counted_exactly_and_freed_by_deletion() {
    let dir = TempDir::new().expect("temp dir");
    bytes_stored_are_counted_exactly_and_freed_by_deletion(embedded(&dir)).await;
}

#[tokio::test]
async fn aws_bytes_stored_are_counted_exactly_and_freed_by_deletion() {
    let dir = TempDir::new().expect("temp dir");
    let (settings, _aws) = aws(&dir).await;
    bytes_stored_are_counted_exactly_and_freed_by_deletion(settings).await;
}

/// Uploads `file` with `key`; returns the status and the JSON body.
async fn upload_as(app: &TestApp, key: &str, file: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/images", app.address))
        .bearer_auth(key)
        .header("content-type", "image/png")
        .body(std::fs::read(testdata(file)).expect("testdata"))
        .send()
        .await
        .expect("upload");
    (response.status().as_u16(), response.json().await.expect("json"))
}

async fn the_same_bytes_make_one_image_per_tenant(settings: Settings) {
    // Arrange: acme deduplicates (as new tenants do); the default tenant is another tenant.
    let app = TestApp::spawn(&settings).await;
    let (acme, key) = tenant(&app, Limits::default()).await;
    pipeline::tenants::set_deduplicate(&app.backends.db, acme, true).await.expect("dedup on");

    // Act
    let (first_status, first) = upload_as(&app, &key, PHOTO).await;
    app.worker.drain().await.expect("drain");
    let (again_status, again) = upload_as(&app, &key, PHOTO).await;
    let racing = join_all((0..4).map(|_| upload_as(&app, &key, "astronaut.png"))).await;
    let (other_status, other) = upload_as(&app, &app.client_key, PHOTO).await;
    pipeline::tenants::set_deduplicate(&app.backends.db, acme, false).await.expect("dedup off");
    let (off_status, off) = upload_as(&app, &key, PHOTO).await;

    // Assert
    assert_eq!(first_status, 202);
    assert!(first.get("deduplicated").is_none(), "{first}");
    assert_eq!(again_status, 200, "{again}");
    assert_eq!(again["deduplicated"], true);
    assert_eq!((&again["id"], &again["image_id"]), (&first["id"], &first["image_id"]), "the same job and image");
    assert_eq!(again["status"], "succeeded", "nothing is processed again");
    let racing_images: std::collections::BTreeSet<&str> =
        racing.iter().map(|(_, body)| body["image_id"].as_str().expect("image id")).collect();
    assert_eq!(racing_images.len(), 1, "four concurrent uploads of the same bytes make one image: {racing:?}");
    assert_eq!(racing.iter().filter(|(status, _)| *status == 202).count(), 1, "{racing:?}");
    assert_eq!(other_status, 202, "bytes are never shared across tenants");
    assert_ne!(other["image_id"], first["image_id"]);
    assert_eq!(off_status, 202, "with deduplication off, the same bytes are a new image");
    assert_ne!(off["image_id"], first["image_id"]);
    assert_eq!(images_of(&app, acme).await.len(), 3, "PHOTO, astronaut, and PHOTO again with dedup off");
}

#[tokio::test]
async fn embedded_the_same_bytes_make_one_image_per_tenant() {
    let dir = TempDir::new().expect("temp dir");
    the_same_bytes_make_one_image_per_tenant(embedded(&dir)).await;
}

#[tokio::test]
async fn aws_the_same_bytes_make_one_image_per_tenant() {
    let dir = TempDir::new().expect("temp dir");
    let (settings, _aws) = aws(&dir).await;
    the_same_bytes_make_one_image_per_tenant(settings).await;
}
