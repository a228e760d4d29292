//! `GET /v1/jobs` and `GET /v1/jobs/{id}`.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use entities::jobs::JobStatus;
use pipeline::cache;
use pipeline::jobs as repo;

use crate::SharedState;
use crate::auth::{Principal, ScopedId};
use crate::error::ApiError;
use crate::read_cache::{job_ttl, read_through};
use crate::responses::{BadRequest, NotFound, RateLimited, Unauthorized, Unavailable};
use crate::views::{JobPage, JobStatusView, JobView, PageBounds};

/// Query of `GET /v1/jobs`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only jobs in this state.
    status: Option<JobStatusView>,
    /// Only jobs created at or after this instant (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    limit: Option<u64>,
}

/// List jobs.
///
/// The caller's tenant's jobs, newest first, one page at a time: pass the
/// answer's `next_cursor` as `cursor` for the next page, until it is `null`.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, description = "A page of jobs", body = JobPage),
              BadRequest, Unauthorized, RateLimited, Unavailable))]
pub(crate) async fn list_jobs(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let bounds = PageBounds::parse(query.cursor.as_deref(), query.limit)?;
    let status = query.status.map(JobStatus::from);
    let db = &state.backends.db;
    let jobs = repo::list_jobs(db, principal.tenant, status, query.since, bounds.before, bounds.limit).await?;
    let next_cursor = bounds.next_cursor(jobs.len(), jobs.last().map(|job| job.id));
    Ok(Json(JobPage { jobs: jobs.into_iter().map(JobView::from).collect(), next_cursor }))
}

/// Get a job.
///
/// One of the caller's tenant's jobs, with its status, attempts and, once it
/// failed, the error's code. Another tenant's job is `404`, exactly as a job
/// that does not exist. Poll it until `status` is terminal (`succeeded`,
/// `failed`, `dead`), or subscribe to the events.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = JobView),
              BadRequest, Unauthorized, NotFound, RateLimited, Unavailable))]
pub(crate) async fn get_job(State(state): State<SharedState>, scoped: ScopedId) -> Result<Response, ApiError> {
    let (tenant, id) = (scoped.principal.tenant, scoped.id);
    read_through(&state, cache::job_key(tenant, id), async {
        let job = repo::find_tenant_job(&state.backends.db, tenant, id).await?.ok_or(ApiError::NotFound("job"))?;
        let ttl = job_ttl(job.status);
        Ok((JobView::from(job), ttl))
    })
    .await
}
