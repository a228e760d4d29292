//! The table queue keeps SQS's promises on both databases: order, visibility,
//! receipts that name one receive, dead-lettering after the receive limit,
//! and no message handed to two receivers at once. It shares itself fairly
//! among tenants, and the two lanes serve live work before bulk work, on
//! the table queue and on SQS alike.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use pipeline::queue::{BULK_TURN, BulkRoom, Delivery, JobQueue, Lane, Lanes, LocalJobQueue, Outgoing, SqsJobQueue};
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
        queue.send(&Outgoing::new(body, None)).await.expect("send");
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
    queue.send(&Outgoing::new("poison", None)).await.expect("send");
    for attempt in 1..=2 {
        let got = queue.receive(1, NO_WAIT, HIDE).await.expect("receive");
        assert_eq!(bodies(&got), ["poison"]);
        assert_eq!(got[0].receive_count, attempt);
        queue.change_visibility(&got[0].receipt, Duration::ZERO).await.expect("release");
    }
    // The third receive reaches a message that used its two receives: it
    // moves to the dead-letter queue and the next message is delivered.
    queue.send(&Outgoing::new("fine", None)).await.expect("send");
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
        queue.send(&Outgoing::new(i.to_string(), None)).await.expect("send");
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

/// Receives one message at a time until the queue is empty, acknowledging
/// each; returns the bodies in the order they came.
async fn drain_one_by_one(queue: &dyn JobQueue) -> Vec<String> {
    let mut order = Vec::new();
    loop {
        let got = queue.receive(1, NO_WAIT, HIDE).await.expect("receive");
        let Some(delivery) = got.into_iter().next() else { return order };
        queue.delete(&delivery.receipt).await.expect("delete");
        order.push(delivery.body);
    }
}

/// A tenant that queued twenty jobs does not hold up the two that another
/// sends after it, nor the one of a third: each group's backlog interleaves.
async fn tenants_share_the_queue(queue: &LocalJobQueue) {
    for i in 0..20 {
        queue.send(&Outgoing::new(format!("a{i}"), Some("tenant-a"))).await.expect("send");
    }
    for body in ["b0", "b1"] {
        queue.send(&Outgoing::new(body, Some("tenant-b"))).await.expect("send");
    }
    queue.send(&Outgoing::new("c0", Some("tenant-c"))).await.expect("send");

    let order = drain_one_by_one(queue).await;

    let place = |body: &str| order.iter().position(|b| b == body).expect("delivered");
    assert_eq!(order.len(), 23, "{order:?}");
    assert!(place("b0") < 3 && place("c0") < 3, "the quiet tenants' first jobs go next: {order:?}");
    assert!(place("b1") < 5, "and the second one soon after, not after twenty: {order:?}");
    let a: Vec<&String> = order.iter().filter(|b| b.starts_with('a')).collect();
    let sent: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
    assert!(a.iter().zip(&sent).all(|(got, sent)| *got == sent), "one tenant's jobs keep their order: {order:?}");
}

#[tokio::test]
async fn tenants_share_the_table_queue_fairly_on_sqlite() {
    let dir = TempDir::new().expect("tempdir");
    tenants_share_the_queue(&table_queue(&db::sqlite(&dir), 5).await).await;
}

#[tokio::test]
async fn tenants_share_the_table_queue_fairly_on_postgres() {
    tenants_share_the_queue(&table_queue(&db::postgres().await, 5).await).await;
}

/// A tenant that sends its twenty jobs all at once (an uploader with twenty
/// requests in flight) gets no more of the queue than one sending in turn:
/// the concurrent sends take consecutive places, so the quiet tenants' jobs
/// sent after them still go next.
async fn a_parallel_tenant_shares_the_queue(queue: &LocalJobQueue) {
    let sends = (0..20).map(|i| async move {
        queue.send(&Outgoing::new(format!("a{i}"), Some("tenant-a"))).await.expect("send");
    });
    futures::future::join_all(sends).await;
    queue.send(&Outgoing::new("b0", Some("tenant-b"))).await.expect("send");
    queue.send(&Outgoing::new("c0", Some("tenant-c"))).await.expect("send");

    let order = drain_one_by_one(queue).await;

    let place = |body: &str| order.iter().position(|b| b == body).expect("delivered");
    assert_eq!(order.len(), 22, "{order:?}");
    assert!(place("b0") < 3 && place("c0") < 4, "the quiet tenants go next, not after twenty: {order:?}");
}

#[tokio::test]
async fn a_parallel_tenant_shares_the_table_queue_fairly_on_sqlite() {
    let dir = TempDir::new().expect("tempdir");
    a_parallel_tenant_shares_the_queue(&table_queue(&db::sqlite(&dir), 5).await).await;
}

#[tokio::test]
async fn a_parallel_tenant_shares_the_table_queue_fairly_on_postgres() {
    a_parallel_tenant_shares_the_queue(&table_queue(&db::postgres().await, 5).await).await;
}

