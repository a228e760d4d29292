//! Builds the adapters the settings ask for.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use sea_orm::{DatabaseConnection, DbErr};

use crate::cache::{Cache, NoCache, RedisCache};
use crate::db;
use crate::notify::{ChatFilter, ConsoleNotifier, Notifier, SigningKey, SnsNotifier, Webhook, WebhookFormat};
use crate::outbox::Outbox;
use crate::queue::{JobQueue, Lanes, LocalJobQueue, SqsJobQueue};
use crate::settings::{SecretUrl, Settings};
use crate::store::{BlobStore, FsBlobStore, S3BlobStore};

/// Name of the embedded job queue inside the queue table.
pub const LOCAL_QUEUE_NAME: &str = "jobs";
/// Name of the embedded bulk lane inside the queue table.
pub const LOCAL_BULK_QUEUE_NAME: &str = "jobs-bulk";

/// The database and the three roles, whichever backend each one is on.
#[derive(Clone)]
pub struct Backends {
    /// Metadata, through sea-orm.
    pub db: DatabaseConnection,
    /// The job queue.
    pub queue: Arc<dyn JobQueue>,
    /// Its dead-letter queue, where operators replay from (if configured).
    pub dead_letters: Option<Arc<dyn JobQueue>>,
    /// The bulk lane, for replays and reprocessing; `None` sends them to
    /// the job queue.
    pub bulk: Option<Arc<dyn JobQueue>>,
    /// The bulk lane's dead-letter queue.
    pub bulk_dead_letters: Option<Arc<dyn JobQueue>>,
    /// Originals and variants.
    pub store: Arc<dyn BlobStore>,
    /// Outcome events (SNS or the console).
    pub notifier: Arc<dyn Notifier>,
    /// Webhook deliveries, recorded with the state changes they announce.
    pub outbox: Arc<Outbox>,
    /// The API's read cache, which the worker invalidates as jobs move.
    pub cache: Arc<dyn Cache>,
    /// How long originals and superseded variants are kept.
    pub retention: crate::retention::Retention,
    /// The URLs pages show variants by.
    pub delivery: Arc<crate::delivery::Delivery>,
    /// Which backend each role uses, for the start-up log line.
    pub summary: String,
}

