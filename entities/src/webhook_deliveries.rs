//! `webhook_deliveries`: the webhook outbox, one row per event and webhook.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Still to be delivered: due at `next_attempt_at`.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The receiver accepted it (a 2xx).
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// It was not accepted before `expires_at`; an operator can replay it.
    #[sea_orm(string_value = "expired")]
    Expired,
}

/// One event's delivery to one webhook.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// The delivery's own id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The event's id: the `webhook-id` every attempt carries.
    pub event_id: Uuid,
    /// The event's name, such as `image.processed`.
    pub event_kind: String,
    /// Which configured webhook it goes to: `json`, `slack` or `discord`.
    pub target: String,
    /// The exact bytes every attempt sends (and the signature covers).
    #[sea_orm(column_type = "Text")]
    #[serde(skip)]
    pub body: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due (while pending; a claimed delivery's
    /// lease runs to here).
    pub next_attempt_at: DateTimeUtc,
    /// When it stops being retried.
    pub expires_at: DateTimeUtc,
    /// How the last attempt failed, as a short code (`http-503`, `timeout`,
    /// `connect`): never the URL, which carries secrets.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub created_at: DateTimeUtc,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTimeUtc>,
    /// The W3C `traceparent` of the publish that recorded the delivery,
    /// sent as its `traceparent` header; none when tracing is off.
    pub trace_parent: Option<String>,
}

/// No relations: a delivery outlives the image its event names.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
