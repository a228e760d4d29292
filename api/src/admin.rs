//! The operators' endpoints: the same replays as the CLI, behind the admin
//! key (`Authorization: Bearer $ADMIN_API_KEY`). They run to completion and
//! answer with the run's summary; for very large runs prefer the CLI.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use entities::jobs::JobStatus;
use pipeline::event::ReplaySummary;
use pipeline::replay::{DlqMode, Operator, ReplayError, Silent};
use pipeline::repo::JobFilter;
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

type SharedState = Arc<AppState>;

pub(crate) fn router(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/replay/dlq", post(replay_dlq))
        .route("/replay/jobs", post(replay_jobs))
        .route("/reprocess", post(reprocess))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

/// Compares in constant time, so response timing does not reveal the key.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_admin(State(state): State<SharedState>, request: Request, next: Next) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let expected = state.admin_key.as_ref().ok_or(ApiError::Forbidden)?;
    if !same(presented.trim().as_bytes(), expected.expose().as_bytes()) {
        return Err(ApiError::Forbidden);
    }
    Ok(next.run(request).await)
}

fn operator(state: &AppState) -> Operator {
    Operator::new(state.backends.clone(), state.presets.clone(), state.app_env.clone())
}

fn failed(err: ReplayError) -> ApiError {
    match err {
        ReplayError::UnknownPreset(_) => ApiError::Unprocessable(err.to_string()),
        ReplayError::NoDeadLetterQueue | ReplayError::MoveTaskUnsupported => ApiError::Conflict(err.to_string()),
        other => ApiError::Unavailable(other.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DlqRequest {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    max_per_second: Option<u32>,
    #[serde(default)]
    dry_run: bool,
}

async fn replay_dlq(
    State(state): State<SharedState>,
    Json(body): Json<DlqRequest>,
) -> Result<Json<ReplaySummary>, ApiError> {
    let mode = match body.mode.as_deref().unwrap_or("auto") {
        "auto" => DlqMode::Auto,
        "move-task" => DlqMode::MoveTask,
        "copy" => DlqMode::Copy,
        other => return Err(ApiError::BadRequest(format!("mode {other:?} is not auto, move-task or copy"))),
    };
    let summary =
        operator(&state).replay_dlq(mode, body.max_per_second, body.dry_run, &Silent).await.map_err(failed)?;
    Ok(Json(summary))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsRequest {
    #[serde(default)]
    statuses: Vec<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    error_code: Option<String>,
    image_id: Option<Uuid>,
    #[serde(default)]
    max_per_second: Option<u32>,
    #[serde(default)]
    dry_run: bool,
}

async fn replay_jobs(
    State(state): State<SharedState>,
    Json(body): Json<JobsRequest>,
) -> Result<Json<ReplaySummary>, ApiError> {
    let statuses = if body.statuses.is_empty() { vec!["failed".to_owned(), "dead".to_owned()] } else { body.statuses };
    let statuses = statuses
        .iter()
        .map(|s| match s.as_str() {
            "failed" => Ok(JobStatus::Failed),
            "dead" => Ok(JobStatus::Dead),
            other => Err(ApiError::BadRequest(format!("status {other:?} is not failed or dead"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let filter = JobFilter {
        statuses,
        since: body.since,
        until: body.until,
        error_code: body.error_code,
        image_id: body.image_id,
    };
    let summary =
        operator(&state).replay_jobs(&filter, body.max_per_second, body.dry_run, &Silent).await.map_err(failed)?;
    Ok(Json(summary))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReprocessRequest {
    preset: String,
    #[serde(default)]
    stale_only: bool,
    #[serde(default)]
    resume: bool,
    #[serde(default)]
    page_size: Option<u64>,
    #[serde(default)]
    max_per_second: Option<u32>,
    #[serde(default)]
    dry_run: bool,
}

async fn reprocess(
    State(state): State<SharedState>,
    Json(body): Json<ReprocessRequest>,
) -> Result<Json<ReplaySummary>, ApiError> {
    let summary = operator(&state)
        .reprocess(
            &body.preset,
            body.stale_only,
            body.resume,
            body.page_size.unwrap_or(500),
            body.max_per_second,
            body.dry_run,
            &Silent,
        )
        .await
        .map_err(failed)?;
    Ok(Json(summary))
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn keys_compare_equal_only_when_identical() {
        assert!(same(b"secret-key", b"secret-key"));
        assert!(!same(b"secret-key", b"secret-kez"));
        assert!(!same(b"secret", b"secret-key"));
    }
}