/// The lanes over a live and a bulk queue: live first, bulk at its floor
/// while live work waits, nothing of bulk past its cap, everything of bulk
/// once live is empty, and every receipt acknowledged on its own queue.
async fn lanes_serve_live_work_first(live: Arc<dyn JobQueue>, bulk: Arc<dyn JobQueue>) {
    for i in 0..30 {
        bulk.send(&Outgoing::new(format!("bulk-{i}"), None)).await.expect("send bulk");
    }
    for i in 0..20 {
        live.send(&Outgoing::new(format!("live-{i}"), None)).await.expect("send live");
    }
    let lanes = Lanes::new(live.clone(), Some(bulk.clone()));

    // While live work waits, one receive in BULK_TURN goes to bulk work.
    let mut lanes_seen = Vec::new();
    for _ in 0..20 {
        let got = lanes.receive_lanes(1, &|| BulkRoom::idle(1), NO_WAIT, HIDE).await.expect("receive");
        assert_eq!(got.len(), 1, "a message was waiting");
        assert_eq!(got[0].body.starts_with("bulk"), got[0].lane == Lane::Bulk, "{:?}", got[0]);
        lanes.delete(&got[0].receipt).await.expect("delete on its own queue");
        lanes_seen.push(got[0].lane);
    }
    let bulk_taken = lanes_seen.iter().filter(|l| **l == Lane::Bulk).count();
    assert_eq!(bulk_taken as u64, 20 / BULK_TURN, "bulk got its floor and no more: {lanes_seen:?}");
    assert_eq!(bulk.approximate_depth().await.expect("depth"), 30 - bulk_taken as u64);

    // With no room for bulk work, only live work comes, even with bulk waiting.
    let rest = lanes.receive_lanes(10, &|| BulkRoom::idle(0), NO_WAIT, HIDE).await.expect("receive");
    assert_eq!(rest.len(), bulk_taken, "the live remainder: twenty sent, the rest received");
    assert!(rest.iter().all(|d| d.lane == Lane::Live), "{rest:?}");
    assert!(
        lanes.receive_lanes(10, &|| BulkRoom::idle(0), NO_WAIT, HIDE).await.expect("receive").is_empty(),
        "bulk stayed put"
    );

    // Live empty: bulk fills the batch up to its cap.
    let batch = lanes.receive_lanes(10, &|| BulkRoom::idle(4), NO_WAIT, HIDE).await.expect("receive");
    assert_eq!(batch.len(), 4, "the bulk cap holds");
    assert!(batch.iter().all(|d| d.lane == Lane::Bulk));

    // One batch acknowledges both lanes' receipts, each on its own queue.
    let receipts: Vec<String> = rest.iter().chain(&batch).map(|d| d.receipt.clone()).collect();
    let acked = lanes.delete_batch(&receipts).await;
    assert!(acked.iter().all(Result::is_ok), "{acked:?}");
    assert_eq!(live.approximate_depth().await.expect("depth"), 0);
    assert_eq!(bulk.approximate_depth().await.expect("depth"), 30 - bulk_taken as u64 - 4);
}

#[tokio::test]
async fn the_lanes_serve_live_work_first_on_the_table_queue() {
    let dir = TempDir::new().expect("tempdir");
    let db = pipeline::db::connect(&db::sqlite(&dir)).await.expect("connect");
    pipeline::db::migrate(&db).await.expect("migrate");
    let live = Arc::new(LocalJobQueue::new(db.clone(), "jobs", 5));
    let bulk = Arc::new(LocalJobQueue::new(db, "jobs-bulk", 5));
    lanes_serve_live_work_first(live, bulk).await;
}

#[tokio::test]
async fn the_lanes_serve_live_work_first_on_sqs() {
    let aws = crate::support::aws::AwsFixture::create().await;
    let live = Arc::new(SqsJobQueue::new(aws.sqs.clone(), aws.queue_url.clone()));
    let bulk = Arc::new(SqsJobQueue::new(aws.sqs.clone(), aws.bulk_queue_url.clone()));
    lanes_serve_live_work_first(live, bulk).await;
}

/// On SQS the tenant rides as the message group (a fair queue), and a
/// received message keeps it, so that a DLQ copy keeps it too.
#[tokio::test]
async fn sqs_messages_carry_their_tenant_as_the_message_group() {
    let aws = crate::support::aws::AwsFixture::create().await;
    let queue = SqsJobQueue::new(aws.sqs.clone(), aws.queue_url.clone());
    queue.send(&Outgoing::new("grouped", Some("tenant-a"))).await.expect("send");
    queue.send_batch(&[Outgoing::new("batched", Some("tenant-b"))]).await.into_iter().for_each(|r| {
        r.expect("batch send");
    });
    let mut got = queue.receive(10, Duration::from_secs(1), HIDE).await.expect("receive");
    got.sort_by(|a, b| a.body.cmp(&b.body));
    let groups: Vec<(&str, Option<&str>)> = got.iter().map(|d| (d.body.as_str(), d.group.as_deref())).collect();
    assert_eq!(groups, [("batched", Some("tenant-b")), ("grouped", Some("tenant-a"))]);
    assert_eq!(Outgoing::again(&got[0]), Outgoing::new("batched", Some("tenant-b")));
}
