//! Worker reliability on the AWS path (emulator + Postgres): duplicates,
//! crashes, transient and permanent faults, the dead-letter queue, SIGTERM,
//! and direct S3 uploads. Subprocess tests run the real binary.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use entities::jobs;
use pipeline::Settings;
use pipeline::event::EventKind;
use pipeline::message::JobMessage;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::faults::FlakyStore;
use crate::support::{TestApp, base_settings, db};

struct Aws {
    app: TestApp,
    aws: AwsFixture,
    settings: Settings,
    _dir: TempDir,
}

async fn aws(configure: impl FnOnce(&mut Settings)) -> Aws {
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    settings.retry_base_delay_ms = 100;
    configure(&mut settings);
    let app = TestApp::spawn(&settings).await;
    Aws { app, aws, settings, _dir: dir }
}

async fn job(app: &TestApp, id: Uuid) -> serde_json::Value {
    app.get_json(&format!("/v1/jobs/{id}"), 200).await
}

/// Runs worker steps until the job reaches `status`, for at most 20 s.
async fn step_until(worker: &worker::Worker, app: &TestApp, id: Uuid, status: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        let current = job(app, id).await;
        if current["status"] == status {
            return current;
        }
        worker.run_once().await.expect("receive");
    }
    panic!("job {id} never reached {status}: {}", job(app, id).await);
}

