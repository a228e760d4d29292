//! The table queue keeps SQS's promises on both databases: order, visibility,
//! receipts that name one receive, dead-lettering after the receive limit,
//! and no message handed to two receivers at once.

use std::collections::HashSet;
use std::time::Duration;

use pipeline::queue::{Delivery, JobQueue, LocalJobQueue};
use tempfile::TempDir;

use crate::support::db;

const NO_WAIT: Duration = Duration::ZERO;
const HIDE: Duration = Duration::from_secs(60);

async fn table_queue(url: &str, max_receive_count: u32) -> LocalJobQueue {
    let db = pipeline::db::connect(url).await.expect("connect");
    pipeline::db::migrate(&db).await.expect("migrate");
    LocalJobQueue::new(db, "jobs", max_receive_count)
}

fn bodies(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.body.as_str()).collect()
}

async fn order_visibility_and_receipts(queue: &LocalJobQueue) {
    for body in ["a", "b", "c"] {
        queue.send(body).await.expect("send");
    }

    // Oldest first; what one receive holds, the next does not see.
    let first = queue.receive(2, NO_WAIT, HIDE).await.expect("receive");
    assert_eq!(bodies(&first), ["a", "b"]);
    assert!(first.iter().all(|d| d.receive_count == 1));
    let second = queue.receive(10, NO_WAIT, HIDE).await.expect("receive");
    assert_eq!(bodies(&second), ["c"]);
    assert!(queue.receive(10, NO_WAIT, HIDE).await.expect("receive").is_empty());

    // Released, "a" comes back under a new receipt; the old one is spent.
    queue.change_visibility(&first[0].receipt, Duration::ZERO).await.expect("release");
    let again = queue.receive(10, NO_WAIT, HIDE).await.expect("receive");
    assert_eq!(bodies(&again), ["a"]);
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].receipt, first[0].receipt);
    queue.delete(&first[0].receipt).await.expect("a stale delete is not an error");
    queue.change_visibility(&first[0].receipt, Duration::ZERO).await.expect("a stale release is not an error");
    assert!(queue.receive(10, NO_WAIT, HIDE).await.expect("receive").is_empty(), "a stale receipt moved nothing");
    assert_eq!(queue.approximate_depth().await.expect("depth"), 3);

    // A batch acknowledges exactly what it names.
    let acked = queue.delete_batch(&[again[0].receipt.clone(), first[1].receipt.clone()]).await;
    assert!(acked.iter().all(Result::is_ok), "{acked:?}");
    assert_eq!(queue.approximate_depth().await.expect("depth"), 1);
    queue.delete(&second[0].receipt).await.expect("delete");
    assert_eq!(queue.approximate_depth().await.expect("depth"), 0);

    assert!(queue.delete("not a receipt").await.is_err(), "a receipt the queue never handed out is refused");
}

#[tokio::test]
async fn the_table_queue_keeps_order_visibility_and_receipts_on_sqlite() {
    let dir = TempDir::new().expect("tempdir");
    order_visibility_and_receipts(&table_queue(&db::sqlite(&dir), 5).await).await;
}

#[tokio::test]
async fn the_table_queue_keeps_order_visibility_and_receipts_on_postgres() {
    order_visibility_and_receipts(&table_queue(&db::postgres().await, 5).await).await;
}

async fn dead_letters_after_the_receive_limit(queue: &LocalJobQueue) {
    queue.send("poison").await.expect("send");
    for attempt in 1..=2 {
        let got = queue.receive(1, NO_WAIT, HIDE).await.expect("receive");
        assert_eq!(bodies(&got), ["poison"]);
        assert_eq!(got[0].receive_count, attempt);
        queue.change_visibility(&got[0].receipt, Duration::ZERO).await.expect("release");
    }
    // The third receive reaches a message that used its two receives: it
    // moves to the dead-letter queue and the next message is delivered.
    queue.send("fine").await.expect("send");
    let got = queue.receive(2, NO_WAIT, HIDE).await.expect("receive");
    assert_eq!(bodies(&got), ["fine"]);
    let dead = queue.dead_letter_queue().receive(10, NO_WAIT, HIDE).await.expect("receive from the DLQ");
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(dead[0].receive_count, 1, "the count starts again in the dead-letter queue");
}

#[tokio::test]
async fn the_table_queue_dead_letters_after_the_receive_limit_on_sqlite() {
    let dir = TempDir::new().expect("tempdir");
    dead_letters_after_the_receive_limit(&table_queue(&db::sqlite(&dir), 2).await).await;
}

#[tokio::test]
async fn the_table_queue_dead_letters_after_the_receive_limit_on_postgres() {
    dead_letters_after_the_receive_limit(&table_queue(&db::postgres().await, 2).await).await;
}

/// Receivers race over a backlog: each message is handed out exactly once.
async fn concurrent_receivers_share_nothing(queue: &LocalJobQueue) {
    const MESSAGES: usize = 300;
    for i in 0..MESSAGES {
        queue.send(&i.to_string()).await.expect("send");
    }
    let receivers = (0..6).map(|_| {
        let queue = queue.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut empty = 0;
            while empty < 3 {
                let batch = queue.receive(3, Duration::from_millis(50), HIDE).await.expect("receive");
                empty = if batch.is_empty() { empty + 1 } else { 0 };
                got.extend(batch.into_iter().map(|d| d.body));
            }
            got
        })
    });
    let mut seen = HashSet::new();
    let mut total = 0;
    for receiver in receivers {
        let got = receiver.await.expect("receiver");
        total += got.len();
        seen.extend(got);
    }
    assert_eq!(total, MESSAGES, "no message was handed out twice");
    assert_eq!(seen.len(), MESSAGES, "every message was handed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_receivers_on_sqlite_never_share_a_message() {
    let dir = TempDir::new().expect("tempdir");
    concurrent_receivers_share_nothing(&table_queue(&db::sqlite(&dir), 5).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_receivers_on_postgres_never_share_a_message() {
    concurrent_receivers_share_nothing(&table_queue(&db::postgres().await, 5).await).await;
}
