//! # api
//!
//! The thin HTTP API. It streams an upload into the object store, records
//! the image and its job, enqueues a message that carries only ids and keys,
//! and answers `202 Accepted` at once: no image work happens here.
//!
//! # Layout
//! - This file: [`Application`], which binds the listener and serves, and
//!   the router, which lists every endpoint and the layers around them.
//! - Handlers, by resource: `jobs` (`/v1/jobs`), `images` (`/v1/images`,
//!   uploads through the API, variants and deletion), `presigned` (`/v1/uploads`: the
//!   presigned PUT, and the API's own signed PUT when objects are on local
//!   disk), `admin` (replay and reprocess, for admin keys) and `health`.
//! - `status`: a job's keyless, signed status page for the browser that uploaded it.
//! - `delivery`: the keyless delivery paths pages show variants by, when
//!   no CDN serves them (`/variants/…`, and `/private/…` with a signature).
//! - `intake`: what both ways of uploading share: idempotency, quota
//!   charges, the body sink, enqueueing.
//! - `meter`: the streaming body with its sniffing, hash and size limit.
//! - `views`: the JSON bodies clients see; `read_cache`: the read-through
//!   cache in front of the job and image views.
//! - `auth`: API keys, scopes, the tenant each request acts for (and an
//!   admin's `?tenant=`), the per-key and per-tenant rate limits.
//! - `metrics`: Prometheus metrics at `/metrics`.
//! - This file also runs the sweep that finishes image deletions cut short.
//! - [`openapi`]: the OpenAPI 3.1 document at `/openapi.json`, with the
//!   shared error responses of `responses`.
//! - [`error`]: [`error::ApiError`], rendered as `application/problem+json`.

mod admin;
mod auth;
mod delivery;
pub mod error;
mod examples;
mod health;
mod images;
mod intake;
mod jobs;
pub mod limits;
mod meter;
mod metrics;
pub mod openapi;
mod openapi_3_0;
mod presigned;
mod read_cache;
mod responses;
mod status;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use pipeline::retention;
use pipeline::{Backends, Settings};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::error::ApiError;

/// What every handler can reach.
pub(crate) struct AppState {
    backends: Backends,
    max_upload_bytes: u64,
    auth: auth::Auth,
    metrics: metrics::Metrics,
    presets: Vec<imaging::Preset>,
    app_env: String,
    public_base_url: Option<String>,
    upload_url_ttl: Duration,
    upload_signer: presigned::UploadSigner,
    readiness: health::ReadinessCache,
}

pub(crate) type SharedState = Arc<AppState>;

/// Largest JSON request body (upload requests, admin runs).
const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Every endpoint, and the layers around them.
/// What lets a page on one of `origins` PUT to the API's signed upload URL
/// (local disk; on S3 the bucket's CORS rule does it).
fn upload_cors(origins: &[String]) -> std::io::Result<CorsLayer> {
    let origins = origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            HeaderValue::from_str(o.trim()).map_err(|_| std::io::Error::other(format!("CORS_ALLOWED_ORIGINS: {o:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::PUT])
        .allow_headers([header::CONTENT_TYPE])
        .expose_headers([header::LOCATION])
        .max_age(Duration::from_secs(600)))
}

fn router(state: SharedState, request_timeout: Duration, upload_cors: CorsLayer) -> Router {
    let client = Router::new()
        .route("/v1/jobs", get(jobs::list_jobs))
        .route("/v1/jobs/{id}", get(jobs::get_job))
        // Uploads are limited while they stream (see `Meter`), not by buffering.
        .route("/v1/images", post(images::create_image).layer(DefaultBodyLimit::disable()).get(images::list_images))
        .route("/v1/images/{id}", get(images::get_image).delete(images::delete_image))
        .route("/v1/images/{id}/variants/{preset}", get(images::get_variant))
        .route("/v1/uploads", post(presigned::create_upload))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_client));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::serve))
        .route("/openapi.json", get(openapi::serve))
        .route("/openapi-3.0.json", get(openapi::serve_3_0))
        // Authenticated by the URL's own signature, like a presigned S3 PUT.
        .route(
            "/v1/uploads/{id}",
            put(presigned::receive_upload)
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
                .layer::<_, std::convert::Infallible>(upload_cors),
        )
        // Signed by the upload's answer: one job, read-only, for a browser.
        .route("/v1/status/{id}", get(status::get_status))
        // Delivery URLs for `<img src>`: no key; a signed tenant's need their signature.
        .route("/variants/{*rest}", get(delivery::public))
        .route("/private/{*rest}", get(delivery::signed))
        .merge(client)
        .nest("/v1/admin", admin::router(state.clone()))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let request_id =
                        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    let span = tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id
                    );
                    // A caller's trace continues here (W3C `traceparent`).
                    let traceparent = request.headers().get(pipeline::trace::TRACEPARENT).and_then(|v| v.to_str().ok());
                    pipeline::trace::continue_from(&span, traceparent);
                    span
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                // A bug answers 500 (problem+json), never a dropped connection.
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("a handler panicked");
                    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
                }))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout)),
        )
}

