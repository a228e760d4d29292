//! Every setting, read from a command-line flag or its environment variable.
//!
//! With nothing set, everything is embedded: a SQLite file and an objects
//! directory under `DATA_DIR`, a queue table in that database, and events on
//! the console. Each AWS setting switches one role to its AWS adapter.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Jobs a worker keeps in flight per core by default. With one job per core
/// a core sits idle whenever its job waits on the store, the database or the
/// notifier; measured on 64x64 images in `docs/benchmarks.md`.
pub const JOBS_PER_CORE: usize = 4;

/// Settings shared by the API and the worker.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// Database URL: `postgres://…` or `sqlite://…`. Default: a SQLite file in DATA_DIR.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretUrl>,

    /// Where the embedded backends keep their files.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Directory for objects when no S3 bucket is set. Default: DATA_DIR/objects.
    #[arg(long, env = "STORAGE_DIR")]
    pub storage_dir: Option<PathBuf>,

    /// S3 bucket for originals and variants; unset keeps objects on local disk.
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// KMS key (ARN or id) for SSE-KMS on every object written to S3.
    #[arg(long, env = "S3_KMS_KEY_ID")]
    pub s3_kms_key_id: Option<String>,

    /// SQS job queue URL; unset uses the queue table in the database.
    #[arg(long, env = "SQS_QUEUE_URL")]
    pub sqs_queue_url: Option<String>,

    /// SQS dead-letter queue URL (operators' replay).
    #[arg(long, env = "SQS_DLQ_URL")]
    pub sqs_dlq_url: Option<String>,

    /// SQS queue of the bulk lane: replays and reprocessing, which workers
    /// serve after live uploads. Unset on SQS, bulk work shares the job
    /// queue; the queue table always has a bulk lane of its own.
    #[arg(long, env = "SQS_BULK_QUEUE_URL")]
    pub sqs_bulk_queue_url: Option<String>,

    /// The bulk lane's dead-letter queue.
    #[arg(long, env = "SQS_BULK_DLQ_URL")]
    pub sqs_bulk_dlq_url: Option<String>,

    /// SNS topic for outcome events; unset prints events to the console.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    pub sns_topic_arn: Option<String>,

    /// Endpoint for every AWS service, such as a local emulator. Unset uses AWS.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,

    /// SNS topic for people's chat (AWS Chatbot custom notifications).
    #[arg(long, env = "SNS_CHAT_TOPIC_ARN")]
    pub sns_chat_topic_arn: Option<String>,

    /// URL that receives every event as a JSON POST.
    #[arg(long, env = "WEBHOOK_URL", hide_env_values = true)]
    pub webhook_url: Option<SecretUrl>,

    /// Secrets WEBHOOK_URL's deliveries are signed with (Standard Webhooks),
    /// comma-separated `whsec_<base64>`: each delivery carries a signature
    /// per secret, so a new one can be added before the old is dropped.
    /// `image-service webhooks secret` makes one. Unset: unsigned.
    #[arg(long, env = "WEBHOOK_SECRETS", value_delimiter = ',', value_parser = parse_secret, hide_env_values = true)]
    pub webhook_secrets: Vec<Secret>,

    /// Slack incoming-webhook URL (events in CHAT_EVENTS only).
    #[arg(long, env = "SLACK_WEBHOOK_URL", hide_env_values = true)]
    pub slack_webhook_url: Option<SecretUrl>,

    /// Discord webhook URL (events in CHAT_EVENTS only).
    #[arg(long, env = "DISCORD_WEBHOOK_URL", hide_env_values = true)]
    pub discord_webhook_url: Option<SecretUrl>,

    /// How long a webhook delivery is retried before it expires, in seconds
    /// (then `image-service webhooks failed` lists it). Retries back off
    /// from RETRY_BASE_DELAY_MS, doubling up to ten minutes apart.
    #[arg(long, env = "WEBHOOK_DELIVERY_TTL_SECS", default_value_t = 86_400)]
    pub webhook_delivery_ttl_secs: u64,

    /// Events people hear about on chat channels (comma-separated).
    #[arg(long, env = "CHAT_EVENTS", default_value = "image.failed,replay.summary")]
    pub chat_events: String,

    /// The output presets as a JSON array (`[{"name":"thumb","max_edge":256,
    /// "format":"webp","quality":80}]`). Default: large 2048, medium 1024,
    /// thumb 256, WebP at quality 80.
    #[arg(long, env = "PRESETS")]
    pub presets: Option<String>,

    /// A bootstrap admin key, accepted besides the keys in the database
    /// (`image-service keys create`). Unset: only database keys work.
    #[arg(long, env = "ADMIN_API_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub admin_api_key: Option<Secret>,

    /// `required`: every endpoint but health, metrics and the OpenAPI
    /// document needs an API key. `off`: nothing does (local experiments only).
    #[arg(long, env = "API_AUTH", value_enum, default_value_t = AuthMode::Required)]
    pub api_auth: AuthMode,

    /// Requests per second each API key may make, on average.
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 20)]
    pub rate_limit_per_second: u32,

    /// Requests a key may make at once above its average rate.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 40)]
    pub rate_limit_burst: u32,

    /// Requests per second all of one tenant's keys may make together, on
    /// average, so a tenant cannot escape its limit by making more keys.
    #[arg(long, env = "TENANT_RATE_LIMIT_PER_SECOND", default_value_t = 100)]
    pub tenant_rate_limit_per_second: u32,

    /// Requests a tenant may make at once above its average rate.
    #[arg(long, env = "TENANT_RATE_LIMIT_BURST", default_value_t = 200)]
    pub tenant_rate_limit_burst: u32,

    /// What the API allows a connection, and a caller without a valid key.
    #[command(flatten)]
    pub edge: EdgeLimits,

    /// Days after upload (and never before its job succeeded) that an
    /// original is kept; its variants stay. `0`: forever. A tenant's own
    /// setting (`tenants set-retention`) overrides it.
    #[arg(long, env = "ORIGINALS_RETENTION_DAYS", default_value_t = 0)]
    pub originals_retention_days: u32,

    /// The retentions the bucket's lifecycle rules cover, comma-separated
    /// (`30,90,365`); set by Terraform. A retention outside them is refused.
    /// Unset: any number of days (the sweeper alone removes originals).
    #[arg(long, env = "ORIGINALS_RETENTION_CHOICES", value_delimiter = ',')]
    pub originals_retention_choices: Vec<u32>,

    /// Hours a variant of a superseded preset version is kept once its
    /// replacement exists, for the pages and caches still pointing at it.
    #[arg(long, env = "STALE_VARIANTS_GRACE_HOURS", default_value_t = 24)]
    pub stale_variants_grace_hours: u32,

    /// How long a presigned upload URL stays valid, in seconds.
    #[arg(long, env = "UPLOAD_URL_TTL_SECS", default_value_t = 900)]
    pub upload_url_ttl_secs: u64,

    /// Key that signs the API's own upload URLs when objects are on local
    /// disk. Unset: a random key per process (URLs die with a restart).
    #[arg(long, env = "UPLOAD_SIGNING_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub upload_signing_key: Option<Secret>,

    /// Redis for the API's read-through cache (`redis://` or `rediss://`).
    /// Unset: no cache. Set it on the workers too: they invalidate entries.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretUrl>,

    /// PEM file of the CAs a `rediss://` server's certificate must chain to.
    /// Unset: the public web roots, which include the CA of ElastiCache's
    /// certificates.
    #[arg(long, env = "REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,

    /// The API's public address, for links in events (`https://images.example.com`).
    #[arg(long, env = "PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Web origins whose pages may PUT a presigned upload straight from the
    /// browser (`https://app.example.com`, comma-separated). On S3 the
    /// bucket's CORS rule (Terraform) allows them; on local disk the API
    /// answers their preflights on its signed upload URL.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// Base of the delivery URLs pages show variants by: the CDN's address
    /// (`https://cdn.example.com`). Unset: PUBLIC_BASE_URL, where the API
    /// serves them itself; without that, URLs relative to the API.
    #[arg(long, env = "DELIVERY_BASE_URL")]
    pub delivery_base_url: Option<String>,

    /// Delivery mode of tenants that set none: `public` (the URL is enough)
    /// or `signed` (the URL carries an expiry and a signature).
    #[arg(long, env = "DELIVERY_MODE", value_enum, default_value_t = crate::delivery::Mode::Public)]
    pub delivery_mode: crate::delivery::Mode,

    /// PKCS#8 PEM of the ECDSA P-256 key that signs delivery URLs (the
    /// private half of a CloudFront public key). Unset: a key the service
    /// makes and keeps in DATA_DIR/delivery-signing-key.pem.
    #[arg(long, env = "DELIVERY_SIGNING_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub delivery_signing_key: Option<Secret>,

    /// Id of the signing key: on AWS the CloudFront public key's id.
    #[arg(long, env = "DELIVERY_KEY_ID", default_value = "local")]
    pub delivery_key_id: String,

    /// Retired public keys the API still honours on the URLs it serves
    /// itself, comma-separated `ID=BASE64-DER`; keep each until the URLs it
    /// signed have expired. (CloudFront honours its key group instead.)
    #[arg(long, env = "DELIVERY_VERIFY_KEYS", value_delimiter = ',')]
    pub delivery_verify_keys: Vec<String>,

    /// Shortest life of a signed delivery URL, in seconds (at least 300).
    #[arg(long, env = "DELIVERY_URL_TTL_SECS", default_value_t = 86_400)]
    pub delivery_url_ttl_secs: u64,

    /// Environment name carried on every event (`local`, `staging`, `production`).
    #[arg(long, env = "APP_ENV", default_value = "local")]
    pub app_env: String,

    /// Address the API listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    /// Largest accepted upload in bytes.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Long-poll wait of one receive, in seconds (SQS allows at most 20).
    #[arg(long, env = "QUEUE_WAIT_SECS", default_value_t = 20)]
    pub queue_wait_secs: u64,

    /// How long a received message stays hidden from other workers, in seconds.
    #[arg(long, env = "VISIBILITY_TIMEOUT_SECS", default_value_t = 120)]
    pub visibility_timeout_secs: u64,

    /// The longest one message's job may take, in seconds, however its
    /// calls hang: past it the job fails as `job-timeout` and is retried,
    /// and the worker stops extending the message's visibility, so another
    /// worker gets it. Terraform's `worst_case_job_seconds`.
    #[arg(long, env = "JOB_DEADLINE_SECS", default_value_t = 120)]
    pub job_deadline_secs: u64,

    /// First retry delay after a transient failure, in milliseconds; each
    /// further retry doubles it (with jitter), up to five minutes.
    #[arg(long, env = "RETRY_BASE_DELAY_MS", default_value_t = 2000)]
    pub retry_base_delay_ms: u64,

    /// Address the worker serves Prometheus metrics on (`/metrics`).
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:9090")]
    pub metrics_addr: SocketAddr,

    /// Receives after which the embedded queue moves a message to its
    /// dead-letter queue. On SQS the queue's redrive policy decides.
    #[arg(long, env = "MAX_RECEIVE_COUNT", default_value_t = 5)]
    pub max_receive_count: u32,

    /// Jobs one worker has in flight. Default: [`JOBS_PER_CORE`] per core.
    /// The engine itself runs on at most one job per core at a time; the
    /// other jobs download, store, record and announce meanwhile.
    #[arg(long, env = "WORKER_CONCURRENCY")]
    pub worker_concurrency: Option<usize>,

    /// Slots of a worker's jobs in flight and of its cores that bulk work
    /// (replays, reprocessing) leaves free, so that a live upload starts at
    /// once while a reprocess runs. 0 lets bulk work use everything.
    #[arg(long, env = "LIVE_RESERVED_SLOTS", default_value_t = 1)]
    pub live_reserved_slots: usize,

    /// How long the worker may finish in-flight jobs after SIGTERM, in seconds.
    #[arg(long, env = "SHUTDOWN_DEADLINE_SECS", default_value_t = 30)]
    pub shutdown_deadline_secs: u64,
}

