//! Who is calling: API keys sent as `Authorization: Bearer <key>`, their
//! scope, and a rate limit per key.
//!
//! - No credentials, or a key that is unknown or revoked: 401.
//! - A key whose scope does not cover the endpoint (a client key on an admin
//!   endpoint): 403.
//! - Over the key's rate, or its tenant's: 429 with `Retry-After`.
//!
//! Every caller acts for one tenant: its key's, or (for an admin key only)
//! the one it names with `?tenant=NAME`. A client key that names a tenant
//! gets 403; an unknown name gets 404. The parameter is taken off the query
//! here, so handlers never see it and every endpoint accepts it.
//!
//! Keys are looked up by the SHA-256 of the presented secret. Lookups are
//! remembered for [`KEY_CACHE_TTL`], so a revoked key stops working within
//! that time on every API task without a database read per request. Found
//! and not-found lookups are remembered apart, so a flood of made-up keys
//! can only push out other made-up keys, never an honest one.
//!
//! A request without a valid key (none, or one that is unknown or revoked)
//! is also charged to its client address's bucket, before any database
//! lookup: over it, 429. So made-up keys cost at most that rate of lookups
//! per address. The address is the TCP peer's, or with
//! `TRUSTED_PROXY_HEADER` set the rightmost entry of that header.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use axum::http::{Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use entities::api_keys::Scope;
use pipeline::settings::{AuthMode, Secret};
use pipeline::tenants::DEFAULT_TENANT;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::limits::{Limiter, Rate, Usage};

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
    /// The tenant this request acts for: every read and write is scoped to it.
    pub tenant: Uuid,
    /// The tenant an admin named with `?tenant=`, when one did: the
    /// operators' endpoints then act on that tenant alone.
    pub acting_for: Option<Uuid>,
}

/// The id in a resource's path, with the caller that asks for it: what a
/// read of one job or image is scoped by (`principal.tenant`).
pub(crate) struct ScopedId {
    pub principal: Principal,
    pub id: Uuid,
}

impl<S: Send + Sync> FromRequestParts<S> for ScopedId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) =
            Path::<String>::from_request_parts(parts, state).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let principal = parts.extensions.get::<Principal>().copied().ok_or(ApiError::Unauthorized)?;
        Ok(Self { principal, id: crate::parse_id(&raw)? })
    }
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
    found: Mutex<HashMap<String, (Principal, Instant)>>,
    not_found: Mutex<HashMap<String, Instant>>,
    per_key: Limiter<Uuid>,
    per_tenant: Limiter<Uuid>,
    per_address: Limiter<IpAddr>,
    trusted_proxy_header: Option<header::HeaderName>,
}

/// How callers are limited: per key, per tenant, and per client address
/// while they have no valid key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rates {
    pub per_key: Rate,
    pub per_tenant: Rate,
    pub anonymous: Rate,
}

impl Auth {
    pub fn new(mode: AuthMode, bootstrap: Option<Secret>, rates: Rates, trusted_proxy_header: Option<&str>) -> Self {
        Self {
            mode,
            bootstrap,
            found: Mutex::new(HashMap::new()),
            not_found: Mutex::new(HashMap::new()),
            per_key: rates.per_key.limiter(),
            per_tenant: rates.per_tenant.limiter(),
            per_address: rates.anonymous.limiter(),
            trusted_proxy_header: trusted_proxy_header.and_then(|h| header::HeaderName::try_from(h.trim()).ok()),
        }
    }

