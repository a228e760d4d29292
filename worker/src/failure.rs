//! Why a step failed, and whether trying again can help. Every fallible step
//! of a job turns its error into a [`Failure`]; [`crate::fate`] decides what
//! the failure leads to.

use pipeline::store::StoreError;
use uuid::Uuid;

use crate::fate::Outcome;

/// A failed step: a stable code, a message, and whether it may pass.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) permanent: bool,
    /// Stable kebab-case code, stored on the job and sent in events.
    pub(crate) code: String,
    pub(crate) message: String,
    /// The job it concerns, once known.
    pub(crate) job_id: Option<Uuid>,
}

impl Failure {
    /// A failure that may pass: try again later.
    pub(crate) fn transient(code: &str, message: impl ToString) -> Self {
        Self { permanent: false, code: code.to_owned(), message: message.to_string(), job_id: None }
    }

    /// A failure of this input that no retry can mend.
    pub(crate) fn permanent(code: &str, message: impl ToString) -> Self {
        Self { permanent: true, code: code.to_owned(), message: message.to_string(), job_id: None }
    }

    /// The same failure, about `job_id` (unless it already names a job).
    pub(crate) fn for_job(mut self, job_id: Uuid) -> Self {
        self.job_id.get_or_insert(job_id);
        self
    }

    /// What this failure makes of the job.
    pub(crate) fn outcome(&self) -> Outcome {
        if self.permanent { Outcome::Permanent } else { Outcome::Transient }
    }
}

impl From<sea_orm::DbErr> for Failure {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::transient("database-unavailable", err)
    }
}

impl From<StoreError> for Failure {
    /// A store that could not be reached may answer later; a missing
    /// object, or one the store refuses, stays that way.
    fn from(err: StoreError) -> Self {
        match &err {
            _ if err.is_transient() => Self::transient("store-unavailable", err),
            StoreError::NotFound(_) => Self::permanent("source-missing", err),
            _ => Self::permanent("store-rejected", err),
        }
    }
}
