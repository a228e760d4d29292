//! Operators' replays: DLQ redrive, re-enqueue by filter, preset backfill,
//! their dry runs, crashes halfway, and the admin endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use entities::jobs::{self, JobStatus};
use entities::prelude::{JobAudit, Jobs, QueueMessages, Variants};
use entities::variants;
use pipeline::Settings;
use pipeline::event::EventKind;
use pipeline::jobs::JobFilter;
use pipeline::replay::{DlqMode, Operator, Silent};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::faults::{FlakyQueue, FlakyStore};
use crate::support::{TestApp, WebhookSink, base_settings, db};

fn operator(app: &TestApp, settings: &Settings) -> Operator {
    Operator::new(app.backends.clone(), settings.presets().expect("presets"), settings.app_env.clone())
}

async fn status_counts(app: &TestApp) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for job in Jobs::find().all(&app.backends.db).await.expect("jobs") {
        *counts.entry(job.status.as_str().to_owned()).or_default() += 1;
    }
    counts
}

/// Uploads `n` images and lets a worker whose store cannot read run them
/// until every job is dead and every message is in the dead-letter queue.
async fn force_into_dlq(app: &TestApp, settings: &Settings, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await);
    }
    let mut broken = app.backends.clone();
    broken.store = Arc::new(FlakyStore::new(broken.store.clone(), 0, true));
    let worker = worker::Worker::new(broken, settings).await.expect("worker");
    let dlq = app.backends.dead_letters.clone().expect("a dead-letter queue");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while dlq.approximate_depth().await.expect("depth") < n as u64 {
        assert!(tokio::time::Instant::now() < deadline, "jobs never reached the DLQ: {:?}", status_counts(app).await);
        worker.run_once().await.expect("receive");
    }
    assert_eq!(status_counts(app).await.get("dead"), Some(&(n as u64)));
    ids
}

#[tokio::test]
async fn fifty_dead_lettered_jobs_come_back_with_replay_dlq_and_all_succeed() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    settings.retry_base_delay_ms = 10;
    settings.worker_concurrency = Some(10);
    let app = TestApp::spawn(&settings).await;
    let ids = force_into_dlq(&app, &settings, 50).await;
    aws.drain_queue(&aws.events_queue_url).await;

    // Act: the emulator has no working StartMessageMoveTask, so auto mode copies.
    let summary = operator(&app, &settings).replay_dlq(DlqMode::Auto, None, false, &Silent).await.expect("replay dlq");
    app.worker.drain().await.expect("drain");

    // Assert
    assert_eq!(summary.counts.get("moved"), Some(&50), "{summary:?}");
    assert_eq!(aws.depth(&aws.dlq_url).await, 0);
    assert_eq!(status_counts(&app).await, BTreeMap::from([("succeeded".to_owned(), 50)]));
    let audits = JobAudit::find().all(&app.backends.db).await.expect("audit");
    assert_eq!(audits.len(), 50, "one audit entry per requeued job");
    assert!(audits.iter().all(|a| a.action == "redriven" && ids.contains(&a.job_id)));
    let events = aws.drain_queue(&aws.events_queue_url).await;
    let kinds: Vec<&str> = events.iter().filter_map(|(_, kind)| kind.as_deref()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "image.processed").count(), 50);
    assert_eq!(kinds.iter().filter(|k| **k == "replay.summary").count(), 1);
}

