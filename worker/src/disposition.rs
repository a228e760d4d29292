//! The fate of a received message, decided in one pure function.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// How handling a message ended, as far as the queue is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The job reached a final state that is recorded (success, or a
    /// permanent failure with its event), or it already had one.
    Done,
    /// A step failed in a way that may pass (a service was down, a panic).
    Transient,
    /// The body is not a job message at all.
    Unparseable,
}

/// What to do with the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Acknowledge it: nothing more will happen.
    Delete,
    /// Hide it for this long, then let it come back for another attempt.
    RetryAfter(Duration),
    /// The last allowed attempt failed: mark the job `dead`, then release the
    /// message so the queue's redrive policy moves it to the dead-letter queue.
    DeadLetter,
    /// Leave the message alone. It reappears after its visibility timeout,
    /// and after enough receives the redrive policy dead-letters it.
    Abandon,
}

/// Decides a message's fate from the verdict, how often the message has been
/// received (this time included), and the queue's redrive limit.
pub fn decide(verdict: Verdict, receive_count: u32, redrive_limit: u32, base_delay: Duration) -> Disposition {
    match verdict {
        Verdict::Done => Disposition::Delete,
        Verdict::Unparseable => Disposition::Abandon,
        Verdict::Transient if receive_count >= redrive_limit => Disposition::DeadLetter,
        Verdict::Transient => Disposition::RetryAfter(retry_delay(receive_count, base_delay)),
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

    #[test]
    fn done_deletes_whatever_the_receive_count() {
        assert_eq!(decide(Verdict::Done, 1, 5, BASE), Disposition::Delete);
        assert_eq!(decide(Verdict::Done, 9, 5, BASE), Disposition::Delete);
    }

    #[test]
    fn transient_failures_retry_until_the_last_allowed_receive() {
        assert!(matches!(decide(Verdict::Transient, 1, 5, BASE), Disposition::RetryAfter(_)));
        assert!(matches!(decide(Verdict::Transient, 4, 5, BASE), Disposition::RetryAfter(_)));
        assert_eq!(decide(Verdict::Transient, 5, 5, BASE), Disposition::DeadLetter);
        assert_eq!(decide(Verdict::Transient, 6, 5, BASE), Disposition::DeadLetter);
    }

    #[test]
    fn unparseable_messages_are_left_for_the_dead_letter_queue() {
        assert_eq!(decide(Verdict::Unparseable, 1, 5, BASE), Disposition::Abandon);
        assert_eq!(decide(Verdict::Unparseable, 5, 5, BASE), Disposition::Abandon);
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
