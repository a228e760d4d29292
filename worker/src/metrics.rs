//! Prometheus metrics for the worker, served as text on `METRICS_ADDR`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How the handling of one message ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// Variants stored and recorded.
    Succeeded,
    /// Ended `failed` with a permanent error.
    Failed,
    /// Retries exhausted; left for the dead-letter queue.
    Dead,
    /// Will be retried after a backoff.
    Retried,
    /// A redelivery of a job that had already finished.
    Duplicate,
    /// Not a message the worker understands.
    Unparseable,
    /// An S3 test event or an object outside the uploads prefix.
    Ignored,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Self; 7] =
        [Self::Succeeded, Self::Failed, Self::Dead, Self::Retried, Self::Duplicate, Self::Unparseable, Self::Ignored];

    /// The label value: snake_case, as Prometheus names go.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Retried => "retried",
            Self::Duplicate => "duplicate",
            Self::Unparseable => "unparseable",
            Self::Ignored => "ignored",
        }
    }

    /// Whether the outcome is a failure, whose code the metric carries.
    fn failed(self) -> bool {
        matches!(self, Self::Failed | Self::Dead | Self::Retried)
    }
}

/// A timed step of a job.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Stage {
    /// Reading the original from the store.
    Download,
    /// Probe, decode, colour conversion and orientation (engine).
    Decode,
    /// The resize cascade (engine).
    Resize,
    /// Encoding every variant (engine).
    Encode,
    /// The placeholder: ThumbHash and dominant colour (engine).
    Placeholder,
    /// Writing the variants.
    Upload,
    /// The recording transaction.
    Db,
    /// Publishing the outcome event.
    Publish,
}

impl Stage {
    /// Every stage.
    pub const ALL: [Self; 8] = [
        Self::Download,
        Self::Decode,
        Self::Resize,
        Self::Encode,
        Self::Placeholder,
        Self::Upload,
        Self::Db,
        Self::Publish,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Decode => "decode",
            Self::Resize => "resize",
            Self::Encode => "encode",
            Self::Placeholder => "placeholder",
            Self::Upload => "upload",
            Self::Db => "db",
            Self::Publish => "publish",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
    /// The failure's stable code (a fixed set), empty when nothing failed.
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectiveLabels {
    /// `true` when the event went out within [`EVENT_OBJECTIVE`] of the upload.
    within_objective: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    /// `live`, `bulk`, `live_dlq` or `bulk_dlq`.
    queue: &'static str,
}

/// The service level objective for a job's event: out within a minute of
/// the upload (`docs/operations.md`, SLOs).
pub const EVENT_OBJECTIVE: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    /// `live` or `bulk` ([`pipeline::queue::Lane`]).
    lane: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    /// `delivered`, `retried` or `expired`.
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 5 ms … ~160 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// Every metric the worker exports.
pub struct Metrics {
    registry: Registry,
    jobs: Family<OutcomeLabels, Counter>,
    stages: HistogramFamily<StageLabels>,
    queue_lag: HistogramFamily<LaneLabels>,
    received: Family<LaneLabels, Counter>,
    upload_to_event: Histogram,
    events: Family<ObjectiveLabels, Counter>,
    queue_messages: Family<QueueLabels, Gauge>,
    in_flight: Gauge,
    retries: Counter,
    dead_letters: Counter,
    webhooks: Family<WebhookLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("image_worker");
        let jobs = Family::<OutcomeLabels, Counter>::default();
        let stages: HistogramFamily<StageLabels> = Family::new_with_constructor(seconds_histogram);
        let queue_lag: HistogramFamily<LaneLabels> = Family::new_with_constructor(seconds_histogram);
        let received = Family::<LaneLabels, Counter>::default();
        // Bounds an operator reads the objective against: 60 s is one.
        let upload_to_event =
            Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0]);
        let events = Family::<ObjectiveLabels, Counter>::default();
        let queue_messages = Family::<QueueLabels, Gauge>::default();
        let in_flight = Gauge::default();
        let retries = Counter::default();
        let dead_letters = Counter::default();
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register("jobs", "Messages handled, by outcome and failure code", jobs.clone());
        registry.register(
            "upload_to_event_seconds",
            "Time from an upload's arrival in the queue to its outcome event, live lane",
            upload_to_event.clone(),
        );
        registry.register(
            "events",
            "Outcome events of the live lane, by whether they met the 60 s objective",
            events.clone(),
        );
        registry.register(
            "queue_messages",
            "Messages waiting or in flight, per queue, sampled every 15 s",
            queue_messages.clone(),
        );
        registry.register("stage_seconds", "Time spent in each job stage", stages.clone());
        registry.register("queue_lag_seconds", "Time from send to receive, by lane", queue_lag.clone());
        registry.register(
            "messages_received",
            "Messages received, by lane: bulk counts a replay's or reprocess's progress",
            received.clone(),
        );
        registry.register("jobs_in_flight", "Messages being handled now", in_flight.clone());
        registry.register("retries", "Messages scheduled for another attempt", retries.clone());
        registry.register("dead_letters", "Jobs marked dead and left for the dead-letter queue", dead_letters.clone());
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by result; expired ones wait in `image-service webhooks failed`",
            webhooks.clone(),
        );
        // Every series of a bounded label set exists from the start, at
        // zero: a rate or an alert over it then has a series to read before
        // the first job, and the dashboard's panels show 0, not "no data".
        // (Failure codes are known only when one fails.)
        for outcome in Outcome::ALL.into_iter().filter(|o| !o.failed()) {
            drop(jobs.get_or_create(&OutcomeLabels { outcome: outcome.as_str(), code: String::new() }));
        }
        for stage in Stage::ALL {
            drop(stages.get_or_create(&StageLabels { stage: stage.as_str() }));
        }
        for lane in [pipeline::queue::Lane::Live, pipeline::queue::Lane::Bulk] {
            drop(queue_lag.get_or_create(&LaneLabels { lane: lane.as_str() }));
            drop(received.get_or_create(&LaneLabels { lane: lane.as_str() }));
        }
        for within_objective in ["true", "false"] {
            drop(events.get_or_create(&ObjectiveLabels { within_objective }));
        }
        for result in ["delivered", "retried", "expired"] {
            drop(webhooks.get_or_create(&WebhookLabels { result }));
        }
        Self {
            registry,
            jobs,
            stages,
            queue_lag,
            received,
            upload_to_event,
            events,
            queue_messages,
            in_flight,
            retries,
            dead_letters,
            webhooks,
        }
    }
}