/// What the API allows before it knows who is calling: how long a client
/// may take over a request's head, how many connections and requests per
/// connection it serves, and how often one address may call without a valid
/// key (each such call may cost a database lookup).
#[derive(Clone, Debug, Args)]
pub struct EdgeLimits {
    /// Seconds a client has to send a request's head; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Connections served at once; further ones wait in the listen backlog.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Requests one connection may carry; the last one's answer closes it.
    #[arg(long, env = "HTTP_MAX_REQUESTS_PER_CONNECTION", default_value_t = 1000)]
    pub max_requests_per_connection: u32,

    /// Requests per second one client address may make without a valid key
    /// (none, or one that is unknown or revoked), on average.
    #[arg(long, env = "ANONYMOUS_RATE_LIMIT_PER_SECOND", default_value_t = 5)]
    pub anonymous_rate_limit_per_second: u32,

    /// Such requests one address may make at once above that rate.
    #[arg(long, env = "ANONYMOUS_RATE_LIMIT_BURST", default_value_t = 20)]
    pub anonymous_rate_limit_burst: u32,

    /// The header a trusted proxy in front of the API puts the client's
    /// address in (`X-Forwarded-For` behind an ALB); its rightmost entry,
    /// which that proxy added, is the client. Unset: the TCP peer, and the
    /// header is ignored, since any client can send one.
    #[arg(long, env = "TRUSTED_PROXY_HEADER")]
    pub trusted_proxy_header: Option<String>,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            max_connections: 4096,
            max_requests_per_connection: 1000,
            anonymous_rate_limit_per_second: 5,
            anonymous_rate_limit_burst: 20,
            trusted_proxy_header: None,
        }
    }
}

