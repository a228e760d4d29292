//! # image-service-client
//!
//! A typed client for the image-service HTTP API (`docs/api.md`): every
//! endpoint, the problem+json errors as a typed [`ErrorCode`], and the
//! manners a well-behaved client needs built in:
//!
//! - **Retries** on connection failures, 429 and 502/503/504, with
//!   exponential backoff and jitter, honouring `Retry-After`. A wait longer
//!   than [`ClientBuilder::max_wait`] is not waited for: the error comes back.
//! - **An `Idempotency-Key` on every POST**, the same on each retry, so a
//!   retried upload never makes a second job.
//! - **Presigned uploads** in one call ([`Client::upload_presigned`]): the
//!   ticket, then the PUT exactly as signed, to S3 or to the API itself.
//!
//! ```no_run
//! # async fn example() -> Result<(), image_service_client::Error> {
//! use image_service_client::{Client, Upload};
//!
//! let client = Client::builder("http://127.0.0.1:8080").api_key("isk_…").build()?;
//! let bytes = std::fs::read("photo.jpg").expect("readable");
//! let ticket = client.upload_presigned(bytes.into(), "image/jpeg", &Upload::default()).await?;
//! let job = client.wait(ticket.job.id, std::time::Duration::from_secs(120)).await?;
//! let image = client.image(job.image_id).await?;
//! println!("{} variants", image.variants.len());
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - this file: [`Client`], its builder and one method per endpoint;
//! - `models`: what the API answers with and takes;
//! - `error`: [`Error`], [`Problem`] and [`ErrorCode`].

mod error;
mod models;

use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use error::{Error, ErrorCode, Problem};
pub use models::*;

/// The header that makes a POST safe to repeat.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A raw upload's client fields travel in these headers.
const EXTERNAL_ID_HEADER: &str = "image-external-id";
const METADATA_HEADER: &str = "image-metadata";

/// Options of an upload, through the API or presigned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Upload {
    /// The client's own id for the image, unique within the tenant.
    pub external_id: Option<String>,
    /// A JSON object (at most 4 KiB) that comes back on the image and in events.
    pub metadata: Option<serde_json::Value>,
    /// The key that makes the request safe to repeat; a fresh one when `None`.
    pub idempotency_key: Option<String>,
}

/// A direct upload's answer.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Accepted {
    /// The job (already finished when `job.deduplicated`).
    pub job: Job,
    /// `true` when the API answered an earlier request with this
    /// `Idempotency-Key` (`Idempotent-Replayed`).
    pub replayed: bool,
}

/// Builds a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    base: String,
    api_key: Option<String>,
    tenant: Option<String>,
    timeout: Duration,
    max_retries: usize,
    min_delay: Duration,
    max_wait: Duration,
    poll_interval: Duration,
}

impl ClientBuilder {
    /// An API key (`image-service keys create`), sent as a bearer token.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// With an admin key: act for the tenant of this name (`?tenant=`).
    pub fn tenant(mut self, name: impl Into<String>) -> Self {
        self.tenant = Some(name.into());
        self
    }

    /// How long one request may take, uploads included (default 120 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 4; 0 turns retries off).
    pub fn max_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first retry's delay; each one doubles it (default 200 ms).
    pub fn min_delay(mut self, delay: Duration) -> Self {
        self.min_delay = delay;
        self
    }

    /// The longest `Retry-After` worth waiting for (default 30 s): a
    /// longer one (a daily quota, say) returns the error at once.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// How often [`Client::wait`] polls a job (default 500 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`Error::Unexpected`] when the base URL is not an http(s) URL;
    /// [`Error::Transport`] when no HTTP client can be built.
    pub fn build(self) -> Result<Client, Error> {
        let base = Url::parse(self.base.trim_end_matches('/'))
            .map_err(|err| Error::Unexpected { status: 0, detail: format!("{:?} is not a URL: {err}", self.base) })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Unexpected { status: 0, detail: format!("{base} is not an http(s) URL") });
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("image-service-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            api_key: self.api_key,
            tenant: self.tenant,
            max_retries: self.max_retries,
            min_delay: self.min_delay,
            max_wait: self.max_wait,
            poll_interval: self.poll_interval,
        })
    }
}