/// Polls the API (no worker in this process) until the job reaches `status`.
async fn wait_for_status(app: &TestApp, id: Uuid, status: &str) {
    for _ in 0..1500 {
        if job(app, id).await["status"] == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never reached {status}");
}

async fn variant_objects(aws: &AwsFixture, image_id: &str) -> usize {
    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(&aws.bucket)
        .prefix(format!("variants/{image_id}/"))
        .send()
        .await
        .expect("list variants");
    listed.contents().len()
}

/// The real binary as a worker process, configured like `settings`.
fn spawn_worker_process(settings: &Settings) -> Child {
    spawn_worker_process_with(settings, &[])
}

fn spawn_worker_process_with(settings: &Settings, extra: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_image-service"));
    command
        .arg("worker")
        .env("DATABASE_URL", settings.database_url())
        .env("S3_BUCKET", settings.s3_bucket.clone().unwrap_or_default())
        .env("S3_KMS_KEY_ID", settings.s3_kms_key_id.clone().unwrap_or_default())
        .env("SQS_QUEUE_URL", settings.sqs_queue_url.clone().unwrap_or_default())
        .env("SNS_TOPIC_ARN", settings.sns_topic_arn.clone().unwrap_or_default())
        .env("AWS_ENDPOINT_URL", settings.aws_endpoint_url.clone().unwrap_or_default())
        .env("VISIBILITY_TIMEOUT_SECS", settings.visibility_timeout_secs.to_string())
        .env("QUEUE_WAIT_SECS", "1")
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("SHUTDOWN_DEADLINE_SECS", "30")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.spawn().expect("worker process starts")
}

#[tokio::test]
async fn a_message_delivered_twice_makes_one_set_of_objects_rows_and_events() {
    // Arrange
    let Aws { app, aws, .. } = aws(|_| {}).await;
    let id = app.accepted(app.upload_raw("orient3.jpg", "image/jpeg").await).await;
    let image_id: Uuid = job(&app, id).await["image_id"].as_str().and_then(|s| s.parse().ok()).expect("image id");
    let duplicate = JobMessage::new(id, image_id, pipeline::keys::original(image_id)).to_body();
    aws.sqs.send_message().queue_url(&aws.queue_url).message_body(duplicate).send().await.expect("resend");

    // Act
    let handled = app.worker.drain().await.expect("drain");

    // Assert
    assert_eq!(handled, 2, "both deliveries were received");
    assert_eq!(job(&app, id).await["status"], "succeeded");
    let image = app.get_json(&format!("/v1/images/{image_id}"), 200).await;
    assert_eq!(image["variants"].as_array().map(Vec::len), Some(3), "one row per preset");
    assert_eq!(variant_objects(&aws, &image_id.to_string()).await, 3, "one object per preset");
    let events = aws.take_events(1).await;
    assert_eq!(events[0].0.job_id, Some(id));
    assert_eq!(aws.depth(&aws.queue_url).await, 0);
}

#[tokio::test]
async fn a_job_whose_calls_hang_times_out_and_another_worker_finishes_it() {
    // Arrange: a worker whose store never answers a read (a silent
    // connection), with a one-second job deadline.
    let Aws { app, aws, settings, .. } = aws(|s| s.visibility_timeout_secs = 2).await;
    let mut hung = settings.clone();
    hung.job_deadline_secs = 1;
    let mut backends = app.backends.clone();
    let mut store = FlakyStore::new(backends.store.clone(), 0, false);
    store.read_delay = Duration::from_secs(3600);
    backends.store = Arc::new(store);
    let stuck = worker::Worker::new(backends, &hung).await.expect("worker");
    let id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;

    // Act
    let started = tokio::time::Instant::now();
    let received = tokio::time::timeout(Duration::from_secs(30), stuck.run_once()).await;
    let gave_up_after = started.elapsed();
    let done = step_until(&app.worker, &app, id, "succeeded").await;

    // Assert: the hung attempt ended at its deadline, was recorded as a
    // timeout, and the message came back for the healthy worker.
    assert_eq!(received.expect("the hung job ended").expect("receive"), 1);
    assert!(gave_up_after < Duration::from_secs(10), "ended after {gave_up_after:?}");
    assert!(stuck.metrics_text().contains("image_worker_jobs_total{outcome=\"retried\",code=\"job-timeout\"} 1"));
    assert_eq!(done["attempts"], 2, "the timed-out attempt and the one that finished: {done}");
    assert_eq!(aws.take_events(1).await.len(), 1);
}

#[tokio::test]
async fn transient_store_failures_are_retried_with_backoff_then_succeed() {
    // Arrange
    let Aws { app, aws, settings, .. } = aws(|_| {}).await;
    let mut backends = app.backends.clone();
    let flaky = Arc::new(FlakyStore::new(backends.store.clone(), 1, false));
    backends.store = flaky.clone();
    let worker = worker::Worker::new(backends, &settings).await.expect("worker");
    let id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;

    // Act
    let done = step_until(&worker, &app, id, "succeeded").await;

    // Assert
    assert_eq!(done["attempts"], 2, "failed once, retried once");
    assert!(done["error"].is_null(), "the retry's success clears the error: {done}");
    // dice_rgba.png is smaller than every preset, so the three presets
    // share one object: one failed write, then that one write again.
    assert_eq!(flaky.puts_attempted.load(std::sync::atomic::Ordering::SeqCst), 2, "one failed write, then one");
    let events = aws.take_events(1).await;
    assert_eq!(events[0].0.event, EventKind::ImageProcessed);
    assert_eq!(aws.depth(&aws.queue_url).await, 0);
}

#[tokio::test]
async fn a_message_that_keeps_failing_lands_in_the_dlq_and_its_job_is_dead() {
    // Arrange: the fixture's redrive policy allows 3 receives.
    let Aws { app, aws, settings, .. } = aws(|_| {}).await;
    let mut backends = app.backends.clone();
    backends.store = Arc::new(FlakyStore::new(backends.store.clone(), 0, true));
    let worker = worker::Worker::new(backends, &settings).await.expect("worker");
    let id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;

    // Act
    let dead = step_until(&worker, &app, id, "dead").await;
    // The queue moves the message at the next receive after the last allowed one.
    for _ in 0..50 {
        if aws.depth(&aws.dlq_url).await == 1 {
            break;
        }
        worker.run_once().await.expect("receive");
    }

    // Assert
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["error"]["code"], "store-unavailable");
    assert_eq!(aws.depth(&aws.dlq_url).await, 1, "the message is in the dead-letter queue");
    assert_eq!(aws.depth(&aws.queue_url).await, 0);
    let events = aws.take_events(1).await;
    assert_eq!(events[0].0.event, EventKind::ImageFailed);
    assert_eq!(events[0].0.status, "dead");
}

