//! Two lanes of work on two queues: live uploads, and bulk work (replays
//! and reprocessing), so that regenerating ten thousand images never puts a
//! new upload behind them.
//!
//! [`Lanes::receive_lanes`] serves the live lane first. The bulk lane gets
//! what live work leaves, within the room the caller gives it (the worker
//! keeps slots for live work that way), and every [`BULK_TURN`]th receive
//! looks at it first, so bulk work still finishes under a steady stream of
//! uploads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Delivery, JobQueue, Outgoing, QueueError, RedriveStatus};

/// What the bulk lane may take now: `free` more messages, while bulk
/// jobs are `busy` (running, so that more room is coming).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkRoom {
    /// Bulk messages a receive may take now.
    pub free: u32,
    /// Whether bulk jobs are running.
    pub busy: bool,
}

impl BulkRoom {
    /// Room for `n` bulk messages, with none running.
    pub fn idle(n: u32) -> Self {
        Self { free: n, busy: false }
    }
}

/// Which lane a message travels in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lane {
    /// New uploads: served first.
    #[default]
    Live,
    /// Replays and reprocessing: served from what live work leaves.
    Bulk,
}

impl Lane {
    /// The lane's name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Bulk => "bulk",
        }
    }
}

/// One receive in this many looks at the bulk lane before the live lane:
/// bulk work's floor while live work keeps every slot busy (10%).
pub const BULK_TURN: u64 = 10;

/// While both lanes are empty, the live lane is long-polled in slices of
/// this length, and the bulk lane looked at between them: a bulk message
/// waits at most this long for an idle worker, and a live one not at all.
const BULK_LOOK: Duration = Duration::from_secs(2);

/// Receipts handed out for the bulk lane carry this prefix, so that a
/// delete or a visibility change finds its queue. Neither an SQS receipt
/// handle (base64) nor a table-queue receipt (`id.token`) holds a colon.
const BULK_RECEIPT: &str = "bulk:";

/// The live and the bulk queue, read as one.
#[derive(Clone)]
pub struct Lanes {
    live: Arc<dyn JobQueue>,
    bulk: Option<Arc<dyn JobQueue>>,
    turns: Arc<AtomicU64>,
}

impl Lanes {
    /// The two lanes; without a bulk queue everything travels live.
    pub fn new(live: Arc<dyn JobQueue>, bulk: Option<Arc<dyn JobQueue>>) -> Self {
        Self { live, bulk, turns: Arc::new(AtomicU64::new(0)) }
    }

    /// The queue of `lane` (the live one where there is no bulk queue).
    pub fn queue(&self, lane: Lane) -> &Arc<dyn JobQueue> {
        match (lane, &self.bulk) {
            (Lane::Bulk, Some(bulk)) => bulk,
            _ => &self.live,
        }
    }

    /// Whether bulk work has a queue of its own.
    pub fn has_bulk_lane(&self) -> bool {
        self.bulk.is_some()
    }

    /// Receives at most `max` messages, waiting up to `wait` for any. Bulk
    /// messages come only while `room` says the bulk lane has room, and
    /// `room` is asked again each time the lanes are looked at: bulk jobs
    /// finish while a receive waits. A failing bulk queue never holds up
    /// live work: its error is logged and the lane skipped.
    ///
    /// # Errors
    /// When the live queue fails.
    pub async fn receive_lanes(
        &self,
        max: u32,
        room: &(dyn Fn() -> BulkRoom + Send + Sync),
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let Some(bulk) = &self.bulk else {
            return self.live.receive(max, wait, visibility).await;
        };
        let turn = self.turns.fetch_add(1, Ordering::Relaxed).is_multiple_of(BULK_TURN);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let BulkRoom { free, busy } = room();
            let bulk_max = free.min(max);
            let bulk_first = turn && bulk_max > 0;
            let mut got = Vec::new();
            if bulk_first {
                got = Self::take_bulk(bulk.as_ref(), bulk_max, visibility).await;
            }
            let room_left = max.saturating_sub(len(&got));
            if room_left > 0 {
                got.extend(self.live.receive(room_left, Duration::ZERO, visibility).await?);
            }
            let room_left = max.saturating_sub(len(&got)).min(bulk_max);
            if !bulk_first && room_left > 0 {
                got.extend(Self::take_bulk(bulk.as_ref(), room_left, visibility).await);
            }
            if !got.is_empty() {
                return Ok(got);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(got);
            }
            // Nothing to take now. Wait on the live lane; while bulk jobs
            // run, only as long as the live queue's shortest wait, so that
            // the room they leave is filled at once, not after a long poll.
            let slice = if busy { self.live.shortest_wait() } else { BULK_LOOK };
            let live = self.live.receive(max, left.min(slice), visibility).await?;
            if !live.is_empty() {
                return Ok(live);
            }
        }
    }

    async fn take_bulk(bulk: &dyn JobQueue, max: u32, visibility: Duration) -> Vec<Delivery> {
        match bulk.receive(max, Duration::ZERO, visibility).await {
            Ok(deliveries) => deliveries
                .into_iter()
                .map(|d| Delivery { receipt: format!("{BULK_RECEIPT}{}", d.receipt), lane: Lane::Bulk, ..d })
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "bulk queue unavailable; serving the live lane only");
                Vec::new()
            }
        }
    }

    /// The queue a receipt came from, and the receipt as that queue knows it.
    fn route<'a>(&self, receipt: &'a str) -> (&Arc<dyn JobQueue>, &'a str) {
        match (receipt.strip_prefix(BULK_RECEIPT), &self.bulk) {
            (Some(inner), Some(bulk)) => (bulk, inner),
            _ => (&self.live, receipt),
        }
    }
}

