//! The API as clients meet it: keys and scopes, rate limits, sniffing,
//! idempotency, presigned uploads, the cache, metrics, OpenAPI and the CLI.

use std::time::Duration;

use entities::jobs;
use entities::prelude::Jobs;
use sea_orm::{EntityTrait, PaginatorTrait};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, assert_problem, base_settings, db, testdata};

async fn embedded(configure: impl FnOnce(&mut pipeline::Settings)) -> (TestApp, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    configure(&mut settings);
    (TestApp::spawn(&settings).await, dir)
}

async fn job_count(app: &TestApp) -> u64 {
    Jobs::find().count(&app.backends.db).await.expect("count")
}

#[tokio::test]
async fn keys_are_required_checked_and_scoped() {
    // Arrange
    let (app, _dir) = embedded(|_| {}).await;
    let (_, revoked) = pipeline::api_keys::create(
        &app.backends.db,
        pipeline::tenants::DEFAULT_TENANT,
        "gone",
        entities::api_keys::Scope::Client,
    )
    .await
    .expect("key");
    pipeline::api_keys::revoke(&app.backends.db, &revoked[..12]).await.expect("revoke");
    let anonymous = reqwest::Client::new();
    let jobs = format!("{}/v1/jobs", app.address);
    let dlq = format!("{}/v1/admin/replay/dlq", app.address);
    let dry = serde_json::json!({ "dry_run": true });

    // Act
    let missing = anonymous.get(&jobs).send().await.expect("get");
    let not_bearer = anonymous.get(&jobs).header("authorization", "Basic dTpw").send().await.expect("get");
    let unknown = anonymous.get(&jobs).bearer_auth("isk_0000").send().await.expect("get");
    let revoked = anonymous.get(&jobs).bearer_auth(&revoked).send().await.expect("get");
    let client = anonymous.get(&jobs).bearer_auth(&app.client_key).send().await.expect("get");
    let client_on_admin = app.http.post(&dlq).json(&dry).send().await.expect("post");
    let admin_on_admin = anonymous.post(&dlq).bearer_auth(&app.admin_key).json(&dry).send().await.expect("post");
    let admin_on_client = anonymous.get(&jobs).bearer_auth(&app.admin_key).send().await.expect("get");
    let open = anonymous.get(format!("{}/healthz", app.address)).send().await.expect("get");

    // Assert
    for response in [missing, not_bearer, unknown, revoked] {
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_problem(response, 401, "unauthorized").await;
    }
    assert_eq!(client.status(), 200);
    assert_problem(client_on_admin, 403, "forbidden").await;
    assert_eq!(admin_on_admin.status(), 200);
    assert_eq!(admin_on_client.status(), 200, "admin keys may do what client keys may");
    assert_eq!(open.status(), 200, "health needs no key");
}

#[tokio::test]
async fn each_key_has_its_own_rate_limit() {
    // Arrange: one request per second, bursts of two.
    let (app, _dir) = embedded(|s| {
        s.rate_limit_per_second = 1;
        s.rate_limit_burst = 2;
    })
    .await;
    let url = format!("{}/v1/jobs", app.address);

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.http.get(&url).send().await.expect("get"));
    }
    let limited = statuses.pop().expect("third");
    let other_key = reqwest::Client::new().get(&url).bearer_auth(&app.admin_key).send().await.expect("get");

    // Assert
    assert!(statuses.iter().all(|r| r.status() == 200));
    let header = |r: &reqwest::Response, name: &str| r.headers()[name].to_str().expect("ascii").to_owned();
    // Each answer says what the key's bucket (2, refilled at 1/s) and its
    // tenant's have left, in the IETF RateLimit headers.
    assert!(header(&statuses[0], "ratelimit-policy").starts_with("\"key\";q=2;w=2, \"tenant\";"));
    assert!(header(&statuses[0], "ratelimit").starts_with("\"key\";r=1;t=1, \"tenant\";"));
    assert!(header(&statuses[1], "ratelimit").starts_with("\"key\";r=0;t=2, "));
    let retry_after: u64 = header(&limited, "retry-after").parse().expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&limited, "ratelimit"), format!("\"key\";r=0;t={retry_after}"), "the bucket that refused");
    assert_problem(limited, 429, "rate-limited").await;
    assert_eq!(other_key.status(), 200, "another key is not limited by this one");
}

