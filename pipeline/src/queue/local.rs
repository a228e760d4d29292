//! [`JobQueue`] on a database table, for the embedded defaults.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entities::queue_fair_groups;
use entities::queue_messages::{self, Column};
use sea_orm::sea_query::{Alias, CommonTableExpression, LockBehavior, LockType, Query, WithClause};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::doorbell::{Doorbell, Listener};
use super::{Delivery, JobQueue, Lane, Outgoing, QueueError, RedriveStatus};

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

    /// The ids of this queue's messages that are visible at `now`.
    fn visible_ids(&self, now: i64) -> sea_orm::Select<queue_messages::Entity> {
        queue_messages::Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(Column::Queue.eq(&self.name))
            .filter(Column::VisibleAtMs.lte(now))
    }

    /// Claims up to `max` of the oldest visible messages in one write statement,
    /// and moves those that used up their receives to the dead-letter queue.
    async fn try_receive(&self, max: u32, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        let now = Self::now_ms();
        // Look before taking the write lock. Idle receivers look often, and
        // on SQLite every UPDATE takes the database's one write lock, even
        // one that matches nothing, so the API's inserts would queue behind
        // empty claims.
        let waiting = self.visible_ids(now).into_tuple::<i64>().one(&self.db).await.map_err(db_error)?;
        if waiting.is_none() {
            return Ok(Vec::new());
        }
        let token = Uuid::new_v4().simple().to_string();
        // Lowest fair key first, in the order of the (queue, fair_key, id)
        // index, so a receive reads `max` index entries plus the invisible
        // ones among them (messages in flight or waiting out a retry), however
        // long the backlog is. On Postgres, concurrent receivers skip each
        // other's rows instead of queueing behind them; SQLite has one writer
        // at a time and no lock clause. The pick is a CTE, which both evaluate
        // once: as an `IN (subquery)`, Postgres may rescan the subquery per
        // row, and each rescan skips the rows the statement already locked
        // and picks more.
        let pick = self
            .visible_ids(now)
            .order_by_asc(Column::FairKey)
            .order_by_asc(Column::Id)
            .limit(u64::from(max.clamp(1, 10)))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_query();
        let picked = Alias::new("picked");
        let mut claim = queue_messages::Entity::update_many()
            .col_expr(Column::Receipt, Expr::value(token.clone()))
            .col_expr(Column::VisibleAtMs, Expr::value(now + Self::millis(visibility)))
            .col_expr(Column::ReceiveCount, Expr::col(Column::ReceiveCount).add(1))
            // Only the id: the pick's rows are locked (Postgres) or no one
            // else writes (SQLite), so no other receiver can have claimed
            // them since. Repeating the pick's conditions here would let
            // SQLite's planner scan the whole visible range to test them.
            .filter(Column::Id.in_subquery(Query::select().column(Column::Id).from(picked.clone()).to_owned()))
            .into_query();
        claim.returning_all();
        let claim = WithClause::new()
            .cte(CommonTableExpression::new().query(pick).table_name(picked).to_owned())
            .to_owned()
            .query(claim);
        let claimed = queue_messages::Entity::find()
            .from_raw_sql(self.db.get_database_backend().build(&claim))
            .all(&self.db)
            .await
            .map_err(db_error)?;

        // Like SQS, a message that has used up its receives moves to the
        // dead-letter queue when a receive reaches it, instead of being
        // delivered. Only then is there anything more to write.
        let limit = i64::from(self.max_receive_count);
        let (spent, mut delivered): (Vec<_>, Vec<_>) =
            claimed.into_iter().partition(|m| i64::from(m.receive_count) > limit);
        if !spent.is_empty() {
            queue_messages::Entity::update_many()
                .col_expr(Column::Queue, Expr::value(self.dead_letter_name.clone()))
                .col_expr(Column::ReceiveCount, Expr::value(0))
                .col_expr(Column::Receipt, Expr::value(Option::<String>::None))
                .col_expr(Column::VisibleAtMs, Expr::value(now))
                .filter(Column::Id.is_in(spent.iter().map(|m| m.id)))
                .filter(Column::Receipt.eq(&token))
                .exec(&self.db)
                .await
                .map_err(db_error)?;
        }
        // RETURNING gives no order.
        delivered.sort_by_key(|m| (m.fair_key, m.id));
        Ok(delivered
            .into_iter()
            .map(|message| Delivery {
                receipt: Receipt { id: message.id, token: token.clone() }.to_string(),
                message_id: message.id.to_string(),
                body: message.body,
                receive_count: u32::try_from(message.receive_count).unwrap_or(u32::MAX),
                sent_at: DateTime::from_timestamp_millis(message.sent_at_ms),
                group: message.fair_group,
                lane: Lane::Live,
                trace: message.trace_parent,
            })
            .collect())
    }
}

