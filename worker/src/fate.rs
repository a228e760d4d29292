//! The fate of a received message, decided in one pure function: [`plan`].
//!
//! Handling a message ends in an [`Outcome`]. From it, how often the message
//! has been received, the queue's redrive limit and whether a dead-letter
//! queue exists, [`plan`] decides everything that follows: what to record on
//! the job, whether to announce it, and what to do with the message. The
//! worker only carries the plan out.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// How handling one message (or one job of it) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This run made the variants and recorded the job `succeeded`.
    Succeeded,
    /// The job had ended before; nothing to do but make sure it was announced.
    AlreadyFinished,
    /// The job ended moments ago and the worker that ended it is most likely
    /// announcing it right now.
    EventPending,
    /// This input will never work (a corrupt image, an unknown preset, a
    /// missing original).
    Permanent,
    /// A step failed in a way that may pass (a service was down, a panic).
    Transient,
    /// Nothing to do: no such job, an S3 test event, an object outside the
    /// uploads prefix.
    Nothing,
    /// The body is not a message this worker knows.
    Unparseable,
}

/// What the queue allows, as this delivery of the message sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// How often the message has been received, this time included.
    pub receive_count: u32,
    /// Receives allowed before the message is dead-lettered.
    pub redrive_limit: u32,
    /// Whether the queue has a dead-letter queue to leave poison messages for.
    pub dead_letter_queue: bool,
    /// The first retry's delay; later ones double.
    pub base_delay: Duration,
}

impl Delivery {
    /// Whether this is the last receive the queue allows.
    fn is_last(self) -> bool {
        self.receive_count >= self.redrive_limit
    }
}

/// What to write on the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Nothing (its state is recorded already, or there is no job).
    Nothing,
    /// Keep the failure as the job's last error; it stays `processing`.
    LastError,
    /// End it `failed` with the failure.
    Failed,
    /// End it `dead` with the failure.
    Dead,
}

/// What to do with the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageAction {
    /// Acknowledge it: nothing more will happen.
    Delete,
    /// Hide it for this long, then let it come back for another attempt.
    RetryAfter(Duration),
    /// Make it visible at once, so its next receive moves it to the
    /// dead-letter queue.
    Release,
    /// Leave it alone: it reappears after its visibility timeout, and the
    /// redrive policy dead-letters it after enough receives.
    Leave,
}

/// Everything that follows from an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// What to write on the job.
    pub record: Record,
    /// Whether to publish the job's outcome event (once: a recorded publish
    /// is not repeated).
    pub publish: bool,
    /// What to do with the message.
    pub message: MessageAction,
}

impl Plan {
    const fn new(record: Record, publish: bool, message: MessageAction) -> Self {
        Self { record, publish, message }
    }
}

/// Decides what follows from `outcome` on this `delivery`.
pub fn plan(outcome: Outcome, delivery: Delivery) -> Plan {
    use MessageAction::{Delete, Leave, Release, RetryAfter};
    let retry = || RetryAfter(retry_delay(delivery.receive_count, delivery.base_delay));
    match outcome {
        Outcome::Succeeded | Outcome::AlreadyFinished => Plan::new(Record::Nothing, true, Delete),
        // On the last receive, nobody else is going to announce it.
        Outcome::EventPending if delivery.is_last() => Plan::new(Record::Nothing, true, Delete),
        Outcome::EventPending => Plan::new(Record::Nothing, false, retry()),
        Outcome::Permanent => Plan::new(Record::Failed, true, Delete),
        Outcome::Transient if !delivery.is_last() => Plan::new(Record::LastError, false, retry()),
        Outcome::Transient if delivery.dead_letter_queue => Plan::new(Record::Dead, true, Release),
        // Without a dead-letter queue the job's record is all that remains.
        Outcome::Transient => Plan::new(Record::Dead, true, Delete),
        Outcome::Nothing => Plan::new(Record::Nothing, false, Delete),
        Outcome::Unparseable if delivery.dead_letter_queue => Plan::new(Record::Nothing, false, Leave),
        // Nothing would ever stop it coming back: drop it once it had its chances.
        Outcome::Unparseable if delivery.is_last() => Plan::new(Record::Nothing, false, Delete),
        Outcome::Unparseable => Plan::new(Record::Nothing, false, Leave),
    }
}

