//! The read-through cache in front of the API's GETs: Redis when `REDIS_URL`
//! is set, nothing otherwise.
//!
//! The cache is an optimisation only. Every call fails open: when Redis is
//! slow or down, reads miss and writes are dropped, and the caller goes to
//! the database. After a failure the cache rests for a few seconds rather
//! than make every request wait on a dead server.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use uuid::Uuid;

/// A byte cache with expiry.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// The cached value, or `None` on a miss or any failure.
    async fn get(&self, key: &str) -> Option<Bytes>;
    /// Caches `value` for `ttl`; failures are dropped.
    async fn put(&self, key: &str, value: Bytes, ttl: Duration);
    /// Removes entries; failures are dropped (their TTL bounds the staleness).
    async fn forget(&self, keys: &[String]);
}

/// Key of a job's JSON view.
pub fn job_key(id: Uuid) -> String {
    format!("image-service:v1:job:{id}")
}

/// Key of an image's JSON view.
pub fn image_key(id: Uuid) -> String {
    format!("image-service:v1:image:{id}")
}

/// The entries a change to a job makes stale: the job, and its image (whose
/// variants a finished job changes).
pub fn job_entries(job_id: Uuid, image_id: Uuid) -> [String; 2] {
    [job_key(job_id), image_key(image_id)]
}

/// No cache: every read misses.
pub struct NoCache;

#[async_trait]
impl Cache for NoCache {
    async fn get(&self, _key: &str) -> Option<Bytes> {
        None
    }
    async fn put(&self, _key: &str, _value: Bytes, _ttl: Duration) {}
    async fn forget(&self, _keys: &[String]) {}
}

/// How long the cache rests after Redis failed.
const REST: Duration = Duration::from_secs(5);
/// Longest wait for one Redis reply; a miss is cheaper than a slow hit.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Redis, connected lazily, so the service starts and serves while Redis is down.
pub struct RedisCache {
    client: redis::Client,
    state: tokio::sync::Mutex<Option<ConnectionManager>>,
    resting_until: Mutex<Option<Instant>>,
}

impl RedisCache {
    /// A cache on `url` (`redis://host:port/db` or `rediss://…`). Nothing is
    /// connected until the first call.
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            state: tokio::sync::Mutex::new(None),
            resting_until: Mutex::new(None),
        })
    }

    fn resting(&self) -> bool {
        let Ok(mut until) = self.resting_until.lock() else { return true };
        match *until {
            Some(at) if Instant::now() < at => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn rest(&self, err: &dyn std::fmt::Display) {
        if let Ok(mut until) = self.resting_until.lock() {
            if until.is_none() {
                tracing::warn!(error = %err, "redis unavailable; serving without the cache for a while");
            }
            *until = Some(Instant::now() + REST);
        }
    }

    /// A connection, or `None` while resting or when Redis cannot be reached.
    async fn connection(&self) -> Option<ConnectionManager> {
        if self.resting() {
            return None;
        }
        let mut state = self.state.lock().await;
        if let Some(manager) = state.as_ref() {
            return Some(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, ConnectionManager::new_with_config(self.client.clone(), config))
            .await
        {
            Ok(Ok(manager)) => {
                *state = Some(manager.clone());
                Some(manager)
            }
            Ok(Err(err)) => {
                self.rest(&err);
                None
            }
            Err(elapsed) => {
                self.rest(&elapsed);
                None
            }
        }
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Option<Bytes> {
        let mut conn = self.connection().await?;
        match conn.get::<_, Option<Vec<u8>>>(key).await {
            Ok(value) => value.map(Bytes::from),
            Err(err) => {
                self.rest(&err);
                None
            }
        }
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) {
        let Some(mut conn) = self.connection().await else { return };
        if let Err(err) = conn.set_ex::<_, _, ()>(key, value.as_ref(), ttl.as_secs().max(1)).await {
            self.rest(&err);
        }
    }

    async fn forget(&self, keys: &[String]) {
        let Some(mut conn) = self.connection().await else { return };
        if let Err(err) = conn.del::<_, ()>(keys).await {
            self.rest(&err);
        }
    }
}
