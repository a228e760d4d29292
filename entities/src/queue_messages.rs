//! `queue_messages`: the embedded backend's durable queue.
//!
//! It mirrors the parts of SQS the worker relies on: a message is invisible
//! for a visibility timeout after each receive, every receive bumps
//! `receive_count` and issues a new receipt, and a message received more
//! times than the redrive limit moves to the dead-letter queue name. Within
//! a queue, receives share the messages fairly among their groups (tenants).

use sea_orm::entity::prelude::*;

/// One queued message.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_messages")]
pub struct Model {
    /// Monotonic id; receives take the oldest visible messages first.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Queue name, such as `jobs` or `jobs-dlq`.
    pub queue: String,
    /// The message body (JSON).
    pub body: String,
    /// The receipt of the latest receive; only its holder may delete or extend.
    pub receipt: Option<String>,
    /// How many times the message was received.
    pub receive_count: i32,
    /// When it was sent, in Unix milliseconds.
    pub sent_at_ms: i64,
    /// Hidden until this instant, in Unix milliseconds.
    pub visible_at_ms: i64,
    /// The fair-share group it was sent in (the tenant), if any.
    pub fair_group: Option<String>,
    /// Its place in the fair order: receives take the visible messages with
    /// the lowest keys first. A message's key is one past the last key of
    /// its group's queued messages, and never behind the next message due,
    /// so each group's backlog interleaves with the others' instead of
    /// queueing in front of them.
    pub fair_key: i64,
    /// The W3C `traceparent` the message was sent with, when tracing is on.
    pub trace_parent: Option<String>,
}

/// `queue_messages` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
