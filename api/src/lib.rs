//! # api
//!
//! The thin HTTP API. It streams an upload into the object store, records
//! the image and its job, enqueues a message that carries only ids and keys,
//! and answers `202 Accepted` at once: no image work happens here.
//!
//! # Layout
//! - [`Application`]: binds the listener, builds the router, and serves until stopped.
//! - `routes`: the router and the client endpoints.
//! - `uploads`: presigned uploads (`POST /v1/uploads`, and the API's own
//!   signed PUT when objects are on local disk).
//! - `admin`: the operators' endpoints (replay, reprocess), for admin keys.
//! - `auth`: API keys, scopes and the per-key rate limit.
//! - `upload`: the streaming body with its sniffing, hash and size limit.
//! - `metrics`: Prometheus metrics at `/metrics`.
//! - [`openapi`]: the OpenAPI 3.1 document at `/openapi.json`.
//! - [`error`]: [`error::ApiError`], rendered as `application/problem+json`.

mod admin;
mod auth;
pub mod error;
mod metrics;
pub mod openapi;
mod routes;
mod upload;
mod uploads;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pipeline::{Backends, Settings};
use tokio::net::TcpListener;

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
    upload_signer: uploads::UploadSigner,
}

/// The API, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
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
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
            ),
            metrics: metrics::Metrics::default(),
            presets,
            app_env: settings.app_env.clone(),
            public_base_url: settings.public_base_url.clone(),
            upload_url_ttl: Duration::from_secs(settings.upload_url_ttl_secs),
            upload_signer: uploads::UploadSigner::new(signing_key),
        });
        Ok(Self { listener, router: routes::router(state, Duration::from_secs(120)) })
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
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}
