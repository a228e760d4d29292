//! The commands that talk to a running API through the typed client:
//! `jobs get|list|wait`, `images get|list|delete|variant`, and `submit`
//! (its own module). Each prints a table, or with `--json` one JSON value
//! per line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use image_service_client::{Client, ImageQuery, JobQuery, JobStatus};
use uuid::Uuid;

use crate::exit::{Exit, Failure};

/// Where the API is and who asks: flags or environment, on every command.
#[derive(Args, Clone)]
pub struct ApiArgs {
    /// The API's base URL.
    #[arg(long, env = "IMAGE_SERVICE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API key (`image-service keys create`).
    #[arg(long, env = "IMAGE_SERVICE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// With an admin key: act for the tenant of this name.
    #[arg(long = "as-tenant", env = "IMAGE_SERVICE_TENANT", value_name = "NAME")]
    pub as_tenant: Option<String>,
}

impl ApiArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        let mut builder = Client::builder(&self.url);
        if let Some(key) = &self.api_key {
            builder = builder.api_key(key);
        }
        if let Some(tenant) = &self.as_tenant {
            builder = builder.tenant(tenant);
        }
        builder.build().map_err(|err| Failure::error(Exit::Usage, format!("--url: {err}")))
    }
}

/// `image-service jobs …`
#[derive(Subcommand)]
pub enum Jobs {
    /// One job.
    Get {
        /// The job's id.
        id: Uuid,
    },
    /// Jobs, newest first.
    List(ListJobs),
    /// Wait for a job to end; exits 5 if it failed.
    Wait {
        /// The job's id.
        id: Uuid,
        /// Give up after this many seconds (exit 6).
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
}

#[derive(Args)]
pub struct ListJobs {
    /// Only jobs in this state (`queued`, `succeeded`, `failed`, …).
    #[arg(long)]
    status: Option<JobStatus>,
    /// At most this many (all pages are followed until then).
    #[arg(long, default_value_t = 50)]
    limit: u64,
}

/// `image-service images …`
#[derive(Subcommand)]
pub enum Images {
    /// One image and its variants.
    Get {
        /// The image's id.
        id: Uuid,
    },
    /// Images, newest first.
    List {
        /// Only the image with this external id.
        #[arg(long)]
        external_id: Option<String>,
        /// At most this many (all pages are followed until then).
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Delete an image: its original, variants, jobs and rows.
    Delete {
        /// The image's id.
        id: Uuid,
    },
    /// Save one variant's bytes to a file (`-` for standard output).
    Variant {
        /// The image's id.
        id: Uuid,
        /// The preset's name.
        preset: String,
        /// Where to write it.
        #[arg(long, short)]
        output: PathBuf,
    },
}

/// Up to `limit` items of a listing, following its cursors: `page(cursor,
/// size)` fetches one page (at most 200, the API's largest) and its next cursor.
async fn collect_pages<T, F, Fut>(limit: u64, mut page: F) -> Result<Vec<T>, image_service_client::Error>
where
    F: FnMut(Option<String>, u64) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), image_service_client::Error>>,
{
    let (mut items, mut cursor) = (Vec::new(), None);
    while (items.len() as u64) < limit {
        let (batch, next) = page(cursor.take(), (limit - items.len() as u64).min(200)).await?;
        items.extend(batch);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(items)
}

/// Prints one value: as a JSON line with `--json`, else as `text` says.
pub fn emit<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        text(value);
    }
    Ok(())
}

pub async fn jobs(api: &ApiArgs, json: bool, command: Jobs) -> anyhow::Result<()> {
    let client = api.client()?;
    match command {
        Jobs::Get { id } => emit(json, &client.job(id).await?, |job| print_jobs(std::slice::from_ref(job))),
        Jobs::List(list) => {
            let query = JobQuery { status: list.status, ..JobQuery::default() };
            let jobs = collect_pages(list.limit, |cursor, limit| {
                let query = JobQuery { cursor, limit: Some(limit), ..query.clone() };
                let client = &client;
                async move { client.jobs(&query).await.map(|page| (page.jobs, page.next_cursor)) }
            })
            .await?;
            if json {
                jobs.iter().try_for_each(|job| emit(true, job, |_| {}))
            } else {
                print_jobs(&jobs);
                Ok(())
            }
        }
        Jobs::Wait { id, timeout_secs } => {
            let job = client.wait(id, Duration::from_secs(timeout_secs)).await?;
            emit(json, &job, |job| print_jobs(std::slice::from_ref(job)))?;
            if job.status != JobStatus::Succeeded {
                return Err(Failure::error(Exit::JobFailed, format!("job {id} {}", job.status)));
            }
            Ok(())
        }
    }
}

fn print_jobs(jobs: &[image_service_client::Job]) {
    println!("{:<36}  {:<36}  {:<15}  {:>8}  {:<20}  error", "id", "image", "status", "attempts", "created");
    for job in jobs {
        println!(
            "{:<36}  {:<36}  {:<15}  {:>8}  {:<20}  {}",
            job.id,
            job.image_id,
            job.status.as_str(),
            job.attempts,
            job.created_at.format("%Y-%m-%d %H:%M:%S"),
            job.error.as_ref().map_or_else(|| "-".to_owned(), |e| format!("{}: {}", e.code, e.message))
        );
    }
}

pub async fn images(api: &ApiArgs, json: bool, command: Images) -> anyhow::Result<()> {
    let client = api.client()?;
    match command {
        Images::Get { id } => emit(json, &client.image(id).await?, |image| print_image(&client, image)),
        Images::List { external_id, limit } => {
            let images = collect_pages(limit, |cursor, limit| {
                let query = ImageQuery { external_id: external_id.clone(), cursor, limit: Some(limit) };
                let client = &client;
                async move { client.images(&query).await.map(|page| (page.images, page.next_cursor)) }
            })
            .await?;
            if json {
                return images.iter().try_for_each(|image| emit(true, image, |_| {}));
            }
            println!(
                "{:<36}  {:<6}  {:>11}  {:>9}  {:<20}  external id",
                "id", "format", "size", "variants", "created"
            );
            for image in &images {
                println!(
                    "{:<36}  {:<6}  {:>11}  {:>9}  {:<20}  {}",
                    image.id,
                    image.format.as_deref().unwrap_or("-"),
                    image.width.zip(image.height).map_or_else(|| "-".to_owned(), |(w, h)| format!("{w}x{h}")),
                    image.variants.len(),
                    image.created_at.format("%Y-%m-%d %H:%M:%S"),
                    image.external_id.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        Images::Delete { id } => {
            client.delete_image(id).await?;
            emit(json, &serde_json::json!({ "id": id, "deleted": true }), |_| eprintln!("deleted image {id}"))
        }
        Images::Variant { id, preset, output } => {
            let bytes = client.variant(id, &preset).await?;
            if output.as_os_str() == "-" {
                use std::io::Write;
                std::io::stdout().write_all(&bytes)?;
            } else {
                std::fs::write(&output, &bytes).with_context(|| format!("failed to write {}", output.display()))?;
                eprintln!("wrote {} bytes to {}", bytes.len(), output.display());
            }
            Ok(())
        }
    }
}

/// An image's variants, one line each, with the URL to fetch it by.
pub fn print_image(client: &Client, image: &image_service_client::Image) {
    for variant in &image.variants {
        println!(
            "  {:<10} {:>5}x{:<5} {:>9} B  {}{}",
            variant.preset,
            variant.width,
            variant.height,
            variant.bytes,
            client.base_url(),
            variant.url
        );
    }
}
