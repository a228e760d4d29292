//! [`JobQueue`] on a database table, for the embedded defaults.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entities::queue_messages::{self, Column};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::doorbell::{Doorbell, Listener};
use super::{Delivery, JobQueue, QueueError, RedriveStatus};

/// How often a waiting receive looks at the table when nothing woke it: a
/// visibility timeout running out, or a send from a process that cannot
/// ring this one's doorbell (another machine sharing a Postgres-backed
/// queue). A send in the same process wakes it at once, and so does one
/// from another process with the same doorbell directory. One indexed
/// SELECT per interval per waiting receive (a read: no write lock) is cheap.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A durable queue in the `queue_messages` table, with SQS's visibility
/// timeout, receive count and dead-letter semantics.
#[derive(Clone, Debug)]
pub struct LocalJobQueue {
    db: DatabaseConnection,
    name: String,
    dead_letter_name: String,
    max_receive_count: u32,
    /// Wakes receivers in this process as soon as a message is sent, so an
    /// idle worker starts at once instead of at its next poll.
    wake: Arc<Notify>,
    /// Wakes receivers in other processes on this machine (see [`Doorbell`]).
    doorbell: Option<Doorbell>,
    /// This process's doorbell socket, bound by the first receive.
    listener: Arc<OnceLock<Option<Listener>>>,
}

impl LocalJobQueue {
    /// The queue `name`; messages received `max_receive_count` times move to `name-dlq`.
    pub fn new(db: DatabaseConnection, name: &str, max_receive_count: u32) -> Self {
        Self {
            db,
            name: name.to_owned(),
            dead_letter_name: format!("{name}-dlq"),
            max_receive_count: Ord::max(max_receive_count, 1),
            wake: Arc::new(Notify::new()),
            doorbell: None,
            listener: Arc::new(OnceLock::new()),
        }
    }

    /// Rings and listens on a doorbell in `dir`, so that a send from another
    /// process with the same `dir` (an API beside its worker) wakes this
    /// one's receives at once.
    #[must_use]
    pub fn with_doorbell(self, dir: impl Into<PathBuf>) -> Self {
        Self { doorbell: Some(Doorbell::new(dir)), ..self }
    }

    /// The dead-letter queue of this queue, as a queue of its own (it shares
    /// the doorbell).
    pub fn dead_letter_queue(&self) -> Self {
        Self { doorbell: self.doorbell.clone(), ..Self::new(self.db.clone(), &self.dead_letter_name, u32::MAX) }
    }

    /// Binds this process's doorbell socket once, on the first receive: only
    /// receivers need one.
    fn listen(&self) {
        let Some(doorbell) = &self.doorbell else { return };
        self.listener.get_or_init(|| match doorbell.listen(self.wake.clone()) {
            Ok(listener) => Some(listener),
            Err(err) => {
                tracing::warn!(error = %err, "queue doorbell unavailable; sends from other processes are seen at the next poll");
                None
            }
        });
    }

    fn now_ms() -> i64 {
        Utc::now().timestamp_millis()
    }

    fn millis(duration: Duration) -> i64 {
        i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
    }