/// An id from the path, or 400.
fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest(format!("{raw:?} is not a valid id")))
}

/// The API, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: SharedState,
    edge: pipeline::settings::EdgeLimits,
}

impl Application {
    /// Binds `settings.listen_addr` (port 0 picks a free port) and builds the router.
    ///
    /// # Errors
    /// When the address cannot be bound, or the presets setting is invalid.
    pub async fn build(settings: &Settings, backends: Backends) -> std::io::Result<Self> {
        let presets = settings.presets().map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(settings.listen_addr).await?;
        let signing_key = match &settings.upload_signing_key {
            Some(key) => key.expose().as_bytes().to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
                key
            }
        };
        let state = Arc::new(AppState {
            backends,
            max_upload_bytes: settings.max_upload_bytes,
            auth: auth::Auth::new(
                settings.api_auth,
                settings.admin_api_key.clone(),
                auth::Rates {
                    per_key: limits::Rate {
                        per_second: settings.rate_limit_per_second,
                        burst: settings.rate_limit_burst,
                    },
                    per_tenant: limits::Rate {
                        per_second: settings.tenant_rate_limit_per_second,
                        burst: settings.tenant_rate_limit_burst,
                    },
                    anonymous: limits::Rate {
                        per_second: settings.edge.anonymous_rate_limit_per_second,
                        burst: settings.edge.anonymous_rate_limit_burst,
                    },
                },
                settings.edge.trusted_proxy_header.as_deref(),
            ),
            metrics: metrics::Metrics::default(),
            presets,
            app_env: settings.app_env.clone(),
            public_base_url: settings.public_base_url.clone(),
            upload_url_ttl: Duration::from_secs(settings.upload_url_ttl_secs),
            upload_signer: presigned::UploadSigner::new(signing_key),
            readiness: health::ReadinessCache::default(),
        });
        let cors = upload_cors(&settings.cors_allowed_origins)?;
        let router = router(state.clone(), Duration::from_secs(120), cors);
        Ok(Self { listener, router, state, edge: settings.edge.clone() })
    }

    /// The address the API listens on.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    ///
    /// This is `axum::serve` with the settings it does not expose:
    /// - hyper's read buffer per connection is capped at
    ///   [`READ_BUFFER_BYTES`]. Left at hyper's default it grew towards
    ///   400 KiB on every connection sending an upload, and the file store's
    ///   write buffer followed the chunks cut from it: about 1.8 MiB of
    ///   memory per upload in flight, however fast the disk took the bytes;
    /// - a client has `HTTP_HEADER_READ_TIMEOUT_SECS` to send each request's
    ///   head, and an idle keep-alive connection is closed after as long
    ///   (hyper starts that timer whenever it waits for a head), so slow
    ///   clients cannot hold connections open;
    /// - at most `HTTP_MAX_CONNECTIONS` connections are served at once;
    ///   the next waits in the listen backlog until one closes;
    /// - a connection's `HTTP_MAX_REQUESTS_PER_CONNECTION`th answer carries
    ///   `Connection: close`;
    /// - each request carries its peer's address ([`ConnectInfo`]), which
    ///   the per-address limit of callers without a key reads.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.max_buf_size(READ_BUFFER_BYTES)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(self.edge.header_read_timeout_secs.max(1)));
        let connections = hyper_util::server::graceful::GracefulShutdown::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(self.edge.max_connections.max(1)));
        let max_requests = self.edge.max_requests_per_connection.max(1);
        let mut shutdown = std::pin::pin!(shutdown);
        let sweeper = tokio::spawn(upkeep(self.state.clone()));
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        accept_failed(error).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let service = connection_service(self.router.clone(), peer, max_requests);
            let connection = connections.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection ended with an error");
                }
                drop(slot);
            });
        }
        // No new connections; idle ones close, busy ones finish their request.
        drop(self.listener);
        sweeper.abort();
        connections.shutdown().await;
        Ok(())
    }
}

