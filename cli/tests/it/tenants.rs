//! Tenants: every read is scoped to the caller's tenant. The isolation matrix
//! calls each read endpoint with the owner's key, another tenant's key and an
//! admin key, with the Redis read cache on and off, on both backend sets. A
//! foreign id must answer exactly as a missing one, so ids cannot be probed.

use entities::api_keys::Scope;
use pipeline::Settings;
use pipeline::replay::{Operator, Silent};
use pipeline::tenants;
use serde_json::Value;
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, WebhookSink, base_settings, db, testdata};

/// What a caller sees: the status, the cache header and the body.
#[derive(Debug)]
struct Answer {
    status: u16,
    cache: Option<String>,
    body: Value,
}

/// A client that sends one key and does not follow redirects.
fn caller(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse().expect("header value"));
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

async fn get(app: &TestApp, who: &reqwest::Client, path: &str) -> Answer {
    let response = who.get(format!("{}{path}", app.address)).send().await.expect("get");
    let status = response.status().as_u16();
    let cache = response.headers().get("x-cache").map(|v| v.to_str().unwrap_or_default().to_owned());
    let json = response.headers().get("content-type").is_some_and(|v| v.to_str().unwrap_or_default().contains("json"));
    let body = if json { response.json().await.expect("json body") } else { Value::Null };
    Answer { status, cache, body }
}

fn job_ids(page: &Answer) -> Vec<String> {
    page.body["jobs"]
        .as_array()
        .map_or_else(Vec::new, |jobs| jobs.iter().filter_map(|j| j["id"].as_str().map(str::to_owned)).collect())
}

/// The matrix for one configuration. `sink` receives the embedded
/// backend's events, when there is one.
async fn isolation_matrix(settings: Settings, sink: Option<WebhookSink>) {
    // Arrange: two tenants with a client key each; the admin key is the
    // default tenant's. Acme uploads one photo, and the worker processes it.
    let app = TestApp::spawn(&settings).await;
    let db = &app.backends.db;
    let acme = tenants::create(db, "acme").await.expect("tenant acme");
    let globex = tenants::create(db, "globex").await.expect("tenant globex");
    let (_, acme_key) = pipeline::api_keys::create(db, acme.id, "acme app", Scope::Client).await.expect("key");
    let (_, globex_key) = pipeline::api_keys::create(db, globex.id, "globex app", Scope::Client).await.expect("key");
    let (own, foreign, admin) = (caller(&acme_key), caller(&globex_key), caller(&app.admin_key));
    let body = std::fs::read(testdata("kleiber.jpg")).expect("testdata");
    let upload = own
        .post(format!("{}/v1/images", app.address))
        .header("content-type", "image/jpeg")
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 202);
    let job: Value = upload.json().await.expect("job json");
    let (job_id, image_id) = (job["id"].as_str().expect("id").to_owned(), job["image_id"].as_str().expect("image"));
    app.worker.drain().await.expect("drain");
    let image = get(&app, &own, &format!("/v1/images/{image_id}")).await;
    assert_eq!(image.status, 200, "{image:?}");
    let preset = image.body["variants"][0]["preset"].as_str().expect("a variant").to_owned();
    let variant_status = get(&app, &own, &format!("/v1/images/{image_id}/variants/{preset}")).await.status;
    assert!(variant_status == 200 || variant_status == 302, "own variant download: {variant_status}");

    let missing = Uuid::now_v7();
    // (what the owner reads, a missing id's path, the owner's status, read through the cache)
    let reads = [
        (format!("/v1/jobs/{job_id}"), format!("/v1/jobs/{missing}"), 200, true),
        (format!("/v1/images/{image_id}"), format!("/v1/images/{missing}"), 200, true),
        (
            format!("/v1/images/{image_id}/variants/{preset}"),
            format!("/v1/images/{missing}/variants/{preset}"),
            variant_status,
            false,
        ),
    ];

    for (path, missing_path, own_status, cached) in &reads {
        // Act: the owner reads first, so that with the cache on its entry
        // exists when the others ask.
        let by_owner = get(&app, &own, path).await;
        let again = get(&app, &own, path).await;
        let by_foreigner = get(&app, &foreign, path).await;
        let by_admin = get(&app, &admin, path).await;
        let by_admin_for_acme = get(&app, &admin, &format!("{path}?tenant=acme")).await;
        let by_admin_for_globex = get(&app, &admin, &format!("{path}?tenant=globex")).await;
        let foreigner_naming_acme = get(&app, &foreign, &format!("{path}?tenant=acme")).await;
        let unknown_tenant = get(&app, &admin, &format!("{path}?tenant=nobody")).await;
        let not_there = get(&app, &own, missing_path).await;

        // Assert
        assert_eq!(by_owner.status, *own_status, "{path} by its owner: {by_owner:?}");
        if settings.redis_url.is_some() && *cached {
            assert_eq!(
                again.cache.as_deref(),
                Some("hit"),
                "{path}: Redis must be running at {}",
                crate::support::redis_url()
            );
        }
        assert_eq!(not_there.status, 404, "{missing_path}");
        assert_eq!(not_there.body["code"], "not-found");
        for (who, answer) in
            [("another tenant", &by_foreigner), ("admin", &by_admin), ("admin for globex", &by_admin_for_globex)]
        {
            assert_eq!(answer.status, 404, "{path} by {who}: {answer:?}");
            assert_eq!(answer.body, not_there.body, "{path} by {who} must read exactly as a missing id");
        }
        assert_eq!(by_admin_for_acme.status, *own_status, "{path} by admin ?tenant=acme: {by_admin_for_acme:?}");
        if *own_status == 200 && by_owner.body.is_object() {
            assert_eq!(by_admin_for_acme.body, by_owner.body, "{path}: the admin sees what the owner sees");
        }
        assert_eq!(foreigner_naming_acme.status, 403, "{path}: a client key may not name a tenant");
        assert_eq!(foreigner_naming_acme.body["code"], "forbidden");
        assert_eq!(unknown_tenant.status, 404);
        assert_eq!(unknown_tenant.body["detail"], "tenant not found");
    }

    // Listings hold only the caller's tenant's jobs; `?tenant=` leaves the
    // other parameters as they were.
    let listed_by_owner = get(&app, &own, "/v1/jobs").await;
    let listed_by_foreigner = get(&app, &foreign, "/v1/jobs").await;
    let listed_by_admin = get(&app, &admin, "/v1/jobs").await;
    let listed_for_acme = get(&app, &admin, "/v1/jobs?status=succeeded&tenant=acme&limit=5").await;
    let failed_for_acme = get(&app, &admin, "/v1/jobs?tenant=acme&status=failed").await;
    assert_eq!(job_ids(&listed_by_owner), vec![job_id.clone()]);
    assert!(job_ids(&listed_by_foreigner).is_empty(), "{listed_by_foreigner:?}");
    assert!(job_ids(&listed_by_admin).is_empty(), "{listed_by_admin:?}");
    assert_eq!(job_ids(&listed_for_acme), vec![job_id.clone()], "{listed_for_acme:?}");
    assert!(job_ids(&failed_for_acme).is_empty(), "the status filter still applies: {failed_for_acme:?}");

    // Reprocessing keeps the image's tenant: the new job is Acme's.
    let operator = Operator::new(app.backends.clone(), settings.presets().expect("presets"), "test".into());
    let summary = operator.reprocess(&preset, false, false, 10, None, false, &Silent).await.expect("reprocess");
    assert_eq!(summary.counts.get("enqueued"), Some(&1), "{summary:?}");
    assert_eq!(job_ids(&get(&app, &own, "/v1/jobs").await).len(), 2, "the reprocess job is listed for its owner");
    assert!(job_ids(&get(&app, &foreign, "/v1/jobs").await).is_empty());

    // Events say whose image it was (the second is the reprocess run's summary).
    if let Some(mut sink) = sink {
        let events = sink.take_exactly(2).await;
        assert_eq!(events[0].event, pipeline::event::EventKind::ImageProcessed);
        assert_eq!(events[0].tenant_id, Some(acme.id));
    }
}

