//! The job domain: every read and write of a job, its image and its
//! variants, for the API, the worker and the operators' replays.
//!
//! - [`transitions`]: the job's state machine. [`Jobs`] is the only way to
//!   move a job; each move names the states it may leave from
//!   ([`Transition::from`]), is one conditional update, and clears the read
//!   cache's views of the job itself, so no caller has to remember to.
//! - [`intake`]: recording a new upload, and "insert, or on a duplicate
//!   fetch the job that got there first".
//! - [`queries`]: the reads behind the API's views and the worker's events.
//! - [`operator`]: what the replays need: filtered pages, new replay and
//!   preset jobs, the audit trail and the resumable runs' cursors.
//!
//! Every state change is a conditional update (`… WHERE status IN …`), so two
//! workers holding the same redelivered message cannot both move a job, and
//! the caller learns from the returned row whether it was the one.

pub mod intake;
pub mod operator;
pub mod queries;
pub mod transitions;

pub use intake::{
    ClientFields, NewUpload, Recorded, image_with_external_id, is_unique_violation, newest_job_with_digest,
    record_or_find, record_upload,
};
pub use operator::JobFilter;
pub use queries::{
    find_image, find_job, find_job_by_idempotency_key, find_tenant_job, find_variant, image_exists, image_variants,
    list_images, list_jobs,
};
pub use transitions::{Claim, ImageFacts, Jobs, NewVariant, Transition};
