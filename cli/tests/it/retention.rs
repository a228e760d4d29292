//! What the service forgets on its own, on both backend sets, with the
//! clock moved by hand: originals past their retention (variants stay), and
//! variants of superseded preset versions once their replacements have
//! outlived the grace period.

use std::collections::BTreeSet;

use chrono::{TimeDelta, Utc};
use entities::prelude::{Images, Tenants, Variants};
use entities::{tenants::DEFAULT_TENANT, variants};
use pipeline::Settings;
use pipeline::jobs::JobFilter;
use pipeline::replay::{Operator, Silent};
use pipeline::retention::{self, RETENTION_TAG};
use pipeline::store::StoreError;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, base_settings, db};

async fn embedded(dir: &TempDir) -> (Settings, Option<AwsFixture>) {
    (base_settings(dir.path(), db::sqlite(dir)), None)
}

async fn aws(dir: &TempDir) -> (Settings, Option<AwsFixture>) {
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    (settings, Some(aws))
}

async fn bytes_stored(app: &TestApp) -> i64 {
    Tenants::find_by_id(DEFAULT_TENANT).one(&app.backends.db).await.expect("query").expect("tenant").bytes_stored
}

/// Uploads a photo and processes it; returns its image id.
async fn processed_image(app: &TestApp) -> Uuid {
    let job = app.accepted(app.upload_raw("kleiber.jpg", "image/jpeg").await).await;
    app.worker.drain().await.expect("drain");
    let body = app.get_json(&format!("/v1/jobs/{job}"), 200).await;
    assert_eq!(body["status"], "succeeded");
    body["image_id"].as_str().and_then(|s| s.parse().ok()).expect("image id")
}

async fn originals_go_after_their_retention_and_variants_stay((settings, aws): (Settings, Option<AwsFixture>)) {
    // Arrange: the default tenant keeps originals 30 days; one image processed.
    let app = TestApp::spawn(&settings).await;
    pipeline::tenants::set_retention(&app.backends.db, DEFAULT_TENANT, Some(30)).await.expect("set retention");
    let image_id = processed_image(&app).await;
    let image = Images::find_by_id(image_id).one(&app.backends.db).await.expect("query").expect("image");
    let original = pipeline::keys::original(image_id);
    let variants = Variants::find().filter(variants::Column::ImageId.eq(image_id)).all(&app.backends.db).await;
    let variants = variants.expect("variants");
    let stored_before = bytes_stored(&app).await;
    // On S3, what the bucket's lifecycle rule expires it by (local disk has no tags).
    let tagged: Option<Vec<(String, String)>> = match &aws {
        Some(aws) => {
            let tags = aws.s3.get_object_tagging().bucket(&aws.bucket).key(&original).send().await.expect("tags");
            Some(tags.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect())
        }
        None => None,
    };
    let now = Utc::now();

    // Act
    let too_early = retention::sweep_originals(&app.backends, now + TimeDelta::days(29), 100).await.expect("sweep");
    let on_time = retention::sweep_originals(&app.backends, now + TimeDelta::days(31), 100).await.expect("sweep");
    let again = retention::sweep_originals(&app.backends, now + TimeDelta::days(32), 100).await.expect("sweep");

    // Assert
    assert_eq!(image.original_expires_at, Some(image.created_at + TimeDelta::days(30)));
    if let Some(tagged) = tagged {
        assert_eq!(tagged, vec![(RETENTION_TAG.to_owned(), "30".to_owned())]);
    }
    assert_eq!((too_early, on_time, again), (0, 1, 0), "removed once, and not before it expired");
    assert!(matches!(app.backends.store.get(&original).await, Err(StoreError::NotFound(_))), "the original is gone");
    for variant in &variants {
        app.backends.store.get(&variant.object_key).await.expect("every variant stays");
    }
    let view = app.get_json(&format!("/v1/images/{image_id}"), 200).await;
    assert!(view["original_removed_at"].is_string(), "{view}");
    assert_eq!(view["variants"].as_array().map(Vec::len), Some(variants.len()));
    assert_eq!(stored_before - bytes_stored(&app).await, image.bytes, "the original no longer counts as stored");
    let operator = Operator::new(app.backends.clone(), settings.presets().expect("presets"), "test".into());
    let replay = operator.replay_jobs(&JobFilter::default(), None, false, &Silent).await.expect("replay");
    assert_eq!(replay.counts.get("skipped_original_removed"), Some(&1), "{replay:?}");
    let reprocess = operator.reprocess("thumb", false, false, 100, None, false, &Silent).await.expect("reprocess");
    assert!(reprocess.counts.is_empty(), "nothing to make it from: {reprocess:?}");
    let deleted = app.http.delete(format!("{}/v1/images/{image_id}", app.address)).send().await.expect("delete");
    assert_eq!(deleted.status(), 204);
    assert_eq!(bytes_stored(&app).await, 0, "deleting it does not take the original's bytes off twice");
}

