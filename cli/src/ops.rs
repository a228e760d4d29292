//! The operators' commands: `replay dlq`, `replay jobs` and `reprocess`.
//! Each shows a progress bar, accepts `--dry-run`, and prints its summary;
//! with `--wait` it then follows the workers through the bulk lane.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use entities::jobs::JobStatus;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipeline::Settings;
use pipeline::jobs::JobFilter;
use pipeline::replay::{DlqMode, Operator, Progress};
use uuid::Uuid;

/// `image-service replay …`
#[derive(Subcommand)]
pub enum Replay {
    /// Move dead-lettered messages to the bulk lane, which workers serve after new uploads.
    Dlq {
        /// `auto` uses SQS's StartMessageMoveTask where available, else copies.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
        /// Move at most this many messages per second.
        #[arg(long)]
        max_per_second: Option<u32>,
        /// Print what would happen and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Then follow the workers until the bulk lane is empty.
        #[arg(long)]
        wait: bool,
    },
    /// Re-enqueue past jobs chosen by filters, each as a new linked job.
    Jobs(JobsArgs),
}

/// How `replay dlq` moves messages.
#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// The server-side move task if the service has one, else copy.
    Auto,
    /// Only the server-side move task.
    MoveTask,
    /// Receive, send, then delete.
    Copy,
}

/// Filters of `replay jobs`.
#[derive(Args)]
pub struct JobsArgs {
    /// Statuses to replay (repeatable).
    #[arg(long = "status", value_enum, default_values_t = [Status::Failed, Status::Dead])]
    statuses: Vec<Status>,
    /// Jobs created at or after this instant (RFC 3339).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Jobs created before this instant (RFC 3339).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// Only jobs that ended with this error code.
    #[arg(long)]
    error_code: Option<String>,
    /// Only jobs of this image.
    #[arg(long)]
    image: Option<Uuid>,
    /// Only jobs of this tenant (by name); every tenant's by default.
    #[arg(long)]
    tenant: Option<String>,
    /// Enqueue at most this many jobs per second.
    #[arg(long)]
    max_per_second: Option<u32>,
    /// Print what would happen and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then follow the workers until the bulk lane is empty.
    #[arg(long)]
    wait: bool,
}

/// A replayable status.
#[derive(Clone, Copy, ValueEnum)]
pub enum Status {
    /// Ended with a permanent error.
    Failed,
    /// Retries exhausted.
    Dead,
}

/// `image-service reprocess …`
#[derive(Args)]
pub struct ReprocessArgs {
    /// The preset to (re)generate.
    #[arg(long)]
    preset: String,
    /// Only images whose variant of this preset is missing or from an older version.
    #[arg(long)]
    stale_only: bool,
    /// Continue from where an interrupted run stopped.
    #[arg(long)]
    resume: bool,
    /// Images read from the database at a time.
    #[arg(long, default_value_t = 500)]
    page_size: u64,
    /// Enqueue at most this many jobs per second.
    #[arg(long)]
    max_per_second: Option<u32>,
    /// Print what would happen and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then follow the workers until the bulk lane is empty.
    #[arg(long)]
    wait: bool,
}

pub(crate) struct Bar(pub(crate) ProgressBar);

impl Bar {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar)
    }
}

impl Progress for Bar {
    fn total(&self, total: u64) {
        self.0.set_length(total);
    }

    fn advance(&self, n: u64) {
        if self.0.position() + n > self.0.length().unwrap_or(0) {
            self.0.set_length(self.0.position() + n);
        }
        self.0.inc(n);
    }

    fn note(&self, text: &str) {
        self.0.set_message(text.to_owned());
    }
}

async fn operator(settings: &Settings) -> anyhow::Result<Operator> {
    let backends = crate::connect(settings).await?;
    let presets = settings.presets().map_err(anyhow::Error::msg)?;
    Ok(Operator::new(backends, presets, settings.app_env.clone()))
}

fn print(json: bool, summary: &pipeline::event::ReplaySummary) -> anyhow::Result<()> {
    let text = describe(summary)?;
    crate::remote::emit(json, summary, |_| println!("{text}"))
}

fn describe(summary: &pipeline::event::ReplaySummary) -> anyhow::Result<String> {
    let counts: Vec<String> = summary.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(format!(
        "{}{}: {}",
        summary.operation,
        if summary.dry_run { " (dry run, nothing changed)" } else { "" },
        if counts.is_empty() { "nothing to do".to_owned() } else { counts.join(" ") }
    ))
}

/// Runs `replay dlq` or `replay jobs`.
pub async fn replay(settings: Settings, json: bool, command: Replay) -> anyhow::Result<()> {
    let operator = operator(&settings).await?;
    let bar = Bar::new();
    let (summary, wait) = match command {
        Replay::Dlq { mode, max_per_second, dry_run, wait } => {
            let mode = match mode {
                Mode::Auto => DlqMode::Auto,
                Mode::MoveTask => DlqMode::MoveTask,
                Mode::Copy => DlqMode::Copy,
            };
            (operator.replay_dlq(mode, max_per_second, dry_run, &bar).await?, wait && !dry_run)
        }
        Replay::Jobs(args) => {
            let tenant_id = match &args.tenant {
                Some(name) => Some(crate::keys::tenant_named(&operator.backends().db, name).await?.id),
                None => None,
            };
            let filter = JobFilter {
                statuses: args
                    .statuses
                    .iter()
                    .map(|s| match s {
                        Status::Failed => JobStatus::Failed,
                        Status::Dead => JobStatus::Dead,
                    })
                    .collect(),
                since: args.since,
                until: args.until,
                error_code: args.error_code,
                image_id: args.image,
                tenant_id,
            };
            (operator.replay_jobs(&filter, args.max_per_second, args.dry_run, &bar).await?, args.wait && !args.dry_run)
        }
    };
    bar.0.finish_and_clear();
    print(json, &summary)?;
    if wait { follow(&operator).await } else { Ok(()) }
}

/// Shows the workers' progress through the bulk lane until it is empty.
async fn follow(operator: &Operator) -> anyhow::Result<()> {
    let bar = Bar::new();
    let started = std::time::Instant::now();
    operator.follow_bulk(std::time::Duration::from_secs(1), &bar).await?;
    bar.0.finish_and_clear();
    eprintln!("the bulk lane is empty after {:.0?}", started.elapsed());
    Ok(())
}

/// Runs `reprocess`.
pub async fn reprocess(settings: Settings, json: bool, args: ReprocessArgs) -> anyhow::Result<()> {
    let operator = operator(&settings).await?;
    let bar = Bar::new();
    let summary = operator
        .reprocess(&args.preset, args.stale_only, args.resume, args.page_size, args.max_per_second, args.dry_run, &bar)
        .await?;
    bar.0.finish_and_clear();
    print(json, &summary)?;
    if args.wait && !args.dry_run { follow(&operator).await } else { Ok(()) }
}
