//! Prometheus metrics for the worker, served as text on `METRICS_ADDR`.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How the handling of one message ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
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

/// A timed step of a job.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: Stage,
}

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
        let in_flight = Gauge::default();
        let retries = Counter::default();
        let dead_letters = Counter::default();
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register("jobs", "Messages handled, by outcome", jobs.clone());
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
        Self { registry, jobs, stages, queue_lag, received, in_flight, retries, dead_letters, webhooks }
    }
}

impl Metrics {
    /// Counts one handled message.
    pub fn outcome(&self, outcome: Outcome) {
        self.jobs.get_or_create(&OutcomeLabels { outcome }).inc();
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
        self.stages.get_or_create(&StageLabels { stage }).observe(took.as_secs_f64());
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
        metrics.outcome(Outcome::Succeeded);
        metrics.outcome(Outcome::Retried);
        metrics.stage(Stage::Encode, Duration::from_millis(30));

        let text = metrics.render();

        assert!(text.contains("image_worker_jobs_total{outcome=\"Succeeded\"} 1"), "{text}");
        assert!(text.contains("image_worker_retries_total 1"), "{text}");
        assert!(text.contains("image_worker_stage_seconds_count{stage=\"Encode\"} 1"), "{text}");
    }
}