impl LocalJobQueue {
    /// The fair key of a message `group` sends at `now`: start-time fair
    /// queueing, with the key as the virtual clock. The clock reads the key
    /// of the next message due, or with none visible the highest key any
    /// group took on this queue, so that a drained backlog doesn't turn the
    /// clock back. A group's message goes one past its group's last key, or
    /// at the clock, whichever is later: a quiet tenant's upload goes next,
    /// and a noisy tenant's thousand queue behind its own backlog.
    ///
    /// The group's key is taken by one upsert of its `queue_fair_groups`
    /// row, so concurrent sends of one group take consecutive keys: a
    /// tenant uploading in parallel gets no more messages per key than one
    /// uploading in turn. (The clock is read before, so two groups' sends
    /// may read the same clock; that only ties them, and the id decides.)
    async fn fair_key(&self, group: Option<&str>, now: i64) -> Result<i64, QueueError> {
        let next_due = queue_messages::Entity::find()
            .select_only()
            .column(Column::FairKey)
            .filter(Column::Queue.eq(&self.name))
            .filter(Column::VisibleAtMs.lte(now))
            .order_by_asc(Column::FairKey)
            .order_by_asc(Column::Id)
            .into_tuple::<i64>()
            .one(&self.db)
            .await
            .map_err(db_error)?;
        let clock = match next_due {
            Some(key) => key,
            None => queue_fair_groups::Entity::find()
                .select_only()
                .column_as(queue_fair_groups::Column::LastKey.max(), "last_key")
                .filter(queue_fair_groups::Column::Queue.eq(&self.name))
                .into_tuple::<Option<i64>>()
                .one(&self.db)
                .await
                .map_err(db_error)?
                .flatten()
                .unwrap_or(0),
        };
        let last_key = Expr::col((queue_fair_groups::Entity, queue_fair_groups::Column::LastKey));
        let taken = queue_fair_groups::Entity::insert(queue_fair_groups::ActiveModel {
            queue: Set(self.name.clone()),
            fair_group: Set(group.unwrap_or_default().to_owned()),
            last_key: Set(clock),
        })
        .on_conflict(
            OnConflict::columns([queue_fair_groups::Column::Queue, queue_fair_groups::Column::FairGroup])
                .value(
                    queue_fair_groups::Column::LastKey,
                    Func::greatest([
                        last_key.add(1),
                        Expr::col((Alias::new("excluded"), queue_fair_groups::Column::LastKey)),
                    ]),
                )
                .to_owned(),
        )
        .exec_with_returning(&self.db)
        .await
        .map_err(db_error)?;
        Ok(taken.last_key)
    }
}

/// A receipt names the message and the receive that handed it out: a
/// receipt from an earlier receive of the same message matches nothing.
/// Its id makes every use of it a primary-key lookup.
struct Receipt {
    id: i64,
    token: String,
}

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.id, self.token)
    }
}

impl std::str::FromStr for Receipt {
    type Err = QueueError;

    fn from_str(receipt: &str) -> Result<Self, Self::Err> {
        receipt
            .split_once('.')
            .and_then(|(id, token)| Some(Self { id: id.parse().ok()?, token: token.to_owned() }))
            .ok_or_else(|| QueueError::InvalidReceipt(receipt.to_owned()))
    }
}

