//! Delivery as a web page meets it: the image resource carries what a page
//! lays out with (size, placeholder, `srcset`), and its delivery URLs answer
//! without an API key, with the caching headers a CDN and a browser need;
//! a signed tenant's URLs only with a valid, unexpired signature.

use pipeline::Settings;
use pipeline::delivery::Mode;
use reqwest::StatusCode;
use tempfile::TempDir;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, assert_problem, base_settings, db};

/// Uploads `file`, runs the worker, and returns the image resource.
async fn processed(app: &TestApp, file: &str) -> serde_json::Value {
    let job = app.accepted(app.upload_raw(file, "image/jpeg").await).await;
    app.worker.drain().await.expect("drain");
    let job = app.get_json(&format!("/v1/jobs/{job}"), 200).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    app.get_json(job["links"]["image"].as_str().expect("image link"), 200).await
}

/// Uploads `file` with another tenant's `key`, runs the worker, and returns the image as that tenant reads it.
async fn processed_by(app: &TestApp, key: &str, file: &str) -> serde_json::Value {
    let client = reqwest::Client::new();
    let upload = client
        .post(format!("{}/v1/images", app.address))
        .bearer_auth(key)
        .header("content-type", "image/jpeg")
        .body(std::fs::read(crate::support::testdata(file)).expect("testdata"))
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 202);
    let job: serde_json::Value = upload.json().await.expect("json");
    app.worker.drain().await.expect("drain");
    let image = client
        .get(format!("{}/v1/images/{}", app.address, job["image_id"].as_str().expect("image id")))
        .bearer_auth(key)
        .send()
        .await
        .expect("image");
    image.json().await.expect("json")
}