/// What an SDK or a database says when it fails: account and role ARNs,
/// host names, SQL. None of it may reach a client.
const INTERNAL_TEXT: &str = "service error: AccessDenied: User: arn:aws:sts::123456789012:assumed-role/\
     image-service-worker/4f1c is not authorized to perform: s3:GetObject (host: \
     image-service-media.s3.eu-west-1.amazonaws.com, request id 7B2C9A) after SELECT \"id\" FROM \"jobs\"";

fn assert_no_internal_text(what: &str, text: &str) {
    for leak in ["arn:aws", "amazonaws.com", "AccessDenied", "SELECT", "request id", "assumed-role"] {
        assert!(!text.contains(leak), "{what} holds internal text ({leak}): {text}");
    }
}

#[tokio::test]
async fn a_failed_jobs_error_and_event_hold_no_internal_text() {
    // Arrange: every read of the store fails as S3 would word a refusal.
    let Aws { app, aws, settings, .. } = aws(|_| {}).await;
    let mut backends = app.backends.clone();
    let mut store = FlakyStore::new(backends.store.clone(), 0, true);
    store.read_error = Some(INTERNAL_TEXT.to_owned());
    backends.store = Arc::new(store);
    let worker = worker::Worker::new(backends, &settings).await.expect("worker");
    let id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;

    // Act
    let dead = step_until(&worker, &app, id, "dead").await;

    // Assert: a stable code and a message written for the client, in the
    // job the API shows and in the event; the cause stays in the logs.
    assert_eq!(dead["error"]["code"], "store-unavailable");
    assert!(dead["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{dead}");
    assert_no_internal_text("the job", &dead.to_string());
    let listed = app.get_json("/v1/jobs?status=dead", 200).await;
    assert_no_internal_text("the job list", &listed.to_string());
    let events = aws.take_events(1).await;
    assert_eq!(events[0].0.event, EventKind::ImageFailed);
    assert_no_internal_text("the event", &serde_json::to_string(&events[0].0).expect("json"));
    assert_no_internal_text("the event as sent", &events[0].1);
}

#[tokio::test]
async fn a_queue_that_refuses_a_send_leaks_nothing_to_the_client_the_job_or_its_event() {
    use crate::support::faults::FlakyQueue;
    // Arrange: a second API on the same database and buckets whose queue
    // refuses every send as SQS would word a refusal; a webhook hears events.
    let mut sink = crate::support::WebhookSink::start().await;
    let Aws { app, settings, .. } = aws(|s| s.webhook_url = Some(sink.url.clone().into())).await;
    let mut broken = app.backends.clone();
    let mut queue = FlakyQueue::new(broken.queue.clone(), 0, u32::MAX);
    queue.send_error = Some(INTERNAL_TEXT.to_owned());
    broken.queue = Arc::new(queue);
    let address = TestApp::serve_api(&settings, broken).await;

    // Act
    let refused = app
        .http
        .post(format!("{address}/v1/images"))
        .header("content-type", "image/png")
        .body(std::fs::read(crate::support::testdata("dice_rgba.png")).expect("testdata"))
        .send()
        .await
        .expect("post");

    // Assert: a 503 problem, a failed job and its event, none with the SDK's words.
    assert_eq!(refused.status(), 503);
    assert_no_internal_text("the problem", &refused.text().await.expect("body"));
    let failed = app.get_json("/v1/jobs?status=failed", 200).await;
    assert_eq!(failed["jobs"][0]["error"]["code"], "enqueue-failed", "{failed}");
    assert_no_internal_text("the job", &failed.to_string());
    let events = sink.take_exactly(1).await;
    assert_eq!(events[0].event, EventKind::ImageFailed);
    assert_no_internal_text("the event", &serde_json::to_string(&events[0]).expect("json"));
}

#[tokio::test]
async fn a_database_that_fails_its_queries_leaks_no_sql_or_host_to_the_client() {
    use sea_orm::ConnectionTrait;
    // Arrange: a job, then its table taken away under the API (as a
    // failover or a bad migration would fail every query on it).
    let Aws { app, .. } = aws(|_| {}).await;
    let id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;
    app.backends.db.execute_unprepared("ALTER TABLE jobs RENAME TO jobs_elsewhere").await.expect("rename");

    // Act
    let read = app.http.get(format!("{}/v1/jobs/{id}", app.address)).send().await.expect("get");
    let upload = app.upload_raw("dice_rgba.png", "image/png").await;

    // Assert: 503 problems with a stable code; no SQL, table, host or driver text.
    for (what, response) in [("the read", read), ("the upload", upload)] {
        assert_eq!(response.status(), 503, "{what}");
        let body = response.text().await.expect("body");
        assert!(body.contains("service-unavailable"), "{what}: {body}");
        assert_no_internal_text(what, &body);
        for leak in ["jobs_elsewhere", "relation", "127.0.0.1", "postgres", "sqlx", "42P01"] {
            assert!(!body.contains(leak), "{what} holds internal text ({leak}): {body}");
        }
    }
}

#[tokio::test]
async fn a_worker_killed_mid_job_is_replaced_after_the_visibility_timeout() {
    // Arrange
    let Aws { app, aws, settings, .. } = aws(|s| s.visibility_timeout_secs = 2).await;
    let id = app.accepted(app.upload_raw("kleiber.jpg", "image/jpeg").await).await;
    let mut victim = spawn_worker_process(&settings);
    wait_for_status(&app, id, "processing").await;

    // Act
    victim.kill().expect("SIGKILL");
    let _ = victim.wait();
    let done = step_until(&app.worker, &app, id, "succeeded").await;

    // Assert
    assert_eq!(done["attempts"], 2, "the second worker finished what the first began");
    let events = aws.take_events(1).await;
    assert_eq!(events[0].0.job_id, Some(id));
    assert_eq!(aws.depth(&aws.queue_url).await, 0);
}

#[tokio::test]
async fn sigterm_during_a_job_finishes_it_and_exits_cleanly() {
    // Arrange
    let Aws { app, aws, settings, .. } = aws(|_| {}).await;
    let id = app.accepted(app.upload_raw("kleiber.jpg", "image/jpeg").await).await;
    let mut worker = spawn_worker_process(&settings);
    wait_for_status(&app, id, "processing").await;

    // Act
    let status = Command::new("kill").args(["-TERM", &worker.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || worker.wait()).await.expect("join").expect("wait");

    // Assert
    assert!(exit.success(), "worker exit status after SIGTERM: {exit:?}");
    assert_eq!(job(&app, id).await["status"], "succeeded", "the job in flight was finished");
    assert_eq!(aws.take_events(1).await.len(), 1);
    assert_eq!(aws.depth(&aws.queue_url).await, 0, "nothing left behind");
}

#[tokio::test]
async fn an_s3_upload_notification_is_processed_once() {
    // Arrange: S3 notifies the job queue of objects under uploads/.
    let Aws { app, aws, .. } = aws(|_| {}).await;
    aws.notify_uploads().await;
    let key = "uploads/holiday photo (1).png";
    let body = std::fs::read(crate::support::testdata("dice_rgba.png")).expect("testdata");
    let put = aws.s3.put_object().bucket(&aws.bucket).key(key).body(ByteStream::from(body)).send().await.expect("put");
    let etag = put.e_tag().unwrap_or_default().trim_matches('"').to_owned();

    // Act: the notification, then the same notification again.
    app.worker.drain().await.expect("drain");
    let again = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": aws.bucket}, "object": {"key": "uploads/holiday+photo+%281%29.png", "size": 26538, "eTag": etag}}
    }]});
    aws.sqs.send_message().queue_url(&aws.queue_url).message_body(again.to_string()).send().await.expect("resend");
    app.worker.drain().await.expect("drain again");

    // Assert
    let created = jobs::Entity::find()
        .filter(jobs::Column::IdempotencyKey.like("s3:%"))
        .all(&app.backends.db)
        .await
        .expect("jobs");
    assert_eq!(created.len(), 1, "one job per upload: {created:?}");
    assert_eq!(created[0].status, jobs::JobStatus::Succeeded);
    let events = aws.take_events(1).await;
    assert_eq!(events[0].0.job_id, Some(created[0].id));
    assert_eq!(events[0].0.variants.len(), 3);
    assert_eq!(aws.depth(&aws.queue_url).await, 0, "the S3 test event and the duplicate were acknowledged");
}

