//! The webhook outbox: deliveries that survive restarts.
//!
//! [`Outbox::record`] writes one row per configured webhook that wants an
//! event ([`entities::webhook_deliveries`]), on the connection the caller
//! passes: the transaction of the state change the event announces, so a
//! committed outcome always has its deliveries and a rolled-back one has none.
//! The row holds the exact body every attempt sends.
//!
//! Any worker process delivers due rows ([`Outbox::run`]). It claims rows
//! by bumping their attempt counts in one conditional update (on Postgres
//! and SQLite alike) that also leases them: a process that dies mid-attempt
//! leaves the row due again after [`LEASE`]. A process that runs the loop
//! writes its own rows already claimed and leased, and hands them to its
//! loop once their transaction commits ([`Outbox::committed`]), so the usual
//! delivery costs no claim; successes are marked delivered in batches. Each
//! attempt runs on its own task, so a receiver that hangs holds up no other. A failed attempt is rescheduled
//! with exponential backoff and jitter; one that would be due after the
//! row's expiry expires it instead. Expired rows are counted, listed by
//! [`failed`] (`image-service webhooks failed`) and sent again by [`replay`].
//!
//! Every attempt of a row carries the same `webhook-id` (the event id), so a
//! receiver that deduplicates by it sees each event once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{TimeDelta, Utc};
use entities::jobs;
use entities::webhook_deliveries::{self as rows, DeliveryState};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::delivery::Delivery;
use crate::event::Event;
use crate::links::Links;
use crate::notify::Webhook;

/// How long a claimed delivery is someone's: longer than an attempt's timeout.
pub const LEASE: Duration = Duration::from_secs(60);
/// A handed-over row this close to the end of its lease is left to the database.
const LEASE_MARGIN: Duration = Duration::from_secs(15);
/// Deliveries marked delivered by one update.
const MARKS_PER_UPDATE: usize = 200;
/// Attempts in flight at once.
const CONCURRENCY: usize = 8;
/// How often overdue rows are expired (each sweep is a write).
const EXPIRY_SWEEP: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(600);

/// The configured webhooks, and what rendering a job's event needs.
pub struct Outbox {
    webhooks: Vec<Webhook>,
    links: Option<Links>,
    delivery: Arc<Delivery>,
    env: String,
    ttl: TimeDelta,
    schedule: ExponentialBuilder,
    /// Wakes this process's [`Outbox::run`]: deliveries were handed to it,
    /// or an attempt ended.
    wake: tokio::sync::Notify,
    /// Whether this process runs [`Outbox::run`], and so records its rows
    /// claimed by itself.
    delivering: AtomicBool,
    /// Rows committed claimed by this process, for its loop to send.
    handed: Mutex<Vec<rows::Model>>,
    /// Rows delivered, as (id, attempts of the claim), to be marked so.
    delivered: Mutex<Vec<(Uuid, i32)>>,
}

/// The deliveries a transaction recorded that this process claimed; give
/// them to [`Outbox::committed`] once the transaction commits. Dropped
/// instead (a rollback), they are never sent.
#[must_use = "pass it to Outbox::committed after the commit"]
#[derive(Debug, Default)]
pub struct Recorded(Vec<rows::Model>);

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let targets: Vec<&str> = self.webhooks.iter().map(Webhook::target).collect();
        f.debug_struct("Outbox").field("targets", &targets).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// What some attempts (or an expiry sweep) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Accepted by their receivers.
    pub delivered: usize,
    /// Failed, and scheduled again.
    pub retried: usize,
    /// Failed past their expiry, or found expired unsent.
    pub expired: usize,
}