/// A presigned upload's ticket for a JPEG of `length` bytes.
async fn presign(app: &TestApp, length: u64) -> serde_json::Value {
    let response = app
        .http
        .post(format!("{}/v1/uploads", app.address))
        .json(&serde_json::json!({"content_type": "image/jpeg", "content_length": length}))
        .send()
        .await
        .expect("presign");
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

/// A plain client: no API key, as an `<img src>` fetches.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

fn absolute(app: &TestApp, url: &str) -> String {
    if url.starts_with('/') { format!("{}{url}", app.address) } else { url.to_owned() }
}

async fn a_page_can_show_an_image_without_a_key(settings: Settings) {
    // Arrange
    let app = TestApp::spawn(&settings).await;

    // Act
    let image = processed(&app, "kleiber.jpg").await;

    // Assert: what a page lays out with, before and after loading.
    let (width, height) = (image["width"].as_i64().expect("width"), image["height"].as_i64().expect("height"));
    assert!(width > 0 && height > 0, "{image}");
    let placeholder = &image["placeholder"];
    assert!(placeholder["thumbhash"].as_str().is_some_and(|h| h.len() >= 20), "{image}");
    let colour = placeholder["dominant_colour"].as_str().expect("colour");
    assert!(colour.len() == 7 && colour.starts_with('#'), "{colour}");
    let srcset = image["srcset"]["image/webp"].as_str().expect("a webp srcset");
    assert_eq!(srcset.split(", ").count(), 3, "three sizes: {srcset}");

    let client = browser();
    for variant in image["variants"].as_array().expect("variants") {
        let url = absolute(&app, variant["delivery_url"].as_str().expect("delivery url"));
        assert!(srcset.contains(variant["delivery_url"].as_str().expect("url")), "{url} is in the srcset");
        let response = client.get(&url).send().await.expect("get");
        assert_eq!(response.status(), 200, "{url}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], variant["mime_type"].as_str().expect("mime"));
        assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let etag = headers["etag"].to_str().expect("etag").to_owned();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "a strong etag: {etag}");
        let bytes = response.bytes().await.expect("body");
        assert_eq!(bytes.len() as i64, variant["bytes"].as_i64().expect("bytes"));

        let revalidated = client.get(&url).header("if-none-match", &etag).send().await.expect("revalidate");
        assert_eq!(revalidated.status(), 304);
        assert!(revalidated.bytes().await.expect("body").is_empty());

        let part = client.get(&url).header("range", "bytes=0-99").send().await.expect("range");
        assert_eq!(part.status(), 206);
        assert_eq!(part.headers()["content-range"], format!("bytes 0-99/{}", bytes.len()));
        assert_eq!(part.bytes().await.expect("part"), bytes.slice(0..100));
        let beyond = client.get(&url).header("range", format!("bytes={}-", bytes.len())).send().await.expect("416");
        assert_eq!(beyond.status(), 416);
        assert_eq!(beyond.headers()["content-range"], format!("bytes */{}", bytes.len()));
    }

    // A guessed path (right image, wrong token) is no variant.
    let url = image["variants"][0]["delivery_url"].as_str().expect("url");
    let mut parts: Vec<&str> = url.rsplitn(3, '/').collect();
    parts[1] = "00000000000000000000000000000000";
    parts.reverse();
    let guessed = client.get(absolute(&app, &parts.join("/"))).send().await.expect("get");
    assert_problem(guessed, 404, "not-found").await;
}

#[tokio::test]
async fn embedded_a_page_can_show_an_image_without_a_key() {
    let dir = TempDir::new().expect("temp dir");
    a_page_can_show_an_image_without_a_key(base_settings(dir.path(), db::sqlite(&dir))).await;
}

#[tokio::test]
async fn aws_a_page_can_show_an_image_without_a_key() {
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    a_page_can_show_an_image_without_a_key(settings).await;
}

#[tokio::test]
async fn a_signed_tenants_urls_need_their_signature() {
    // Arrange: two tenants, both signed.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    let db = &app.backends.db;
    let other = pipeline::tenants::create(db, "other").await.expect("tenant");
    let (_, other_key) =
        pipeline::api_keys::create(db, other.id, "other", entities::api_keys::Scope::Client).await.expect("key");
    for tenant in [pipeline::tenants::DEFAULT_TENANT, other.id] {
        pipeline::tenants::set_delivery(db, tenant, Some(Mode::Signed)).await.expect("signed");
    }
    let client = browser();

    // Act
    let image = processed(&app, "kleiber.jpg").await;
    let second = processed_by(&app, &other_key, "orient3.jpg").await;

    // Assert
    let url = absolute(&app, image["variants"][0]["delivery_url"].as_str().expect("url"));
    assert!(url.contains("/private/") && url.contains("Signature="), "{url}");
    let ok = client.get(&url).send().await.expect("get");
    assert_eq!(ok.status(), 200);
    let etag = ok.headers()["etag"].clone();
    let revalidated = client.get(&url).header("if-none-match", etag).send().await.expect("304");
    assert_eq!(revalidated.status(), 304, "a signed URL revalidates too");

    let (path, query) = url.split_once('?').expect("query");
    assert_problem(client.get(path).send().await.expect("get"), 403, "signature-required").await;
    let tampered = url.replace("Expires=", "Expires=1");
    assert_problem(client.get(&tampered).send().await.expect("get"), 403, "signature-invalid").await;
    // The other tenant's valid signature does not open this tenant's image.
    let other = absolute(&app, second["variants"][0]["delivery_url"].as_str().expect("url"));
    let (_, other_query) = other.split_once('?').expect("query");
    assert_problem(client.get(format!("{path}?{other_query}")).send().await.expect("get"), 403, "signature-invalid")
        .await;
    // The same object is not public under the public prefix.
    let public = path.replacen("/private/", "/variants/", 1);
    assert_problem(client.get(&public).send().await.expect("get"), 404, "not-found").await;
    assert!(!query.is_empty());
}

#[tokio::test]
async fn rotating_the_signing_key_keeps_unexpired_urls_and_expired_ones_fail() {
    // Arrange: URLs signed by key k1, with a short life.
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.delivery_mode = Mode::Signed;
    settings.delivery_key_id = "k1".into();
    settings.delivery_url_ttl_secs = 300;
    let old = TestApp::spawn(&settings).await;
    let image = processed(&old, "kleiber.jpg").await;
    let url = image["variants"][0]["delivery_url"].as_str().expect("url").to_owned();
    let old_key = std::fs::read_to_string(dir.path().join("delivery-signing-key.pem")).expect("kept key");
    let old_public = pipeline::delivery::Signer::from_pem("k1", &old_key).expect("key").public_key_base64();

    // Act: a new key k2 signs; k1 is retired but still honoured.
    let new_dir = TempDir::new().expect("temp dir");
    let mut rotated = settings.clone();
    rotated.data_dir = new_dir.path().to_path_buf();
    rotated.storage_dir = Some(settings.storage_dir());
    rotated.delivery_key_id = "k2".into();
    rotated.delivery_verify_keys = vec![format!("k1={old_public}")];
    let new = TestApp::spawn(&rotated).await;
    let mut forgot = rotated.clone();
    forgot.delivery_verify_keys = Vec::new();
    let forgetful = TestApp::spawn(&forgot).await;

    // Assert
    let client = browser();
    let on = |app: &TestApp| format!("{}{url}", app.address);
    assert_eq!(client.get(on(&new)).send().await.expect("get").status(), StatusCode::OK, "the retired key still opens");
    assert_problem(client.get(on(&forgetful)).send().await.expect("get"), 403, "signature-invalid").await;
    let fresh = new.get_json(&format!("/v1/images/{}", image["id"].as_str().expect("id")), 200).await;
    assert!(fresh["variants"][0]["delivery_url"].as_str().expect("url").ends_with("Key-Pair-Id=k2"));

    // An expired URL: signed with an expiry already past.
    let signer = pipeline::delivery::Signer::from_pem("k1", &old_key).expect("key");
    let resource = url.split_once('?').expect("query").0;
    let expired = signer.sign(resource, chrono::Utc::now().timestamp() - 1);
    assert_problem(client.get(format!("{}{expired}", new.address)).send().await.expect("get"), 403, "url-expired")
        .await;
}

#[tokio::test]
async fn a_page_on_an_allowed_origin_may_put_its_upload_from_the_browser() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.cors_allowed_origins = vec!["https://app.example".into()];
    let app = TestApp::spawn(&settings).await;
    let ticket = presign(&app, 10).await;
    let url = ticket["upload"]["url"].as_str().expect("upload url");

    // Act: the browser's preflights, from an allowed and a foreign origin.
    let preflight = |origin: &'static str| {
        browser()
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://app.example").await.expect("preflight");
    let foreign = preflight("https://evil.example").await.expect("preflight");

    // Assert
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    assert!(allowed.headers()["access-control-allow-methods"].to_str().expect("ascii").contains("PUT"));
    assert!(foreign.headers().get("access-control-allow-origin").is_none(), "a foreign origin is not allowed");
}

