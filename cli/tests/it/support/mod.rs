//! Test fixtures: fresh databases, emulator resources with unique names,
//! the app on port 0, and event sinks.

pub mod aws;
pub mod binary;
pub mod db;
pub mod faults;

use std::path::{Path, PathBuf};
use std::time::Duration;

use api::Application;
use entities::api_keys::Scope;
use pipeline::event::Event;
use pipeline::tenants::DEFAULT_TENANT;
use pipeline::{Backends, Settings};
use tokio::sync::mpsc;
use uuid::Uuid;

/// A file under `testdata/`.
pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(name)
}

/// The shared Redis the cache tests use: `TEST_REDIS_URL` (which
/// `scripts/test` sets from `REDIS_URL`), else the machine's own.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// Settings for a test: port 0, short long-polls, and everything else as given.
pub fn base_settings(data_dir: &Path, database_url: String) -> Settings {
    let mut settings = Settings::embedded(data_dir.to_path_buf());
    settings.database_url = Some(database_url.into());
    settings.listen_addr = "127.0.0.1:0".parse().expect("valid address");
    settings.queue_wait_secs = 1;
    settings.visibility_timeout_secs = 30;
    settings.max_receive_count = 3;
    settings.worker_concurrency = Some(4);
    // The per-key rate limit (burst 40, then 20/s) is policy, tested on its
    // own (`each_key_has_its_own_rate_limit`). Lifted here, so a test that
    // uploads 50 images does not pass or fail with the machine's speed.
    settings.rate_limit_per_second = 100_000;
    settings.rate_limit_burst = 100_000;
    settings.tenant_rate_limit_per_second = 100_000;
    settings.tenant_rate_limit_burst = 100_000;
    // Likewise the limit of callers without a key (`edge.rs` tests it).
    settings.edge.anonymous_rate_limit_per_second = 100_000;
    settings.edge.anonymous_rate_limit_burst = 100_000;
    settings
}

/// The app under test: the API on a free port, and a worker to drive by hand.
pub struct TestApp {
    pub address: String,
    pub backends: Backends,
    pub worker: worker::Worker,
    /// Sends the client key with every request.
    pub http: reqwest::Client,
    /// A client-scope key (the one `http` sends).
    pub client_key: String,
    /// An admin-scope key.
    pub admin_key: String,
}

