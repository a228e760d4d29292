//! The client's errors: the API's problem+json answers as a typed code, and
//! the failures that never reached an answer.

use std::time::Duration;

use serde::Deserialize;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an RFC 9457 problem.
    #[error("{}", .0)]
    Api(Box<Problem>),
    /// No answer: the connection failed or timed out.
    #[error("the request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer that is not what the API documents (a proxy's page, say).
    #[error("unexpected answer ({status}): {detail}")]
    Unexpected {
        /// Its HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
    },
    /// `wait` gave up before the job ended.
    #[error("job {job_id} had not ended after {waited:?} (last seen {status})")]
    Timeout {
        /// The job waited for.
        job_id: uuid::Uuid,
        /// How long it waited.
        waited: Duration,
        /// Its status at the last poll.
        status: crate::JobStatus,
    },
}

impl Error {
    /// The API's problem, when the API answered with one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Api(problem) => Some(problem),
            _ => None,
        }
    }

    /// The problem's code, when the API answered with one.
    pub fn code(&self) -> Option<&ErrorCode> {
        self.problem().map(|p| &p.code)
    }
}

/// A problem the API answered with.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Problem {
    /// The HTTP status.
    pub status: u16,
    /// The stable code to match on.
    pub code: ErrorCode,
    /// The status's reason phrase.
    #[serde(default)]
    pub title: String,
    /// What went wrong with this request.
    #[serde(default)]
    pub detail: String,
    /// How long the API asked to wait before trying again (`Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal: $doc:literal,)*) => {
        /// The API's stable error codes (`code` in every problem+json body).
        /// A code this version does not know arrives as [`ErrorCode::Other`].
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
            /// A code this client does not know yet.
            Other(String),
        }

        impl ErrorCode {
            /// Every code this version knows.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as the API spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Other(code) => code,
                }
            }

            /// The code spelled `code`.
            pub fn parse(code: &str) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }
    };
}

codes! {
    BadRequest = "bad-request": "400: the request is malformed.",
    Unauthorized = "unauthorized": "401: no valid API key.",
    Forbidden = "forbidden": "403: the key's scope does not cover this endpoint.",
    UploadRejected = "upload-rejected": "403: an upload URL's signature is wrong or expired, or the upload differs from what was signed.",
    SignatureRequired = "signature-required": "403: a signed delivery or status URL without its signature.",
    SignatureInvalid = "signature-invalid": "403: a signed URL whose signature is wrong.",
    UrlExpired = "url-expired": "403: a signed URL past its expiry.",
    NotFound = "not-found": "404: no such resource (or not the caller's tenant's).",
    Conflict = "conflict": "409: not possible with how the service is set up, or already done.",
    ExternalIdTaken = "external-id-taken": "409: the tenant has an image with this external id.",
    PayloadTooLarge = "payload-too-large": "413: over the service's upload limit.",
    UnsupportedMediaType = "unsupported-media-type": "415: not a supported image, or not the media type the endpoint takes.",
    RangeNotSatisfiable = "range-not-satisfiable": "416: no byte of the range lies inside the object.",
    IdempotencyKeyReused = "idempotency-key-reused": "422: the Idempotency-Key was used with a different request.",
    Unprocessable = "unprocessable": "422: the request names something that does not exist.",
    RateLimited = "rate-limited": "429: the key is over its rate.",
    QuotaExceeded = "quota-exceeded": "429: the tenant is over a quota.",
    InternalError = "internal-error": "500: a bug in the service.",
    ServiceUnavailable = "service-unavailable": "503: a backing service is unavailable; try again.",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Ok(Self::parse(&code))
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_reads_back_as_itself_and_unknown_ones_are_kept() {
        for code in ErrorCode::ALL {
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(ErrorCode::parse("brand-new"), ErrorCode::Other("brand-new".into()));
    }
}