#[tokio::test]
async fn the_upload_answer_gives_the_browser_a_keyless_status_url_for_its_job_only() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let app = TestApp::spawn(&base_settings(dir.path(), db::sqlite(&dir))).await;
    let body = std::fs::read(crate::support::testdata("kleiber.jpg")).expect("testdata");
    let ticket = presign(&app, body.len() as u64).await;
    let status_url = ticket["status_url"].as_str().expect("status url").to_owned();
    let client = browser();

    // Act: the browser reads its status, PUTs its bytes, and reads again.
    let waiting: serde_json::Value = client.get(&status_url).send().await.expect("status").json().await.expect("json");
    let put = client
        .put(ticket["upload"]["url"].as_str().expect("url"))
        .header("content-type", "image/jpeg")
        .body(body)
        .send()
        .await
        .expect("put");
    assert!(put.status().is_success(), "{}", put.status());
    app.worker.drain().await.expect("drain");
    let done = client.get(&status_url).send().await.expect("status");

    // Assert
    assert_eq!(waiting["job"]["status"], "awaiting_upload");
    assert!(waiting["image"].is_null());
    assert_eq!(done.headers()["access-control-allow-origin"], "*");
    assert_eq!(done.headers()["cache-control"], "no-store");
    let done: serde_json::Value = done.json().await.expect("json");
    assert_eq!(done["job"]["status"], "succeeded");
    assert!(done["image"]["srcset"]["image/webp"].as_str().is_some_and(|s| s.contains("256w")), "{done}");
    assert!(done["image"]["placeholder"]["dominant_colour"].is_string());
    // It opens that job only, and nothing without its signature.
    let (path, query) = status_url.split_once('?').expect("query");
    let other = format!("{}/v1/status/{}?{query}", app.address, uuid::Uuid::now_v7());
    assert_problem(client.get(other).send().await.expect("get"), 403, "signature-invalid").await;
    assert_problem(client.get(path).send().await.expect("get"), 403, "signature-required").await;
}