#[tokio::test]
async fn a_mover_that_crashes_halfway_loses_nothing() {
    // Arrange: 20 dead-lettered jobs on the embedded backends.
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.retry_base_delay_ms = 10;
    let app = TestApp::spawn(&settings).await;
    let ids = force_into_dlq(&app, &settings, 20).await;

    // Act: the mover crashes after its first batch, between sending the second and deleting it.
    let mut crashing = app.backends.clone();
    let dlq = crashing.dead_letters.clone().expect("dlq");
    crashing.dead_letters = Some(Arc::new(FlakyQueue::new(dlq, u32::MAX, 1)));
    let presets = settings.presets().expect("presets");
    let crashed = tokio::spawn(async move {
        Operator::new(crashing, presets, "test".into()).replay_dlq(DlqMode::Copy, None, false, &Silent).await
    })
    .await;
    assert!(crashed.is_err(), "the mover was meant to crash");
    let db = &app.backends.db;
    let in_dlq = QueueMessages::find()
        .filter(entities::queue_messages::Column::Queue.eq("jobs-dlq"))
        .count(db)
        .await
        .expect("count");
    let in_bulk_lane = QueueMessages::find()
        .filter(entities::queue_messages::Column::Queue.eq("jobs-bulk"))
        .count(db)
        .await
        .expect("count");

    // Assert: every message is somewhere (a crash between send and delete leaves a copy in both).
    assert_eq!(in_bulk_lane, 20, "both batches were sent to the bulk lane before the crash");
    assert_eq!(in_dlq, 10, "only the first batch was deleted from the DLQ");

    // The worker finishes every job exactly once; the copies still in the
    // DLQ belong to finished jobs, so a later redrive of them changes nothing.
    app.worker.drain().await.expect("drain");
    assert_eq!(status_counts(&app).await, BTreeMap::from([("succeeded".to_owned(), 20)]));
    for id in ids {
        let variants = Variants::find()
            .filter(
                variants::Column::ImageId.eq(Jobs::find_by_id(id).one(db).await.expect("job").expect("row").image_id),
            )
            .count(db)
            .await
            .expect("count");
        assert_eq!(variants, 3);
    }
}

#[tokio::test]
async fn replay_jobs_selects_exactly_its_filters_and_is_idempotent() {
    // Arrange: one success and two failures with different codes.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;
    let not_image = app.ingest("notimage.jpg").await;
    let truncated = app.accepted(app.upload_raw("truncated_prog.jpg", "image/jpeg").await).await;
    app.worker.drain().await.expect("drain");
    let operator = operator(&app, &settings);
    let by_code = JobFilter { error_code: Some("unsupported-format".into()), ..JobFilter::default() };
    let failed = JobFilter { statuses: vec![JobStatus::Failed], ..JobFilter::default() };

    // Act
    let dry = operator.replay_jobs(&failed, None, true, &Silent).await.expect("dry run");
    let jobs_after_dry_run = Jobs::find().count(&app.backends.db).await.expect("count");
    let first = operator.replay_jobs(&by_code, None, false, &Silent).await.expect("replay");
    let again = operator.replay_jobs(&by_code, None, false, &Silent).await.expect("replay again");
    let future = JobFilter { since: Some(chrono::Utc::now() + chrono::TimeDelta::hours(1)), ..failed.clone() };
    let none = operator.replay_jobs(&future, None, false, &Silent).await.expect("replay none");

    // Assert
    assert_eq!(dry.counts.get("would_enqueue"), Some(&2), "{dry:?}");
    assert_eq!(jobs_after_dry_run, 3, "a dry run changes nothing");
    assert_eq!(first.counts.get("enqueued"), Some(&1), "{first:?}");
    assert_eq!(again.counts.get("enqueued"), None, "{again:?}");
    assert_eq!(again.counts.get("skipped_pending"), Some(&1));
    assert!(none.counts.is_empty(), "{none:?}");
    let replays = Jobs::find().filter(jobs::Column::ReplayOf.is_not_null()).all(&app.backends.db).await.expect("jobs");
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0].replay_of, Some(not_image));
    assert_ne!(replays[0].replay_of, Some(truncated));

    // Once the replay has run (and failed again, it is still not an image), a new replay may start.
    app.worker.drain().await.expect("drain");
    let replayed = Jobs::find_by_id(replays[0].id).one(&app.backends.db).await.expect("job").expect("row");
    assert_eq!(replayed.error_code.as_deref(), Some("unsupported-format"));
    let later = operator.replay_jobs(&by_code, None, false, &Silent).await.expect("replay later");
    assert_eq!(later.counts.get("enqueued"), Some(&2), "the original and its failed replay: {later:?}");
}

