//! The error responses the OpenAPI document lists, one type per status, each
//! an `application/problem+json` [`Problem`](crate::error::Problem). An
//! endpoint names the ones it can answer with:
//! `responses((status = 200, …), BadRequest, Unauthorized, RateLimited)`.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr};

type Responses = BTreeMap<String, RefOr<Response>>;

/// One problem+json response; `retry_after` when it carries that header.
fn problem(status: &str, description: &str, retry_after: bool) -> Responses {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
    );
    if retry_after {
        let seconds = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("Seconds to wait before trying again"))
            .build();
        response = response.header("Retry-After", seconds);
    }
    BTreeMap::from([(status.to_owned(), RefOr::T(response.build()))])
}

macro_rules! problems {
    ($($name:ident($status:literal, $description:literal, retry_after: $retry:literal)),* $(,)?) => {$(
        #[doc = concat!("The ", $status, " problem: ", $description, ".")]
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> Responses {
                problem($status, $description, $retry)
            }
        }
    )*};
}

// One line for each family: the request itself, who asks, what it names,
// and the two that say when to try again.
#[rustfmt::skip]
problems! {
    BadRequest("400", "Malformed request", retry_after: false), TooLarge("413", "Over MAX_UPLOAD_BYTES", retry_after: false),
        UnsupportedMediaType("415", "Not a supported image, or not the media type this endpoint takes", retry_after: false),
    Unauthorized("401", "No valid API key", retry_after: false), NotAdmin("403", "Not an admin key", retry_after: false),
        UploadRejected("403", "Bad or expired signature, or the request differs from what was signed", retry_after: false),
        DeliveryRefused("403", "A signed URL without a valid signature (`signature-required`, `signature-invalid`) or past its expiry (`url-expired`)", retry_after: false),
        RangeNotSatisfiable("416", "No byte of the range lies inside the object", retry_after: false),
    NotFound("404", "No such resource", retry_after: false), AlreadyReceived("409", "The upload was already received", retry_after: false),
        NotPossible("409", "Not possible with this setup", retry_after: false),
        KeyReused("422", "Idempotency-Key reused with a different request", retry_after: false),
        Unprocessable("422", "Names something that does not exist", retry_after: false),
    RateLimited("429", "Rate limited (`rate-limited`), or over a tenant quota (`quota-exceeded`)", retry_after: true), Unavailable("503", "A backing service is unavailable", retry_after: true),
}

/// What `?tenant=NAME` adds to any endpoint: a client key that names a
/// tenant is refused, and an unknown name is not found.
pub(crate) struct TenantProblems;

impl IntoResponses for TenantProblems {
    fn responses() -> Responses {
        [
            problem("403", "Not an admin key, or a client key that named a tenant", false),
            problem("404", "No such resource, or no tenant of that name", false),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Everything an admin endpoint can answer with instead of success.
pub(crate) struct AdminProblems;

impl IntoResponses for AdminProblems {
    fn responses() -> Responses {
        [
            BadRequest::responses(),
            Unauthorized::responses(),
            NotAdmin::responses(),
            NotPossible::responses(),
            UnsupportedMediaType::responses(),
            Unprocessable::responses(),
            RateLimited::responses(),
            Unavailable::responses(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}
