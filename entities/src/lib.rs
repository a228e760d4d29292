//! # entities
//!
//! sea-orm entities, one module per table. The schema itself lives in the
//! `migrations` crate; these types are how the rest of the code reads and
//! writes it, on Postgres and SQLite alike.
//!
//! # Layout
//! - [`api_keys`]: the hashed keys clients authenticate with.
//! - [`deletions`]: the audit record of deleted images, and unfinished deletions.
//! - [`image_digests`]: which image of a tenant holds which bytes (deduplication).
//! - [`images`]: one row per uploaded original.
//! - [`variants`]: one row per encoded output of an image and a preset version.
//! - [`jobs`]: one row per processing attempt chain, with its [`jobs::JobStatus`].
//! - [`queue_messages`]: the embedded backend's durable queue.
//! - [`queue_fair_groups`]: each fair-share group's last key on the queue table.
//! - [`job_audit`]: what operators did to jobs (replays, redrives).
//! - [`operator_cursors`]: where a resumable operator run stopped.
//! - [`tenants`]: who owns images, jobs and keys, with their quotas.
//! - [`tenant_daily_uploads`]: uploads per tenant and day, for the quota.
//! - [`webhook_deliveries`]: the webhook outbox.
//! - [`prelude`]: the entities under short names.

pub mod api_keys;
pub mod deletions;
pub mod image_digests;
pub mod images;
pub mod job_audit;
pub mod jobs;
pub mod operator_cursors;
pub mod prelude;
pub mod queue_fair_groups;
pub mod queue_messages;
pub mod tenant_daily_uploads;
pub mod tenants;
pub mod variants;
pub mod webhook_deliveries;
