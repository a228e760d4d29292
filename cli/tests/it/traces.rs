//! One upload, one trace: on both backends, an OTLP receiver collects the
//! spans the service exports (`pipeline::trace`, as the binary installs it)
//! and the test follows the upload's trace from the POST, through the
//! queue and the worker's stages, across a retry, to the publish. The trace
//! id shows in the job resource and the event, and the event's carriers
//! (the webhook's header, SNS's message attribute) continue the trace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use pipeline::Settings;
use pipeline::trace::{Export, Telemetry, Tracing};
use prost::Message;
use tempfile::TempDir;
use tokio::sync::mpsc;

use crate::support::aws::AwsFixture;
use crate::support::faults::FlakyStore;
use crate::support::{TestApp, base_settings, db};

/// The caller's span: the upload continues this trace.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP traces endpoint that keeps every span it is sent.
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: bytes::Bytes| {
                let kept = kept.clone();
                async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                    let mut kept = kept.lock().expect("spans");
                    for resource in request.resource_spans {
                        for scope in resource.scope_spans {
                            kept.extend(scope.spans);
                        }
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind collector");
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { endpoint, spans }
    }

    /// Installs the service's telemetry, exporting here.
    async fn install(&self) -> Tracing {
        let export = Export::OtlpTo(self.endpoint.clone());
        let telemetry = Telemetry { export, ..Telemetry::from_env("info,sqlx=warn,aws_smithy_runtime=warn") };
        tokio::task::spawn_blocking(move || telemetry.init().expect("telemetry installs"))
            .await
            .expect("telemetry thread")
    }

    /// Every span of trace `trace_id` received so far, once `tracing` has flushed.
    async fn trace(&self, tracing: &Arc<Tracing>, trace_id: &str) -> Vec<Span> {
        let flushing = tracing.clone();
        tokio::task::spawn_blocking(move || flushing.flush()).await.expect("flush");
        self.received(trace_id)
    }

    /// Every span of trace `trace_id` received so far.
    fn received(&self, trace_id: &str) -> Vec<Span> {
        let spans = self.spans.lock().expect("spans");
        spans.iter().filter(|s| hex::encode(&s.trace_id) == trace_id).cloned().collect()
    }
}

/// A webhook receiver that keeps each body with its `traceparent` header.
async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<(serde_json::Value, Option<String>)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<serde_json::Value>| {
            let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let _ = tx.send((body, traceparent));
            async { axum::http::StatusCode::NO_CONTENT }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind webhook");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn span_id(span: &Span) -> String {
    hex::encode(&span.span_id)
}

fn parent_id(span: &Span) -> String {
    hex::encode(&span.parent_span_id)
}

/// The spans of one trace, by name.
struct Trace {
    spans: Vec<Span>,
}

impl Trace {
    fn named(&self, name: &str) -> Vec<&Span> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    fn names(&self) -> Vec<&str> {
        self.spans.iter().map(|s| s.name.as_str()).collect()
    }

    fn by_id(&self, id: &str) -> Option<&Span> {
        self.spans.iter().find(|s| span_id(s) == id)
    }

    /// Whether `span` descends from `ancestor` within the trace.
    fn descends(&self, span: &Span, ancestor: &Span) -> bool {
        let mut at = self.by_id(&parent_id(span));
        while let Some(parent) = at {
            if span_id(parent) == span_id(ancestor) {
                return true;
            }
            at = self.by_id(&parent_id(parent));
        }
        false
    }

    fn parent_of(&self, span: &Span) -> &Span {
        self.by_id(&parent_id(span)).unwrap_or_else(|| panic!("{:?} has a parent in the trace", span.name))
    }
}

/// Uploads `file` as a client in the trace of `CLIENT_SPAN` would.
async fn traced_upload(app: &TestApp, file: &str, content_type: &str) -> uuid::Uuid {
    let response = app
        .http
        .post(format!("{}/v1/images", app.address))
        .header("content-type", content_type)
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .body(std::fs::read(crate::support::testdata(file)).expect("testdata"))
        .send()
        .await
        .expect("upload");
    app.accepted(response).await
}