impl Settings {
    /// Settings with every default, as if nothing were configured.
    pub fn embedded(data_dir: PathBuf) -> Self {
        Self {
            database_url: None,
            data_dir,
            storage_dir: None,
            s3_bucket: None,
            s3_kms_key_id: None,
            sqs_queue_url: None,
            sqs_dlq_url: None,
            sqs_bulk_queue_url: None,
            sqs_bulk_dlq_url: None,
            sns_topic_arn: None,
            aws_endpoint_url: None,
            sns_chat_topic_arn: None,
            webhook_url: None,
            webhook_secrets: Vec::new(),
            slack_webhook_url: None,
            discord_webhook_url: None,
            webhook_delivery_ttl_secs: 86_400,
            chat_events: "image.failed,replay.summary".into(),
            public_base_url: None,
            cors_allowed_origins: Vec::new(),
            delivery_base_url: None,
            delivery_mode: crate::delivery::Mode::Public,
            delivery_signing_key: None,
            delivery_key_id: "local".into(),
            delivery_verify_keys: Vec::new(),
            delivery_url_ttl_secs: 86_400,
            presets: None,
            admin_api_key: None,
            api_auth: AuthMode::Required,
            rate_limit_per_second: 20,
            rate_limit_burst: 40,
            edge: EdgeLimits::default(),
            tenant_rate_limit_per_second: 100,
            tenant_rate_limit_burst: 200,
            originals_retention_days: 0,
            originals_retention_choices: Vec::new(),
            stale_variants_grace_hours: 24,
            upload_url_ttl_secs: 900,
            upload_signing_key: None,
            redis_url: None,
            redis_ca_file: None,
            app_env: "local".into(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_upload_bytes: 64 * 1024 * 1024,
            queue_wait_secs: 20,
            visibility_timeout_secs: 120,
            max_receive_count: 5,
            retry_base_delay_ms: 2000,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            worker_concurrency: None,
            live_reserved_slots: 1,
            shutdown_deadline_secs: 30,
            job_deadline_secs: 120,
        }
    }

    /// The database URL, defaulting to `DATA_DIR/image-service.db`.
    pub fn database_url(&self) -> String {
        self.database_url
            .as_ref()
            .map(|url| url.expose().to_owned())
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("image-service.db").display()))
    }

    /// The objects directory, defaulting to `DATA_DIR/objects`.
    pub fn storage_dir(&self) -> PathBuf {
        self.storage_dir.clone().unwrap_or_else(|| self.data_dir.join("objects"))
    }

    /// Jobs in flight per worker.
    pub fn worker_concurrency(&self) -> usize {
        self.worker_concurrency
            .unwrap_or_else(|| JOBS_PER_CORE * std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1)
    }

    /// The long-poll wait as a duration.
    pub fn queue_wait(&self) -> Duration {
        Duration::from_secs(self.queue_wait_secs.min(20))
    }

    /// The configured presets.
    ///
    /// # Errors
    /// When `PRESETS` is not a valid list of presets, names one twice, or
    /// has one whose settings do not go together ([`imaging::Preset::check`]).
    pub fn presets(&self) -> Result<Vec<imaging::Preset>, String> {
        let Some(json) = &self.presets else {
            return Ok(imaging::default_presets());
        };
        let presets: Vec<imaging::Preset> = serde_json::from_str(json).map_err(|e| format!("PRESETS: {e}"))?;
        let mut names: Vec<&str> = presets.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if presets.is_empty() || names.windows(2).any(|w| w[0] == w[1]) {
            return Err("PRESETS must name at least one preset, each once".into());
        }
        presets.iter().try_for_each(imaging::Preset::check).map_err(|e| format!("PRESETS: {e}"))?;
        Ok(presets)
    }

    /// The visibility timeout as a duration.
    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_secs(self.visibility_timeout_secs)
    }
}

