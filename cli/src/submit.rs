//! `image-service submit FILE… [--wait]`: the API's command-line client.
//!
//! Each file goes up through a presigned upload (`POST /v1/uploads`, then a
//! PUT of the bytes to the URL it returns), or with `--direct` through
//! `POST /v1/images`. Requests carry an `Idempotency-Key`, so a retry after a
//! lost answer never makes a second job. With `--wait` it polls the jobs,
//! showing progress, and prints each variant's URL.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use backon::{ExponentialBuilder, Retryable};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use uuid::Uuid;

/// `image-service submit …`
#[derive(Args)]
pub struct SubmitArgs {
    /// Images to upload.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Wait for every job to finish, then print the variant URLs.
    #[arg(long)]
    wait: bool,
    /// Upload through the API (`POST /v1/images`) instead of a presigned PUT.
    #[arg(long)]
    direct: bool,
    /// The API's base URL.
    #[arg(long, env = "IMAGE_SERVICE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key (`image-service keys create`).
    #[arg(long, env = "IMAGE_SERVICE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// A submitted file and its job.
struct Submitted {
    file: PathBuf,
    job_id: Uuid,
    image_id: Uuid,
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let client = Client {
        http: reqwest::Client::new(),
        base: args.url.trim_end_matches('/').to_owned(),
        key: args.api_key.clone(),
    };
    let mut submitted = Vec::new();
    for file in &args.files {
        let bytes = tokio::fs::read(file).await.with_context(|| format!("cannot read {}", file.display()))?;
        let content_type = imaging::sniff(&bytes)
            .map(|format| format!("image/{format}"))
            .with_context(|| format!("{} is not a supported image", file.display()))?;
        let job = if args.direct {
            client.direct(bytes, &content_type).await
        } else {
            client.presigned(bytes, &content_type).await
        }
        .with_context(|| format!("uploading {}", file.display()))?;
        let job_id = uuid_field(&job, "id")?;
        let image_id = uuid_field(&job, "image_id")?;
        println!("{}\tjob {job_id}", file.display());
        submitted.push(Submitted { file: file.clone(), job_id, image_id });
    }
    if !args.wait {
        return Ok(());
    }
    wait(&client, &submitted, Duration::from_secs(args.timeout_secs)).await
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends with retries on connection errors, 429 and 5xx; gives up on other statuses.
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let attempt = || async {
            let response = build().send().await.map_err(Attempt::Retry)?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(body);
            }
            let detail = body["detail"].as_str().unwrap_or_default().to_owned();
            let code = body["code"].as_str().unwrap_or("error").to_owned();
            let failure = anyhow::anyhow!("{status} {code}: {detail}");
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Err(Attempt::RetryStatus(failure))
            } else {
                Err(Attempt::Fatal(failure))
            }
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_times(5)
                    .with_jitter(),
            )
            .when(|e| !matches!(e, Attempt::Fatal(_)))
            .await
            .map_err(Attempt::into_error)
    }

    async fn direct(&self, bytes: Vec<u8>, content_type: &str) -> anyhow::Result<Value> {
        let key = Uuid::new_v4().to_string();
        self.send(|| {
            self.request(reqwest::Method::POST, "/v1/images")
                .header("content-type", content_type)
                .header("idempotency-key", &key)
                .body(bytes.clone())
        })
        .await
    }

    async fn presigned(&self, bytes: Vec<u8>, content_type: &str) -> anyhow::Result<Value> {
        let key = Uuid::new_v4().to_string();
        let request = serde_json::json!({ "content_type": content_type, "content_length": bytes.len() });
        let ticket = self
            .send(|| self.request(reqwest::Method::POST, "/v1/uploads").header("idempotency-key", &key).json(&request))
            .await?;
        let upload = &ticket["upload"];
        let url = upload["url"].as_str().context("the API answered without an upload URL")?;
        let headers = upload["headers"].as_object().cloned().unwrap_or_default();
        let put = || {
            let mut put = self.http.put(url).body(bytes.clone());
            for (name, value) in &headers {
                // reqwest sets Content-Length from the body itself.
                if name != "content-length" {
                    put = put.header(name.as_str(), value.as_str().unwrap_or_default());
                }
            }
            put
        };
        let response = (|| async { put().send().await })
            .retry(ExponentialBuilder::default().with_max_times(3).with_jitter())
            .await
            .context("the upload PUT failed")?;
        if !response.status().is_success() {
            bail!("the upload PUT answered {}: {}", response.status(), response.text().await.unwrap_or_default());
        }
        Ok(ticket["job"].clone())
    }
}

enum Attempt {
    Retry(reqwest::Error),
    RetryStatus(anyhow::Error),
    Fatal(anyhow::Error),
}

impl Attempt {
    fn into_error(self) -> anyhow::Error {
        match self {
            Self::Retry(err) => err.into(),
            Self::RetryStatus(err) | Self::Fatal(err) => err,
        }
    }
}

fn uuid_field(value: &Value, field: &str) -> anyhow::Result<Uuid> {
    value[field].as_str().and_then(|s| s.parse().ok()).with_context(|| format!("the API answered without `{field}`"))
}

/// Polls until every job is final, then prints the outcome of each.
async fn wait(client: &Client, submitted: &[Submitted], timeout: Duration) -> anyhow::Result<()> {
    let bar = ProgressBar::new(submitted.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} jobs finished  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut outcomes: Vec<Option<Value>> = vec![None; submitted.len()];
    while outcomes.iter().any(Option::is_none) {
        if started.elapsed() > timeout {
            bar.abandon_with_message("timed out");
            bail!("{} job(s) still unfinished after {timeout:?}", outcomes.iter().filter(|o| o.is_none()).count());
        }
        for (item, outcome) in submitted.iter().zip(outcomes.iter_mut()) {
            if outcome.is_some() {
                continue;
            }
            let job =
                client.send(|| client.request(reqwest::Method::GET, &format!("/v1/jobs/{}", item.job_id))).await?;
            let status = job["status"].as_str().unwrap_or_default().to_owned();
            if matches!(status.as_str(), "succeeded" | "failed" | "dead") {
                *outcome = Some(job);
                bar.inc(1);
            } else {
                bar.set_message(format!("{}: {status}", item.file.display()));
            }
        }
        bar.tick();
        if outcomes.iter().any(Option::is_none) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    bar.finish_and_clear();
    let mut failed = 0;
    for (item, job) in submitted.iter().zip(outcomes.into_iter().flatten()) {
        let status = job["status"].as_str().unwrap_or_default();
        if status != "succeeded" {
            failed += 1;
            println!(
                "{}\t{status}\t{}: {}",
                item.file.display(),
                job["error"]["code"].as_str().unwrap_or("-"),
                job["error"]["message"].as_str().unwrap_or("-")
            );
            continue;
        }
        let image =
            client.send(|| client.request(reqwest::Method::GET, &format!("/v1/images/{}", item.image_id))).await?;
        println!("{}\tsucceeded", item.file.display());
        for variant in image["variants"].as_array().into_iter().flatten() {
            let number = |field: &str| variant[field].as_i64().unwrap_or_default();
            println!(
                "  {:<10} {:>5}x{:<5} {:>9} B  {}{}",
                variant["preset"].as_str().unwrap_or_default(),
                number("width"),
                number("height"),
                number("bytes"),
                client.base,
                variant["url"].as_str().unwrap_or_default()
            );
        }
    }
    if failed > 0 {
        bail!("{failed} job(s) did not succeed");
    }
    Ok(())
}
