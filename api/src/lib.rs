//! # api
//!
//! The thin HTTP API. It streams an upload into the object store, records
//! the image and its job, enqueues a message that carries only ids and keys,
//! and answers `202 Accepted` at once: no image work happens here.
//!
//! # Layout
//! - [`Application`]: binds the listener, builds the router, and serves until stopped.
//! - `routes`: the handlers.
//! - `admin`: the operators' endpoints (replay, reprocess), behind the admin key.
//! - `upload`: the streaming body with its hash and size limit.
//! - [`error`]: [`error::ApiError`], rendered as `application/problem+json`.

mod admin;
pub mod error;
mod routes;
mod upload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pipeline::{Backends, Settings};
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    backends: Backends,
    max_upload_bytes: u64,
    /// Bearer token of the admin endpoints; `None` disables them.
    admin_key: Option<pipeline::settings::Secret>,
    presets: Vec<imaging::Preset>,
    app_env: String,
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
        let state = Arc::new(AppState {
            backends,
            max_upload_bytes: settings.max_upload_bytes,
            admin_key: settings.admin_api_key.clone(),
            presets,
            app_env: settings.app_env.clone(),
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