impl TestApp {
    /// Connects the backends, migrates, and serves the API in the background.
    pub async fn spawn(settings: &Settings) -> Self {
        let backends = Backends::connect(settings).await.expect("backends connect");
        pipeline::db::migrate(&backends.db).await.expect("migrations apply");
        let app = Application::build(settings, backends.clone()).await.expect("api binds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let worker = worker::Worker::new(backends.clone(), settings).await.expect("worker starts");
        // Webhooks go out in the background, as in a worker process.
        tokio::spawn(worker.clone().deliver_webhooks());
        let (_, client_key) =
            pipeline::api_keys::create(&backends.db, DEFAULT_TENANT, "tests", Scope::Client).await.expect("client key");
        let (_, admin_key) = pipeline::api_keys::create(&backends.db, DEFAULT_TENANT, "tests (admin)", Scope::Admin)
            .await
            .expect("admin key");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {client_key}").parse().expect("header value"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self { address, backends, worker, http, client_key, admin_key }
    }

    /// Serves a second API on `backends` (the same database, say, with a
    /// store or queue that fails on purpose); returns its address.
    pub async fn serve_api(settings: &Settings, backends: Backends) -> String {
        let app = Application::build(settings, backends).await.expect("api binds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        address
    }

    /// Asks the API at `base` for a presigned PNG upload of `length` bytes;
    /// returns the URL to PUT to and the job's id.
    pub async fn upload_ticket(&self, base: &str, length: usize) -> (String, String) {
        let ticket: serde_json::Value = self
            .http
            .post(format!("{base}/v1/uploads"))
            .json(&serde_json::json!({ "content_type": "image/png", "content_length": length }))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("ticket");
        let url = ticket["upload"]["url"].as_str().expect("url").to_owned();
        (url, ticket["job"]["id"].as_str().expect("job id").to_owned())
    }

    /// Puts a testdata file in the store and enqueues its job directly, as
    /// an upload that never passed through the API's checks would arrive
    /// (a client's direct PUT to S3). Returns the job id.
    pub async fn ingest(&self, file: &str) -> Uuid {
        let body = std::fs::read(testdata(file)).expect("testdata file");
        let (image_id, job_id) = (Uuid::now_v7(), Uuid::now_v7());
        let source_key = pipeline::keys::original(image_id);
        let meta = pipeline::store::ObjectMeta { content_type: "image/jpeg".into(), cache_control: None };
        self.backends.store.put(&source_key, body.clone().into(), &meta).await.expect("store the original");
        let upload_tenant = pipeline::tenants::DEFAULT_TENANT;
        let upload = pipeline::jobs::NewUpload {
            tenant_id: upload_tenant,
            image_id,
            job_id,
            sha256: String::new(),
            bytes: body.len() as i64,
            idempotency_key: None,
            request_fingerprint: None,
            api_key_id: None,
            awaiting_upload: false,
            deduplicate: false,
            client: Default::default(),
        };
        pipeline::jobs::record_upload(&self.backends.db, upload).await.expect("record the upload");
        let message = pipeline::message::JobMessage::new(job_id, image_id, source_key);
        let message = pipeline::queue::Outgoing::new(message.to_body(), Some(&upload_tenant.to_string()));
        self.backends.queue.send(&message).await.expect("enqueue");
        job_id
    }

    /// Uploads a testdata file as a raw body; returns the response.
    pub async fn upload_raw(&self, file: &str, content_type: &str) -> reqwest::Response {
        let body = std::fs::read(testdata(file)).expect("testdata file");
        self.http
            .post(format!("{}/v1/images", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("upload request")
    }

    /// Uploads a testdata file as a multipart `file` field; returns the response.
    pub async fn upload_multipart(&self, file: &str, content_type: &str) -> reqwest::Response {
        let body = std::fs::read(testdata(file)).expect("testdata file");
        let boundary = format!("b{}", Uuid::new_v4().simple());
        let mut form = Vec::new();
        form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
        form.extend_from_slice(&body);
        form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.http
            .post(format!("{}/v1/images", self.address))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(form)
            .send()
            .await
            .expect("upload request")
    }

    /// Uploads and checks the `202 Accepted` contract; returns the job id.
    pub async fn accepted(&self, response: reqwest::Response) -> Uuid {
        assert_eq!(response.status(), 202, "upload not accepted: {:?}", response.text().await);
        let location = response.headers()["location"].to_str().expect("ascii location").to_owned();
        let body: serde_json::Value = response.json().await.expect("json body");
        let job_id: Uuid = body["id"].as_str().and_then(|s| s.parse().ok()).expect("job id in body");
        assert_eq!(location, format!("/v1/jobs/{job_id}"));
        assert_eq!(body["status"], "queued");
        job_id
    }

    /// `GET` a path and parse its JSON body, asserting the status.
    pub async fn get_json(&self, path: &str, status: u16) -> serde_json::Value {
        let response = self.http.get(format!("{}{path}", self.address)).send().await.expect("get request");
        assert_eq!(response.status(), status, "GET {path}");
        response.json().await.expect("json body")
    }
}

/// Checks a `application/problem+json` answer's status and stable code;
/// returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status(), status, "{}", response.url());
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem json");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}

/// Receives events POSTed to a webhook, the way a subscriber's endpoint would.
pub struct WebhookSink {
    pub url: String,
    events: mpsc::UnboundedReceiver<Event>,
}

impl WebhookSink {
    /// Starts an HTTP receiver on a free port.
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(event): axum::Json<Event>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(event);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let url = format!("http://{}/hook", listener.local_addr().expect("sink address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, events: rx }
    }

    /// Waits for exactly `n` events, then checks no more arrive for a moment.
    pub async fn take_exactly(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::new();
        while events.len() < n {
            let event = tokio::time::timeout(Duration::from_secs(30), self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} events arrived", events.len()))
                .expect("sink open");
            events.push(event);
        }
        let extra = tokio::time::timeout(Duration::from_millis(500), self.events.recv()).await;
        assert!(extra.is_err(), "an extra event arrived: {extra:?}");
        events
    }
}

/// How a [`RawSink`] answers.
#[derive(Clone, Copy)]
pub enum SinkBehaviour {
    /// 204 at once.
    Accept,
    /// 503 for the first `n` requests, then 204.
    FailFirst(usize),
    /// Never answers (the client times out).
    Hang,
}

/// An HTTP receiver that records every JSON body POSTed to it.
pub struct RawSink {
    pub url: String,
    bodies: mpsc::UnboundedReceiver<serde_json::Value>,
    pub attempts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RawSink {
    pub async fn start(behaviour: SinkBehaviour) -> Self {
        use std::sync::atomic::Ordering;
        let (tx, rx) = mpsc::unbounded_channel();
        let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = attempts.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let tx = tx.clone();
                let attempt = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    match behaviour {
                        SinkBehaviour::Hang => std::future::pending::<()>().await,
                        SinkBehaviour::FailFirst(n) if attempt <= n => {
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        _ => {}
                    }
                    let _ = tx.send(body);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let url = format!("http://{}/hook", listener.local_addr().expect("sink address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, bodies: rx, attempts }
    }

    /// Waits for exactly `n` accepted bodies, then checks no more arrive for a moment.
    pub async fn take_exactly(&mut self, n: usize) -> Vec<serde_json::Value> {
        let mut bodies = Vec::new();
        while bodies.len() < n {
            let body = tokio::time::timeout(Duration::from_secs(30), self.bodies.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} bodies arrived", bodies.len()))
                .expect("sink open");
            bodies.push(body);
        }
        let extra = tokio::time::timeout(Duration::from_millis(500), self.bodies.recv()).await;
        assert!(extra.is_err(), "an extra body arrived: {extra:?}");
        bodies
    }
}
