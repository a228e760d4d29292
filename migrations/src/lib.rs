//! # migrations
//!
//! The schema, as sea-orm migrations that run on Postgres and SQLite. Each
//! migration has an `up` and a `down`. They run as their own step
//! (`image-service migrate`), and the all-in-one command applies them to its
//! SQLite file at start.
//!
//! # Layout
//! - [`Migrator`]: the ordered list of migrations.
//! - `mYYYYMMDD_NNNNNN_*`: one file per migration.

use sea_orm_migration::prelude::*;

mod m20261126_000001_create_images;
mod m20261126_000002_create_jobs;
mod m20261126_000003_create_variants;
mod m20261126_000004_create_queue_messages;
mod m20261126_000005_replay;
mod m20261126_000006_api_product;
mod m20261204_000007_tenants;
mod m20261204_000008_deletions;
mod m20261204_000009_quotas;
mod m20261204_000010_dedup;
mod m20261204_000011_client_fields_and_retention;
mod m20261206_000012_delivery;
mod m20261207_000013_webhook_outbox;
mod m20261207_000014_fair_queue;
mod m20261207_000015_fair_groups;
mod m20261207_000016_trace_context;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_images::Migration),
            Box::new(m20261126_000002_create_jobs::Migration),
            Box::new(m20261126_000003_create_variants::Migration),
            Box::new(m20261126_000004_create_queue_messages::Migration),
            Box::new(m20261126_000005_replay::Migration),
            Box::new(m20261126_000006_api_product::Migration),
            Box::new(m20261204_000007_tenants::Migration),
            Box::new(m20261204_000008_deletions::Migration),
            Box::new(m20261204_000009_quotas::Migration),
            Box::new(m20261204_000010_dedup::Migration),
            Box::new(m20261204_000011_client_fields_and_retention::Migration),
            Box::new(m20261206_000012_delivery::Migration),
            Box::new(m20261207_000013_webhook_outbox::Migration),
            Box::new(m20261207_000014_fair_queue::Migration),
            Box::new(m20261207_000015_fair_groups::Migration),
            Box::new(m20261207_000016_trace_context::Migration),
        ]
    }
}

pub use sea_orm_migration::MigratorTrait;