#[tokio::test]
async fn embedded_originals_go_after_their_retention_and_variants_stay() {
    let dir = TempDir::new().expect("temp dir");
    originals_go_after_their_retention_and_variants_stay(embedded(&dir).await).await;
}

#[tokio::test]
async fn aws_originals_go_after_their_retention_and_variants_stay() {
    let dir = TempDir::new().expect("temp dir");
    originals_go_after_their_retention_and_variants_stay(aws(&dir).await).await;
}

async fn superseded_variants_go_once_their_replacements_are_old_enough(
    (settings, _aws): (Settings, Option<AwsFixture>),
) {
    // Arrange: an image processed, then the thumb preset changes and it is made again.
    let app = TestApp::spawn(&settings).await;
    let image_id = processed_image(&app).await;
    let mut changed = settings.clone();
    changed.presets = Some(
        r#"[{"name":"large","max_edge":2048,"format":"webp","quality":80},
            {"name":"medium","max_edge":1024,"format":"webp","quality":80},
            {"name":"thumb","max_edge":256,"format":"webp","quality":55}]"#
            .into(),
    );
    let presets = changed.presets().expect("presets");
    let current: Vec<(String, String)> = presets.iter().map(|p| (p.name.clone(), p.version())).collect();
    let worker = worker::Worker::new(app.backends.clone(), &changed).await.expect("worker");
    let operator = Operator::new(app.backends.clone(), presets, "test".into());
    operator.reprocess("thumb", true, false, 100, None, false, &Silent).await.expect("reprocess");
    worker.drain().await.expect("drain");
    let before = Variants::find().filter(variants::Column::ImageId.eq(image_id)).all(&app.backends.db).await;
    let before = before.expect("variants");
    let grace = TimeDelta::hours(24);
    let now = Utc::now();

    // Act
    let within_grace = retention::sweep_stale_variants(&app.backends, &current, grace, now, 100).await.expect("sweep");
    let after_grace = retention::sweep_stale_variants(&app.backends, &current, grace, now + TimeDelta::hours(25), 100)
        .await
        .expect("sweep");

    // Assert
    let after = Variants::find().filter(variants::Column::ImageId.eq(image_id)).all(&app.backends.db).await;
    let after = after.expect("variants");
    assert_eq!(before.len(), 4, "two thumbs while the old one is in its grace period");
    assert_eq!((within_grace, after_grace), (0, 1));
    let kept: BTreeSet<(String, String)> = after.iter().map(|v| (v.preset.clone(), v.preset_version.clone())).collect();
    assert_eq!(kept, current.iter().cloned().collect(), "exactly the current version of each preset stays");
    for gone in before.iter().filter(|v| !after.contains(v)) {
        let read = app.backends.store.get(&gone.object_key).await;
        assert!(matches!(read, Err(StoreError::NotFound(_))), "{} is still stored", gone.object_key);
    }
    for kept in &after {
        app.backends.store.get(&kept.object_key).await.expect("a current variant stays stored");
    }
}

#[tokio::test]
async fn embedded_superseded_variants_go_once_their_replacements_are_old_enough() {
    let dir = TempDir::new().expect("temp dir");
    superseded_variants_go_once_their_replacements_are_old_enough(embedded(&dir).await).await;
}

#[tokio::test]
async fn aws_superseded_variants_go_once_their_replacements_are_old_enough() {
    let dir = TempDir::new().expect("temp dir");
    superseded_variants_go_once_their_replacements_are_old_enough(aws(&dir).await).await;
}

#[tokio::test]
async fn a_retention_the_bucket_does_not_cover_is_refused_at_start() {
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.originals_retention_choices = vec![30, 90];
    settings.originals_retention_days = 7;
    let refused = pipeline::Backends::connect(&settings).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().is_some_and(|e| e.contains("ORIGINALS_RETENTION_DAYS")), "{refused:?}");
}