async fn embedded(redis: bool) {
    let dir = TempDir::new().expect("temp dir");
    let sink = WebhookSink::start().await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.webhook_url = Some(sink.url.clone().into());
    settings.redis_url = redis.then(|| crate::support::redis_url().into());
    isolation_matrix(settings, Some(sink)).await;
}

async fn aws(redis: bool) {
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    settings.redis_url = redis.then(|| crate::support::redis_url().into());
    isolation_matrix(settings, None).await;
}

#[tokio::test]
async fn embedded_reads_are_scoped_to_the_tenant() {
    embedded(false).await;
}

#[tokio::test]
async fn embedded_cached_reads_are_scoped_to_the_tenant() {
    embedded(true).await;
}

#[tokio::test]
async fn aws_reads_are_scoped_to_the_tenant() {
    aws(false).await;
}

#[tokio::test]
async fn aws_cached_reads_are_scoped_to_the_tenant() {
    aws(true).await;
}

#[tokio::test]
async fn tenant_names_are_unique_and_keys_need_a_tenant_that_exists() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let app = TestApp::spawn(&base_settings(dir.path(), db::sqlite(&dir))).await;
    let db = &app.backends.db;

    // Act
    let first = tenants::create(db, "acme").await;
    let again = tenants::create(db, "acme").await;
    let bad = tenants::create(db, "Acme Corp").await;
    let listed: Vec<String> = tenants::list(db).await.expect("list").into_iter().map(|t| t.name).collect();

    // Assert
    assert!(matches!(again, Err(tenants::CreateError::Exists(_))), "{again:?}");
    assert!(matches!(bad, Err(tenants::CreateError::InvalidName(_))), "{bad:?}");
    assert_eq!(listed, vec![tenants::DEFAULT_TENANT_NAME.to_owned(), "acme".to_owned()]);
    // The migrations made the default tenant with the id the code uses for it,
    // and left it deduplicating as before tenants (not at all); new tenants do.
    let default = tenants::find_by_name(db, tenants::DEFAULT_TENANT_NAME).await.expect("query").expect("default");
    assert_eq!(default.id, tenants::DEFAULT_TENANT);
    assert!(!default.deduplicate);
    assert!(first.expect("acme").deduplicate);
}
