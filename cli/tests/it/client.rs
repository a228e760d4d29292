//! The typed Rust client (`client/`) against the running service, on both
//! backend sets: every endpoint, its typed errors, and its retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use image_service_client::{
    Client, DlqReplay, Error, ErrorCode, ImageQuery, JobQuery, JobStatus, JobsReplay, Reprocess, Upload,
};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, base_settings, db, testdata};

fn image(name: &str) -> Bytes {
    std::fs::read(testdata(name)).expect("testdata").into()
}

fn client(app: &TestApp, key: &str) -> Client {
    Client::builder(&app.address).api_key(key).build().expect("client")
}

/// Everything a client does, in the order an integrator would: upload both
/// ways, wait, read, list, fetch a variant, run the operators' calls, and
/// delete; with the typed errors along the way.
///
/// `status_url`: whether uploads get a keyless status URL (the embedded
/// defaults keep a signing key of their own; on AWS it takes
/// `DELIVERY_SIGNING_KEY`, which these settings leave unset).
async fn every_endpoint_answers_in_its_documented_types(app: TestApp, status_url: bool) {
    // Arrange
    let user = client(&app, &app.client_key);
    let admin = client(&app, &app.admin_key);
    let options = Upload {
        external_id: Some("dice-1".into()),
        metadata: Some(serde_json::json!({ "album": "games" })),
        idempotency_key: Some(Uuid::new_v4().to_string()),
    };

    // Act: health, then one upload through the API (twice, with one key) and one presigned.
    user.healthz().await.expect("healthz");
    let ready = user.readyz().await.expect("readyz");
    let direct = user.upload(image("dice_rgba.png"), "image/png", &options).await.expect("direct upload");
    let again = user.upload(image("dice_rgba.png"), "image/png", &options).await.expect("replayed upload");
    let ticket =
        user.upload_presigned(image("kleiber.jpg"), "image/jpeg", &Upload::default()).await.expect("presigned upload");
    app.worker.drain().await.expect("worker drains the queue");
    let done = user.wait(direct.job.id, Duration::from_secs(30)).await.expect("direct job ends");
    let presigned = user.wait(ticket.job.id, Duration::from_secs(30)).await.expect("presigned job ends");

    // Assert: the uploads.
    assert_eq!(ready.status, "ready");
    assert!(ready.checks.database && ready.checks.queue && ready.checks.store, "{ready:?}");
    assert_eq!(direct.job.status, JobStatus::Queued);
    assert!(!direct.replayed && again.replayed, "the second send with the key is the first's answer");
    assert_eq!(again.job.id, direct.job.id);
    assert_eq!(ticket.job.status, JobStatus::AwaitingUpload);
    assert!(ticket.upload.is_some());
    assert_eq!((done.status, presigned.status), (JobStatus::Succeeded, JobStatus::Succeeded), "{done:?} {presigned:?}");

    // Act and assert: reading back.
    assert_eq!(user.job(done.id).await.expect("job").status, JobStatus::Succeeded);
    let succeeded =
        user.jobs(&JobQuery { status: Some(JobStatus::Succeeded), ..JobQuery::default() }).await.expect("jobs");
    assert_eq!(succeeded.jobs.len(), 2, "{succeeded:?}");
    let first_page = user.jobs(&JobQuery { limit: Some(1), ..JobQuery::default() }).await.expect("jobs");
    let cursor = first_page.next_cursor.clone().expect("a full page has a next cursor");
    let second_page =
        user.jobs(&JobQuery { limit: Some(1), cursor: Some(cursor), ..JobQuery::default() }).await.expect("jobs");
    assert_ne!(first_page.jobs[0].id, second_page.jobs[0].id);
    let dice = user.image(done.image_id).await.expect("image");
    assert_eq!((dice.width, dice.height, dice.format.as_deref()), (Some(200), Some(150), Some("png")));
    assert_eq!(dice.metadata, options.metadata);
    assert_eq!(dice.variants.len(), 3);
    assert!(dice.placeholder.is_some());
    let by_external_id =
        user.images(&ImageQuery { external_id: Some("dice-1".into()), ..ImageQuery::default() }).await.expect("images");
    assert_eq!(by_external_id.images.iter().map(|i| i.id).collect::<Vec<_>>(), vec![dice.id]);
    assert_eq!(user.images(&ImageQuery::default()).await.expect("images").images.len(), 2);
    let thumb = user.variant(dice.id, "thumb").await.expect("variant bytes");
    assert_eq!(thumb.len() as i64, dice.variant("thumb").expect("thumb").bytes);
    assert_eq!(&thumb[8..12], b"WEBP");
    assert_eq!(ticket.status_url.is_some(), status_url);
    if let Some(url) = ticket.status_url.as_deref() {
        let status = user.status(url).await.expect("status page");
        assert_eq!(status.job.status, JobStatus::Succeeded);
        assert_eq!(status.image.map(|i| i.id), Some(presigned.image_id));
    }

    // Act and assert: the operators' calls, as dry runs.
    let replayed =
        admin.replay_jobs(&JobsReplay { dry_run: true, ..JobsReplay::default() }).await.expect("replay jobs");
    assert!(replayed.dry_run);
    let reprocess = Reprocess { preset: "thumb".into(), dry_run: true, ..Reprocess::default() };
    let reprocessed = admin.reprocess(&reprocess).await.expect("reprocess");
    assert!(reprocessed.counts.values().sum::<u64>() > 0, "{reprocessed:?}");
    let dlq = admin.replay_dlq(&DlqReplay { dry_run: true, ..DlqReplay::default() }).await.expect("replay dlq");
    assert!(dlq.dry_run);

    // Act and assert: typed errors.
    let forbidden =
        user.replay_jobs(&JobsReplay { dry_run: true, ..JobsReplay::default() }).await.expect_err("not admin");
    assert_eq!(forbidden.code(), Some(&ErrorCode::Forbidden));
    let missing = user.job(Uuid::now_v7()).await.expect_err("no such job");
    assert_eq!(missing.code(), Some(&ErrorCode::NotFound));
    let not_an_image =
        user.upload(Bytes::from_static(b"hello"), "text/plain", &Upload::default()).await.expect_err("415");
    assert_eq!(not_an_image.code(), Some(&ErrorCode::UnsupportedMediaType));
    let taken = user
        .upload(
            image("astronaut.png"),
            "image/png",
            &Upload { external_id: Some("dice-1".into()), ..Upload::default() },
        )
        .await;
    assert_eq!(taken.expect_err("external id taken").code(), Some(&ErrorCode::ExternalIdTaken));
    let stranger = client(&app, "isk_not-a-key").image(dice.id).await.expect_err("bad key");
    assert_eq!(stranger.problem().map(|p| (p.status, p.code.clone())), Some((401, ErrorCode::Unauthorized)));

    // Act and assert: deletion.
    user.delete_image(dice.id).await.expect("delete");
    let gone = user.image(dice.id).await.expect_err("deleted");
    assert_eq!(gone.code(), Some(&ErrorCode::NotFound));
}