#[tokio::test]
async fn a_long_job_keeps_its_message_hidden_with_a_heartbeat() {
    // Arrange: a 2 s visibility timeout and a download that takes 3.5 s.
    let Aws { app, aws, settings, .. } = aws(|s| s.visibility_timeout_secs = 2).await;
    let mut slow = app.backends.clone();
    let mut store = FlakyStore::new(slow.store.clone(), 0, false);
    store.read_delay = Duration::from_millis(3500);
    slow.store = Arc::new(store);
    let busy = worker::Worker::new(slow, &settings).await.expect("worker");
    let id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;

    // Act: while the first worker is busy past the timeout, a second one looks.
    let first = tokio::spawn(async move { busy.run_once().await });
    wait_for_status(&app, id, "processing").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stolen = app.worker.run_once().await.expect("receive");
    let handled = first.await.expect("join").expect("receive");

    // Assert
    assert_eq!(stolen, 0, "the message stayed hidden while its job ran");
    assert_eq!(handled, 1);
    let done = job(&app, id).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["attempts"], 1);
    assert_eq!(aws.take_events(1).await.len(), 1);
}

#[tokio::test]
async fn a_panicking_job_is_retried_and_the_worker_survives() {
    // Arrange
    let Aws { app, aws, settings, .. } = aws(|_| {}).await;
    let mut backends = app.backends.clone();
    let store = FlakyStore::new(backends.store.clone(), 0, false);
    store.panicking_puts.store(1, std::sync::atomic::Ordering::SeqCst);
    backends.store = Arc::new(store);
    let worker = worker::Worker::new(backends, &settings).await.expect("worker");
    let id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;

    // Act
    let done = step_until(&worker, &app, id, "succeeded").await;

    // Assert
    assert_eq!(done["attempts"], 2, "the panic counted as one failed attempt");
    assert_eq!(aws.take_events(1).await.len(), 1);
    let metrics = worker.metrics_text();
    assert!(metrics.contains("image_worker_jobs_total{outcome=\"retried\",code=\"worker-panic\"} 1"), "{metrics}");
}

