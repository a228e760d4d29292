//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::SharedState;

/// Liveness.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    status: &'static str,
}

/// Readiness and what it checked.
#[derive(Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    checks: ReadinessChecks,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ReadinessChecks {
    database: bool,
    queue: bool,
    store: bool,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database, the queue and the store all answer. A 503 names the failing
/// dependency, never its internal error.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "A dependency is unreachable", body = Readiness)))]
pub(crate) async fn readyz(State(state): State<SharedState>) -> Response {
    let backends = &state.backends;
    let database = backends.db.ping().await.is_ok();
    let queue = backends.queue.approximate_depth().await.is_ok();
    let store = backends.store.probe().await.is_ok();
    let ready = database && queue && store;
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks: ReadinessChecks { database, queue, store },
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}