#[tokio::test]
async fn only_real_images_are_accepted_whatever_their_declared_type() {
    // Arrange
    let (app, _dir) = embedded(|_| {}).await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>"#;

    // Act
    let text_as_jpeg = app.upload_raw("notimage.jpg", "image/jpeg").await;
    let svg_raw = app
        .http
        .post(format!("{}/v1/images", app.address))
        .header("content-type", "image/svg+xml")
        .body(svg.to_vec())
        .send()
        .await
        .expect("post");
    let text_in_form = app.upload_multipart("notimage.jpg", "image/jpeg").await;
    let empty = app
        .http
        .post(format!("{}/v1/images", app.address))
        .header("content-type", "image/png")
        .send()
        .await
        .expect("post");
    let mislabelled_png = app.upload_raw("dice_rgba.png", "image/jpeg").await;

    // Assert
    for response in [text_as_jpeg, svg_raw, text_in_form, empty] {
        assert_problem(response, 415, "unsupported-media-type").await;
    }
    assert_eq!(mislabelled_png.status(), 202, "the bytes decide, not the label");
    assert_eq!(job_count(&app).await, 1, "refused uploads leave no job");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_job_for_the_same_request_only() {
    // Arrange
    let (app, _dir) = embedded(|_| {}).await;
    let post = |file: &str, key: &str| {
        app.http
            .post(format!("{}/v1/images", app.address))
            .header("content-type", "image/png")
            .header("idempotency-key", key)
            .body(std::fs::read(testdata(file)).expect("testdata"))
            .send()
    };
    let upload = |length: u64, key: &str| {
        app.http
            .post(format!("{}/v1/uploads", app.address))
            .header("idempotency-key", key)
            .json(&serde_json::json!({ "content_type": "image/png", "content_length": length }))
            .send()
    };

    // Act
    let first = post("dice_rgba.png", "k-1").await.expect("post");
    let again = post("dice_rgba.png", "k-1").await.expect("post");
    let other_body = post("astronaut.png", "k-1").await.expect("post");
    let ticket = upload(1000, "k-2").await.expect("post");
    let ticket_again = upload(1000, "k-2").await.expect("post");
    let ticket_other = upload(1001, "k-2").await.expect("post");
    // The same key from another caller is another key.
    let admin_same_key = reqwest::Client::new()
        .post(format!("{}/v1/images", app.address))
        .bearer_auth(&app.admin_key)
        .header("content-type", "image/png")
        .header("idempotency-key", "k-1")
        .body(std::fs::read(testdata("dice_rgba.png")).expect("testdata"))
        .send()
        .await
        .expect("post");

    // Assert
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let (first, again): (serde_json::Value, serde_json::Value) =
        (first.json().await.expect("json"), again.json().await.expect("json"));
    assert_eq!(first["id"], again["id"]);
    assert_problem(other_body, 422, "idempotency-key-reused").await;
    assert_eq!(ticket.status(), 201);
    assert_eq!(ticket_again.headers()["idempotent-replayed"], "true");
    let (ticket, ticket_again): (serde_json::Value, serde_json::Value) =
        (ticket.json().await.expect("json"), ticket_again.json().await.expect("json"));
    assert_eq!(ticket["job"]["id"], ticket_again["job"]["id"]);
    assert_problem(ticket_other, 422, "idempotency-key-reused").await;
    assert_eq!(admin_same_key.status(), 202);
    assert!(admin_same_key.headers().get("idempotent-replayed").is_none());
    assert_eq!(job_count(&app).await, 3, "one job per distinct request");
}

/// Follows a ticket's instructions with `body`, optionally overriding a header.
async fn put_upload(
    ticket: &serde_json::Value,
    body: Vec<u8>,
    override_header: Option<(&str, &str)>,
) -> reqwest::Response {
    let upload = &ticket["upload"];
    let mut request = reqwest::Client::new().put(upload["url"].as_str().expect("url")).body(body);
    for (name, value) in upload["headers"].as_object().expect("headers") {
        if name == "content-length" {
            continue;
        }
        let value = match override_header {
            Some((over, replacement)) if over == name => replacement,
            _ => value.as_str().expect("header value"),
        };
        request = request.header(name.as_str(), value);
    }
    request.send().await.expect("put")
}

async fn request_upload(app: &TestApp, content_type: &str, length: usize) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/uploads", app.address))
        .json(&serde_json::json!({ "content_type": content_type, "content_length": length }))
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn a_presigned_upload_on_local_disk_becomes_a_job_once() {
    // Arrange
    let (app, _dir) = embedded(|s| s.max_upload_bytes = 1024 * 1024).await;
    let body = std::fs::read(testdata("dice_rgba.png")).expect("testdata");
    let response = request_upload(&app, "image/png", body.len()).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().expect("ascii").to_owned();
    let ticket: serde_json::Value = response.json().await.expect("json");
    let job_id = ticket["job"]["id"].as_str().expect("job id").to_owned();
    assert_eq!(location, format!("/v1/jobs/{job_id}"));
    assert_eq!(ticket["job"]["status"], "awaiting_upload");
    assert_eq!(ticket["upload"]["method"], "PUT");

    // Act
    let wrong_type = put_upload(&ticket, body.clone(), Some(("content-type", "image/jpeg"))).await;
    let short = put_upload(&ticket, body[..body.len() - 1].to_vec(), None).await;
    let tampered_url = reqwest::Client::new()
        .put(ticket["upload"]["url"].as_str().expect("url").replace("signature=", "signature=00"))
        .header("content-type", "image/png")
        .body(body.clone())
        .send()
        .await
        .expect("put");
    let received = put_upload(&ticket, body.clone(), None).await;
    let twice = put_upload(&ticket, body.clone(), None).await;
    app.worker.drain().await.expect("drain");

    // Assert
    assert_problem(wrong_type, 403, "upload-rejected").await;
    assert_problem(short, 403, "upload-rejected").await;
    assert_problem(tampered_url, 403, "upload-rejected").await;
    assert_eq!(received.status(), 200);
    assert_problem(twice, 409, "conflict").await;
    let job = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let image = app.get_json(job["links"]["image"].as_str().expect("link"), 200).await;
    assert_eq!(image["variants"].as_array().map(Vec::len), Some(3));
    assert_eq!(image["bytes"], body.len());
    assert_eq!(job_count(&app).await, 1);
}

#[tokio::test]
async fn upload_requests_are_checked_before_any_url_is_signed() {
    // Arrange
    let (app, _dir) = embedded(|s| {
        s.max_upload_bytes = 1000;
        s.upload_url_ttl_secs = 0;
    })
    .await;

    // Act
    let too_large = request_upload(&app, "image/png", 1001).await;
    let svg = request_upload(&app, "image/svg+xml", 10).await;
    let empty = request_upload(&app, "image/png", 0).await;
    let unknown_field = app
        .http
        .post(format!("{}/v1/uploads", app.address))
        .json(&serde_json::json!({ "content_type": "image/png", "content_length": 10, "acl": "public-read" }))
        .send()
        .await
        .expect("post");
    let not_json = app.http.post(format!("{}/v1/uploads", app.address)).body("x").send().await.expect("post");
    let expiring = request_upload(&app, "image/png", 10).await;
    let ticket: serde_json::Value = expiring.json().await.expect("json");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = put_upload(&ticket, vec![0; 10], None).await;

    // Assert
    assert_problem(too_large, 413, "payload-too-large").await;
    assert_problem(svg, 415, "unsupported-media-type").await;
    assert_problem(empty, 400, "bad-request").await;
    assert_problem(unknown_field, 400, "bad-request").await;
    assert_problem(not_json, 415, "unsupported-media-type").await;
    let problem = assert_problem(expired, 403, "upload-rejected").await;
    assert!(problem["detail"].as_str().unwrap_or_default().contains("expired"), "{problem}");
}

#[tokio::test]
async fn a_presigned_upload_to_s3_is_started_by_the_bucket_notification() {
    // Arrange
    let aws = AwsFixture::create().await;
    aws.notify_uploads().await;
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    let app = TestApp::spawn(&settings).await;
    let body = std::fs::read(testdata("dice_rgba.png")).expect("testdata");
    let ticket: serde_json::Value = request_upload(&app, "image/png", body.len()).await.json().await.expect("json");
    let url = ticket["upload"]["url"].as_str().expect("url");
    assert!(url.contains(&aws.bucket) && url.contains("X-Amz-Signature"), "an S3 URL: {url}");
    let signed = url.split("X-Amz-SignedHeaders=").nth(1).unwrap_or_default();
    assert!(signed.contains("content-length") && signed.contains("content-type"), "{url}");

    // Act
    // (moto does not check the signed headers of this URL, so a mismatched
    // PUT cannot be tested here; the local-disk test covers the API's own.)
    let put = put_upload(&ticket, body.clone(), None).await;
    app.worker.drain().await.expect("drain");

    // Assert
    assert_eq!(put.status(), 200, "{:?}", put.text().await);
    let job_id = ticket["job"]["id"].as_str().expect("id");
    let job = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let events = aws.take_events(1).await;
    assert_eq!(events[0].0.job_id.map(|id| id.to_string()).as_deref(), Some(job_id));
    assert_eq!(events[0].0.variants.len(), 3);
    assert_eq!(job_count(&app).await, 1, "the notification started the job it was for, and made no other");
    let stored = aws
        .s3
        .head_object()
        .bucket(&aws.bucket)
        .key(pipeline::keys::original(ticket["job"]["image_id"].as_str().expect("image").parse().expect("uuid")))
        .send()
        .await
        .expect("the original is kept outside uploads/");
    assert_eq!(stored.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"));
}

#[tokio::test]
async fn reads_are_cached_in_redis_and_invalidated_when_the_job_moves() {
    // Arrange
    let (app, _dir) = embedded(|s| s.redis_url = Some(crate::support::redis_url().into())).await;
    let job_id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;
    let get = || app.http.get(format!("{}/v1/jobs/{job_id}", app.address)).send();

    // Act
    let first = get().await.expect("get");
    let second = get().await.expect("get");
    app.worker.drain().await.expect("drain");
    let after = get().await.expect("get");

    // Assert
    assert_eq!(first.headers()["x-cache"], "miss");
    assert_eq!(second.headers()["x-cache"], "hit", "Redis must be running at TEST_REDIS_URL");
    let second: serde_json::Value = second.json().await.expect("json");
    assert_eq!(second["status"], "queued");
    assert_eq!(after.headers()["x-cache"], "miss", "the worker invalidated the entry");
    let after: serde_json::Value = after.json().await.expect("json");
    assert_eq!(after["status"], "succeeded");
}

#[tokio::test]
async fn with_redis_down_reads_still_work() {
    // Arrange: nothing listens on port 1.
    let (app, _dir) = embedded(|s| s.redis_url = Some("redis://127.0.0.1:1/".into())).await;
    let job_id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;

    // Act
    let job = app.http.get(format!("{}/v1/jobs/{job_id}", app.address)).send().await.expect("get");
    app.worker.drain().await.expect("drain");
    let done = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;

    // Assert
    assert_eq!(job.status(), 200);
    assert_eq!(job.headers()["x-cache"], "miss");
    assert_eq!(done["status"], "succeeded");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    // Arrange
    let (app, _dir) = embedded(|_| {}).await;
    app.get_json(&format!("/v1/jobs/{}", Uuid::now_v7()), 404).await;
    app.get_json("/v1/jobs", 200).await;

    // Act
    let text = reqwest::get(format!("{}/metrics", app.address)).await.expect("get").text().await.expect("text");

    // Assert
    for expected in [
        r#"image_api_http_requests_total{method="GET",route="/v1/jobs/{id}",status="404"} 1"#,
        r#"image_api_http_requests_total{method="GET",route="/v1/jobs",status="200"} 1"#,
        r#"image_api_cache_lookups_total{result="miss"} 1"#,
        "image_api_http_request_duration_seconds_count",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[tokio::test]
async fn the_served_openapi_documents_are_the_committed_ones() {
    let (app, _dir) = embedded(|_| {}).await;
    for (file, version, refresh) in [
        ("openapi.json", "3.1.0", "image-service openapi"),
        ("openapi-3.0.json", "3.0.3", "image-service openapi --spec-version 3.0"),
    ] {
        let served: serde_json::Value =
            reqwest::get(format!("{}/{file}", app.address)).await.expect("get").json().await.expect("json");
        let path = format!("{}/../docs/{file}", env!("CARGO_MANIFEST_DIR"));
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("committed")).expect("valid json");
        assert_eq!(served["openapi"], version);
        assert_eq!(served, committed, "run `{refresh} > docs/{file}` and commit it");
    }
}

#[tokio::test]
async fn the_cli_creates_keys_and_submits_files_until_they_finish() {
    // Arrange: a worker running on its own, as in production.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    let running = app.worker.clone();
    tokio::spawn(running.run_until_stopped(std::future::pending(), Duration::from_secs(1)));
    let cli = || {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_image-service"));
        command.env("DATABASE_URL", settings.database_url()).env("DATA_DIR", dir.path());
        command
    };

    // Act
    let created = cli().args(["keys", "create", "--name", "ci", "--scope", "client"]).output().await.expect("cli");
    let key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let submitted = cli()
        .args(["submit", "--wait", "--url", &app.address, "--api-key", &key])
        .arg(testdata("dice_rgba.png"))
        .arg(testdata("kleiber.jpg"))
        .output()
        .await
        .expect("cli");
    let refused = cli()
        .args(["submit", "--url", &app.address, "--api-key", "isk_wrong"])
        .arg(testdata("dice_rgba.png"))
        .output()
        .await
        .expect("cli");

    // Assert
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(key.starts_with("isk_") && key.len() == 68, "{key}");
    let stdout = String::from_utf8_lossy(&submitted.stdout);
    assert!(submitted.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&submitted.stderr));
    assert_eq!(stdout.matches("\tsucceeded").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("/variants/thumb").count(), 2, "{stdout}");
    let finished = jobs::Entity::find().all(&app.backends.db).await.expect("jobs");
    assert!(finished.iter().all(|j| j.status == jobs::JobStatus::Succeeded), "{finished:?}");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[tokio::test]
async fn an_invalidation_reaches_every_process_memory_tier() {
    use pipeline::cache::{Cache, RedisCache};
    // Arrange: two processes' caches on one Redis; the reader has the entry in memory.
    let url = crate::support::redis_url();
    let url = url.as_str();
    let (reader, writer) = (RedisCache::new(url).expect("url"), RedisCache::new(url).expect("url"));
    let key = pipeline::cache::job_key(pipeline::tenants::DEFAULT_TENANT, Uuid::now_v7());
    reader.put(&key, bytes::Bytes::from_static(b"old"), Duration::from_secs(60)).await;
    assert_eq!(reader.get(&key).await.as_deref(), Some(&b"old"[..]), "Redis must be running at TEST_REDIS_URL");
    tokio::time::sleep(Duration::from_millis(200)).await; // the reader subscribes
    reader.put(&key, bytes::Bytes::from_static(b"old"), Duration::from_secs(60)).await;

    // Act: the other process changes the job.
    writer.forget(std::slice::from_ref(&key)).await;

    // Assert
    let mut seen = reader.get(&key).await;
    for _ in 0..50 {
        if seen.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = reader.get(&key).await;
    }
    assert_eq!(seen, None, "the reader still serves the invalidated entry");
}

#[tokio::test]
async fn a_queue_outage_is_a_503_that_the_same_request_can_retry() {
    use std::sync::Arc;
    // Arrange: a second API on the same database whose queue refuses sends.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let healthy = TestApp::spawn(&settings).await;
    let mut broken = healthy.backends.clone();
    broken.queue = Arc::new(crate::support::faults::FlakyQueue::new(broken.queue.clone(), 0, u32::MAX));
    let address = TestApp::serve_api(&settings, broken).await;
    let post = |base: String| {
        healthy
            .http
            .post(format!("{base}/v1/images"))
            .header("content-type", "image/png")
            .header("idempotency-key", "retry-me")
            .body(std::fs::read(testdata("dice_rgba.png")).expect("testdata"))
            .send()
    };

    // Act: the outage, then the client's retry once the queue is back.
    let refused = post(address.clone()).await.expect("post");
    let retried = post(healthy.address.clone()).await.expect("post");

    // Assert
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_problem(refused, 503, "service-unavailable").await;
    assert_eq!(retried.status(), 202);
    assert!(retried.headers().get("idempotent-replayed").is_none(), "a new job, not the failed one");
    let all = jobs::Entity::find().all(&healthy.backends.db).await.expect("jobs");
    assert_eq!(all.len(), 2);
    assert_eq!(all.iter().filter(|j| j.error_code.as_deref() == Some("enqueue-failed")).count(), 1);
}

#[tokio::test]
async fn an_api_that_dies_between_recording_and_enqueueing_loses_no_upload() {
    use std::sync::Arc;
    // Arrange: a second API on the same database that dies (a panic) after
    // committing the upload and before sending its message.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let healthy = TestApp::spawn(&settings).await;
    let mut dying = healthy.backends.clone();
    let mut queue = crate::support::faults::FlakyQueue::new(dying.queue.clone(), 0, u32::MAX);
    queue.send_panics = true;
    dying.queue = Arc::new(queue);
    let address = TestApp::serve_api(&settings, dying).await;
    let post = |base: String| {
        healthy
            .http
            .post(format!("{base}/v1/images"))
            .header("content-type", "image/png")
            .header("idempotency-key", "died-mid-request")
            .body(std::fs::read(testdata("dice_rgba.png")).expect("testdata"))
            .send()
    };

    // Act: the request that dies, then the client's retry with the same key.
    let died = post(address.clone()).await;
    let retried = post(healthy.address.clone()).await.expect("post");
    healthy.worker.drain().await.expect("drain");

    // Assert: the retry is answered with the recorded job, whose message it
    // sent, so the job runs.
    assert!(died.map(|r| r.status().is_server_error()).unwrap_or(true), "the first request got no success");
    assert_eq!(retried.status(), 202);
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    let all = jobs::Entity::find().all(&healthy.backends.db).await.expect("jobs");
    assert_eq!(all.len(), 1, "one job for the one upload");
    assert_eq!(all[0].status, jobs::JobStatus::Succeeded, "{:?}", all[0]);
}

#[tokio::test]
async fn readiness_is_a_503_naming_the_dependency_that_is_down() {
    // Arrange: an objects directory that cannot exist (a file is in the way).
    let dir = TempDir::new().expect("temp dir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").expect("file");
    let (app, _data) = embedded(|s| s.storage_dir = Some(blocker.join("objects"))).await;

    // Act
    let response = reqwest::get(format!("{}/readyz", app.address)).await.expect("get");

    // Assert
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"], serde_json::json!({ "database": true, "queue": true, "store": false }));
}