impl Receipt {
    /// Rows this receipt names: its message, while that receive holds it.
    fn matches(&self) -> Condition {
        Condition::all().add(Column::Id.eq(self.id)).add(Column::Receipt.eq(&self.token))
    }
}

fn db_error(err: sea_orm::DbErr) -> QueueError {
    QueueError::Unavailable(err.to_string())
}

#[async_trait]
impl JobQueue for LocalJobQueue {
    async fn send(&self, message: &Outgoing) -> Result<String, QueueError> {
        let now = Self::now_ms();
        let fair_key = self.fair_key(message.group.as_deref(), now).await?;
        let inserted = queue_messages::Entity::insert(queue_messages::ActiveModel {
            queue: Set(self.name.clone()),
            body: Set(message.body.clone()),
            receipt: Set(None),
            receive_count: Set(0),
            sent_at_ms: Set(now),
            visible_at_ms: Set(now),
            fair_group: Set(message.group.clone()),
            fair_key: Set(fair_key),
            trace_parent: Set(message.trace.clone()),
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

    async fn send_batch(&self, messages: &[Outgoing]) -> Vec<Result<String, QueueError>> {
        let mut results = Vec::with_capacity(messages.len());
        for message in messages {
            results.push(self.send(message).await);
        }
        results
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt: Receipt = receipt.parse()?;
        queue_messages::Entity::delete_many().filter(receipt.matches()).exec(&self.db).await.map_err(db_error)?;
        Ok(())
    }

    async fn delete_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>> {
        let parsed: Vec<Result<Receipt, QueueError>> = receipts.iter().map(|r| r.parse()).collect();
        let any = parsed.iter().flatten().fold(Condition::any(), |any, receipt| any.add(receipt.matches()));
        let deleted = if any.is_empty() {
            Ok(())
        } else {
            queue_messages::Entity::delete_many().filter(any).exec(&self.db).await.map(drop)
        };
        let message = deleted.err().map(|err| err.to_string());
        parsed
            .into_iter()
            .map(|receipt| match (receipt, &message) {
                (Err(err), _) => Err(err),
                (Ok(_), Some(message)) => Err(QueueError::Unavailable(message.clone())),
                (Ok(_), None) => Ok(()),
            })
            .collect()
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        let receipt: Receipt = receipt.parse()?;
        queue_messages::Entity::update_many()
            .col_expr(Column::VisibleAtMs, Expr::value(Self::now_ms() + Self::millis(timeout)))
            .filter(receipt.matches())
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        if timeout.is_zero() {
            self.wake.notify_waiters();
        }
        Ok(())
    }

    /// One of its polls: a look at the table is one indexed read, the same
    /// a waiting receive makes every poll anyway. While bulk jobs run, the
    /// lanes wait on the live lane only this long before they look for bulk
    /// room again, so this is also how long a freed bulk slot can stay
    /// empty: at 100 ms, a reprocess of small images ran at 63 jobs/s alone
    /// against 89/s beside live uploads, whose arrivals ended the waits early.
    fn shortest_wait(&self) -> Duration {
        POLL_INTERVAL
    }

    async fn redrive_limit(&self) -> Result<Option<u32>, QueueError> {
        Ok(Some(self.max_receive_count))
    }

    async fn approximate_depth(&self) -> Result<u64, QueueError> {
        queue_messages::Entity::find().filter(Column::Queue.eq(&self.name)).count(&self.db).await.map_err(db_error)
    }

    async fn address(&self) -> Result<Option<String>, QueueError> {
        Ok(None)
    }

    /// The table queue has no server-side move; callers copy instead.
    async fn start_redrive(
        &self,
        _destination: Option<&str>,
        _max_per_second: Option<u32>,
    ) -> Result<Option<String>, QueueError> {
        Ok(None)
    }

    async fn redrive_status(&self, handle: &str) -> Result<RedriveStatus, QueueError> {
        Err(QueueError::Unavailable(format!("no move task {handle} on the table queue")))
    }
}