#[tokio::test]
async fn an_upload_during_a_reprocess_is_served_before_the_reprocess_backlog() {
    // Arrange: three processed images, then a reprocess of all of them.
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.worker_concurrency = Some(2);
    let app = TestApp::spawn(&settings).await;
    for file in ["dice_rgba.png", "astronaut.png", "orient3.jpg"] {
        let kind = if file.ends_with(".png") { "image/png" } else { "image/jpeg" };
        app.accepted(app.upload_raw(file, kind).await).await;
    }
    app.worker.drain().await.expect("drain");
    let queued =
        operator(&app, &settings).reprocess("thumb", false, false, 100, None, false, &Silent).await.expect("reprocess");
    assert_eq!(queued.counts.get("enqueued"), Some(&3), "{queued:?}");
    let bulk = app.backends.bulk.clone().expect("the table queue has a bulk lane");
    assert_eq!(bulk.approximate_depth().await.expect("depth"), 3, "the reprocess went to the bulk lane");
    assert_eq!(app.backends.queue.approximate_depth().await.expect("depth"), 0, "and none of it to the live one");

    // Act: a new upload arrives behind the reprocess, and the worker takes one round.
    let upload = app.accepted(app.upload_raw("orient5.jpg", "image/jpeg").await).await;
    app.worker.run_once().await.expect("one round");

    // Assert: the upload is done while most of the reprocess still waits;
    // then the reprocess finishes too.
    let job = Jobs::find_by_id(upload).one(&app.backends.db).await.expect("job").expect("row");
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let waiting = bulk.approximate_depth().await.expect("depth");
    assert!(waiting >= 2, "one round took at most one bulk job");

    // `--wait` follows the workers through the rest of the bulk lane.
    let progress = Followed::default();
    let op = operator(&app, &settings);
    let (followed, drained) = tokio::join!(op.follow_bulk(Duration::from_millis(10), &progress), async {
        progress.started.notified().await;
        app.worker.drain().await
    });
    followed.expect("follow");
    drained.expect("drain");
    assert_eq!(bulk.approximate_depth().await.expect("depth"), 0);
    assert_eq!(*progress.total.lock().expect("lock"), waiting, "the total was the lane's depth");
    assert_eq!(*progress.done.lock().expect("lock"), waiting, "and all of it was reported done");
    assert_eq!(status_counts(&app).await, BTreeMap::from([("succeeded".to_owned(), 7)]));
}

/// Progress that remembers what it was told, and says when it first was.
#[derive(Default)]
struct Followed {
    started: tokio::sync::Notify,
    total: std::sync::Mutex<u64>,
    done: std::sync::Mutex<u64>,
}

impl pipeline::replay::Progress for Followed {
    fn total(&self, total: u64) {
        *self.total.lock().expect("lock") = total;
        self.started.notify_one();
    }

    fn advance(&self, n: u64) {
        *self.done.lock().expect("lock") += n;
    }
}

#[tokio::test]
async fn reprocess_regenerates_exactly_the_stale_variants_and_resumes_after_a_crash() {
    // Arrange: three processed images, then the thumb preset changes.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    for file in ["dice_rgba.png", "astronaut.png", "orient3.jpg"] {
        let kind = if file.ends_with(".png") { "image/png" } else { "image/jpeg" };
        app.accepted(app.upload_raw(file, kind).await).await;
    }
    app.worker.drain().await.expect("drain");
    let before = Variants::find().all(&app.backends.db).await.expect("variants");
    let mut changed = settings.clone();
    changed.presets = Some(
        r#"[{"name":"large","max_edge":2048,"format":"webp","quality":80},
            {"name":"medium","max_edge":1024,"format":"webp","quality":80},
            {"name":"thumb","max_edge":256,"format":"webp","quality":60}]"#
            .into(),
    );
    let new_thumb = changed.presets().expect("presets")[2].version();
    let worker = worker::Worker::new(app.backends.clone(), &changed).await.expect("worker");
    let presets = changed.presets().expect("presets");

    // Act 1: a dry run, then a run that crashes after enqueuing one image.
    let dry = Operator::new(app.backends.clone(), presets.clone(), "test".into())
        .reprocess("thumb", true, false, 1, None, true, &Silent)
        .await
        .expect("dry run");
    let mut crashing = app.backends.clone();
    crashing.bulk = Some(Arc::new(FlakyQueue::new(crashing.bulk_queue().clone(), 1, u32::MAX)));
    let crashed = Operator::new(crashing, presets.clone(), "test".into())
        .reprocess("thumb", true, false, 1, None, false, &Silent)
        .await;
    let resumed = Operator::new(app.backends.clone(), presets.clone(), "test".into())
        .reprocess("thumb", true, true, 1, None, false, &Silent)
        .await
        .expect("resumed run");
    worker.drain().await.expect("drain");
    let fresh = Operator::new(app.backends.clone(), presets.clone(), "test".into())
        .reprocess("medium", true, false, 500, None, false, &Silent)
        .await
        .expect("medium is fresh");

    // Assert
    assert_eq!(dry.counts.get("would_enqueue"), Some(&3), "{dry:?}");
    assert!(crashed.is_err(), "the second enqueue failed");
    assert_eq!(
        resumed.counts.get("enqueued"),
        Some(&2),
        "resumed after the first image, the cursor the crash saved: {resumed:?}"
    );
    assert!(fresh.counts.is_empty(), "nothing stale for medium: {fresh:?}");
    let after = Variants::find().all(&app.backends.db).await.expect("variants");
    let stale_thumbs: Vec<_> = after.iter().filter(|v| v.preset == "thumb" && v.preset_version != new_thumb).collect();
    let new_thumbs: Vec<_> = after.iter().filter(|v| v.preset == "thumb" && v.preset_version == new_thumb).collect();
    // The image whose enqueue failed was ended `failed` (enqueue-failed) rather than left waiting.
    let enqueue_failed =
        Jobs::find().filter(jobs::Column::ErrorCode.eq("enqueue-failed")).count(&app.backends.db).await.expect("count");
    assert_eq!(enqueue_failed, 1);
    assert_eq!(new_thumbs.len(), 3, "every image got the new thumb, none twice");
    assert_eq!(stale_thumbs.len(), 3, "old thumbs stay until cleaned up");
    for old in before.iter().filter(|v| v.preset != "thumb") {
        assert!(after.contains(old), "{} {} was rewritten", old.image_id, old.preset);
    }
}