#[tokio::test]
async fn a_processed_events_status_link_opens_a_page_without_a_key() {
    // Arrange: events know the API's public address.
    let dir = TempDir::new().expect("temp dir");
    let mut sink = crate::support::WebhookSink::start().await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.public_base_url = Some("https://images.example".into());
    settings.webhook_url = Some(sink.url.clone().into());
    let app = TestApp::spawn(&settings).await;

    // Act
    processed(&app, "kleiber.jpg").await;
    let event = sink.take_exactly(1).await.remove(0);

    // Assert: the link is signed, absolute, and opens as HTML with the thumbnail.
    let link = event.status_url.expect("a status link");
    let rest = link.strip_prefix("https://images.example").expect("under PUBLIC_BASE_URL");
    let thumb = event.variants.iter().min_by_key(|v| v.width).and_then(|v| v.delivery_url.clone()).expect("thumb");
    assert!(thumb.starts_with("https://images.example/variants/"), "{thumb}");
    let page = browser()
        .get(format!("{}{rest}", app.address))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let html = page.text().await.expect("html");
    assert!(html.contains("<strong>succeeded</strong>") && html.contains(&thumb), "{html}");
}

#[tokio::test]
async fn switching_a_tenant_to_signed_closes_its_public_urls_once_reprocessed() {
    // Arrange: an image delivered publicly.
    let dir = TempDir::new().expect("temp dir");
    let app = TestApp::spawn(&base_settings(dir.path(), db::sqlite(&dir))).await;
    let image = processed(&app, "kleiber.jpg").await;
    let thumb = |image: &serde_json::Value| {
        let variants = image["variants"].as_array().expect("variants");
        let v = variants.iter().find(|v| v["preset"] == "thumb").expect("thumb");
        absolute(&app, v["delivery_url"].as_str().expect("url"))
    };
    let public = thumb(&image);
    let client = browser();
    assert_eq!(client.get(&public).send().await.expect("get").status(), 200);

    // Act: the tenant signs from now on, and its thumbs are remade.
    pipeline::tenants::set_delivery(&app.backends.db, pipeline::tenants::DEFAULT_TENANT, Some(Mode::Signed))
        .await
        .expect("signed");
    let reprocess = app
        .http
        .post(format!("{}/v1/admin/reprocess", app.address))
        .bearer_auth(&app.admin_key)
        .json(&serde_json::json!({ "preset": "thumb" }))
        .send()
        .await
        .expect("reprocess");
    assert_eq!(reprocess.status(), 200, "{:?}", reprocess.text().await);
    app.worker.drain().await.expect("drain");

    // Assert: the old public URL is gone; the new one is signed and opens.
    let again = app.get_json(&format!("/v1/images/{}", image["id"].as_str().expect("id")), 200).await;
    let signed = thumb(&again);
    assert!(signed.contains("/private/") && signed.contains("Signature="), "{signed}");
    assert_eq!(client.get(&signed).send().await.expect("get").status(), 200);
    assert_problem(client.get(&public).send().await.expect("get"), 404, "not-found").await;
}
