//! The operators' replays, shared by the CLI and the admin API:
//!
//! - [`Operator::replay_dlq`] moves dead-lettered messages to the bulk lane;
//! - [`Operator::replay_jobs`] re-enqueues past jobs chosen by filters, each
//!   as a new job linked to the one it replays;
//! - [`Operator::reprocess`] enqueues work for images whose variants of a
//!   preset are missing or stale, page by page, resumably.
//!
//! None of them loses or doubles a job: the mover deletes a message only
//! after its copy was sent, and a replay is skipped while an earlier replay
//! of the same job (or preset job of the same image) is pending. Each run
//! ends with one `replay.summary` event. All of them send to the bulk lane
//! ([`crate::queue::Lanes`]), which workers serve after new uploads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use imaging::Preset;
use uuid::Uuid;

use crate::backends::Backends;
use crate::event::{Event, ReplaySummary};
use crate::jobs::operator;
use crate::jobs::{JobFilter, Transition};
use crate::message::{Incoming, JobMessage};
use crate::queue::{JobQueue, Outgoing, QueueError};

/// Reports progress to whoever watches (a progress bar, or nobody).
pub trait Progress: Send + Sync {
    /// The expected total, once known.
    fn total(&self, _total: u64) {}
    /// `n` more items done.
    fn advance(&self, _n: u64) {}
    /// A status line.
    fn note(&self, _text: &str) {}
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {}

/// A replay could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The run needs a dead-letter queue and none is configured.
    #[error("no dead-letter queue is configured (SQS_DLQ_URL)")]
    NoDeadLetterQueue,
    /// The preset is not configured.
    #[error("no preset named {0:?} is configured")]
    UnknownPreset(String),
    /// `--mode move-task` was asked for where the queue has no move task.
    #[error("the queue service cannot move messages itself; use --mode copy")]
    MoveTaskUnsupported,
    /// The server-side move task failed.
    #[error("the move task failed: {0}")]
    MoveTaskFailed(String),
    /// A queue call failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A database call failed.
    #[error("database unavailable")]
    Database(#[from] sea_orm::DbErr),
}

/// How `replay dlq` moves messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DlqMode {
    /// The server-side move task where the service has one, else copy.
    Auto,
    /// Only the server-side move task (SQS `StartMessageMoveTask`).
    MoveTask,
    /// Receive, send, then delete, message by message.
    Copy,
}

/// Spaces out work to at most `per_second` items.
struct RateLimit(Option<tokio::time::Interval>);

impl RateLimit {
    fn new(per_second: Option<u32>) -> Self {
        // Past a billion a second the period rounds to zero: that is no limit.
        let period = per_second.filter(|n| *n > 0).map(|n| Duration::from_secs(1) / n).filter(|p| !p.is_zero());
        Self(period.map(|period| {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        }))
    }

    async fn wait(&mut self) {
        if let Some(interval) = &mut self.0 {
            interval.tick().await;
        }
    }
}

/// Runs replays against one set of backends.
pub struct Operator {
    backends: Backends,
    presets: Vec<Preset>,
    env: String,
}

type Counts = BTreeMap<String, u64>;

fn bump(counts: &mut Counts, name: &str, n: u64) {
    *counts.entry(name.to_owned()).or_default() += n;
}

impl Operator {
    /// An operator with the configured presets; `env` goes on summary events.
    pub fn new(backends: Backends, presets: Vec<Preset>, env: String) -> Self {
        Self { backends, presets, env }
    }