/// Exponential backoff with jitter: `base` after the first failure,
/// doubling each time, capped at 5 minutes.
pub fn retry_delay(receive_count: u32, base: Duration) -> Duration {
    let nth = usize::try_from(receive_count.saturating_sub(1)).unwrap_or(usize::MAX);
    ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(Duration::from_secs(300))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(nth)
        .unwrap_or(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(2);
    const LIMIT: u32 = 5;

    /// A plan with the retry delay left out (it is jittered; tested below).
    #[derive(Debug, PartialEq, Eq)]
    enum Action {
        Delete,
        Retry,
        Release,
        Leave,
    }

    fn decided(outcome: Outcome, receive_count: u32, dead_letter_queue: bool) -> (Record, bool, Action) {
        let delivery = Delivery { receive_count, redrive_limit: LIMIT, dead_letter_queue, base_delay: BASE };
        let plan = plan(outcome, delivery);
        let action = match plan.message {
            MessageAction::Delete => Action::Delete,
            MessageAction::RetryAfter(_) => Action::Retry,
            MessageAction::Release => Action::Release,
            MessageAction::Leave => Action::Leave,
        };
        (plan.record, plan.publish, action)
    }

    /// Every outcome × receive count {1, limit−1, limit, limit+1} × a
    /// dead-letter queue present or not. Each row gives the plan for the
    /// four receive counts, with a DLQ and then without.
    #[test]
    fn the_plan_for_every_outcome_receive_count_and_queue() {
        use Action::*;
        use Record::{Dead, Failed, LastError, Nothing};
        let published = |action| (Nothing, true, action);
        let silent = |action| (Nothing, false, action);
        let table: [(Outcome, [(Record, bool, Action); 4], [(Record, bool, Action); 4]); 7] = [
            (
                Outcome::Succeeded,
                [published(Delete), published(Delete), published(Delete), published(Delete)],
                [published(Delete), published(Delete), published(Delete), published(Delete)],
            ),
            (
                Outcome::AlreadyFinished,
                [published(Delete), published(Delete), published(Delete), published(Delete)],
                [published(Delete), published(Delete), published(Delete), published(Delete)],
            ),
            (
                Outcome::EventPending,
                [silent(Retry), silent(Retry), published(Delete), published(Delete)],
                [silent(Retry), silent(Retry), published(Delete), published(Delete)],
            ),
            (
                Outcome::Permanent,
                [(Failed, true, Delete), (Failed, true, Delete), (Failed, true, Delete), (Failed, true, Delete)],
                [(Failed, true, Delete), (Failed, true, Delete), (Failed, true, Delete), (Failed, true, Delete)],
            ),
            (
                Outcome::Transient,
                [(LastError, false, Retry), (LastError, false, Retry), (Dead, true, Release), (Dead, true, Release)],
                [(LastError, false, Retry), (LastError, false, Retry), (Dead, true, Delete), (Dead, true, Delete)],
            ),
            (
                Outcome::Nothing,
                [silent(Delete), silent(Delete), silent(Delete), silent(Delete)],
                [silent(Delete), silent(Delete), silent(Delete), silent(Delete)],
            ),
            (
                Outcome::Unparseable,
                [silent(Leave), silent(Leave), silent(Leave), silent(Leave)],
                [silent(Leave), silent(Leave), silent(Delete), silent(Delete)],
            ),
        ];
        for (outcome, with_dlq, without_dlq) in table {
            for (i, count) in [1, LIMIT - 1, LIMIT, LIMIT + 1].into_iter().enumerate() {
                assert_eq!(decided(outcome, count, true), with_dlq[i], "{outcome:?}, receive {count}, with a DLQ");
                assert_eq!(decided(outcome, count, false), without_dlq[i], "{outcome:?}, receive {count}, no DLQ");
            }
        }
    }

    #[test]
    fn a_retry_waits_longer_each_time() {
        let delivery =
            |receive_count| Delivery { receive_count, redrive_limit: 10, dead_letter_queue: true, base_delay: BASE };
        let MessageAction::RetryAfter(first) = plan(Outcome::Transient, delivery(1)).message else {
            panic!("the first transient failure is retried");
        };
        let MessageAction::RetryAfter(fourth) = plan(Outcome::Transient, delivery(4)).message else {
            panic!("the fourth transient failure is retried");
        };
        assert!(first >= BASE && first <= 2 * BASE, "{first:?}");
        assert!(fourth >= 8 * BASE, "{fourth:?}");
    }

    #[test]
    fn retry_delay_grows_and_stays_capped() {
        // Jitter adds up to one more base delay, so compare ranges.
        let first = retry_delay(1, BASE);
        let fourth = retry_delay(4, BASE);
        assert!(first >= Duration::from_secs(2) && first <= Duration::from_secs(4), "{first:?}");
        assert!(fourth >= Duration::from_secs(16), "{fourth:?}");
        assert!(retry_delay(40, BASE) <= Duration::from_secs(600));
    }
}