/// Whether the API asks for keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Every endpoint but health, metrics and the OpenAPI document needs a key.
    Required,
    /// No endpoint needs a key.
    Off,
}

/// A secret setting: its `Debug` never shows the value, so it cannot leak
/// into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that must compare or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// A URL that may carry a password or a token (a database's, Redis's, a
/// webhook's, whose path is its token). Its `Debug` shows the scheme, the
/// user and the host only; clap never prints its value in `--help`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL, for the one place that must connect to or call it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return f.write_str("SecretUrl(***)");
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (user, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (userinfo.split(':').next().unwrap_or_default(), host),
            None => ("", authority),
        };
        let user = if user.is_empty() { String::new() } else { format!("{user}:***@") };
        let more = if rest.len() > authority.len() { "/***" } else { "" };
        write!(f, "SecretUrl({scheme}://{user}{host}{more})")
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::str::FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(Secret(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_urls_show_no_password_path_or_query() {
        let cases = [
            (
                "postgres://app:hunter2@db.internal:5432/images?sslmode=verify-full",
                "postgres://app:***@db.internal:5432/***",
            ),
            ("rediss://default:t0ken@cache.internal:6379", "rediss://default:***@cache.internal:6379"),
            ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com/***"),
            ("not a url", "***"),
        ];
        for (url, shown) in cases {
            assert_eq!(format!("{:?}", SecretUrl::from(url)), format!("SecretUrl({shown})"), "{url}");
        }
    }

    #[test]
    fn presets_are_read_with_their_options_and_refused_when_they_do_not_go_together() {
        let mut settings = Settings::embedded(PathBuf::from("/data"));
        settings.presets = Some(
            r#"[{"name":"moving","max_edge":512,"format":"webp","quality":75,"animated":true},
                {"name":"photo","max_edge":1024,"format":"avif","quality":62,"effort":"fast"}]"#
                .into(),
        );
        let presets = settings.presets().expect("valid presets");
        assert!(presets[0].animated && !presets[1].animated);
        assert_eq!((presets[1].format, presets[1].effort), (imaging::OutputFormat::Avif, imaging::Effort::Fast));

        settings.presets =
            Some(r#"[{"name":"moving","max_edge":512,"format":"jpeg","quality":75,"animated":true}]"#.into());
        assert_eq!(settings.presets(), Err("PRESETS: preset moving: animated output is WebP only, not jpeg".into()));
    }

    #[test]
    fn settings_debug_holds_no_secret() {
        let mut settings = Settings::embedded(PathBuf::from("/data"));
        settings.database_url = Some("postgres://app:hunter2@db/images".into());
        settings.redis_url = Some("rediss://u:redis-secret@cache:6379".into());
        settings.slack_webhook_url = Some("https://hooks.slack.com/services/slack-secret".into());
        settings.discord_webhook_url = Some("https://discord.com/api/webhooks/1/discord-secret".into());
        settings.webhook_url = Some("https://example.com/hook?token=hk-tok-77".into());
        settings.admin_api_key = Some("admin-secret".into());
        let shown = format!("{settings:?}");
        for secret in ["hunter2", "redis-secret", "slack-secret", "discord-secret", "hk-tok-77", "admin-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
