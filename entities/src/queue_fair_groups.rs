//! `queue_fair_groups`: the last fair key each group (tenant) took on each
//! queue of the table queue. A send takes its key by one upsert of its
//! group's row, which concurrent sends of the group take in turn.

use sea_orm::entity::prelude::*;

/// One group's place on one queue.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_fair_groups")]
pub struct Model {
    /// Queue name, such as `jobs` or `jobs-bulk`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub queue: String,
    /// The group: a tenant's id, or the empty string for messages sent
    /// without one.
    #[sea_orm(primary_key, auto_increment = false)]
    pub fair_group: String,
    /// The key of the group's latest message.
    pub last_key: i64,
}

/// `queue_fair_groups` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
