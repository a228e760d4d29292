//! The API's one error type, rendered as RFC 9457 `application/problem+json`
//! with a stable kebab-case `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use image_service_client::ErrorCode;
use pipeline::delivery::Refusal;
use serde::Serialize;

/// Everything a handler can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, not a bearer token, or a key that is unknown or revoked.
    #[error("this endpoint needs a valid API key as `Authorization: Bearer <key>`")]
    Unauthorized,
    /// 403: the key's scope does not cover this endpoint, or a client key
    /// named a tenant.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 403: an upload URL's signature is wrong or expired, or the upload
    /// does not match what was signed.
    #[error("{0}")]
    UploadRejected(String),
    /// 403: a delivery URL of a signed tenant without a valid, unexpired signature.
    #[error("{0}")]
    DeliveryRefused(pipeline::delivery::Refusal),
    /// 416: a `Range` beyond the object; carries its length.
    #[error("the range is outside the object's {0} bytes")]
    RangeNotSatisfiable(u64),
    /// 422: an `Idempotency-Key` reused with a different request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// 429: a bucket (the key's, its tenant's, or an address's) is empty;
    /// it says which and when it has a token again.
    #[error("too many requests for this {}; retry in {} s", .0.policy, .0.reset_secs)]
    RateLimited(crate::limits::Usage),
    /// 429: the tenant is over a quota (with when to retry, if waiting helps).
    #[error("{0}")]
    QuotaExceeded(pipeline::quota::Refusal),
    /// 409: the tenant has an image with this `external_id` already.
    #[error("external_id is taken by image {0}")]
    ExternalIdTaken(uuid::Uuid),
    /// 409: the request conflicts with how the service is set up.
    #[error("{0}")]
    Conflict(String),
    /// 422: the request is well formed but names something that does not exist.
    #[error("{0}")]
    Unprocessable(String),
    /// 404: no such resource.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 413: the upload exceeds the configured maximum.
    #[error("the upload exceeds {0} bytes")]
    PayloadTooLarge(u64),
    /// 415: the body is not an image upload.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: a backing service is unavailable; the client may retry.
    #[error("a backing service is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500: a bug. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// A database that failed a query is unavailable to this request.
impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Unavailable(err.into())
    }
}

/// A store that failed a call is unavailable to this request. (A missing
/// object the handler expected is its own `NotFound`, mapped where it is read.)
impl From<pipeline::store::StoreError> for ApiError {
    fn from(err: pipeline::store::StoreError) -> Self {
        Self::Unavailable(err.into())
    }
}

/// A queue that refused a send is unavailable to this request.
impl From<pipeline::queue::QueueError> for ApiError {
    fn from(err: pipeline::queue::QueueError) -> Self {
        Self::Unavailable(err.into())
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::UploadRejected(_) | Self::DeliveryRefused(_) => StatusCode::FORBIDDEN,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(_) | Self::QuotaExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict(_) | Self::ExternalIdTaken(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients can match on. Every code is a variant of the
    /// client crate's [`ErrorCode`], so the typed client knows each one and
    /// the OpenAPI document lists them all.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::UploadRejected(_) => ErrorCode::UploadRejected,
            Self::DeliveryRefused(refusal) => match refusal {
                Refusal::Unsigned => ErrorCode::SignatureRequired,
                Refusal::Expired => ErrorCode::UrlExpired,
                Refusal::UnknownKey | Refusal::BadSignature => ErrorCode::SignatureInvalid,
            },
            Self::RangeNotSatisfiable(_) => ErrorCode::RangeNotSatisfiable,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::ExternalIdTaken(_) => ErrorCode::ExternalIdTaken,
            Self::Unprocessable(_) => ErrorCode::Unprocessable,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }
}

/// An RFC 9457 problem: every error the API answers with.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(examples(crate::examples::problem))]
pub struct Problem<'a> {
    /// A URL naming the problem type; ends with `code`.
    r#type: String,
    /// The HTTP status's reason phrase.
    title: String,
    status: u16,
    /// Stable kebab-case code to match on (`unauthorized`, `payload-too-large`, …).
    #[schema(schema_with = code_schema)]
    code: &'a str,
    /// What went wrong with this request.
    detail: String,
}

