//! The operators' endpoints: the same replays as the CLI, for admin keys
//! (`image-service keys create --scope admin`, or `ADMIN_API_KEY`). They run
//! to completion and answer with the run's summary; for very large runs
//! prefer the CLI.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::middleware;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use entities::jobs::JobStatus;
use pipeline::event::ReplaySummary;
use pipeline::jobs::JobFilter;
use pipeline::replay::{DlqMode, Operator, ReplayError, Silent};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::responses::AdminProblems;
use crate::{AppState, SharedState};

pub(crate) fn router(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/replay/dlq", post(replay_dlq))
        .route("/replay/jobs", post(replay_jobs))
        .route("/reprocess", post(reprocess))
        .route_layer(middleware::from_fn_with_state(state, crate::auth::require_admin))
}

fn operator(state: &AppState) -> Operator {
    Operator::new(state.backends.clone(), state.presets.clone(), state.app_env.clone())
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(body)| body).map_err(|rejection| match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType("send application/json".into()),
        other => ApiError::BadRequest(other.body_text()),
    })
}

fn failed(err: ReplayError) -> ApiError {
    match err {
        ReplayError::UnknownPreset(_) => ApiError::Unprocessable(err.to_string()),
        ReplayError::NoDeadLetterQueue | ReplayError::MoveTaskUnsupported => ApiError::Conflict(err.to_string()),
        other => ApiError::Unavailable(other.into()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(crate::examples::dlq_request))]
pub(crate) struct DlqRequest {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    max_per_second: Option<u32>,
    #[serde(default)]
    dry_run: bool,
}

/// Redrive the dead-letter queues.
///
/// Moves the messages of both dead-letter queues (the job queue's and the
/// bulk lane's) to the bulk lane, which workers serve after new uploads, at most
/// `max_per_second`. `mode` picks how: SQS's own move task, a copy by the
/// operator, or `auto` (the move task where the queue offers it).
/// `dry_run` counts without moving.
#[utoipa::path(post, path = "/v1/admin/replay/dlq", tag = "admin", request_body = DlqRequest,
    responses((status = 200, description = "What the run did", body = ReplaySummary),
              AdminProblems))]
pub(crate) async fn replay_dlq(
    State(state): State<SharedState>,
    body: Result<Json<DlqRequest>, JsonRejection>,
) -> Result<Json<ReplaySummary>, ApiError> {
    let body = json_body(body)?;
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(crate::examples::jobs_request))]
pub(crate) struct JobsRequest {
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

/// Replay past jobs.
///
/// Re-enqueues past failed or dead jobs that match a filter (statuses, a
/// time range, an error code, an image): every tenant's, or with
/// `?tenant=NAME` only that tenant's. Each replay keeps its job's tenant.
/// `dry_run` counts without enqueueing.
#[utoipa::path(post, path = "/v1/admin/replay/jobs", tag = "admin", request_body = JobsRequest,
    responses((status = 200, description = "What the run did", body = ReplaySummary),
              AdminProblems))]
pub(crate) async fn replay_jobs(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<JobsRequest>, JsonRejection>,
) -> Result<Json<ReplaySummary>, ApiError> {
    let body = json_body(body)?;
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
        tenant_id: principal.acting_for,
    };
    let summary =
        operator(&state).replay_jobs(&filter, body.max_per_second, body.dry_run, &Silent).await.map_err(failed)?;
    Ok(Json(summary))
}

/// The most images a reprocess run reads per page: a page is held in memory.
const MAX_PAGE_SIZE: u64 = 10_000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(crate::examples::reprocess_request))]
pub(crate) struct ReprocessRequest {
    preset: String,
    #[serde(default)]
    stale_only: bool,
    #[serde(default)]
    resume: bool,
    /// Images read per page (default 500).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    page_size: Option<u64>,
    #[serde(default)]
    max_per_second: Option<u32>,
    #[serde(default)]
    dry_run: bool,
}

/// Reprocess a preset.
///
/// Regenerates one preset's variants, e.g. after the preset changed:
/// every image's, or with `stale_only` only those made by an older version
/// of the preset. `resume` carries on where an interrupted run stopped.
/// `dry_run` counts without enqueueing.
#[utoipa::path(post, path = "/v1/admin/reprocess", tag = "admin", request_body = ReprocessRequest,
    responses((status = 200, description = "What the run did", body = ReplaySummary),
              AdminProblems))]
pub(crate) async fn reprocess(
    State(state): State<SharedState>,
    body: Result<Json<ReprocessRequest>, JsonRejection>,
) -> Result<Json<ReplaySummary>, ApiError> {
    let body = json_body(body)?;
    let page_size = body.page_size.unwrap_or(500);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::BadRequest(format!("page_size must be 1 to {MAX_PAGE_SIZE}")));
    }
    let summary = operator(&state)
        .reprocess(&body.preset, body.stale_only, body.resume, page_size, body.max_per_second, body.dry_run, &Silent)
        .await
        .map_err(failed)?;
    Ok(Json(summary))
}
