//! The error responses the OpenAPI document lists, one type per status, each
//! an `application/problem+json` [`Problem`](crate::error::Problem). An
//! endpoint names the ones it can answer with:
//! `responses((status = 200, …), BadRequest, Unauthorized, RateLimited)`.

use std::collections::BTreeMap;

use image_service_client::ErrorCode;
use utoipa::IntoResponses;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};

type Responses = BTreeMap<String, RefOr<Response>>;

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// One problem+json response that answers with one of `codes`: a
/// [`Problem`](crate::error::Problem) whose `code` is narrowed to those, so
/// a generated client knows which codes each status can carry. 429 and 503
/// say when to try again.
pub(crate) fn problem(status: &str, description: &str, codes: &[ErrorCode]) -> Responses {
    let narrowed = ObjectBuilder::new().property(
        "code",
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes.iter().map(ErrorCode::as_str))),
    );
    let schema = AllOfBuilder::new().item(Ref::from_schema_name("Problem")).item(narrowed);
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(schema)).build());
    if matches!(status, "429" | "503") {
        let seconds = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("Seconds to wait before trying again"))
            .build();
        response = response.header("Retry-After", seconds);
    }
    BTreeMap::from([(status.to_owned(), RefOr::T(response.build()))])
}

/// The codes a problem response built by [`problem`] lists.
pub(crate) fn listed_codes(response: &Response) -> Vec<String> {
    let narrowed = response.content.get(PROBLEM_JSON).and_then(|content| match &content.schema {
        Some(RefOr::T(Schema::AllOf(all))) => all.items.iter().find_map(|item| match item {
            RefOr::T(Schema::Object(object)) => object.properties.get("code"),
            _ => None,
        }),
        _ => None,
    });
    match narrowed {
        Some(RefOr::T(Schema::Object(code))) => {
            code.enum_values.iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
        }
        _ => Vec::new(),
    }
}

macro_rules! problems {
    ($($name:ident($status:literal, $description:literal, [$($code:ident),+])),* $(,)?) => {$(
        #[doc = concat!("The ", $status, " problem: ", $description, ".")]
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> Responses {
                problem($status, $description, &[$(ErrorCode::$code),+])
            }
        }
    )*};
}

// One line for each family: the request itself, who asks, what it names,
// and the ones that say when to try again.
#[rustfmt::skip]
problems! {
    BadRequest("400", "Malformed request", [BadRequest]), TooLarge("413", "Over MAX_UPLOAD_BYTES", [PayloadTooLarge]),
        UnsupportedMediaType("415", "Not a supported image, or not the media type this endpoint takes", [UnsupportedMediaType]),
    Unauthorized("401", "No valid API key", [Unauthorized]), NotAdmin("403", "Not an admin key", [Forbidden]),
        UploadRejected("403", "Bad or expired signature, or the request differs from what was signed", [UploadRejected]),
        DeliveryRefused("403", "A signed URL without a valid signature, or past its expiry", [SignatureRequired, SignatureInvalid, UrlExpired]),
        RangeNotSatisfiable("416", "No byte of the range lies inside the object", [RangeNotSatisfiable]),
    NotFound("404", "No such resource", [NotFound]), AlreadyReceived("409", "The upload was already received", [Conflict]),
        NotPossible("409", "Not possible with this setup", [Conflict]),
        ExternalIdTaken("409", "The tenant has an image with this `external_id` already", [ExternalIdTaken]),
        KeyReused("422", "Idempotency-Key reused with a different request", [IdempotencyKeyReused]),
        Unprocessable("422", "Names something that does not exist", [Unprocessable]),
    RateLimited("429", "Over the key's, the tenant's or the address's rate", [RateLimited]),
        OverQuota("429", "Over a rate, or over a tenant quota", [RateLimited, QuotaExceeded]),
        Unavailable("503", "A backing service is unavailable", [ServiceUnavailable]),
}

/// What `?tenant=NAME` adds to any endpoint: a client key that names a
/// tenant is refused, and an unknown name is not found.
pub(crate) struct TenantProblems;

impl IntoResponses for TenantProblems {
    fn responses() -> Responses {
        [
            problem("403", "A client key that named a tenant", &[ErrorCode::Forbidden]),
            problem("404", "No tenant of that name", &[ErrorCode::NotFound]),
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