#[tokio::test]
async fn embedded_every_endpoint_answers_in_its_documented_types() {
    let dir = TempDir::new().expect("temp dir");
    let app = TestApp::spawn(&base_settings(dir.path(), db::sqlite(&dir))).await;
    every_endpoint_answers_in_its_documented_types(app, true).await;
}

#[tokio::test]
async fn aws_every_endpoint_answers_in_its_documented_types() {
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    aws.notify_uploads().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    let app = TestApp::spawn(&settings).await;
    every_endpoint_answers_in_its_documented_types(app, false).await;
}

/// A server that answers each request with the next of `answers`
/// (status, Retry-After), then 200 with a job; it records each request's
/// Idempotency-Key.
async fn scripted(answers: Vec<(u16, Option<u64>)>) -> (String, Arc<std::sync::Mutex<Vec<Option<String>>>>) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let served = Arc::new(AtomicUsize::new(0));
    let (seen, answers) = (keys.clone(), Arc::new(answers));
    let handler = move |headers: HeaderMap| {
        let (seen, served, answers) = (seen.clone(), served.clone(), answers.clone());
        async move {
            let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
            seen.lock().expect("lock").push(key);
            match answers.get(served.fetch_add(1, Ordering::SeqCst)) {
                Some((status, retry_after)) => {
                    let status = StatusCode::from_u16(*status).expect("status");
                    let code = if status.as_u16() == 429 { "rate-limited" } else { "service-unavailable" };
                    let body = serde_json::json!({ "type": "x", "title": "t", "status": status.as_u16(), "code": code, "detail": "d" });
                    let mut response = (status, axum::Json(body)).into_response();
                    if let Some(secs) = retry_after {
                        response.headers_mut().insert("retry-after", (*secs).into());
                    }
                    response
                }
                None => {
                    let now = chrono::Utc::now();
                    let job = serde_json::json!({
                        "id": Uuid::nil(), "image_id": Uuid::nil(), "status": "queued", "attempts": 0, "error": null,
                        "created_at": now, "updated_at": now, "finished_at": null,
                        "links": { "self": "/v1/jobs/x", "image": "/v1/images/x" },
                    });
                    (StatusCode::ACCEPTED, axum::Json(job)).into_response()
                }
            }
        }
    };
    let router = axum::Router::new().route("/v1/images", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, keys)
}

#[tokio::test]
async fn a_throttled_or_unavailable_post_is_retried_after_retry_after_with_the_same_idempotency_key() {
    // Arrange: a 503 asking for 1 s, then a 429 asking for 1 s, then success.
    let (address, keys) = scripted(vec![(503, Some(1)), (429, Some(1))]).await;
    let client = Client::builder(&address).min_delay(Duration::from_millis(10)).build().expect("client");

    // Act
    let started = std::time::Instant::now();
    let accepted = client.upload(Bytes::from_static(b"x"), "image/png", &Upload::default()).await;

    // Assert
    assert!(accepted.is_ok(), "{accepted:?}");
    assert!(started.elapsed() >= Duration::from_secs(2), "each Retry-After was waited for: {:?}", started.elapsed());
    let keys = keys.lock().expect("lock").clone();
    assert_eq!(keys.len(), 3);
    assert!(keys[0].is_some() && keys.iter().all(|k| *k == keys[0]), "one key for every attempt: {keys:?}");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_client_waits_returns_the_error_at_once() {
    // Arrange: a daily quota's Retry-After.
    let (address, keys) = scripted(vec![(429, Some(86_400))]).await;
    let client = Client::builder(&address).build().expect("client");

    // Act
    let refused = client.upload(Bytes::from_static(b"x"), "image/png", &Upload::default()).await.expect_err("429");

    // Assert
    let problem = refused.problem().expect("a problem");
    assert_eq!((problem.status, problem.retry_after), (429, Some(Duration::from_secs(86_400))));
    assert_eq!(keys.lock().expect("lock").len(), 1, "not retried");
    assert!(matches!(refused, Error::Api(_)));
}