/// The router as one connection serves it: each request learns the peer's
/// address, and the `max_requests`th answer closes the connection.
fn connection_service(
    router: Router,
    peer: SocketAddr,
    max_requests: u32,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response, std::convert::Infallible>> + Send,
> {
    use tower::ServiceExt;
    let served = std::sync::atomic::AtomicU32::new(0);
    hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let count = served.fetch_add(1, std::sync::atomic::Ordering::Relaxed).saturating_add(1);
        let router = router.clone();
        async move {
            let mut response = router.oneshot(request.map(axum::body::Body::new)).await?;
            if count >= max_requests {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        }
    })
}

/// How often each API process runs its upkeep ([`upkeep`]).
const UPKEEP_PERIOD: Duration = Duration::from_secs(60);

/// How many items one pass of each upkeep task handles at most.
const UPKEEP_BATCH: u64 = 100;

/// The API's upkeep, each minute: it finishes the image deletions that the
/// store cut short over a minute ago, removes originals past their
/// retention, and removes variants whose replacements have outlived the
/// grace period. It runs in the API because the API's role is the one that
/// may list and delete an image's objects. Several API processes doing the
/// same upkeep delete nothing twice: each removal is recorded by a
/// conditional update, and a deletion is announced under one event id.
async fn upkeep(state: SharedState) {
    let mut ticks = tokio::time::interval(UPKEEP_PERIOD);
    let current: Vec<(String, String)> = state.presets.iter().map(|p| (p.name.clone(), p.version())).collect();
    loop {
        ticks.tick().await;
        let backends = &state.backends;
        let (now, grace) = (chrono::Utc::now(), chrono::TimeDelta::minutes(1));
        let finished = pipeline::deletion::finish_pending(backends, grace, UPKEEP_BATCH, &state.app_env).await;
        log_upkeep("finished image deletions cut short", finished);
        log_upkeep(
            "removed originals past their retention",
            retention::sweep_originals(backends, now, UPKEEP_BATCH).await,
        );
        let grace = backends.retention.stale_variants_grace;
        let stale = retention::sweep_stale_variants(backends, &current, grace, now, UPKEEP_BATCH).await;
        log_upkeep("removed superseded variants", stale);
    }
}

fn log_upkeep(what: &'static str, done: Result<usize, sea_orm::DbErr>) {
    match done {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "{what}"),
        Err(err) => tracing::warn!(error = %err, "upkeep failed: {what}"),
    }
}

/// The most a connection buffers of what the client sent and the handler
/// has not taken yet. A request's head must fit in it (8 KiB is hyper's
/// floor); bodies stream through it in chunks of at most this size.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// A failed `accept`. A client that gave up before it was accepted is no
/// error of ours; anything else (out of file descriptors, most likely) is
/// logged, and the loop pauses so it does not spin while the condition lasts.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
