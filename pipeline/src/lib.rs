//! # pipeline
//!
//! What the API and the worker share. Everything that talks to a backing
//! service sits behind a small trait with one adapter per backend set, so the
//! same code path runs on AWS and on the embedded defaults:
//!
//! | role | trait | AWS | embedded |
//! |---|---|---|---|
//! | job queue | [`queue::JobQueue`] | [`queue::SqsJobQueue`] | [`queue::LocalJobQueue`] (a table) |
//! | objects | [`store::BlobStore`] | [`store::S3BlobStore`] (SSE-KMS) | [`store::FsBlobStore`] |
//! | events | [`notify::Notifier`] | [`notify::SnsNotifier`] | [`notify::ConsoleNotifier`] |
//!
//! Webhooks (JSON, Slack, Discord) go beside either, through the durable
//! outbox ([`outbox`]).
//! The API's read cache ([`cache::Cache`]) is Redis when configured, and
//! nothing otherwise.
//!
//! Metadata always goes through sea-orm, to Postgres or SQLite.
//!
//! # Layout
//! - [`settings`]: every setting, read from flags or the environment.
//! - [`backends`]: builds the adapters the settings ask for.
//! - [`message`]: the job message: ids and keys, never bytes.
//! - [`event`]: the outcome event published when a job ends.
//! - [`outbox`]: webhook deliveries, recorded with the state they announce and retried until accepted.
//! - [`keys`]: where objects live in the bucket; the one home of the original's key.
//! - [`jobs`]: the job domain: its state machine (every move clears the
//!   read cache itself), intake, queries and the operators' helpers.
//! - [`links`]: every public address of a job, an image and a variant.
//! - [`delivery`]: the URLs pages show variants by, public or signed, and their keys.
//! - [`replay`]: the operators' replays: DLQ redrive, re-enqueue by filter, preset backfill.
//! - [`db`]: connecting and migrating.
//! - [`deletion`]: deleting an image and everything stored and recorded about it.
//! - [`api_keys`]: creating, finding and revoking the hashed API keys.
//! - [`cache`]: the read-through cache and the keys the worker invalidates.
//! - [`tls`]: the one TLS crypto provider every client uses.
//! - [`tenants`]: who owns images, jobs and keys.
//! - [`quota`]: per-tenant uploads per day and bytes stored, counted exactly.
//! - [`trace`]: logging, OpenTelemetry, and the trace context a job carries.
//! - [`retention`]: removing originals past their retention, and superseded variants.

pub mod api_keys;
pub mod backends;
pub mod cache;
pub mod db;
pub mod deletion;
pub mod delivery;
pub mod event;
pub mod jobs;
pub mod keys;
pub mod links;
pub mod message;
pub mod notify;
pub mod outbox;
pub mod queue;
pub mod quota;
pub mod replay;
pub mod retention;
pub mod roles;
pub mod settings;
pub mod store;
pub mod tenants;
pub mod tls;
pub mod trace;

pub use backends::Backends;
pub use settings::Settings;