    /// What this process remembers of `hash`: `Some(found)` while fresh.
    fn remembered(&self, hash: &str) -> Option<Option<Principal>> {
        if let Ok(found) = self.found.lock()
            && let Some((principal, at)) = found.get(hash)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Some(Some(*principal));
        }
        if let Ok(not_found) = self.not_found.lock()
            && let Some(at) = not_found.get(hash)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Some(None);
        }
        None
    }

    /// Remembers a lookup, each outcome in its own bounded memo.
    fn remember(&self, hash: String, found: Option<Principal>) {
        fn insert<V>(memo: &Mutex<HashMap<String, V>>, hash: String, value: V) {
            if let Ok(mut memo) = memo.lock() {
                if memo.len() >= KEY_CACHE_MAX {
                    memo.clear();
                }
                memo.insert(hash, value);
            }
        }
        match found {
            Some(principal) => insert(&self.found, hash, (principal, Instant::now())),
            None => insert(&self.not_found, hash, Instant::now()),
        }
    }

    /// The client's address: the rightmost entry of the trusted proxy's
    /// header when one is configured and sent, else the TCP peer.
    pub(crate) fn client_address(&self, request: &Request) -> IpAddr {
        let from_proxy = self.trusted_proxy_header.as_ref().and_then(|name| {
            let last = request.headers().get_all(name).iter().next_back()?;
            last.to_str().ok()?.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        from_proxy
            .or_else(|| request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// Charges a request without a valid key to its address's bucket.
    fn admit_anonymous(&self, address: IpAddr) -> Result<(), ApiError> {
        self.per_address
            .check_key(&address)
            .map(drop)
            .map_err(|refused| ApiError::RateLimited(Usage::refused("address", &refused)))
    }

    /// The principal a presented secret stands for, if any. A secret this
    /// process does not remember is looked up only if `address` has
    /// anonymous requests left.
    async fn principal(&self, state: &AppState, secret: &str, address: IpAddr) -> Result<Option<Principal>, ApiError> {
        if let Some(bootstrap) = &self.bootstrap
            && constant_time_eq(secret.as_bytes(), bootstrap.expose().as_bytes())
        {
            return Ok(Some(Principal {
                key_id: Some(BOOTSTRAP_KEY_ID),
                scope: Scope::Admin,
                tenant: DEFAULT_TENANT,
                acting_for: None,
            }));
        }
        let hash = pipeline::api_keys::hash(secret);
        match self.remembered(&hash) {
            Some(Some(principal)) => return Ok(Some(principal)),
            Some(None) => {
                self.admit_anonymous(address)?;
                return Ok(None);
            }
            None => self.admit_anonymous(address)?,
        }
        let found = pipeline::api_keys::find_live(&state.backends.db, secret)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?
            .map(|key| Principal { key_id: Some(key.id), scope: key.scope, tenant: key.tenant_id, acting_for: None });
        state.metrics.key_lookup(found.is_some());
        self.remember(hash, found);
        Ok(found)
    }

    /// Takes one request from the key's bucket and one from its tenant's,
    /// and says what both have left; or which refused, and when to come
    /// back. (A request refused by the tenant's bucket has still spent the
    /// key's token: the key was over nothing, but it asked.)
    fn admit(&self, key_id: Uuid, tenant: Uuid) -> Result<[Usage; 2], ApiError> {
        let refused = |policy| move |refused| ApiError::RateLimited(Usage::refused(policy, &refused));
        let key = self.per_key.check_key(&key_id).map_err(refused("key"))?;
        let tenant = self.per_tenant.check_key(&tenant).map_err(refused("tenant"))?;
        Ok([Usage::allowed("key", &key), Usage::allowed("tenant", &tenant)])
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

/// Resolves the caller and checks it may use an endpoint that needs `needed`,
/// with what its rate-limit buckets have left (none when no key was sent).
async fn authorize(
    state: &AppState,
    bearer: Option<String>,
    address: IpAddr,
    needed: Scope,
) -> Result<(Principal, Vec<Usage>), ApiError> {
    let auth = &state.auth;
    let principal = match bearer {
        Some(secret) => auth.principal(state, &secret, address).await?.ok_or(ApiError::Unauthorized)?,
        // With auth off, client endpoints are open; admin ones never are.
        None if auth.mode == AuthMode::Off && needed == Scope::Client => {
            let open = Principal { key_id: None, scope: Scope::Client, tenant: DEFAULT_TENANT, acting_for: None };
            return Ok((open, Vec::new()));
        }
        None => {
            auth.admit_anonymous(address)?;
            return Err(ApiError::Unauthorized);
        }
    };
    if !principal.scope.allows(needed) {
        return Err(ApiError::Forbidden("this key's scope does not allow this endpoint"));
    }
    let usages = match principal.key_id {
        Some(key_id) => auth.admit(key_id, principal.tenant)?.to_vec(),
        None => Vec::new(),
    };
    Ok((principal, usages))
}

/// Takes `tenant=NAME` off the request's query, leaving the rest as it was.
fn take_tenant(request: &mut Request) -> Result<Option<String>, ApiError> {
    let Some(query) = request.uri().query() else { return Ok(None) };
    let mut tenant = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name != "tenant" {
            rest.append_pair(&name, &value);
        } else if tenant.replace(value.into_owned()).is_some() {
            return Err(ApiError::BadRequest("name at most one tenant".into()));
        }
    }
    if tenant.is_none() {
        return Ok(None);
    }
    let rest = rest.finish();
    let path = request.uri().path();
    let path_and_query = if rest.is_empty() { path.to_owned() } else { format!("{path}?{rest}") };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query =
        Some(PathAndQuery::try_from(path_and_query).map_err(|e| ApiError::BadRequest(e.to_string()))?);
    *request.uri_mut() = Uri::from_parts(parts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(tenant)
}

/// The principal, acting for the tenant an admin named, if one did.
async fn act_for(state: &AppState, mut principal: Principal, named: Option<String>) -> Result<Principal, ApiError> {
    let Some(name) = named else { return Ok(principal) };
    if principal.scope != Scope::Admin {
        return Err(ApiError::Forbidden("only an admin key may act for another tenant (`?tenant=`)"));
    }
    let tenant =
        pipeline::tenants::find_by_name(&state.backends.db, &name).await?.ok_or(ApiError::NotFound("tenant"))?;
    principal.tenant = tenant.id;
    principal.acting_for = Some(tenant.id);
    Ok(principal)
}

/// Resolves the caller and the tenant it acts for, and hands the request on.
async fn admit_request(
    state: &AppState,
    mut request: Request,
    next: Next,
    needed: Scope,
) -> Result<Response, ApiError> {
    let address = state.auth.client_address(&request);
    let bearer = match bearer(&request) {
        Ok(bearer) => bearer,
        Err(unauthorized) => {
            state.auth.admit_anonymous(address)?;
            return Err(unauthorized);
        }
    };
    let (principal, usages) = authorize(state, bearer, address, needed).await?;
    let named = take_tenant(&mut request)?;
    let principal = act_for(state, principal, named).await?;
    request.extensions_mut().insert(principal);
    let mut response = next.run(request).await;
    crate::limits::insert_headers(response.headers_mut(), &usages);
    Ok(response)
}

/// Middleware for the client endpoints.
pub(crate) async fn require_client(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    admit_request(&state, request, next, Scope::Client).await
}

/// Middleware for the operators' endpoints.
pub(crate) async fn require_admin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    admit_request(&state, request, next, Scope::Admin).await
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
        let unlimited = Rate { per_second: 1000, burst: 1000 };
        let rates = Rates { per_key: Rate { per_second: 1, burst: 2 }, per_tenant: unlimited, anonymous: unlimited };
        let auth = Auth::new(AuthMode::Required, None, rates, None);
        let (key, tenant) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(auth.admit(key, tenant).is_ok());
        assert!(auth.admit(key, tenant).is_ok());
        assert!(
            matches!(auth.admit(key, tenant), Err(ApiError::RateLimited(usage)) if usage.reset_secs >= 1 && usage.policy == "key")
        );
        // Another key has its own bucket.
        assert!(auth.admit(Uuid::now_v7(), tenant).is_ok());
    }

    #[test]
    fn a_tenant_cannot_escape_its_rate_by_making_more_keys() {
        let unlimited = Rate { per_second: 1000, burst: 1000 };
        let rates = Rates { per_key: unlimited, per_tenant: Rate { per_second: 1, burst: 3 }, anonymous: unlimited };
        let auth = Auth::new(AuthMode::Required, None, rates, None);
        let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
        for _ in 0..3 {
            assert!(auth.admit(Uuid::now_v7(), tenant).is_ok());
        }
        assert!(
            matches!(auth.admit(Uuid::now_v7(), tenant), Err(ApiError::RateLimited(usage)) if usage.policy == "tenant")
        );
        // Another tenant's keys are not held back.
        assert!(auth.admit(Uuid::now_v7(), other).is_ok());
    }

    #[test]
    fn admin_scope_covers_client_endpoints_but_not_the_reverse() {
        assert!(Scope::Admin.allows(Scope::Client));
        assert!(Scope::Client.allows(Scope::Client));
        assert!(!Scope::Client.allows(Scope::Admin));
    }

    fn principal(tenant: Uuid) -> Principal {
        Principal { key_id: Some(Uuid::now_v7()), scope: Scope::Client, tenant, acting_for: None }
    }

    #[test]
    fn made_up_keys_never_push_out_an_honest_one() {
        let unlimited = Rate { per_second: 1000, burst: 1000 };
        let rates = Rates { per_key: unlimited, per_tenant: unlimited, anonymous: unlimited };
        let auth = Auth::new(AuthMode::Required, None, rates, None);
        let honest = principal(Uuid::now_v7());
        auth.remember("honest".into(), Some(honest));
        for n in 0..(KEY_CACHE_MAX * 2) {
            auth.remember(format!("bogus-{n}"), None);
        }
        assert!(matches!(auth.remembered("honest"), Some(Some(p)) if p.key_id == honest.key_id));
        assert!(matches!(auth.remembered("bogus-1"), None | Some(None)));
    }

    fn request_from(peer: &str, forwarded: Option<&str>) -> Request {
        let mut request = Request::new(axum::body::Body::empty());
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().expect("an address")));
        if let Some(value) = forwarded {
            request.headers_mut().insert("x-forwarded-for", value.parse().expect("a header value"));
        }
        request
    }

    #[test]
    fn the_client_address_comes_from_the_trusted_header_only() {
        let unlimited = Rate { per_second: 1000, burst: 1000 };
        let rates = Rates { per_key: unlimited, per_tenant: unlimited, anonymous: unlimited };
        let direct = Auth::new(AuthMode::Required, None, rates, None);
        let behind_alb = Auth::new(AuthMode::Required, None, rates, Some("X-Forwarded-For"));
        let spoofed = request_from("10.0.0.5:4000", Some("203.0.113.9"));
        // Without a trusted proxy anyone can send the header: it is ignored.
        assert_eq!(direct.client_address(&spoofed).to_string(), "10.0.0.5");
        // Behind one, its rightmost entry is what the proxy saw.
        let chained = request_from("10.0.0.5:4000", Some("198.51.100.1, 203.0.113.9"));
        assert_eq!(behind_alb.client_address(&chained).to_string(), "203.0.113.9");
        assert_eq!(behind_alb.client_address(&request_from("10.0.0.5:4000", None)).to_string(), "10.0.0.5");
    }

    #[test]
    fn anonymous_requests_are_limited_per_address() {
        let unlimited = Rate { per_second: 1000, burst: 1000 };
        let rates = Rates { per_key: unlimited, per_tenant: unlimited, anonymous: Rate { per_second: 1, burst: 2 } };
        let auth = Auth::new(AuthMode::Required, None, rates, None);
        let (one, other): (IpAddr, IpAddr) = ("192.0.2.1".parse().expect("ip"), "192.0.2.2".parse().expect("ip"));
        assert!(auth.admit_anonymous(one).is_ok());
        assert!(auth.admit_anonymous(one).is_ok());
        assert!(matches!(auth.admit_anonymous(one), Err(ApiError::RateLimited(_))));
        assert!(auth.admit_anonymous(other).is_ok());
    }
}