fn len(deliveries: &[Delivery]) -> u32 {
    u32::try_from(deliveries.len()).unwrap_or(u32::MAX)
}

/// The lanes as one queue: sends go live, receives take both, and
/// acknowledgements find their own queue.
#[async_trait]
impl JobQueue for Lanes {
    async fn send(&self, message: &Outgoing) -> Result<String, QueueError> {
        self.live.send(message).await
    }

    async fn receive(&self, max: u32, wait: Duration, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.receive_lanes(max, &move || BulkRoom::idle(max), wait, visibility).await
    }

    async fn send_batch(&self, messages: &[Outgoing]) -> Vec<Result<String, QueueError>> {
        self.live.send_batch(messages).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let (queue, receipt) = self.route(receipt);
        queue.delete(receipt).await
    }

    async fn delete_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>> {
        let Some(bulk) = &self.bulk else { return self.live.delete_batch(receipts).await };
        let (mut live, mut bulky) = (Vec::new(), Vec::new());
        for receipt in receipts {
            match receipt.strip_prefix(BULK_RECEIPT) {
                Some(inner) => bulky.push(inner.to_owned()),
                None => live.push(receipt.clone()),
            }
        }
        let (live_results, bulk_results) = tokio::join!(
            async { if live.is_empty() { Vec::new() } else { self.live.delete_batch(&live).await } },
            async { if bulky.is_empty() { Vec::new() } else { bulk.delete_batch(&bulky).await } },
        );
        // Back into the callers' order.
        let (mut live_results, mut bulk_results) = (live_results.into_iter(), bulk_results.into_iter());
        let missing = || Err(QueueError::Unavailable("not in the batch answer".into()));
        receipts
            .iter()
            .map(|receipt| {
                let next = if receipt.starts_with(BULK_RECEIPT) { bulk_results.next() } else { live_results.next() };
                next.unwrap_or_else(missing)
            })
            .collect()
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        let (queue, receipt) = self.route(receipt);
        queue.change_visibility(receipt, timeout).await
    }

    fn shortest_wait(&self) -> Duration {
        self.live.shortest_wait()
    }

    async fn redrive_limit(&self) -> Result<Option<u32>, QueueError> {
        self.live.redrive_limit().await
    }

    async fn approximate_depth(&self) -> Result<u64, QueueError> {
        let live = self.live.approximate_depth().await?;
        let bulk = match &self.bulk {
            Some(bulk) => bulk.approximate_depth().await?,
            None => 0,
        };
        Ok(live + bulk)
    }

    async fn address(&self) -> Result<Option<String>, QueueError> {
        self.live.address().await
    }

    async fn start_redrive(
        &self,
        destination: Option<&str>,
        max_per_second: Option<u32>,
    ) -> Result<Option<String>, QueueError> {
        self.live.start_redrive(destination, max_per_second).await
    }

    async fn redrive_status(&self, handle: &str) -> Result<RedriveStatus, QueueError> {
        self.live.redrive_status(handle).await
    }
}