/// Uploads with the client's `traceparent`, runs the worker (its first
/// store write fails, so the job runs twice) until the job succeeds, and
/// checks the trace it exported. Returns the trace and the job resource.
async fn upload_and_trace(
    collector: &Collector,
    tracing: &Arc<Tracing>,
    app: &TestApp,
    settings: &Settings,
) -> (Trace, serde_json::Value) {
    let mut backends = app.backends.clone();
    backends.store = Arc::new(FlakyStore::new(backends.store.clone(), 1, false));
    let worker = worker::Worker::new(backends, settings).await.expect("worker");
    let id = traced_upload(app, "orient3.jpg", "image/jpeg").await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let job = app.get_json(&format!("/v1/jobs/{id}"), 200).await;
        if job["status"] == "succeeded" {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline, "the job never succeeded: {job}");
        worker.run_once().await.expect("receive");
    };
    assert_eq!(job["attempts"], 2, "the first attempt failed and was retried: {job}");

    let mut spans = Vec::new();
    for _ in 0..50 {
        spans = collector.trace(tracing, CLIENT_TRACE).await;
        if spans.iter().any(|s| s.name == "publish") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let trace = Trace { spans };

    // The POST continues the caller's trace.
    let request = trace
        .named("request")
        .into_iter()
        .find(|s| parent_id(s) == CLIENT_SPAN)
        .unwrap_or_else(|| panic!("the upload's request span is the client span's child: {:?}", trace.names()));
    // Every span but the request has its parent inside the trace: one tree.
    for span in &trace.spans {
        if span_id(span) != span_id(request) {
            assert!(trace.descends(span, request), "{:?} hangs off the upload's request", span.name);
        }
    }
    // The worker received the message twice: the failed attempt and its retry.
    let messages = trace.named("message");
    assert_eq!(messages.len(), 2, "two receives, both in the trace: {:?}", trace.names());
    let jobs = trace.named("job");
    assert_eq!(jobs.len(), 2, "a job span per attempt: {:?}", trace.names());
    for job in &jobs {
        assert_eq!(trace.parent_of(job).name, "message");
    }
    // The retry's stages, each under its job span; the engine's under the engine.
    for stage in ["fetch", "engine", "store", "commit", "publish"] {
        let spans = trace.named(stage);
        assert!(!spans.is_empty(), "a {stage:?} span: {:?}", trace.names());
        for span in spans {
            assert_eq!(trace.parent_of(span).name, "job", "{stage:?} is a step of a job");
        }
    }
    assert_eq!(trace.named("commit").len(), 1, "only the retry got as far as the commit");
    for stage in ["decode", "resize", "encode"] {
        assert!(!trace.named(stage).is_empty(), "a {stage:?} span: {:?}", trace.names());
        for span in trace.named(stage) {
            assert_eq!(trace.parent_of(span).name, "engine", "{stage:?} is a stage of the engine");
        }
    }
    assert_eq!(job["trace_id"], CLIENT_TRACE, "the job resource names its trace: {job}");
    (trace, job)
}

/// The span the `traceparent` names, which must be in the trace.
fn named_span<'a>(trace: &'a Trace, traceparent: &str) -> &'a Span {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "a W3C traceparent: {traceparent}");
    assert_eq!(parts[1], CLIENT_TRACE, "the carrier continues the upload's trace");
    trace.by_id(parts[2]).unwrap_or_else(|| panic!("{traceparent} names a span of the trace"))
}