/// A client of one image-service API. Cheap to clone; clones share connections.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    tenant: Option<String>,
    max_retries: usize,
    min_delay: Duration,
    max_wait: Duration,
    poll_interval: Duration,
}

/// A request body, rebuilt for each attempt.
enum Body<'a> {
    Empty,
    Json(serde_json::Value),
    Bytes { bytes: &'a Bytes, content_type: &'a str },
}

impl Client {
    /// A builder for the API at `base` (`http://127.0.0.1:8080`, say).
    pub fn builder(base: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base.into(),
            api_key: None,
            tenant: None,
            timeout: Duration::from_secs(120),
            max_retries: 4,
            min_delay: Duration::from_millis(200),
            max_wait: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
        }
    }

    /// The API's root, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The same client acting for another tenant (admin keys only).
    pub fn for_tenant(&self, name: impl Into<String>) -> Self {
        Self { tenant: Some(name.into()), ..self.clone() }
    }

    /// `GET /healthz`: whether the process answers.
    ///
    /// # Errors
    /// As every call: see [`Error`].
    pub async fn healthz(&self) -> Result<(), Error> {
        self.call::<serde_json::Value>(Method::GET, "/healthz", &[], Body::Empty, &HeaderMap::new()).await.map(drop)
    }

    /// `GET /readyz`: whether the backends answer. An unready service
    /// answers 503 with the same body, its checks saying which backend
    /// failed, so this returns the readiness either way, without retrying.
    ///
    /// # Errors
    /// As every call: see [`Error`].
    pub async fn readyz(&self) -> Result<Readiness, Error> {
        let response = self.http.get(format!("{}/readyz", self.base)).send().await?;
        match response.status().as_u16() {
            200 | 503 => decode(response).await,
            _ => Err(failure(response).await),
        }
    }

    /// `POST /v1/images`: uploads `bytes` through the API; the job is queued at once.
    ///
    /// # Errors
    /// As every call: see [`Error`]. Typical codes: `payload-too-large`,
    /// `unsupported-media-type`, `external-id-taken`, `quota-exceeded`.
    pub async fn upload(&self, bytes: Bytes, content_type: &str, options: &Upload) -> Result<Accepted, Error> {
        let mut headers = idempotency(options);
        if let Some(external_id) = &options.external_id {
            headers.insert(HeaderName::from_static(EXTERNAL_ID_HEADER), header_value(external_id)?);
        }
        if let Some(metadata) = &options.metadata {
            headers.insert(HeaderName::from_static(METADATA_HEADER), header_value(&metadata.to_string())?);
        }
        let body = Body::Bytes { bytes: &bytes, content_type };
        let response = self.send(Method::POST, "/v1/images", &[], &body, &headers).await?;
        let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        Ok(Accepted { job: decode(response).await?, replayed })
    }

    /// `POST /v1/uploads`: a job that waits for its bytes, and where to PUT them.
    ///
    /// # Errors
    /// As every call: see [`Error`].
    pub async fn create_upload(&self, request: &UploadRequest, options: &Upload) -> Result<UploadTicket, Error> {
        let body = Body::Json(serde_json::to_value(request).unwrap_or_default());
        self.call(Method::POST, "/v1/uploads", &[], body, &idempotency(options)).await
    }

    /// The PUT of a ticket's instructions: the bytes, with exactly the
    /// signed headers. On S3 the bucket answers; on local disk, the API.
    ///
    /// # Errors
    /// [`ErrorCode::UploadRejected`] when the signature, the type or the
    /// length do not match; as every call otherwise.
    pub async fn put_upload(&self, instructions: &UploadInstructions, bytes: Bytes) -> Result<(), Error> {
        let method = Method::from_bytes(instructions.method.as_bytes()).unwrap_or(Method::PUT);
        let mut headers = HeaderMap::new();
        for (name, value) in &instructions.headers {
            // The body sets its own length.
            if name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|err| Error::Unexpected { status: 0, detail: format!("bad header {name:?}: {err}") })?;
            headers.insert(name, header_value(value)?);
        }
        let attempt = || async {
            let response = self
                .http
                .request(method.clone(), &instructions.url)
                .headers(headers.clone())
                .body(bytes.clone())
                .send()
                .await?;
            if response.status().is_success() {
                return Ok(());
            }
            Err(failure(response).await)
        };
        self.retrying(attempt).await
    }

    /// A presigned upload in one call: [`create_upload`](Self::create_upload),
    /// then [`put_upload`](Self::put_upload). Returns the ticket (its job as
    /// it was before the bytes arrived).
    ///
    /// # Errors
    /// As the two calls.
    pub async fn upload_presigned(
        &self,
        bytes: Bytes,
        content_type: &str,
        options: &Upload,
    ) -> Result<UploadTicket, Error> {
        let request = UploadRequest {
            content_type: content_type.to_owned(),
            content_length: bytes.len() as u64,
            external_id: options.external_id.clone(),
            metadata: options.metadata.clone(),
        };
        let ticket = self.create_upload(&request, options).await?;
        if let Some(instructions) = &ticket.upload {
            self.put_upload(instructions, bytes).await?;
        }
        Ok(ticket)
    }

    /// `GET /v1/jobs/{id}`.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] for a job that is not the caller's tenant's.
    pub async fn job(&self, id: Uuid) -> Result<Job, Error> {
        self.call(Method::GET, &format!("/v1/jobs/{id}"), &[], Body::Empty, &HeaderMap::new()).await
    }

    /// `GET /v1/jobs`: one page, newest first.
    ///
    /// # Errors
    /// As every call: see [`Error`].
    pub async fn jobs(&self, query: &JobQuery) -> Result<JobPage, Error> {
        let mut params = Vec::new();
        push(&mut params, "status", query.status.map(|s| s.as_str().to_owned()));
        push(&mut params, "since", query.since.map(|t| t.to_rfc3339()));
        push(&mut params, "cursor", query.cursor.clone());
        push(&mut params, "limit", query.limit.map(|l| l.to_string()));
        self.call(Method::GET, "/v1/jobs", &params, Body::Empty, &HeaderMap::new()).await
    }

    /// `GET /v1/images/{id}`: the image with its variants and delivery URLs.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] for an image that is not the caller's tenant's.
    pub async fn image(&self, id: Uuid) -> Result<Image, Error> {
        self.call(Method::GET, &format!("/v1/images/{id}"), &[], Body::Empty, &HeaderMap::new()).await
    }

    /// `GET /v1/images`: one page, newest first.
    ///
    /// # Errors
    /// As every call: see [`Error`].
    pub async fn images(&self, query: &ImageQuery) -> Result<ImagePage, Error> {
        let mut params = Vec::new();
        push(&mut params, "external_id", query.external_id.clone());
        push(&mut params, "cursor", query.cursor.clone());
        push(&mut params, "limit", query.limit.map(|l| l.to_string()));
        self.call(Method::GET, "/v1/images", &params, Body::Empty, &HeaderMap::new()).await
    }

    /// `DELETE /v1/images/{id}`: the image, its variants, jobs and rows.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] for an image that is gone or not the caller's.
    pub async fn delete_image(&self, id: Uuid) -> Result<(), Error> {
        let path = format!("/v1/images/{id}");
        self.send(Method::DELETE, &path, &[], &Body::Empty, &HeaderMap::new()).await.map(drop)
    }

    /// `GET /v1/images/{id}/variants/{preset}`: the variant's bytes,
    /// following the API's redirect to S3 where there is one.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] for a preset the image has no variant of.
    pub async fn variant(&self, id: Uuid, preset: &str) -> Result<Bytes, Error> {
        let path = format!("/v1/images/{id}/variants/{}", segment(preset));
        let response = self.send(Method::GET, &path, &[], &Body::Empty, &HeaderMap::new()).await?;
        Ok(response.bytes().await?)
    }

    /// A ticket's keyless `status_url` (`GET /v1/status/{id}?…`): the job
    /// and, once it succeeded, its image. Needs no key.
    ///
    /// # Errors
    /// [`ErrorCode::UrlExpired`] an hour after the upload; as every call otherwise.
    pub async fn status(&self, status_url: &str) -> Result<JobStatusPage, Error> {
        let url =
            if status_url.starts_with("http") { status_url.to_owned() } else { format!("{}{status_url}", self.base) };
        let attempt = || async {
            let response = self.http.get(&url).send().await?;
            if response.status().is_success() {
                return Ok(response);
            }
            Err(failure(response).await)
        };
        decode(self.retrying(attempt).await?).await
    }

    /// Polls a job until it ends, or `timeout` passes.
    ///
    /// # Errors
    /// [`Error::Timeout`] when it had not ended in time; as [`job`](Self::job) otherwise.
    pub async fn wait(&self, id: Uuid, timeout: Duration) -> Result<Job, Error> {
        let started = Instant::now();
        loop {
            let job = self.job(id).await?;
            if job.status.is_final() {
                return Ok(job);
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout { job_id: id, waited: started.elapsed(), status: job.status });
            }
            tokio::time::sleep(self.poll_interval.min(timeout.saturating_sub(started.elapsed()))).await;
        }
    }

    /// `POST /v1/admin/replay/dlq` (admin keys).
    ///
    /// # Errors
    /// [`ErrorCode::Forbidden`] for a key that is not an admin's; as every call otherwise.
    pub async fn replay_dlq(&self, request: &DlqReplay) -> Result<ReplaySummary, Error> {
        self.admin("/v1/admin/replay/dlq", request).await
    }

    /// `POST /v1/admin/replay/jobs` (admin keys; a tenant's with [`for_tenant`](Self::for_tenant)).
    ///
    /// # Errors
    /// [`ErrorCode::Forbidden`] for a key that is not an admin's; as every call otherwise.
    pub async fn replay_jobs(&self, request: &JobsReplay) -> Result<ReplaySummary, Error> {
        self.admin("/v1/admin/replay/jobs", request).await
    }

    /// `POST /v1/admin/reprocess` (admin keys).
    ///
    /// # Errors
    /// [`ErrorCode::Forbidden`] for a key that is not an admin's; as every call otherwise.
    pub async fn reprocess(&self, request: &Reprocess) -> Result<ReplaySummary, Error> {
        self.admin("/v1/admin/reprocess", request).await
    }

    async fn admin(&self, path: &str, request: &impl serde::Serialize) -> Result<ReplaySummary, Error> {
        let body = Body::Json(serde_json::to_value(request).unwrap_or_default());
        self.call(Method::POST, path, &[], body, &idempotency(&Upload::default())).await
    }

    /// One call whose success is a JSON body.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Body<'_>,
        headers: &HeaderMap,
    ) -> Result<T, Error> {
        decode(self.send(method, path, params, &body, headers).await?).await
    }

    /// Sends to the API with the key and the tenant, retrying what is worth
    /// retrying. A non-2xx answer is an error.
    async fn send(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: &Body<'_>,
        headers: &HeaderMap,
    ) -> Result<reqwest::Response, Error> {
        let mut url = Url::parse(&format!("{}{path}", self.base))
            .map_err(|err| Error::Unexpected { status: 0, detail: format!("bad path {path:?}: {err}") })?;
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(tenant) = self.tenant.as_deref().filter(|_| path.starts_with("/v1/")) {
                query.append_pair("tenant", tenant);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let attempt = || async {
            let mut request = self.http.request(method.clone(), url.clone()).headers(headers.clone());
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            request = match body {
                Body::Empty => request,
                Body::Json(value) => request.json(value),
                Body::Bytes { bytes, content_type } => {
                    request.header(reqwest::header::CONTENT_TYPE, *content_type).body((*bytes).clone())
                }
            };
            let response = request.send().await?;
            if response.status().is_success() {
                return Ok(response);
            }
            Err(failure(response).await)
        };
        self.retrying(attempt).await
    }

    /// Runs `attempt` until it succeeds, fails for good, or runs out of retries.
    async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_wait)
            .with_max_times(self.max_retries)
            .with_jitter();
        let max_wait = self.max_wait;
        attempt
            .retry(backoff)
            .when(move |err| worth_retrying(err, max_wait))
            .adjust(|err, delay| {
                // The server's own figure beats the backoff's guess.
                let asked = err.problem().and_then(|p| p.retry_after);
                delay.map(|delay| asked.map_or(delay, |asked| asked.max(delay)))
            })
            .await
    }
}

