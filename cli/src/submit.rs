//! `image-service submit PATH… [--wait]`: upload images to a running API.
//!
//! A path may be a file, a directory (every image under it, recursively) or
//! a glob (`'photos/**/*.jpg'`, quoted so the shell leaves it). Each file
//! goes up through a presigned upload (`POST /v1/uploads`, then the PUT it
//! returns), or with `--direct` through `POST /v1/images`, `--concurrency`
//! at a time. The client gives each request an `Idempotency-Key`, so its
//! retries never make a second job. With `--wait` it follows the jobs to
//! their end under one progress bar and prints each variant's URL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::{StreamExt, stream};
use image_service_client::{Client, Image, Job, JobStatus, Upload};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::exit::{Exit, Failure};
use crate::remote::ApiArgs;

/// `image-service submit …`
#[derive(Args)]
pub struct SubmitArgs {
    /// Images to upload: files, directories (recursively) or glob patterns.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
    /// Wait for every job to finish, then print the variant URLs.
    #[arg(long)]
    wait: bool,
    /// Upload through the API (`POST /v1/images`) instead of a presigned PUT.
    #[arg(long)]
    direct: bool,
    /// How many uploads (and, with --wait, job polls) run at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Give up waiting after this many seconds (exit 6).
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// One file's outcome, as `--json` prints it.
#[derive(Serialize)]
struct Outcome {
    file: PathBuf,
    /// The job as last seen (absent when the upload itself failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<Job>,
    /// The image, once its job succeeded (with `--wait`).
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<Image>,
    /// Why the upload failed: the API's code and detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn submit(api: &ApiArgs, json: bool, args: SubmitArgs) -> anyhow::Result<()> {
    let files = expand(&args.paths)?;
    let client = api.client()?;
    let concurrency = usize::from(args.concurrency);
    let bar = progress(files.len() as u64, "uploaded");

    // Uploads, `concurrency` at a time; each line is printed as it lands.
    let mut uploaded: Vec<(PathBuf, anyhow::Result<Job>)> = stream::iter(files)
        .map(|file| {
            let (client, direct) = (&client, args.direct);
            async move {
                let job = upload(client, &file, direct).await;
                (file, job)
            }
        })
        .buffer_unordered(concurrency)
        .inspect(|(file, job)| {
            bar.inc(1);
            match job {
                Ok(job) if !json => bar.suspend(|| println!("{}\tjob {}", file.display(), job.id)),
                Err(err) => bar.suspend(|| eprintln!("{}\terror: {err:#}", file.display())),
                Ok(_) => {}
            }
        })
        .collect()
        .await;
    bar.finish_and_clear();
    uploaded.sort_by(|a, b| a.0.cmp(&b.0));

    let mut first_error = None;
    let waiting = uploaded.iter().filter(|(_, job)| job.is_ok()).count() as u64;
    let bar = progress(if args.wait { waiting } else { 0 }, "finished");
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let outcomes: Vec<Outcome> = stream::iter(uploaded)
        .map(|(file, job)| {
            let (client, bar) = (&client, &bar);
            async move {
                match job {
                    Err(err) => (Outcome { file, job: None, image: None, error: Some(format!("{err:#}")) }, Some(err)),
                    Ok(job) if !args.wait => (Outcome { file, job: Some(job), image: None, error: None }, None),
                    Ok(job) => {
                        let ended = follow(client, job, deadline).await;
                        bar.inc(1);
                        match ended {
                            Ok((job, image)) => (Outcome { file, job: Some(job), image, error: None }, None),
                            Err(err) => {
                                (Outcome { file, job: None, image: None, error: Some(format!("{err:#}")) }, Some(err))
                            }
                        }
                    }
                }
            }
        })
        .buffered(concurrency * 4)
        .map(|(outcome, err)| {
            if first_error.is_none() {
                first_error = err;
            }
            outcome
        })
        .collect()
        .await;
    bar.finish_and_clear();