    /// The backends it runs against.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    async fn finish(&self, operation: &str, dry_run: bool, counts: Counts) -> ReplaySummary {
        let summary = ReplaySummary { operation: operation.to_owned(), dry_run, counts };
        let event = Event::replay_summary(summary.clone(), self.env.clone());
        // The run is done either way; a missing summary is worth a warning, not a failure.
        match self.backends.outbox.record(&self.backends.db, &event).await {
            Ok(recorded) => self.backends.outbox.committed(recorded),
            Err(err) => tracing::warn!(error = %err, "could not record the replay summary's webhook deliveries"),
        }
        if let Err(err) = self.backends.notifier.publish(&event).await {
            tracing::warn!(error = %err, "could not publish the replay summary");
        }
        summary
    }

    /// Moves every message in the dead-letter queues (the job queue's and the
    /// bulk lane's) to the bulk lane.
    ///
    /// # Errors
    /// When there is no dead-letter queue, or a queue or database call fails
    /// (messages not yet moved stay in the dead-letter queue).
    // One span per run; the messages it moves keep their jobs' traces.
    #[tracing::instrument(name = "replay_dlq", skip_all)]
    pub async fn replay_dlq(
        &self,
        mode: DlqMode,
        max_per_second: Option<u32>,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<ReplaySummary, ReplayError> {
        let dead_letters = self.backends.all_dead_letters();
        if dead_letters.is_empty() {
            return Err(ReplayError::NoDeadLetterQueue);
        }
        let mut depth = 0;
        for dlq in &dead_letters {
            depth += dlq.approximate_depth().await?;
        }
        progress.total(depth);
        let mut counts = Counts::new();
        if dry_run {
            bump(&mut counts, "would_move", depth);
            return Ok(self.finish("replay dlq", true, counts).await);
        }
        // Every dead-letter queue drains into the bulk lane: a redrive after
        // an outage can be thousands of jobs, and new uploads go first.
        let destination = self.backends.bulk_queue().address().await?;
        for dlq in dead_letters {
            if mode != DlqMode::Copy {
                match dlq.start_redrive(destination.as_deref(), max_per_second).await {
                    Ok(Some(handle)) => {
                        let moved = self.wait_for_move_task(dlq.as_ref(), &handle, progress).await?;
                        bump(&mut counts, "moved", moved);
                        continue;
                    }
                    Ok(None) if mode == DlqMode::MoveTask => return Err(ReplayError::MoveTaskUnsupported),
                    Err(err) if mode == DlqMode::MoveTask => return Err(err.into()),
                    Ok(None) => progress.note("no server-side move task here; copying"),
                    Err(err) => {
                        tracing::warn!(error = %err, "StartMessageMoveTask failed; copying instead");
                        progress.note("the move task was refused; copying");
                    }
                }
            }
            self.copy_back(dlq, max_per_second, &mut counts, progress).await?;
        }
        Ok(self.finish("replay dlq", false, counts).await)
    }

    async fn wait_for_move_task(
        &self,
        dlq: &dyn JobQueue,
        handle: &str,
        progress: &dyn Progress,
    ) -> Result<u64, ReplayError> {
        let mut reported = 0;
        loop {
            let status = dlq.redrive_status(handle).await?;
            progress.advance(status.moved.saturating_sub(reported));
            reported = status.moved;
            match status.status.as_str() {
                "COMPLETED" => return Ok(status.moved),
                "FAILED" | "CANCELLED" => {
                    return Err(ReplayError::MoveTaskFailed(status.failure.unwrap_or(status.status)));
                }
                _ => tokio::time::sleep(Duration::from_secs(2)).await,
            }
        }
    }

    /// Receive, send to the bulk lane, and only then delete: a crash at any
    /// point leaves each message in the dead-letter queue, in the bulk lane,
    /// or (briefly) in both, never in neither. Each keeps its tenant's group.
    async fn copy_back(
        &self,
        dlq: Arc<dyn JobQueue>,
        max_per_second: Option<u32>,
        counts: &mut Counts,
        progress: &dyn Progress,
    ) -> Result<(), ReplayError> {
        let mut limit = RateLimit::new(max_per_second);
        let batch = max_per_second.map_or(10, |n| n.clamp(1, 10));
        loop {
            let deliveries = dlq.receive(batch, Duration::from_secs(1), Duration::from_secs(60)).await?;
            if deliveries.is_empty() {
                return Ok(());
            }
            for _ in &deliveries {
                limit.wait().await;
            }
            let messages: Vec<Outgoing> = deliveries.iter().map(Outgoing::again).collect();
            let sent = self.backends.bulk_queue().send_batch(&messages).await;
            let mut acknowledged = Vec::new();
            for (delivery, result) in deliveries.iter().zip(sent) {
                if let Err(err) = result {
                    // Left in the DLQ; it reappears there after its visibility timeout.
                    tracing::warn!(message_id = %delivery.message_id, error = %err, "could not send back; left in the DLQ");
                    bump(counts, "failed", 1);
                    continue;
                }
                if let Ok(Incoming::Job(message)) = Incoming::parse(&delivery.body)
                    && self.backends.jobs().revive(message.job_id, "redriven", "replay dlq (copy)").await?
                {
                    bump(counts, "jobs_requeued", 1);
                }
                acknowledged.push(delivery.receipt.clone());
            }
            for result in dlq.delete_batch(&acknowledged).await {
                // A copy that stays behind is sent again by the next run and
                // then found finished by the worker: a duplicate, not a loss.
                if let Err(err) = result {
                    tracing::warn!(error = %err, "moved message not deleted from the DLQ");
                }
            }
            bump(counts, "moved", acknowledged.len() as u64);
            progress.advance(acknowledged.len() as u64);
        }
    }

    /// Re-enqueues past jobs chosen by `filter`, each as a new job that
    /// records which one it replays. A job whose earlier replay is still
    /// pending is skipped, so running this twice does not enqueue twice.
    ///
    /// # Errors
    /// When a database or queue call fails; jobs enqueued so far stay enqueued.
    // The run is a trace of its own: the jobs it makes continue it, and
    // each links to the job it replays.
    #[tracing::instrument(name = "replay_jobs", skip_all)]
    pub async fn replay_jobs(
        &self,
        filter: &JobFilter,
        max_per_second: Option<u32>,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<ReplaySummary, ReplayError> {
        let db = &self.backends.db;
        let mut counts = Counts::new();
        let mut limit = RateLimit::new(max_per_second);
        let mut after = None;
        loop {
            let page = operator::jobs_page(db, filter, after, 200).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for original in page {
                progress.advance(1);
                if operator::original_removed(db, original.image_id).await? {
                    bump(&mut counts, "skipped_original_removed", 1);
                    continue;
                }
                if dry_run {
                    bump(&mut counts, "would_enqueue", 1);
                    continue;
                }
                let Some(replay) =
                    operator::create_replay(db, &original, original.presets.clone(), "replay jobs").await?
                else {
                    bump(&mut counts, "skipped_pending", 1);
                    continue;
                };
                limit.wait().await;
                self.enqueue(&replay, &mut counts).await?;
            }
        }
        Ok(self.finish("replay jobs", dry_run, counts).await)
    }

    async fn enqueue(&self, job: &entities::jobs::Model, counts: &mut Counts) -> Result<(), ReplayError> {
        match self.backends.bulk_queue().send(&JobMessage::outgoing(job)).await {
            Ok(_) => {
                bump(counts, "enqueued", 1);
                Ok(())
            }
            Err(err) => {
                // Never leave a queued job without a message. The queue's own
                // error is logged, never stored: clients read the job's.
                tracing::warn!(job_id = %job.id, error = %err, "could not re-enqueue a job");
                self.backends
                    .jobs()
                    .end_with_error(job.id, Transition::Fail, "enqueue-failed", "the job could not be queued again")
                    .await?;
                Err(err.into())
            }
        }
    }

    /// Waits until the workers have emptied the bulk lane, reporting how
    /// far they got: its depth at the call is the total, and every message
    /// that leaves it is progress (the lane may hold other bulk work too).
    ///
    /// # Errors
    /// When the queue cannot tell its depth.
    pub async fn follow_bulk(&self, poll: Duration, progress: &dyn Progress) -> Result<(), ReplayError> {
        let queue = self.backends.bulk_queue();
        let mut total = queue.approximate_depth().await?;
        progress.total(total);
        progress.note("the workers are running the bulk lane");
        let mut done = 0;
        loop {
            let depth = queue.approximate_depth().await?;
            // Work sent meanwhile adds to the total rather than hiding progress.
            if done + depth > total {
                total = done + depth;
                progress.total(total);
            }
            let now_done = total - depth;
            progress.advance(now_done - done);
            done = now_done;
            if depth == 0 {
                return Ok(());
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Enqueues a job making `preset` for every decoded image whose variant
    /// of the preset's current version is missing (`stale_only`), or for
    /// every decoded image. It reads `page_size` images at a time, saves its
    /// place after each page, and with `resume` starts from the saved place.
    ///
    /// # Errors
    /// Unknown preset, or a failed database or queue call (rerun with `resume`).
    #[allow(clippy::too_many_arguments)]
    // The run is a trace of its own, which the jobs it makes continue.
    #[tracing::instrument(name = "reprocess", skip_all)]
    pub async fn reprocess(
        &self,
        preset: &str,
        stale_only: bool,
        resume: bool,
        page_size: u64,
        max_per_second: Option<u32>,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<ReplaySummary, ReplayError> {
        let db = &self.backends.db;
        let version = self
            .presets
            .iter()
            .find(|p| p.name == preset)
            .ok_or_else(|| ReplayError::UnknownPreset(preset.to_owned()))?
            .version();
        let cursor_name = format!("reprocess:{preset}:{}", if stale_only { "stale" } else { "all" });
        let mut after = if resume {
            operator::load_cursor(db, &cursor_name).await?.and_then(|c| Uuid::parse_str(&c).ok())
        } else {
            None
        };
        let mut counts = Counts::new();
        let mut limit = RateLimit::new(max_per_second);
        loop {
            let page =
                operator::images_for_preset_page(db, preset, &version, stale_only, after, page_size.max(1)).await?;
            let Some(&last) = page.last() else { break };
            for image_id in page {
                progress.advance(1);
                if operator::pending_job_for(db, image_id, preset).await? {
                    bump(&mut counts, "skipped_pending", 1);
                } else if dry_run {
                    bump(&mut counts, "would_enqueue", 1);
                } else {
                    limit.wait().await;
                    let job = operator::create_preset_job(db, image_id, preset).await?;
                    operator::audit(db, job.id, "reprocess", &format!("preset {preset} version {version}")).await?;
                    self.enqueue(&job, &mut counts).await?;
                }
            }
            after = Some(last);
            if !dry_run {
                operator::save_cursor(db, &cursor_name, Some(&last.to_string())).await?;
            }
        }
        if !dry_run {
            operator::save_cursor(db, &cursor_name, None).await?;
        }
        Ok(self.finish("reprocess", dry_run, counts).await)
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[tokio::test]
    async fn any_rate_is_a_valid_limit() {
        for rate in [None, Some(0), Some(1), Some(1_000_000_000), Some(u32::MAX)] {
            RateLimit::new(rate).wait().await;
        }
    }
}
