//! Prometheus metrics for the API, served at `/metrics`: requests by route
//! and status, their latency, and how the read cache does.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route template (`/v1/jobs/{id}`), never the raw path, so ids do
    /// not explode the series count.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every metric the API exports.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    cache: Family<CacheLabels, Counter>,
    key_lookups: Family<CacheLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("image_api");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = HistogramFamily::<RouteLabels>::new_with_constructor(seconds_histogram);
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to the response head", latency.clone());
        registry.register("cache_lookups", "Read-cache lookups by result (hit, miss)", cache.clone());
        let key_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "key_lookups",
            "API keys looked up in the database, by result (found, not_found)",
            key_lookups.clone(),
        );
        // The bounded series exist from the start, at zero (routes and
        // statuses appear with their first request).
        for result in ["hit", "miss"] {
            drop(cache.get_or_create(&CacheLabels { result }));
        }
        for result in ["found", "not_found"] {
            drop(key_lookups.get_or_create(&CacheLabels { result }));
        }
        Self { registry, requests, latency, cache, key_lookups }
    }
}

impl Metrics {
    /// Counts one read-cache lookup.
    pub fn cache_lookup(&self, hit: bool) {
        self.cache.get_or_create(&CacheLabels { result: if hit { "hit" } else { "miss" } }).inc();
    }

    /// Counts one API key looked up in the database.
    pub fn key_lookup(&self, found: bool) {
        self.key_lookups.get_or_create(&CacheLabels { result: if found { "found" } else { "not_found" } }).inc();
    }

    fn render(&self) -> String {
        let mut text = String::new();
        match prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            Ok(()) => text,
            Err(_) => String::new(),
        }
    }
}

/// Records every request that matched a route (unmatched ones are `other`).
pub(crate) async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request.extensions().get::<MatchedPath>().map_or("other", MatchedPath::as_str).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let metrics = &state.metrics;
    metrics
        .latency
        .get_or_create(&RouteLabels { method: method.clone(), route: route.clone() })
        .observe(started.elapsed().as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    response
}

/// `GET /metrics`: Prometheus text exposition.
pub(crate) async fn serve(State(state): State<Arc<AppState>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}