/// Whether another attempt could succeed: no answer at all, a throttle whose
/// `Retry-After` is worth waiting for, or a gateway or service that was
/// unavailable. Every POST carries an `Idempotency-Key`, so repeating one
/// never makes a second job.
fn worth_retrying(err: &Error, max_wait: Duration) -> bool {
    match err {
        Error::Transport(err) => !err.is_builder() && !err.is_decode(),
        Error::Api(problem) => match problem.status {
            429 => problem.retry_after.is_some_and(|after| after <= max_wait),
            502..=504 => problem.retry_after.is_none_or(|after| after <= max_wait),
            _ => false,
        },
        Error::Unexpected { status, .. } => matches!(status, 502..=504),
        Error::Timeout { .. } => false,
    }
}

/// A non-2xx answer as an error: the API's problem, or what else it was.
async fn failure(response: reqwest::Response) -> Error {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = match response.text().await {
        Ok(text) => text,
        Err(err) => return Error::Transport(err),
    };
    match serde_json::from_str::<Problem>(&text) {
        Ok(mut problem) => {
            problem.retry_after = retry_after;
            Error::Api(Box::new(problem))
        }
        Err(_) => unexpected(status, &text),
    }
}

fn unexpected(status: StatusCode, text: &str) -> Error {
    let detail: String = text.chars().take(2048).collect();
    Error::Unexpected { status: status.as_u16(), detail }
}