    async fn try_receive(&self, max: u32, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        let now = Self::now_ms();
        let candidates = queue_messages::Entity::find()
            .filter(Column::Queue.eq(&self.name))
            .filter(Column::VisibleAtMs.lte(now))
            .order_by_asc(Column::Id)
            .limit(u64::from(max.clamp(1, 10)))
            .all(&self.db)
            .await
            .map_err(db_error)?;

        // Like SQS, a message that has used up its receives moves to the
        // dead-letter queue when a receive reaches it, instead of being
        // delivered. Only then is there anything to write for it.
        let (spent, candidates): (Vec<_>, Vec<_>) =
            candidates.into_iter().partition(|m| i64::from(m.receive_count) >= i64::from(self.max_receive_count));
        if !spent.is_empty() {
            queue_messages::Entity::update_many()
                .col_expr(Column::Queue, Expr::value(self.dead_letter_name.clone()))
                .col_expr(Column::ReceiveCount, Expr::value(0))
                .col_expr(Column::Receipt, Expr::value(Option::<String>::None))
                .filter(Column::Id.is_in(spent.iter().map(|m| m.id)))
                .filter(Column::Queue.eq(&self.name))
                .filter(Column::VisibleAtMs.lte(now))
                .filter(Column::ReceiveCount.gte(i64::from(self.max_receive_count)))
                .exec(&self.db)
                .await
                .map_err(db_error)?;
        }

        let mut deliveries = Vec::with_capacity(candidates.len());
        for message in candidates {
            let receipt = Uuid::new_v4().to_string();
            // Conditional claim: if another receiver took the message since the
            // select, its visible_at moved and this update matches nothing.
            let claimed = queue_messages::Entity::update_many()
                .col_expr(Column::Receipt, Expr::value(receipt.clone()))
                .col_expr(Column::VisibleAtMs, Expr::value(now + Self::millis(visibility)))
                .col_expr(Column::ReceiveCount, Expr::col(Column::ReceiveCount).add(1))
                .filter(Column::Id.eq(message.id))
                .filter(Column::VisibleAtMs.eq(message.visible_at_ms))
                .filter(Column::ReceiveCount.eq(message.receive_count))
                .exec(&self.db)
                .await
                .map_err(db_error)?;
            if claimed.rows_affected == 1 {
                deliveries.push(Delivery {
                    message_id: message.id.to_string(),
                    receipt,
                    body: message.body,
                    receive_count: u32::try_from(message.receive_count + 1).unwrap_or(u32::MAX),
                    sent_at: DateTime::from_timestamp_millis(message.sent_at_ms),
                });
            }
        }
        Ok(deliveries)
    }
}

fn db_error(err: sea_orm::DbErr) -> QueueError {
    QueueError::Unavailable(err.to_string())
}

#[async_trait]
impl JobQueue for LocalJobQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let now = Self::now_ms();
        let inserted = queue_messages::Entity::insert(queue_messages::ActiveModel {
            queue: Set(self.name.clone()),
            body: Set(body.to_owned()),
            receipt: Set(None),
            receive_count: Set(0),
            sent_at_ms: Set(now),
            visible_at_ms: Set(now),
            ..Default::default()
        })
        .exec(&self.db)
        .await
        .map_err(db_error)?;
        self.wake.notify_waiters();
        if let Some(doorbell) = &self.doorbell {
            doorbell.ring();
        }
        Ok(inserted.last_insert_id.to_string())
    }

    async fn receive(&self, max: u32, wait: Duration, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.listen();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for a wake-up before looking, so a send that lands
            // between the look and the wait is not missed.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let deliveries = self.try_receive(max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !deliveries.is_empty() || now >= deadline {
                return Ok(deliveries);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(POLL_INTERVAL.min(deadline - now)) => {}
            }
        }
    }

    async fn send_batch(&self, bodies: &[String]) -> Vec<Result<String, QueueError>> {
        let mut results = Vec::with_capacity(bodies.len());
        for body in bodies {
            results.push(self.send(body).await);
        }
        results
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        queue_messages::Entity::delete_many()
            .filter(Column::Receipt.eq(receipt))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn delete_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>> {
        let deleted = queue_messages::Entity::delete_many()
            .filter(Column::Receipt.is_in(receipts.iter().cloned()))
            .exec(&self.db)
            .await;
        match deleted {
            Ok(_) => receipts.iter().map(|_| Ok(())).collect(),
            Err(err) => {
                let message = err.to_string();
                receipts.iter().map(|_| Err(QueueError::Unavailable(message.clone()))).collect()
            }
        }
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        queue_messages::Entity::update_many()
            .col_expr(Column::VisibleAtMs, Expr::value(Self::now_ms() + Self::millis(timeout)))
            .filter(Column::Receipt.eq(receipt))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        if timeout.is_zero() {
            self.wake.notify_waiters();
        }
        Ok(())
    }

    async fn redrive_limit(&self) -> Result<Option<u32>, QueueError> {
        Ok(Some(self.max_receive_count))
    }

    async fn approximate_depth(&self) -> Result<u64, QueueError> {
        queue_messages::Entity::find().filter(Column::Queue.eq(&self.name)).count(&self.db).await.map_err(db_error)
    }

    /// The table queue has no server-side move; callers copy instead.
    async fn start_redrive(&self, _max_per_second: Option<u32>) -> Result<Option<String>, QueueError> {
        Ok(None)
    }

    async fn redrive_status(&self, handle: &str) -> Result<RedriveStatus, QueueError> {
        Err(QueueError::Unavailable(format!("no move task {handle} on the table queue")))
    }
}
