//! The delivery paths, served by the API itself when no CDN is in front of
//! the store: `GET /variants/{…}` and `GET /private/{…}`, the object key as
//! the path (see `pipeline::delivery`).
//!
//! They need no API key, so a page's `<img src>` works. What CloudFront does
//! at the edge, this does here: a `private/` path needs a valid, unexpired
//! signature; every answer is `immutable` for a year with a strong `ETag`
//! (the bytes behind a key never change, so the tag is the key's hash and a
//! revalidation needs no read), `304` on `If-None-Match`, one byte range on
//! `Range`, and `nosniff`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use pipeline::delivery::media_type_of_key;
use pipeline::keys;
use pipeline::store::StoreError;
use sha2::{Digest, Sha256};

use crate::SharedState;
use crate::error::ApiError;
use crate::responses::{DeliveryRefused, NotFound, RangeNotSatisfiable};

/// A public tenant's variant.
///
/// By its delivery URL (`url` in the image's variants): no key needed, so it
/// goes straight into `<img src>`. The URL names one immutable rendition, so
/// it is cached for a year; `If-None-Match` and one `Range` are honoured.
#[utoipa::path(get, path = "/variants/{image}/{token}/{file}", tag = "delivery", security(()),
    params(("image" = uuid::Uuid, Path, description = "Image id"),
           ("token" = String, Path, description = "The image's random delivery token"),
           ("file" = String, Path, description = "`{preset}-{version}.{ext}`"),
           ("If-None-Match" = Option<String>, Header, description = "`304` when it names the ETag"),
           ("Range" = Option<String>, Header, description = "One byte range, `bytes=first-last`")),
    responses((status = 200, description = "The variant, immutable for a year", content_type = "image/*"),
              (status = 206, description = "The requested byte range", content_type = "image/*"),
              (status = 304, description = "Not modified"),
              NotFound, RangeNotSatisfiable))]
pub(crate) async fn public(
    state: State<SharedState>,
    Path(rest): Path<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(state, format!("{}{rest}", keys::VARIANTS_PREFIX), query, headers).await
}

/// A signed tenant's variant.
///
/// By its signed delivery URL: a CloudFront canned-policy signature that
/// expires, so the same URL works against CloudFront on AWS and against the
/// API locally. Without a valid, unexpired signature it is `403`.
#[utoipa::path(get, path = "/private/{image}/{token}/{file}", tag = "delivery", security(()),
    params(("image" = uuid::Uuid, Path, description = "Image id"),
           ("token" = String, Path, description = "The image's random delivery token"),
           ("file" = String, Path, description = "`{preset}-{version}.{ext}`"),
           ("Expires" = i64, Query, description = "Unix time the URL expires at"),
           ("Signature" = String, Query, description = "ECDSA P-256 signature of the canned policy, CloudFront's base64"),
           ("Key-Pair-Id" = String, Query, description = "The signing key's id"),
           ("If-None-Match" = Option<String>, Header, description = "`304` when it names the ETag"),
           ("Range" = Option<String>, Header, description = "One byte range, `bytes=first-last`")),
    responses((status = 200, description = "The variant, immutable for a year", content_type = "image/*"),
              (status = 206, description = "The requested byte range", content_type = "image/*"),
              (status = 304, description = "Not modified"),
              DeliveryRefused, NotFound, RangeNotSatisfiable))]
pub(crate) async fn signed(
    state: State<SharedState>,
    Path(rest): Path<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(state, format!("{}{rest}", keys::PRIVATE_PREFIX), query, headers).await
}

async fn serve(
    State(state): State<SharedState>,
    key: String,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Variant keys are `{prefix}{image}/{token}/{file}`; anything else is no variant.
    if key.split('/').count() != 4 || key.split('/').any(|part| part.is_empty() || part.starts_with('.')) {
        return Err(ApiError::NotFound("variant"));
    }
    state.backends.delivery.admit(&key, query.as_deref(), Utc::now()).map_err(ApiError::DeliveryRefused)?;
    let etag = etag(&key);
    let mut fixed = HeaderMap::new();
    fixed.insert(header::ETAG, etag.clone());
    fixed.insert(header::CACHE_CONTROL, HeaderValue::from_static(keys::VARIANT_CACHE_CONTROL));
    fixed.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    fixed.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // An image on another origin may be drawn on a canvas.
    fixed.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    if matches_etag(headers.get(header::IF_NONE_MATCH), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, fixed).into_response());
    }
    let bytes = state.backends.store.get(&key).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::NotFound("variant"),
        other => other.into(),
    })?;
    fixed.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type_of_key(&key)));
    // A range is honoured only against this very representation (`If-Range`).
    let range = headers
        .get(header::RANGE)
        .filter(|_| headers.get(header::IF_RANGE).is_none_or(|tag| *tag == etag))
        .and_then(|value| value.to_str().ok());
    let Some(range) = range else {
        return Ok((fixed, bytes).into_response());
    };
    let length = bytes.len() as u64;
    match byte_range(range, length) {
        Some(Ok((first, last))) => {
            let content_range = format!("bytes {first}-{last}/{length}");
            fixed.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).map_err(|e| ApiError::Internal(e.into()))?,
            );
            let part: Bytes = bytes.slice(first as usize..=last as usize);
            Ok((StatusCode::PARTIAL_CONTENT, fixed, Body::from(part)).into_response())
        }
        Some(Err(())) => Err(ApiError::RangeNotSatisfiable(length)),
        // Several ranges, or a unit other than bytes: the whole object, as RFC 9110 allows.
        None => Ok((fixed, bytes).into_response()),
    }
}

/// The strong entity tag of the object at `key`.
fn etag(key: &str) -> HeaderValue {
    let digest = Sha256::digest(key.as_bytes());
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether `If-None-Match` names `etag` (or is `*`). Weak comparison, as RFC 9110 asks for this header.
fn matches_etag(header: Option<&HeaderValue>, etag: &HeaderValue) -> bool {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ours = etag.to_str().unwrap_or_default();
    value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

/// The one byte range `Range` asks for, as inclusive offsets: `None` when it
/// is not a single byte range (serve the whole object), `Err` when no byte of
/// it lies inside the `length` bytes.
fn byte_range(value: &str, length: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let parsed = match (first.trim(), last.trim()) {
        ("", "") => return None,
        // The last n bytes.
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || length == 0 {
                return Some(Err(()));
            }
            (length.saturating_sub(n), length - 1)
        }
        (a, b) => {
            let a: u64 = a.parse().ok()?;
            let b: u64 = if b.is_empty() { u64::MAX } else { b.parse().ok()? };
            if a > b {
                return None;
            }
            if a >= length {
                return Some(Err(()));
            }
            (a, b.min(length - 1))
        }
    };
    Some(Ok(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        assert_eq!(byte_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-500", 100), Some(Ok((0, 99))));
        assert_eq!(byte_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,5-6", 100), None, "several ranges: the whole object");
        assert_eq!(byte_range("items=0-1", 100), None);
        assert_eq!(byte_range("bytes=9-2", 100), None, "an invalid range is ignored");
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        let tag = etag("variants/a/t/x.webp");
        let ours = tag.to_str().expect("ascii").to_owned();
        for header in [ours.clone(), format!("W/{ours}"), format!("\"other\", {ours}"), "*".into()] {
            assert!(matches_etag(Some(&HeaderValue::from_str(&header).expect("header")), &tag), "{header}");
        }
        assert!(!matches_etag(Some(&HeaderValue::from_static("\"other\"")), &tag));
        assert_ne!(etag("variants/a/t/y.webp"), tag, "each key its own tag");
    }
}