    let mut failed = 0;
    for outcome in &outcomes {
        let unsuccessful =
            outcome.job.as_ref().is_some_and(|job| job.status.is_final() && job.status != JobStatus::Succeeded);
        failed += usize::from(unsuccessful);
        if json {
            println!("{}", serde_json::to_string(outcome)?);
        } else if args.wait {
            print_outcome(&client, outcome);
        }
    }
    if let Some(err) = first_error {
        let total = outcomes.iter().filter(|o| o.error.is_some()).count();
        return Err(err.context(format!("{total} of {} file(s) could not be submitted or followed", outcomes.len())));
    }
    if failed > 0 {
        return Err(Failure::error(Exit::JobFailed, format!("{failed} job(s) did not succeed")));
    }
    Ok(())
}

/// Every file the paths name: files as given, directories walked for
/// images, globs expanded. Sorted and without repeats.
fn expand(paths: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let as_path = Path::new(path);
        if as_path.is_dir() {
            walk(as_path, &mut files)?;
        } else if as_path.exists() {
            files.push(as_path.to_owned());
        } else if path.contains(['*', '?', '[']) {
            let matches = glob::glob(path).map_err(|err| Failure::error(Exit::Usage, format!("{path:?}: {err}")))?;
            let before = files.len();
            for entry in matches {
                let entry = entry?;
                if entry.is_file() && is_image(&entry) {
                    files.push(entry);
                }
            }
            if files.len() == before {
                return Err(Failure::error(Exit::NotFound, format!("{path:?} matches no image")));
            }
        } else {
            return Err(Failure::error(Exit::NotFound, format!("{path}: no such file or directory")));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// The images under `dir`, recursively; files that are not images are skipped.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, files)?;
        } else if path.is_file() && is_image(&path) {
            files.push(path);
        }
    }
    Ok(())
}

/// Whether the file starts like an image the service takes.
fn is_image(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    imaging::sniff(&head[..read]).is_some()
}

async fn upload(client: &Client, file: &Path, direct: bool) -> anyhow::Result<Job> {
    let bytes = tokio::fs::read(file).await.with_context(|| format!("cannot read {}", file.display()))?;
    let content_type = imaging::sniff(&bytes)
        .map(|format| format!("image/{format}"))
        .ok_or_else(|| Failure::error(Exit::Refused, format!("{} is not a supported image", file.display())))?;
    let options = Upload::default();
    let job = if direct {
        client.upload(bytes.into(), &content_type, &options).await?.job
    } else {
        client.upload_presigned(bytes.into(), &content_type, &options).await?.job
    };
    Ok(job)
}

/// Polls a job until it ends (or the deadline), then reads its image if it succeeded.
async fn follow(client: &Client, job: Job, deadline: Instant) -> anyhow::Result<(Job, Option<Image>)> {
    let left = deadline.saturating_duration_since(Instant::now());
    let job = client.wait(job.id, left).await?;
    let image = if job.status == JobStatus::Succeeded { Some(client.image(job.image_id).await?) } else { None };
    Ok((job, image))
}

fn print_outcome(client: &Client, outcome: &Outcome) {
    let file = outcome.file.display();
    match (&outcome.job, &outcome.image) {
        (Some(_), Some(image)) => {
            println!("{file}\tsucceeded");
            crate::remote::print_image(client, image);
        }
        (Some(job), None) => {
            let (code, message) = job.error.as_ref().map_or(("-", "-"), |e| (e.code.as_str(), e.message.as_str()));
            println!("{file}\t{}\t{code}: {message}", job.status);
        }
        (None, _) => {}
    }
}

/// A bar on standard error, hidden when that is not a terminal.
fn progress(len: u64, verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!("{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {verb}  {{per_sec}}");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    if len == 0 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_globs_expand_to_their_images_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/dice_rgba.png")).expect("testdata");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("a.png"), &png).expect("write");
        std::fs::write(dir.path().join("sub/b.png"), &png).expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"not an image").expect("write");
        let root = dir.path().display().to_string();

        let walked = expand(std::slice::from_ref(&root)).expect("expands");
        let globbed = expand(&[format!("{root}/**/*.png"), format!("{root}/a.png")]).expect("expands");

        assert_eq!(walked, vec![dir.path().join("a.png"), dir.path().join("sub/b.png")]);
        assert_eq!(globbed, walked, "a file named twice is uploaded once");
        let missing = expand(&[format!("{root}/*.jpg")]).expect_err("no match");
        assert_eq!(crate::exit::classify(&missing), Exit::NotFound);
    }
}
