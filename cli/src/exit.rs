//! The exit codes scripts can branch on (`docs/cli.md#exit-codes`), and the
//! one function that picks a failure's.

use std::process::ExitCode;

use image_service_client::{Error as ApiError, ErrorCode};

/// What a failed command exits with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything else (a bug, a bad file, a failed migration).
    Failure = 1,
    /// 2: the command line is wrong (clap's own code for usage errors).
    Usage = 2,
    /// 3: what the command names does not exist: a job, an image, a
    /// tenant, a key (or it is another tenant's).
    NotFound = 3,
    /// 4: the service refused the request: no valid key, not allowed, a
    /// bad or oversized upload, a quota.
    Refused = 4,
    /// 5: the command ran, but a job it waited for failed or went dead.
    JobFailed = 5,
    /// 6: the service, or a backend the command needs, is unavailable; try again.
    Unavailable = 6,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A failure that knows its exit code; anything else in the chain decides
/// through [`classify`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn error(exit: Exit, message: impl Into<String>) -> anyhow::Error {
        Self { exit, message: message.into() }.into()
    }
}

/// The exit code of a command's error: the first cause in its chain that
/// says what kind of failure it was.
pub fn classify(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.exit;
        }
        if let Some(api) = cause.downcast_ref::<ApiError>() {
            return of_api(api);
        }
        if let Some(db) = cause.downcast_ref::<sea_orm::DbErr>()
            && matches!(db, sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_))
        {
            return Exit::Unavailable;
        }
    }
    Exit::Failure
}

fn of_api(err: &ApiError) -> Exit {
    match err {
        ApiError::Transport(_) | ApiError::Timeout { .. } => Exit::Unavailable,
        ApiError::Unexpected { status: 502..=504, .. } => Exit::Unavailable,
        ApiError::Unexpected { .. } => Exit::Failure,
        ApiError::Api(problem) => match &problem.code {
            ErrorCode::NotFound => Exit::NotFound,
            ErrorCode::ServiceUnavailable => Exit::Unavailable,
            ErrorCode::InternalError => Exit::Failure,
            _ if (400..500).contains(&problem.status) => Exit::Refused,
            _ => Exit::Failure,
        },
        _ => Exit::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_failure_keeps_its_code_under_added_context() {
        let err = Failure::error(Exit::NotFound, "no tenant named \"x\"").context("creating a key");
        assert_eq!(classify(&err), Exit::NotFound);
        assert_eq!(classify(&anyhow::anyhow!("plain")), Exit::Failure);
    }
}