impl Metrics {
    /// Counts one handled message, with the code of its failure.
    pub fn outcome(&self, outcome: Outcome, code: Option<&str>) {
        let code = if outcome.failed() { code.unwrap_or_default().to_owned() } else { String::new() };
        self.jobs.get_or_create(&OutcomeLabels { outcome: outcome.as_str(), code }).inc();
        match outcome {
            Outcome::Retried => {
                self.retries.inc();
            }
            Outcome::Dead => {
                self.dead_letters.inc();
            }
            _ => {}
        }
    }

    /// Records how long a stage took.
    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stages.get_or_create(&StageLabels { stage: stage.as_str() }).observe(took.as_secs_f64());
    }

    /// Records an outcome event that went out `took` after its upload.
    pub fn event_sent(&self, took: Duration) {
        self.upload_to_event.observe(took.as_secs_f64());
        let within_objective = if took <= EVENT_OBJECTIVE { "true" } else { "false" };
        self.events.get_or_create(&ObjectiveLabels { within_objective }).inc();
    }

    /// Sets the sampled depth of `queue`.
    pub fn queue_depth(&self, queue: &'static str, depth: u64) {
        self.queue_messages.get_or_create(&QueueLabels { queue }).set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Counts a received message of `lane`.
    pub fn received(&self, lane: pipeline::queue::Lane) {
        self.received.get_or_create(&LaneLabels { lane: lane.as_str() }).inc();
    }

    /// Records how long a message of `lane` waited in the queue.
    pub fn queue_lag(&self, lane: pipeline::queue::Lane, lag: Duration) {
        self.queue_lag.get_or_create(&LaneLabels { lane: lane.as_str() }).observe(lag.as_secs_f64());
    }

    /// Tracks messages in flight.
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    /// Counts what a round of webhook deliveries did.
    pub fn webhooks(&self, round: pipeline::outbox::Round) {
        for (result, n) in [("delivered", round.delivered), ("retried", round.retried), ("expired", round.expired)] {
            self.webhooks.get_or_create(&WebhookLabels { result }).inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_stages_show_up_in_the_exposition() {
        let metrics = Metrics::default();
        metrics.outcome(Outcome::Succeeded, None);
        metrics.outcome(Outcome::Retried, Some("store-unavailable"));
        metrics.outcome(Outcome::Duplicate, Some("not-a-failure"));
        metrics.stage(Stage::Encode, Duration::from_millis(30));
        metrics.event_sent(Duration::from_secs(3));
        metrics.event_sent(Duration::from_secs(61));
        metrics.queue_depth("bulk_dlq", 4);

        let text = metrics.render();

        for expected in [
            "image_worker_jobs_total{outcome=\"succeeded\",code=\"\"} 1",
            "image_worker_jobs_total{outcome=\"retried\",code=\"store-unavailable\"} 1",
            "image_worker_jobs_total{outcome=\"duplicate\",code=\"\"} 1",
            "image_worker_retries_total 1",
            "image_worker_stage_seconds_count{stage=\"encode\"} 1",
            "image_worker_upload_to_event_seconds_bucket{le=\"60.0\"} 1",
            "image_worker_upload_to_event_seconds_count 2",
            "image_worker_events_total{within_objective=\"true\"} 1",
            "image_worker_events_total{within_objective=\"false\"} 1",
            "image_worker_queue_messages{queue=\"bulk_dlq\"} 4",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