#[tokio::test]
async fn admin_endpoints_need_an_admin_key_and_dry_runs_change_nothing() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let mut sink = WebhookSink::start().await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.admin_api_key = Some("s3cret-admin-key".into());
    settings.webhook_url = Some(sink.url.clone().into());
    let app = TestApp::spawn(&settings).await;
    app.ingest("notimage.jpg").await;
    app.worker.drain().await.expect("drain");
    sink.take_exactly(1).await;
    let url = format!("{}/v1/admin/replay/jobs", app.address);
    let body = serde_json::json!({ "statuses": ["failed"], "dry_run": true });

    // Act
    let anonymous = reqwest::Client::new().post(&url).json(&body).send().await.expect("post");
    let wrong = app.http.post(&url).bearer_auth("guess").json(&body).send().await.expect("post");
    let client = app.http.post(&url).json(&body).send().await.expect("post");
    let dry = app.http.post(&url).bearer_auth("s3cret-admin-key").json(&body).send().await.expect("post");
    let unknown = app
        .http
        .post(format!("{}/v1/admin/reprocess", app.address))
        .bearer_auth("s3cret-admin-key")
        .json(&serde_json::json!({ "preset": "poster" }))
        .send()
        .await
        .expect("post");
    // Found by schemathesis: a page size past i64 was a 500.
    let huge_page = app
        .http
        .post(format!("{}/v1/admin/reprocess", app.address))
        .bearer_auth("s3cret-admin-key")
        .json(&serde_json::json!({ "preset": "thumb", "page_size": 9_223_372_036_854_775_808_u64 }))
        .send()
        .await
        .expect("post");

    // Assert
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(wrong.status(), 401, "an unknown key");
    assert_eq!(client.status(), 403, "a client key on an admin endpoint");
    assert_eq!(unknown.status(), 422);
    assert_eq!(huge_page.status(), 400, "a page size past the bound is the caller's error");
    assert_eq!(dry.status(), 200);
    let summary: serde_json::Value = dry.json().await.expect("json");
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["counts"]["would_enqueue"], 1);
    assert_eq!(Jobs::find().count(&app.backends.db).await.expect("count"), 1, "the dry run enqueued nothing");
    let events = sink.take_exactly(1).await;
    assert_eq!(events[0].event, EventKind::ReplaySummary);
    assert_eq!(events[0].summary.as_ref().map(|s| s.operation.as_str()), Some("replay jobs"));
}

#[tokio::test]
async fn the_cli_runs_a_dry_replay_and_prints_its_summary() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    app.ingest("notimage.jpg").await;
    app.accepted(app.upload_raw("truncated_prog.jpg", "image/jpeg").await).await;
    app.worker.drain().await.expect("drain");

    // Act
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_image-service"))
        .args(["replay", "jobs", "--status", "failed", "--dry-run"])
        .env("DATABASE_URL", settings.database_url())
        .env("DATA_DIR", dir.path())
        .output()
        .await
        .expect("cli runs");

    // Assert
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("replay jobs (dry run, nothing changed): would_enqueue=2"), "{stdout}");
    assert_eq!(Jobs::find().count(&app.backends.db).await.expect("count"), 2);
}