/// A success's JSON body as `T`.
async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, Error> {
    let status = response.status();
    let text = response.text().await?;
    serde_json::from_str(&text).map_err(|err| Error::Unexpected {
        status: status.as_u16(),
        detail: format!("the body is not the documented JSON ({err}): {}", text.chars().take(512).collect::<String>()),
    })
}

fn idempotency(options: &Upload) -> HeaderMap {
    let key = options.idempotency_key.clone().unwrap_or_else(|| Uuid::new_v4().to_string());
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&key) {
        headers.insert(HeaderName::from_static(IDEMPOTENCY_KEY), value);
    }
    headers
}

fn header_value(value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value)
        .map_err(|_| Error::Unexpected { status: 0, detail: format!("{value:?} cannot be sent in a header") })
}

fn push(params: &mut Vec<(&'static str, String)>, name: &'static str, value: Option<String>) {
    if let Some(value) = value {
        params.push((name, value));
    }
}

/// A path segment, percent-encoded.
fn segment(value: &str) -> String {
    let mut url = Url::parse("http://x/").unwrap_or_else(|_| unreachable!("a constant URL parses"));
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.push(value);
    }
    url.path().trim_start_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(status: u16, retry_after: Option<u64>) -> Error {
        Error::Api(Box::new(Problem {
            status,
            code: ErrorCode::parse("x"),
            title: String::new(),
            detail: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }))
    }

    #[test]
    fn throttles_and_outages_are_retried_and_the_rest_are_not() {
        let max = Duration::from_secs(30);
        assert!(worth_retrying(&problem(429, Some(1)), max));
        assert!(!worth_retrying(&problem(429, Some(86_400)), max), "a daily quota is not waited for");
        assert!(!worth_retrying(&problem(429, None), max));
        assert!(worth_retrying(&problem(503, Some(1)), max));
        assert!(worth_retrying(&problem(503, None), max));
        assert!(worth_retrying(&Error::Unexpected { status: 502, detail: String::new() }, max));
        for status in [400, 401, 403, 404, 409, 413, 415, 422, 500] {
            assert!(!worth_retrying(&problem(status, None), max), "{status}");
        }
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("thumb"), "thumb");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn a_base_url_must_be_http() {
        assert!(Client::builder("ftp://x").build().is_err());
        assert!(Client::builder("not a url").build().is_err());
        assert_eq!(
            Client::builder("http://127.0.0.1:8080/").build().map(|c| c.base).ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }
}