#[tokio::test]
async fn sigterm_past_the_deadline_releases_the_message_at_once() {
    // Arrange: a long visibility timeout, and no time allowed to finish.
    let Aws { app, aws, settings, .. } = aws(|s| s.visibility_timeout_secs = 120).await;
    let id = app.accepted(app.upload_raw("kleiber.jpg", "image/jpeg").await).await;
    let mut victim = spawn_worker_process_with(&settings, &[("SHUTDOWN_DEADLINE_SECS", "0")]);
    wait_for_status(&app, id, "processing").await;

    // Act
    let status = Command::new("kill").args(["-TERM", &victim.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || victim.wait()).await.expect("join").expect("wait");
    // Without the release this would wait out the 120 s timeout; step_until gives up after 20 s.
    let done = step_until(&app.worker, &app, id, "succeeded").await;

    // Assert
    assert!(exit.success(), "worker exit status after SIGTERM: {exit:?}");
    assert_eq!(done["attempts"], 2);
    assert_eq!(aws.take_events(1).await.len(), 1);
}

#[tokio::test]
async fn a_running_worker_reports_the_depth_of_each_queue() {
    // Arrange: on the embedded defaults, one dead-lettered message.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    let dlq = app.backends.dead_letters.clone().expect("the table queue has a DLQ");
    dlq.send(&pipeline::queue::Outgoing::new("poison", None)).await.expect("send");

    // Act: the worker runs until its first sample is in.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.worker.clone().run_until_stopped(
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = app.worker.metrics_text();
        if text.contains("image_worker_queue_messages{queue=\"bulk_dlq\"}") || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = stop.send(());
    running.await.expect("worker stopped");

    // Assert: every queue of both lanes is on the gauge.
    for expected in [
        "image_worker_queue_messages{queue=\"live_dlq\"} 1",
        "image_worker_queue_messages{queue=\"bulk_dlq\"} 0",
        "image_worker_queue_messages{queue=\"bulk\"} 0",
        "image_worker_queue_messages{queue=\"live\"} 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_count_outcomes_and_time_each_stage() {
    // Arrange
    let Aws { app, .. } = aws(|_| {}).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/metrics", listener.local_addr().expect("address"));
    tokio::spawn(worker::serve_metrics(app.worker.clone(), listener, std::future::pending()));
    app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;
    app.ingest("notimage.jpg").await;

    // Act
    app.worker.drain().await.expect("drain");
    let text = app.http.get(url).send().await.expect("scrape").text().await.expect("body");

    // Assert
    for expected in [
        "image_worker_jobs_total{outcome=\"succeeded\",code=\"\"} 1",
        "image_worker_jobs_total{outcome=\"failed\",code=\"unsupported-format\"} 1",
        "image_worker_events_total{within_objective=\"true\"} 2",
        "image_worker_upload_to_event_seconds_count 2",
        "image_worker_stage_seconds_count{stage=\"download\"} 2",
        "image_worker_stage_seconds_count{stage=\"decode\"} 1",
        "image_worker_stage_seconds_count{stage=\"resize\"} 1",
        "image_worker_stage_seconds_count{stage=\"encode\"} 1",
        "image_worker_stage_seconds_count{stage=\"upload\"} 1",
        "image_worker_stage_seconds_count{stage=\"db\"} 1",
        "image_worker_stage_seconds_count{stage=\"publish\"} 2",
        "image_worker_queue_lag_seconds_count{lane=\"live\"} 2",
        "image_worker_jobs_in_flight 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[tokio::test]
async fn on_ecs_the_worker_protects_its_task_while_busy() {
    // Arrange: a stand-in for the ECS agent's task protection endpoint.
    let Aws { app, aws, settings, .. } = aws(|_| {}).await;
    let (tx, mut calls) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let agent = axum::Router::new().route(
        "/task-protection/v1/state",
        axum::routing::put(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body["ProtectionEnabled"].as_bool().unwrap_or_default());
                axum::Json(serde_json::json!({ "protection": {} }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let agent_uri = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, agent).await });
    let id = app.accepted(app.upload_raw("orient3.jpg", "image/jpeg").await).await;

    // Act
    let mut worker = spawn_worker_process_with(&settings, &[("ECS_AGENT_URI", &agent_uri)]);
    wait_for_status(&app, id, "succeeded").await;
    let status = Command::new("kill").args(["-TERM", &worker.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || worker.wait()).await.expect("join").expect("wait");

    // Assert
    assert!(exit.success());
    let mut seen = Vec::new();
    while let Ok(enabled) = calls.try_recv() {
        seen.push(enabled);
    }
    assert_eq!(seen.first(), Some(&true), "protected while the job ran: {seen:?}");
    assert_eq!(seen.last(), Some(&false), "unprotected once idle: {seen:?}");
    assert_eq!(aws.take_events(1).await.len(), 1);
}

#[tokio::test]
async fn an_unparseable_message_is_left_for_the_dead_letter_queue() {
    // Arrange: a 1 s visibility timeout so the redrive limit (3) comes quickly.
    let Aws { app, aws, .. } = aws(|s| s.visibility_timeout_secs = 1).await;
    aws.sqs.send_message().queue_url(&aws.queue_url).message_body("{\"hello\": \"world\"}").send().await.expect("send");

    // Act
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut receives = 0;
    while aws.depth(&aws.dlq_url).await == 0 && tokio::time::Instant::now() < deadline {
        receives += app.worker.run_once().await.expect("receive");
    }

    // Assert
    assert_eq!(receives, 3, "received up to the redrive limit, never deleted");
    assert_eq!(aws.depth(&aws.dlq_url).await, 1);
    assert_eq!(aws.depth(&aws.queue_url).await, 0);
    assert!(app.worker.metrics_text().contains("image_worker_jobs_total{outcome=\"unparseable\",code=\"\"} 3"));
}