/// The `code` field's schema: every code there is.
fn code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(ErrorCode::as_str)))
        .description(Some("Stable kebab-case code to match on"))
        .build()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::RateLimited(usage) => Some(usage.reset_secs),
            Self::QuotaExceeded(pipeline::quota::Refusal::UploadsPerDay { retry_after_secs, .. }) => {
                Some(*retry_after_secs)
            }
            Self::Unavailable(_) => Some(1),
            _ => None,
        };
        let detail = match &self {
            Self::Unavailable(cause) | Self::Internal(cause) => {
                // The cause chain is logged once, here, inside the request span;
                // the body never carries internal text.
                tracing::error!(error = format!("{cause:#}"), code = %self.code(), "request failed");
                "see the server logs for this request".to_owned()
            }
            other => other.to_string(),
        };
        let code = self.code();
        let problem = Problem {
            r#type: format!("https://image-service.dev/problems/{code}"),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            code: code.as_str(),
            detail,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Self::RateLimited(usage) = &self {
            crate::limits::insert_headers(headers, std::slice::from_ref(usage));
        }
        if let Self::RangeNotSatisfiable(length) = &self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}"))
        {
            headers.insert(header::CONTENT_RANGE, value);
        }
        response
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::limits::Usage;

    /// One error of every kind the API answers with, each code at least once.
    pub(crate) fn one_of_each() -> Vec<ApiError> {
        let usage = Usage { policy: "key", quota: 1, window_secs: 1, remaining: 0, reset_secs: 1 };
        let quota = pipeline::quota::Refusal::UploadsPerDay { limit: 1, retry_after_secs: 1 };
        vec![
            ApiError::BadRequest("bad".into()),
            ApiError::Unauthorized,
            ApiError::Forbidden("no"),
            ApiError::UploadRejected("no".into()),
            ApiError::DeliveryRefused(Refusal::Unsigned),
            ApiError::DeliveryRefused(Refusal::Expired),
            ApiError::DeliveryRefused(Refusal::BadSignature),
            ApiError::RangeNotSatisfiable(1),
            ApiError::IdempotencyKeyReused,
            ApiError::RateLimited(usage),
            ApiError::QuotaExceeded(quota),
            ApiError::ExternalIdTaken(uuid::Uuid::nil()),
            ApiError::Conflict("no".into()),
            ApiError::Unprocessable("no".into()),
            ApiError::NotFound("image"),
            ApiError::PayloadTooLarge(1),
            ApiError::UnsupportedMediaType("no".into()),
            ApiError::Unavailable(anyhow::anyhow!("down")),
            ApiError::Internal(anyhow::anyhow!("bug")),
        ]
    }

    /// The status each code is answered with.
    pub(crate) fn status_of(code: &str) -> Option<u16> {
        one_of_each().into_iter().find(|e| e.code().as_str() == code).map(|e| e.status().as_u16())
    }

    #[test]
    fn every_code_the_client_knows_is_one_the_api_answers_with() {
        let answered: Vec<ErrorCode> = one_of_each().iter().map(ApiError::code).collect();
        for code in ErrorCode::ALL {
            assert!(answered.contains(code), "no ApiError answers with `{code}`");
        }
    }

    #[test]
    fn a_rate_limited_answer_names_the_bucket_and_when_to_return() {
        let usage = Usage { policy: "tenant", quota: 100, window_secs: 5, remaining: 0, reset_secs: 3 };
        let response = ApiError::RateLimited(usage).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(response.headers()["ratelimit"], "\"tenant\";r=0;t=3");
        assert_eq!(response.headers()["ratelimit-policy"], "\"tenant\";q=100;w=5");
    }
}