#[tokio::test]
async fn one_upload_is_one_trace_on_the_embedded_defaults() {
    let collector = Collector::start().await;
    let tracing = Arc::new(collector.install().await);
    let dir = TempDir::new().expect("temp dir");
    let (hook, mut deliveries) = webhook_receiver().await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.retry_base_delay_ms = 100;
    settings.webhook_url = Some(hook.into());
    let app = TestApp::spawn(&settings).await;

    upload_and_trace(&collector, &tracing, &app, &settings).await;

    let (event, traceparent) =
        tokio::time::timeout(Duration::from_secs(30), deliveries.recv()).await.expect("a webhook").expect("open");
    assert_eq!(event["trace_id"], CLIENT_TRACE, "the event names its trace: {event}");
    let traceparent = traceparent.expect("the webhook carries a traceparent header");
    // The header names the delivery's own span, exported once it ends.
    let mut trace = Trace { spans: Vec::new() };
    for _ in 0..50 {
        trace = Trace { spans: collector.trace(&tracing, CLIENT_TRACE).await };
        if trace.named("webhook").len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let webhook = named_span(&trace, &traceparent);
    assert_eq!(webhook.name, "webhook", "the header names the delivery's span");
    assert_eq!(trace.parent_of(webhook).name, "commit", "recorded by the commit that announced the job");
}

#[tokio::test]
async fn one_upload_is_one_trace_on_aws() {
    let collector = Collector::start().await;
    let tracing = Arc::new(collector.install().await);
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    settings.retry_base_delay_ms = 100;
    let app = TestApp::spawn(&settings).await;

    let (trace, _) = upload_and_trace(&collector, &tracing, &app, &settings).await;

    // The event on the topic carries the trace: in its body, and as the
    // publish span's `traceparent` message attribute.
    let events = aws.take_events_with_attributes(1).await;
    let (event, attributes) = &events[0];
    assert_eq!(event.trace_id.as_deref(), Some(CLIENT_TRACE), "the event names its trace: {event:?}");
    let traceparent = attributes.get("traceparent").expect("a traceparent message attribute");
    let publisher = named_span(&trace, traceparent);
    assert_eq!(publisher.name, "sns", "SNS's publish span");
    assert_eq!(trace.parent_of(publisher).name, "publish");
}

#[tokio::test]
async fn a_replay_is_a_new_trace_linked_to_its_original() {
    let collector = Collector::start().await;
    let tracing = Arc::new(collector.install().await);
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    // A job that fails for good, in the client's trace.
    traced_upload(&app, "truncated_prog.jpg", "image/jpeg").await;
    app.worker.drain().await.expect("drain");

    let operator = pipeline::replay::Operator::new(
        app.backends.clone(),
        settings.presets().expect("presets"),
        settings.app_env.clone(),
    );
    let failed = pipeline::jobs::JobFilter {
        statuses: vec![entities::jobs::JobStatus::Failed],
        ..pipeline::jobs::JobFilter::default()
    };
    let summary = operator.replay_jobs(&failed, None, false, &pipeline::replay::Silent).await.expect("replay");
    assert_eq!(summary.counts.get("enqueued"), Some(&1), "{summary:?}");
    app.worker.drain().await.expect("drain the replay");

    let flushing = tracing.clone();
    tokio::task::spawn_blocking(move || flushing.flush()).await.expect("flush");
    let spans = collector.spans.lock().expect("spans").clone();
    let replay_run = spans.iter().find(|s| s.name == "replay_jobs").expect("the operator's run is a span");
    let run_trace = hex::encode(&replay_run.trace_id);
    assert_ne!(run_trace, CLIENT_TRACE, "a replay starts a trace of its own");
    let replayed = spans
        .iter()
        .find(|s| s.name == "job" && hex::encode(&s.trace_id) == run_trace)
        .expect("the replayed job runs in the replay's trace");
    let linked: Vec<String> = replayed.links.iter().map(|l| hex::encode(&l.trace_id)).collect();
    assert_eq!(linked, [CLIENT_TRACE], "and links to the original's");
}

/// The JSON log lines in `path` (one object per line).
fn json_log(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("the log");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("a JSON log line ({e}): {line}")))
        .collect()
}

