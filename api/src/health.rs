//! Liveness and readiness.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, SharedState};

/// Liveness.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::health))]
pub(crate) struct Health {
    status: &'static str,
}

/// Readiness and what it checked.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::readiness))]
pub(crate) struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    checks: ReadinessChecks,
}

/// Whether each dependency answered.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[schema(examples(crate::examples::readiness_checks))]
pub(crate) struct ReadinessChecks {
    database: bool,
    queue: bool,
    store: bool,
}

/// Liveness: the process answers.
///
/// Always `200` while the process runs; it checks nothing behind it, so a
/// load balancer or ECS can tell a hung task from a slow dependency.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// How long one round of readiness checks answers `/readyz`.
const READINESS_TTL: Duration = Duration::from_secs(1);

/// The latest readiness checks. `/readyz` needs no key, so its three
/// backend calls run at most once per [`READINESS_TTL`] however often it is
/// asked, and callers arriving during a round wait for that round.
#[derive(Default)]
pub(crate) struct ReadinessCache {
    latest: tokio::sync::Mutex<Option<(Instant, ReadinessChecks)>>,
}

impl ReadinessCache {
    async fn checks(&self, state: &AppState) -> ReadinessChecks {
        let mut latest = self.latest.lock().await;
        if let Some((at, checks)) = *latest
            && at.elapsed() < READINESS_TTL
        {
            return checks;
        }
        let backends = &state.backends;
        let (database, queue, store) =
            tokio::join!(backends.db.ping(), backends.queue.approximate_depth(), backends.store.probe());
        let checks = ReadinessChecks { database: database.is_ok(), queue: queue.is_ok(), store: store.is_ok() };
        *latest = Some((Instant::now(), checks));
        checks
    }
}

/// Readiness: the database, the queue and the store all answer.
///
/// The checks run at most once a second, whatever the polling rate. A `503`
/// names the dependency that failed (`false` in `checks`), never its
/// internal error; the server's logs carry that.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "A dependency is unreachable", body = Readiness)))]
pub(crate) async fn readyz(State(state): State<SharedState>) -> Response {
    let checks = state.readiness.checks(&state).await;
    let ready = checks.database && checks.queue && checks.store;
    let body = Readiness { status: if ready { "ready" } else { "unavailable" }, checks };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}