impl Outbox {
    /// An outbox for `webhooks`. A delivery is retried for `ttl`, the first
    /// retry after `base_delay`, each further one after about twice as long
    /// (at most ten minutes).
    pub fn new(
        webhooks: Vec<Webhook>,
        links: Option<Links>,
        delivery: Arc<Delivery>,
        env: String,
        ttl: Duration,
        base_delay: Duration,
    ) -> Self {
        let schedule = ExponentialBuilder::default()
            .with_min_delay(base_delay)
            .with_max_delay(MAX_DELAY.max(base_delay))
            .without_max_times()
            .with_jitter();
        let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        Self {
            webhooks,
            links,
            delivery,
            env,
            ttl,
            schedule,
            wake: tokio::sync::Notify::new(),
            delivering: AtomicBool::new(false),
            handed: Mutex::new(Vec::new()),
            delivered: Mutex::new(Vec::new()),
        }
    }

    /// Whether any webhook is configured.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty()
    }

    /// Hands the deliveries a transaction recorded to this process's loop,
    /// now that it committed. (Without a loop here, another process's finds
    /// them at its next poll.)
    pub fn committed(&self, recorded: Recorded) {
        if recorded.0.is_empty() {
            return;
        }
        if let Ok(mut handed) = self.handed.lock() {
            handed.extend(recorded.0);
        }
        self.wake.notify_one();
    }

    /// Records `event`'s deliveries on `conn`, one per webhook that wants it.
    /// Recording the same event again adds nothing. Once `conn`'s
    /// transaction commits, call [`Outbox::committed`].
    ///
    /// # Errors
    /// Database errors.
    pub async fn record(&self, conn: &impl ConnectionTrait, event: &Event) -> Result<Recorded, DbErr> {
        let now = Utc::now();
        // Claimed and leased at birth when this process's loop will send it.
        let ours = self.delivering.load(Ordering::Relaxed);
        let (attempts, due) = if ours { (1, now + lease()) } else { (0, now) };
        let rows: Vec<rows::ActiveModel> = self
            .webhooks
            .iter()
            .filter_map(|webhook| {
                Some(rows::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    event_id: Set(event.event_id),
                    event_kind: Set(event.event.as_str().to_owned()),
                    target: Set(webhook.target().to_owned()),
                    body: Set(webhook.body(event)?),
                    state: Set(DeliveryState::Pending),
                    attempts: Set(attempts),
                    next_attempt_at: Set(due),
                    expires_at: Set(now + self.ttl),
                    last_error: Set(None),
                    created_at: Set(now),
                    delivered_at: Set(None),
                    // The span that records it: the job's commit.
                    trace_parent: Set(crate::trace::current()),
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(Recorded::default());
        }
        // Only (event_id, target) can conflict (ids are new). A target-less
        // ON CONFLICT: SQLite checks a named target against the indexes at
        // prepare time, and a pooled connection's schema can lag a migration
        // that just ran (seen right after `migrate`).
        let insert = rows::Entity::insert_many(rows).on_conflict(OnConflict::new().do_nothing().to_owned());
        if !ours {
            insert.exec_without_returning(conn).await?;
            return Ok(Recorded::default());
        }
        // Only the rows inserted: an event recorded before is not sent again.
        Ok(Recorded(insert.exec_with_returning(conn).await?))
    }

    /// Records the outcome event of `job`, which has just reached a final
    /// state on `conn`: built from the rows as that connection sees them.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_job(&self, conn: &impl ConnectionTrait, job: &jobs::Model) -> Result<Recorded, DbErr> {
        if self.webhooks.is_empty() || !job.status.is_final() {
            return Ok(Recorded::default());
        }
        let Some((image, variants)) = crate::jobs::find_image(conn, job.tenant_id, job.image_id).await? else {
            return Ok(Recorded::default());
        };
        let event = Event::for_job(job, Some(&image), variants, self.links.as_ref(), &self.delivery, self.env.clone());
        self.record(conn, &event).await
    }

    /// Expires pending rows past their expiry that no attempt expired: rows
    /// for webhooks no running process has, or that waited out an outage of
    /// every worker. Returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn expire_overdue(&self, db: &DatabaseConnection) -> Result<usize, DbErr> {
        let expired = rows::Entity::update_many()
            .col_expr(rows::Column::State, Expr::value(DeliveryState::Expired))
            .filter(rows::Column::State.eq(DeliveryState::Pending))
            .filter(rows::Column::ExpiresAt.lt(Utc::now()))
            .exec(db)
            .await?;
        Ok(usize::try_from(expired.rows_affected).unwrap_or(usize::MAX))
    }

    /// Claims up to `max` due rows in one update, which bumps each row's
    /// attempt count and leases it for [`LEASE`] where it is still due: a
    /// row another process claimed meanwhile is no longer due, and is not
    /// returned. Returns the rows this call claimed, as claimed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_due(&self, db: &DatabaseConnection, max: u64) -> Result<Vec<rows::Model>, DbErr> {
        if self.webhooks.is_empty() || max == 0 {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let targets: Vec<&str> = self.webhooks.iter().map(Webhook::target).collect();
        let due: Vec<Uuid> = rows::Entity::find()
            .select_only()
            .column(rows::Column::Id)
            .filter(rows::Column::State.eq(DeliveryState::Pending))
            .filter(rows::Column::NextAttemptAt.lte(now))
            .filter(rows::Column::Target.is_in(targets))
            .order_by_asc(rows::Column::NextAttemptAt)
            .limit(max)
            .into_tuple()
            .all(db)
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        rows::Entity::update_many()
            .col_expr(rows::Column::Attempts, Expr::col(rows::Column::Attempts).add(1))
            .col_expr(rows::Column::NextAttemptAt, Expr::value(now + lease()))
            .filter(rows::Column::Id.is_in(due))
            .filter(rows::Column::State.eq(DeliveryState::Pending))
            .filter(rows::Column::NextAttemptAt.lte(now))
            .exec_with_returning(db)
            .await
    }

    /// Up to `max` of the rows handed over, the oldest first; drops those
    /// whose lease ends within [`LEASE_MARGIN`] (they are due again then).
    fn take_handed(&self, max: usize) -> Vec<rows::Model> {
        let Ok(mut handed) = self.handed.lock() else { return Vec::new() };
        let cutoff = Utc::now() + TimeDelta::from_std(LEASE_MARGIN).unwrap_or_default();
        handed.retain(|row| row.next_attempt_at > cutoff);
        let taken = max.min(handed.len());
        handed.drain(..taken).collect()
    }

    /// Marks the deliveries attempts accepted since the last flush, a few
    /// hundred to an update, each only while its claim is still the one that
    /// sent it.
    ///
    /// # Errors
    /// Database errors (the marks not made are kept for the next flush).
    pub async fn flush_delivered(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let batch = self.delivered.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
        // SQLite parses a chain of ORs as a tree as deep as the chain.
        for (n, chunk) in batch.chunks(MARKS_PER_UPDATE).enumerate() {
            let claims = chunk.iter().fold(Condition::any(), |any, (id, attempts)| {
                any.add(Condition::all().add(rows::Column::Id.eq(*id)).add(rows::Column::Attempts.eq(*attempts)))
            });
            let marked = rows::Entity::update_many()
                .col_expr(rows::Column::State, Expr::value(DeliveryState::Delivered))
                .col_expr(rows::Column::DeliveredAt, Expr::value(Utc::now()))
                .col_expr(rows::Column::LastError, Expr::value(Option::<String>::None))
                .filter(rows::Column::State.eq(DeliveryState::Pending))
                .filter(claims)
                .exec(db)
                .await;
            if let Err(err) = marked {
                if let Ok(mut delivered) = self.delivered.lock() {
                    delivered.extend_from_slice(&batch[n * MARKS_PER_UPDATE..]);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Makes one attempt of a claimed row, and records how it went:
    /// delivered (batched, [`Outbox::flush_delivered`]), due again after the
    /// backoff, or expired.
    ///
    /// # Errors
    /// Database errors (the row stays leased, and is due again after it).
    pub async fn attempt(&self, db: &DatabaseConnection, row: &rows::Model) -> Result<Round, DbErr> {
        let Some(webhook) = self.webhooks.iter().find(|w| w.target() == row.target) else {
            return Ok(Round::default());
        };
        // Each attempt is a span of the job's trace, and the receiver
        // continues from it (`traceparent`).
        let span =
            tracing::info_span!("webhook", target = %row.target, attempt = row.attempts, event_id = %row.event_id);
        crate::trace::continue_from(&span, row.trace_parent.as_deref());
        let traceparent = crate::trace::traceparent_of(&span).or_else(|| row.trace_parent.clone());
        let result = webhook.send(&row.event_id.to_string(), &row.body, traceparent.as_deref()).instrument(span).await;
        let now = Utc::now();
        match result {
            Ok(()) => {
                // Marked with others by the loop's next flush; until then
                // the row's lease keeps it from being sent again.
                if let Ok(mut delivered) = self.delivered.lock() {
                    delivered.push((row.id, row.attempts));
                }
                Ok(Round { delivered: 1, ..Round::default() })
            }
            Err(code) => {
                // Only while the claim is still this one's.
                let ours = rows::Entity::update_many()
                    .filter(rows::Column::Id.eq(row.id))
                    .filter(rows::Column::Attempts.eq(row.attempts));
                let next = now + self.delay(row.attempts);
                let expired = next > row.expires_at;
                let state = if expired { DeliveryState::Expired } else { DeliveryState::Pending };
                tracing::warn!(delivery = %row.id, event_id = %row.event_id, target = %row.target,
                    attempts = row.attempts, error = %code, ?state, "webhook delivery failed");
                ours.col_expr(rows::Column::State, Expr::value(state))
                    .col_expr(rows::Column::NextAttemptAt, Expr::value(next))
                    .col_expr(rows::Column::LastError, Expr::value(code))
                    .exec(db)
                    .await?;
                Ok(if expired {
                    Round { expired: 1, ..Round::default() }
                } else {
                    Round { retried: 1, ..Round::default() }
                })
            }
        }
    }

    /// The wait after the `attempts`-th failure.
    fn delay(&self, attempts: i32) -> TimeDelta {
        let nth = usize::try_from(attempts.saturating_sub(1)).unwrap_or_default();
        let delay = self.schedule.build().nth(nth).unwrap_or(MAX_DELAY);
        TimeDelta::from_std(delay).unwrap_or_default()
    }

    /// Delivers forever, up to [`CONCURRENCY`] attempts at once, each on its
    /// own task so a slow receiver holds up no other: it sends what this
    /// process handed it at once (on [`Outbox::committed`]) and claims what is
    /// due in the database every `period`; marks accepted
    /// deliveries in batches; and expires overdue rows every [`EXPIRY_SWEEP`]. `count`
    /// hears what each attempt and sweep did.
    pub async fn run(
        self: Arc<Self>,
        db: DatabaseConnection,
        period: Duration,
        count: impl Fn(Round) + Send + Sync + 'static,
    ) {
        self.delivering.store(true, Ordering::Relaxed);
        let count = Arc::new(count);
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut swept = tokio::time::Instant::now();
        // The database is polled every `period` (and again at once after a
        // full claim), not on every wake: a wake is a handover or an ended
        // attempt, which makes nothing due there.
        let mut polled: Option<tokio::time::Instant> = None;
        let mut full = false;
        loop {
            if let Err(err) = self.flush_delivered(&db).await {
                tracing::warn!(error = %err, "webhook outbox: could not mark deliveries; trying again");
            }
            // Rows this process recorded claimed need no claim. Those without
            // a free slot wait for one, unless their lease is nearly over:
            // then they are left to the database, where it ends.
            let free = slots.available_permits();
            let mut rows = self.take_handed(free);
            let free = u64::try_from(free).unwrap_or_default();
            let room = free.saturating_sub(u64::try_from(rows.len()).unwrap_or(free));
            if full || polled.is_none_or(|at| at.elapsed() >= period) {
                polled = Some(tokio::time::Instant::now());
                let claimed = self.claim_due(&db, room).await.unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "webhook outbox: the database failed; trying again");
                    Vec::new()
                });
                full = room > 0 && claimed.len() == usize::try_from(room).unwrap_or_default();
                rows.extend(claimed);
            }
            for row in rows {
                let Ok(slot) = slots.clone().try_acquire_owned() else { break };
                let (outbox, db, count) = (self.clone(), db.clone(), count.clone());
                tokio::spawn(async move {
                    match outbox.attempt(&db, &row).await {
                        Ok(round) => count(round),
                        Err(err) => {
                            tracing::warn!(delivery = %row.id, error = %err, "webhook outbox: could not record an attempt")
                        }
                    }
                    drop(slot);
                    outbox.wake.notify_one();
                });
            }
            if swept.elapsed() >= EXPIRY_SWEEP {
                swept = tokio::time::Instant::now();
                match self.expire_overdue(&db).await {
                    Ok(expired) => count(Round { expired, ..Round::default() }),
                    Err(err) => tracing::warn!(error = %err, "webhook outbox: the expiry sweep failed"),
                }
            }
            if !full {
                let next_poll = polled.map_or_else(tokio::time::Instant::now, |at| at + period);
                tokio::select! {
                    () = tokio::time::sleep_until(next_poll) => {}
                    () = self.wake.notified() => {}
                }
            }
        }
    }
}

