//! Why a step failed, and whether trying again can help. Every fallible step
//! of a job turns its error into a [`Failure`]; [`crate::fate`] decides what
//! the failure leads to.

use pipeline::store::StoreError;
use uuid::Uuid;

use crate::fate::Outcome;

/// A failed step: a stable code, a message for the client, the internal
/// cause, and whether it may pass.
///
/// `code` and `message` are stored on the job, shown by the API and sent in
/// events, so the message is written for the client. `cause` is the error
/// as a dependency reported it (an SDK error with ARNs, a database error
/// with SQL, a host name): it is logged with the job, never stored or sent.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) permanent: bool,
    /// Stable kebab-case code, stored on the job and sent in events.
    pub(crate) code: String,
    pub(crate) message: String,
    /// What went wrong inside, for the logs only.
    pub(crate) cause: Option<String>,
    /// The job it concerns, once known.
    pub(crate) job_id: Option<Uuid>,
}

impl Failure {
    /// A failure that may pass: try again later. `message` reaches the client.
    pub(crate) fn transient(code: &str, message: impl ToString) -> Self {
        Self { permanent: false, code: code.to_owned(), message: message.to_string(), cause: None, job_id: None }
    }

    /// A failure of this input that no retry can mend. `message` reaches the client.
    pub(crate) fn permanent(code: &str, message: impl ToString) -> Self {
        Self { permanent: true, code: code.to_owned(), message: message.to_string(), cause: None, job_id: None }
    }

    /// The internal cause, for a log line (empty when there is none).
    pub(crate) fn cause(&self) -> &str {
        self.cause.as_deref().unwrap_or_default()
    }

    /// The same failure, with the internal error that caused it.
    pub(crate) fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
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
        Self::transient("database-unavailable", "the database could not be reached; the job will be retried")
            .caused_by(err)
    }
}

impl From<StoreError> for Failure {
    /// A store that could not be reached may answer later; a missing
    /// object, or one the store refuses, stays that way.
    fn from(err: StoreError) -> Self {
        let failure = match &err {
            _ if err.is_transient() => {
                Self::transient("store-unavailable", "object storage could not be reached; the job will be retried")
            }
            StoreError::NotFound(_) => Self::permanent("source-missing", "the uploaded image is no longer stored"),
            _ => Self::permanent("store-rejected", "object storage refused to store or read the image"),
        };
        failure.caused_by(err)
    }
}