/// The line whose message is `message`, from its log.
fn line_saying<'a>(lines: &'a [serde_json::Value], message: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|line| line["message"] == message)
        .unwrap_or_else(|| panic!("a line saying {message:?} in {lines:#?}"))
}

/// Checks that `line` names the trace and the exported span it was logged in.
fn names_its_span(trace: &Trace, line: &serde_json::Value) {
    assert_eq!(line["trace_id"], CLIENT_TRACE, "the line names the upload's trace: {line}");
    let span_id = line["span_id"].as_str().unwrap_or_else(|| panic!("a span_id: {line}"));
    let span = trace.by_id(span_id).unwrap_or_else(|| panic!("{span_id} is a span of the trace: {:?}", trace.names()));
    assert_eq!(line["span"]["name"], span.name, "the span the line was logged in: {line}");
}

/// The operator's way in to "my photo never showed up": with
/// `LOG_FORMAT=json`, the binary's `api` and `worker` roles write every line
/// inside a traced span with that span's `trace_id` and `span_id`, so one
/// trace id finds the upload's lines in both processes' logs, and the spans
/// they were written in.
#[tokio::test]
async fn json_log_lines_name_the_trace_and_span_they_were_written_in() {
    use crate::support::binary::{Role, command, free_address, get_when_up, migrate_with_key};

    let collector = Collector::start().await;
    let dir = TempDir::new().expect("temp dir");
    let key = migrate_with_key(&dir);
    let traced = |role: &str| {
        let log = std::fs::File::create(dir.path().join(format!("{role}.log"))).expect("log file");
        let mut role = command(&dir, &[role]);
        role.env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &collector.endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stderr(log);
        role
    };
    let (api_address, worker_address) = (free_address(), free_address());
    let _api = Role(traced("api").env("LISTEN_ADDR", &api_address).spawn().expect("api starts"));
    let _worker = Role(traced("worker").env("METRICS_ADDR", &worker_address).spawn().expect("worker starts"));
    get_when_up(&format!("http://{api_address}/healthz")).await;

    // An upload that fails for good: the case an operator looks up.
    let http = reqwest::Client::new();
    let response = http
        .post(format!("http://{api_address}/v1/images"))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .body(std::fs::read(crate::support::testdata("truncated_prog.jpg")).expect("testdata"))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 202);
    let accepted: serde_json::Value = response.json().await.expect("the job");
    let job_url = format!("http://{api_address}/v1/jobs/{}", accepted["id"].as_str().expect("a job id"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let job: serde_json::Value =
            http.get(&job_url).bearer_auth(&key).send().await.expect("job").json().await.expect("json");
        if job["status"] == "failed" {
            assert_eq!(job["trace_id"], CLIENT_TRACE, "{job}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the job never failed: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Both processes export within their 100 ms batch delay; the receive
    // (`message`) is the last of the worker's spans to end.
    let mut trace = Trace { spans: Vec::new() };
    for _ in 0..100 {
        trace = Trace { spans: collector.received(CLIENT_TRACE) };
        if !trace.named("request").is_empty() && !trace.named("message").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let api = json_log(&dir.path().join("api.log"));
    let accepted = line_saying(&api, "upload accepted");
    names_its_span(&trace, accepted);
    let request = trace.named("request").into_iter().find(|s| parent_id(s) == CLIENT_SPAN).expect("the POST's span");
    let handler = trace.by_id(accepted["span_id"].as_str().unwrap_or_default()).expect("the line's span");
    let within = span_id(handler) == span_id(request) || trace.descends(handler, request);
    assert!(within, "logged while the POST was handled: {accepted}");

    let worker = json_log(&dir.path().join("worker.log"));
    names_its_span(&trace, line_saying(&worker, "job step failed"));
    names_its_span(&trace, line_saying(&worker, "job ended without variants"));
    // A line outside any trace names none.
    let started = line_saying(&worker, "worker started");
    assert!(started.get("trace_id").is_none() && started.get("span_id").is_none(), "{started}");
}