/// [`LEASE`] as a time delta.
fn lease() -> TimeDelta {
    TimeDelta::from_std(LEASE).unwrap_or_default()
}

/// Expired deliveries, newest first, at most `limit`.
///
/// # Errors
/// Database errors.
pub async fn failed(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<rows::Model>, DbErr> {
    rows::Entity::find()
        .filter(rows::Column::State.eq(DeliveryState::Expired))
        .order_by_desc(rows::Column::ExpiresAt)
        .limit(limit)
        .all(db)
        .await
}

/// Makes expired deliveries pending again, due now and retried for `ttl`
/// more: the ones named by `ids`, or every expired one when `ids` is `None`.
/// Returns how many.
///
/// # Errors
/// Database errors.
pub async fn replay(db: &impl ConnectionTrait, ids: Option<&[Uuid]>, ttl: Duration) -> Result<u64, DbErr> {
    let now = Utc::now();
    let mut update = rows::Entity::update_many()
        .col_expr(rows::Column::State, Expr::value(DeliveryState::Pending))
        .col_expr(rows::Column::Attempts, Expr::value(0))
        .col_expr(rows::Column::NextAttemptAt, Expr::value(now))
        .col_expr(rows::Column::ExpiresAt, Expr::value(now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX)))
        .filter(rows::Column::State.eq(DeliveryState::Expired));
    if let Some(ids) = ids {
        update = update.filter(rows::Column::Id.is_in(ids.iter().copied()));
    }
    Ok(update.exec(db).await?.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let verifier = crate::delivery::Verifier::new(None, &[]).expect("no keys");
        let delivery = Arc::new(Delivery::new("", crate::delivery::Mode::Public, None, verifier, 60));
        let outbox =
            Outbox::new(Vec::new(), None, delivery, "test".into(), Duration::from_secs(60), Duration::from_secs(1));
        let delays: Vec<i64> = (1..=14).map(|n| outbox.delay(n).num_milliseconds()).collect();
        // Jitter adds up to one more delay: the n-th is in [2^(n-1), 2^n) seconds until the cap.
        for (n, delay) in delays.iter().enumerate().take(8) {
            let base = 1000 << n;
            assert!((base..2 * base).contains(delay), "attempt {}: {delay} ms", n + 1);
        }
        assert!(delays.iter().all(|d| *d <= 2 * 600_000), "{delays:?}");
    }
}
