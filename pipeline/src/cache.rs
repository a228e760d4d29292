//! The read-through cache in front of the API's GETs: Redis when `REDIS_URL`
//! is set, nothing otherwise.
//!
//! The cache is an optimisation only. Every call fails open: when Redis is
//! slow or down, reads miss and writes are dropped, and the caller goes to
//! the database. After a failure the cache rests for a few seconds rather
//! than make every request wait on a dead server.
//!
//! In front of Redis each process keeps a small in-memory tier for
//! [`LOCAL_TTL`]. It is only used while the process listens to the
//! invalidation channel, on which every `forget` is published; when that
//! subscription drops, the tier is emptied and bypassed until it is back. So
//! an entry is never served from memory after its invalidation arrived.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
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

/// Key of a job's JSON view, as its tenant reads it. The tenant is part of
/// every key, so one tenant's read can never be answered from another's entry.
pub fn job_key(tenant: Uuid, id: Uuid) -> String {
    format!("image-service:v2:{tenant}:job:{id}")
}

/// Key of an image's JSON view, as its tenant reads it.
pub fn image_key(tenant: Uuid, id: Uuid) -> String {
    format!("image-service:v2:{tenant}:image:{id}")
}

/// The entries a change to a job makes stale: the job, and its image (whose
/// variants a finished job changes).
pub fn job_entries(tenant: Uuid, job_id: Uuid, image_id: Uuid) -> [String; 2] {
    [job_key(tenant, job_id), image_key(tenant, image_id)]
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

/// How long an entry may be served from a process's memory.
pub const LOCAL_TTL: Duration = Duration::from_secs(2);
/// Entries the in-memory tier holds before it starts over.
const LOCAL_CAPACITY: usize = 10_000;
/// The channel every invalidated key is published on.
const INVALIDATIONS: &str = "image-service:v1:invalidate";

/// The in-memory tier and whether it may be trusted.
#[derive(Default)]
struct Local {
    entries: Mutex<HashMap<String, (Bytes, Instant)>>,
    /// True while subscribed to the invalidation channel.
    listening: AtomicBool,
    started: AtomicBool,
}

impl Local {
    fn get(&self, key: &str) -> Option<Bytes> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (value, expires) = entries.get(key)?;
        (Instant::now() < *expires).then(|| value.clone())
    }

    fn put(&self, key: &str, value: Bytes, ttl: Duration) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= LOCAL_CAPACITY {
                entries.clear();
            }
            entries.insert(key.to_owned(), (value, Instant::now() + ttl.min(LOCAL_TTL)));
        }
    }

    fn remove(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    fn stop_trusting(&self) {
        self.listening.store(false, Ordering::Release);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Listens to the invalidation channel for as long as the process runs,
    /// reconnecting after a second when Redis goes away.
    async fn listen(self: Arc<Self>, client: redis::Client) {
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub.subscribe(INVALIDATIONS).await.is_ok() {
                        self.listening.store(true, Ordering::Release);
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            if let Ok(key) = message.get_payload::<String>() {
                                self.remove(&key);
                            }
                        }
                    }
                    self.stop_trusting();
                }
                Err(_) => self.stop_trusting(),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Redis, connected lazily, so the service starts and serves while Redis is down.
pub struct RedisCache {
    client: redis::Client,
    state: tokio::sync::Mutex<Option<ConnectionManager>>,
    resting_until: Mutex<Option<Instant>>,
    local: Arc<Local>,
}

impl RedisCache {
    /// A cache on `url` (`redis://host:port/db` or `rediss://…`). Nothing is
    /// connected until the first call.
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Self::with_client(redis::Client::open(url)?)
    }

    /// A cache on the Redis at `url` (`rediss://`) whose certificate must
    /// chain to one of the CAs in `root_pem`.
    ///
    /// # Errors
    /// When the URL or the certificates are invalid.
    pub fn with_roots(url: &str, root_pem: Vec<u8>) -> Result<Self, redis::RedisError> {
        let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(root_pem) };
        Self::with_client(redis::Client::build_with_tls(url, certificates)?)
    }

    fn with_client(client: redis::Client) -> Result<Self, redis::RedisError> {
        crate::tls::install_crypto_provider();
        Ok(Self {
            client,
            state: tokio::sync::Mutex::new(None),
            resting_until: Mutex::new(None),
            local: Arc::default(),
        })
    }

    /// Starts listening for invalidations, once, on the first read: only
    /// processes that read (the API) need the in-memory tier.
    fn start_listening(&self) {
        if !self.local.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.local.clone().listen(self.client.clone()));
        }
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
        self.start_listening();
        if let Some(value) = self.local.get(key) {
            return Some(value);
        }
        let mut conn = self.connection().await?;
        let found = match conn.get::<_, Option<Vec<u8>>>(key).await {
            Ok(value) => value.map(Bytes::from),
            Err(err) => {
                self.rest(&err);
                return None;
            }
        };
        if let Some(value) = &found {
            self.local.put(key, value.clone(), LOCAL_TTL);
        }
        found
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) {
        self.local.put(key, value.clone(), ttl);
        let Some(mut conn) = self.connection().await else { return };
        if let Err(err) = conn.set_ex::<_, _, ()>(key, value.as_ref(), ttl.as_secs().max(1)).await {
            self.rest(&err);
        }
    }

    async fn forget(&self, keys: &[String]) {
        for key in keys {
            self.local.remove(key);
        }
        let Some(mut conn) = self.connection().await else { return };
        // Delete, then tell every process to drop its in-memory copy.
        let mut pipe = redis::pipe();
        pipe.del(keys).ignore();
        for key in keys {
            pipe.publish(INVALIDATIONS, key).ignore();
        }
        if let Err(err) = pipe.query_async::<()>(&mut conn).await {
            self.rest(&err);
        }
    }
}
