//! Who is calling: API keys sent as `Authorization: Bearer <key>`, their
//! scope, and a rate limit per key.
//!
//! - No credentials, or a key that is unknown or revoked: 401.
//! - A key whose scope does not cover the endpoint (a client key on an admin
//!   endpoint): 403.
//! - Over the key's rate: 429 with `Retry-After`.
//!
//! Keys are looked up by the SHA-256 of the presented secret. Lookups are
//! remembered for [`KEY_CACHE_TTL`], so a revoked key stops working within
//! that time on every API task without a database read per request.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use entities::api_keys::Scope;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use pipeline::settings::{AuthMode, Secret};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// How long a key lookup (found or not) is remembered.
pub(crate) const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Remembered lookups before the memo is cleared (bounds memory under a
/// flood of made-up keys).
const KEY_CACHE_MAX: usize = 10_000;
/// Id the bootstrap admin key (`ADMIN_API_KEY`) is rate-limited under.
const BOOTSTRAP_KEY_ID: Uuid = Uuid::nil();

/// The caller, as the handlers see it (a request extension).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Principal {
    /// The key's id; `None` when auth is off and no key was sent.
    pub key_id: Option<Uuid>,
    pub scope: Scope,
}

impl Principal {
    /// The namespace of this caller's idempotency keys.
    pub fn idempotency_scope(&self) -> String {
        self.key_id.map_or_else(|| "anonymous".to_owned(), |id| id.to_string())
    }
}

/// Key lookups, rate limits and the auth mode.
pub(crate) struct Auth {
    mode: AuthMode,
    bootstrap: Option<Secret>,
    memo: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
    limiter: DefaultKeyedRateLimiter<Uuid>,
}

impl Auth {
    pub fn new(mode: AuthMode, bootstrap: Option<Secret>, per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Self {
            mode,
            bootstrap,
            memo: Mutex::new(HashMap::new()),
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    /// The principal a presented secret stands for, if any.
    async fn principal(&self, state: &AppState, secret: &str) -> Result<Option<Principal>, ApiError> {
        if let Some(bootstrap) = &self.bootstrap
            && constant_time_eq(secret.as_bytes(), bootstrap.expose().as_bytes())
        {
            return Ok(Some(Principal { key_id: Some(BOOTSTRAP_KEY_ID), scope: Scope::Admin }));
        }
        let hash = pipeline::api_keys::hash(secret);
        if let Ok(memo) = self.memo.lock()
            && let Some((principal, at)) = memo.get(&hash)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(*principal);
        }
        let found = pipeline::api_keys::find_live(&state.backends.db, secret)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?
            .map(|key| Principal { key_id: Some(key.id), scope: key.scope });
        if let Ok(mut memo) = self.memo.lock() {
            if memo.len() >= KEY_CACHE_MAX {
                memo.clear();
            }
            memo.insert(hash, (found, Instant::now()));
        }
        Ok(found)
    }

    /// Takes one request from the key's bucket, or says when to come back.
    fn admit(&self, key_id: Uuid) -> Result<(), ApiError> {
        self.limiter.check_key(&key_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited(wait.as_secs().max(1))
        })
    }
}

/// Compares in constant time, so response timing does not reveal a secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    Ok(Some(token.to_owned()))
}

/// Resolves the caller and checks it may use an endpoint that needs `needed`.
async fn authorize(state: &AppState, bearer: Option<String>, needed: Scope) -> Result<Principal, ApiError> {
    let auth = &state.auth;
    let principal = match bearer {
        Some(secret) => auth.principal(state, &secret).await?.ok_or(ApiError::Unauthorized)?,
        // With auth off, client endpoints are open; admin ones never are.
        None if auth.mode == AuthMode::Off && needed == Scope::Client => {
            return Ok(Principal { key_id: None, scope: Scope::Client });
        }
        None => return Err(ApiError::Unauthorized),
    };
    if !principal.scope.allows(needed) {
        return Err(ApiError::Forbidden);
    }
    if let Some(key_id) = principal.key_id {
        auth.admit(key_id)?;
    }
    Ok(principal)
}

/// Middleware for the client endpoints.
pub(crate) async fn require_client(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, bearer(&request)?, Scope::Client).await?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// Middleware for the operators' endpoints.
pub(crate) async fn require_admin(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, bearer(&request)?, Scope::Admin).await?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"secret-key", b"secret-key"));
        assert!(!constant_time_eq(b"secret-key", b"secret-kez"));
        assert!(!constant_time_eq(b"secret", b"secret-key"));
    }

    #[test]
    fn a_key_over_its_rate_is_told_when_to_come_back() {
        let auth = Auth::new(AuthMode::Required, None, 1, 2);
        let key = Uuid::now_v7();
        assert!(auth.admit(key).is_ok());
        assert!(auth.admit(key).is_ok());
        assert!(matches!(auth.admit(key), Err(ApiError::RateLimited(secs)) if secs >= 1));
        // Another key has its own bucket.
        assert!(auth.admit(Uuid::now_v7()).is_ok());
    }

    #[test]
    fn admin_scope_covers_client_endpoints_but_not_the_reverse() {
        assert!(Scope::Admin.allows(Scope::Client));
        assert!(Scope::Client.allows(Scope::Client));
        assert!(!Scope::Client.allows(Scope::Admin));
    }
}