/// The backends could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The database could not be reached.
    #[error("failed to connect to the database")]
    Database(#[from] DbErr),
    /// `REDIS_URL` is not a Redis URL.
    #[error("REDIS_URL is invalid")]
    Cache(#[from] redis::RedisError),
    /// `REDIS_CA_FILE` could not be read.
    #[error("failed to read REDIS_CA_FILE {0}")]
    RedisCa(String, #[source] std::io::Error),
    /// The data directory could not be created.
    #[error("failed to create the data directory {0}")]
    DataDir(String, #[source] std::io::Error),
    /// The delivery signing keys are unusable.
    #[error("delivery keys: {0}")]
    Delivery(#[from] crate::delivery::KeyError),
    /// `ORIGINALS_RETENTION_DAYS` is not among `ORIGINALS_RETENTION_CHOICES`.
    #[error("ORIGINALS_RETENTION_DAYS: {0}")]
    Retention(String),
    /// A webhook signing secret is not in `whsec_<base64>` form.
    #[error("WEBHOOK_SECRETS: {0}")]
    WebhookSecret(String),
}

impl Backends {
    /// The job state machine over this database, clearing this cache.
    pub fn jobs(&self) -> crate::jobs::Jobs<'_> {
        crate::jobs::Jobs::new(&self.db, self.cache.as_ref(), &self.outbox)
    }

    /// The live and the bulk lane, as workers read them.
    pub fn lanes(&self) -> Lanes {
        Lanes::new(self.queue.clone(), self.bulk.clone())
    }

    /// Where bulk work goes: the bulk lane, or the job queue without one.
    pub fn bulk_queue(&self) -> &Arc<dyn JobQueue> {
        self.bulk.as_ref().unwrap_or(&self.queue)
    }

    /// Every dead-letter queue, the job queue's first.
    pub fn all_dead_letters(&self) -> Vec<Arc<dyn JobQueue>> {
        self.dead_letters.iter().chain(&self.bulk_dead_letters).cloned().collect()
    }

    /// Connects to whatever the settings name; embedded for everything unset.
    ///
    /// # Errors
    /// When the database is unreachable or the data directory can't be made.
    pub async fn connect(settings: &Settings) -> Result<Self, BackendError> {
        let retention = crate::retention::Retention::from_settings(settings);
        retention.check(retention.default_days).map_err(BackendError::Retention)?;
        let url = settings.database_url();
        if url.starts_with("sqlite:") || settings.s3_bucket.is_none() {
            std::fs::create_dir_all(&settings.data_dir)
                .map_err(|e| BackendError::DataDir(settings.data_dir.display().to_string(), e))?;
        }
        let db = db::connect(&url).await?;
        let delivery = Arc::new(delivery(settings)?);

        let uses_aws =
            settings.s3_bucket.is_some() || settings.sqs_queue_url.is_some() || settings.sns_topic_arn.is_some();
        let aws = if uses_aws { Some(aws_sdk_config(settings).await) } else { None };

        let lanes = match (&settings.sqs_queue_url, &aws) {
            (Some(url), Some(conf)) => {
                let client = aws_sdk_sqs::Client::new(conf);
                let sqs = |url: &Option<String>| {
                    url.clone().map(|url| Arc::new(SqsJobQueue::new(client.clone(), url)) as Arc<dyn JobQueue>)
                };
                QueueSet {
                    queue: Arc::new(SqsJobQueue::new(client.clone(), url.clone())),
                    dead_letters: sqs(&settings.sqs_dlq_url),
                    bulk: sqs(&settings.sqs_bulk_queue_url),
                    bulk_dead_letters: sqs(&settings.sqs_bulk_dlq_url),
                    kind: if settings.sqs_bulk_queue_url.is_some() { "sqs+bulk" } else { "sqs" },
                }
            }
            _ => {
                let table = |name| {
                    LocalJobQueue::new(db.clone(), name, settings.max_receive_count)
                        .with_doorbell(settings.data_dir.join("queue-doorbell"))
                };
                let (live, bulk) = (table(LOCAL_QUEUE_NAME), table(LOCAL_BULK_QUEUE_NAME));
                QueueSet {
                    dead_letters: Some(Arc::new(live.dead_letter_queue())),
                    bulk_dead_letters: Some(Arc::new(bulk.dead_letter_queue())),
                    queue: Arc::new(live),
                    bulk: Some(Arc::new(bulk)),
                    kind: "database",
                }
            }
        };
        let QueueSet { queue, dead_letters, bulk, bulk_dead_letters, kind: queue_kind } = lanes;
        let (store, store_kind): (Arc<dyn BlobStore>, _) = match (&settings.s3_bucket, &aws) {
            (Some(bucket), Some(conf)) => {
                let s3 = aws_sdk_s3::config::Builder::from(conf)
                    // Emulators answer on one host, not on bucket subdomains.
                    .force_path_style(settings.aws_endpoint_url.is_some())
                    .build();
                let client = aws_sdk_s3::Client::from_conf(s3);
                (Arc::new(S3BlobStore::new(client, bucket.clone(), settings.s3_kms_key_id.clone())), "s3")
            }
            _ => (Arc::new(FsBlobStore::new(settings.storage_dir())), "filesystem"),
        };
        let chat = ChatFilter::parse(&settings.chat_events);
        let base_url = settings.public_base_url.clone();
        let (notifier, notifier_kind): (Arc<dyn Notifier>, _) = match (&settings.sns_topic_arn, &aws) {
            (Some(topic), Some(conf)) => {
                let chat_topic = settings.sns_chat_topic_arn.clone().map(|arn| (arn, chat.clone()));
                let sns = SnsNotifier::new(aws_sdk_sns::Client::new(conf), topic.clone(), chat_topic, base_url.clone());
                (Arc::new(sns), "sns")
            }
            _ => (Arc::new(ConsoleNotifier), "console"),
        };
        let keys = settings
            .webhook_secrets
            .iter()
            .map(|secret| SigningKey::parse(secret.expose()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(BackendError::WebhookSecret)?;
        let webhooks: Vec<Webhook> = [
            (&settings.webhook_url, WebhookFormat::Json),
            (&settings.slack_webhook_url, WebhookFormat::Slack),
            (&settings.discord_webhook_url, WebhookFormat::Discord),
        ]
        .into_iter()
        .filter_map(|(url, format)| {
            let webhook = Webhook::new(url.as_ref()?.expose().to_owned(), format, chat.clone(), base_url.clone());
            // Slack and Discord check their own URLs' tokens, not signatures.
            Some(if format == WebhookFormat::Json { webhook.signed_with(keys.clone()) } else { webhook })
        })
        .collect();
        let outbox = Arc::new(Outbox::new(
            webhooks,
            settings.public_base_url.as_deref().map(crate::links::Links::at),
            delivery.clone(),
            settings.app_env.clone(),
            std::time::Duration::from_secs(settings.webhook_delivery_ttl_secs),
            std::time::Duration::from_millis(settings.retry_base_delay_ms),
        ));
        let (cache, cache_kind): (Arc<dyn Cache>, _) = match settings.redis_url.as_ref().map(SecretUrl::expose) {
            Some(url) => {
                let cache = match &settings.redis_ca_file {
                    Some(path) => {
                        let roots =
                            std::fs::read(path).map_err(|e| BackendError::RedisCa(path.display().to_string(), e))?;
                        RedisCache::with_roots(url, roots)?
                    }
                    None => RedisCache::new(url)?,
                };
                (Arc::new(cache), "redis")
            }
            None => (Arc::new(NoCache), "none"),
        };
        let db_kind = if url.starts_with("sqlite:") { "sqlite" } else { "postgres" };
        let summary =
            format!("db={db_kind} queue={queue_kind} store={store_kind} notifier={notifier_kind} cache={cache_kind}");
        Ok(Self {
            db,
            queue,
            dead_letters,
            bulk,
            bulk_dead_letters,
            store,
            notifier,
            outbox,
            cache,
            retention,
            delivery,
            summary,
        })
    }
}

/// The queues of both lanes, as one backend builds them.
struct QueueSet {
    queue: Arc<dyn JobQueue>,
    dead_letters: Option<Arc<dyn JobQueue>>,
    bulk: Option<Arc<dyn JobQueue>>,
    bulk_dead_letters: Option<Arc<dyn JobQueue>>,
    kind: &'static str,
}

/// The shared AWS SDK configuration: the default credential and region
/// chain, pointed at `AWS_ENDPOINT_URL` when one is set.
///
/// Every call has a deadline: without one, a call whose connection went
/// silent (a network partition, a blackholed endpoint) waits forever, and a
/// worker's heartbeat would keep its message hidden all that time. An
/// attempt may take [`SDK_ATTEMPT_TIMEOUT`], longer than SQS's 20 s long
/// poll and a multipart part's upload; the SDK's retries then take over.
pub async fn aws_sdk_config(settings: &Settings) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(SDK_ATTEMPT_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(endpoint) = &settings.aws_endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// How long one attempt of an AWS call may take.
pub const SDK_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Delivery URLs as the settings describe them.
fn delivery(settings: &Settings) -> Result<crate::delivery::Delivery, crate::delivery::KeyError> {
    use crate::delivery::{Delivery, Signer, Verifier};
    let id = &settings.delivery_key_id;
    let signer = match &settings.delivery_signing_key {
        Some(pem) => Some(Signer::from_pem(id, pem.expose())?),
        // Objects on local disk: the embedded default, a key kept beside them.
        None if settings.s3_bucket.is_none() => {
            Some(Signer::kept_at(id, &settings.data_dir.join("delivery-signing-key.pem"))?)
        }
        // On S3 the key must be CloudFront's; without one, signed URLs are not made.
        None => None,
    };
    let verifier = Verifier::new(signer.as_ref(), &settings.delivery_verify_keys)?;
    let base = settings.delivery_base_url.as_deref().or(settings.public_base_url.as_deref()).unwrap_or_default();
    Ok(Delivery::new(base, settings.delivery_mode, signer, verifier, settings.delivery_url_ttl_secs))
}
