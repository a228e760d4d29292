variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "app_env" {
  description = "APP_ENV put on every event (staging, production)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the services."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets for the ALB."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets for every task (no public IPs)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups from the network module: alb, api, worker, ops."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "Service KMS key (ECS Exec session logs)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener."
  type        = string
}

variable "alb_deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "Bucket for ALB access logs (prefix alb/)."
  type        = string
}

variable "image" {
  description = "Container image with an immutable tag, e.g. <account>.dkr.ecr.<region>.amazonaws.com/image-service-staging:1.4.2."
  type        = string
}

variable "cpu_architecture" {
  description = "runtime_platform.cpu_architecture of every task definition: X86_64 or ARM64 (the stack module decides)."
  type        = string
}

variable "task_role_arns" {
  description = "Task roles from the iam module: api, worker, replay."
  type        = map(string)
}

variable "execution_role_arn" {
  description = "Task execution role (image pull, logs, secrets)."
  type        = string
}

variable "log_group_names" {
  description = "Log groups from the observability module: api, worker, ops."
  type        = map(string)
}

variable "config" {
  description = "Service configuration passed as environment (names from the contract)."
  type = object({
    s3_bucket          = string
    s3_kms_key_id      = string
    sqs_queue_url      = string
    sqs_dlq_url        = string
    sqs_bulk_queue_url = string
    sqs_bulk_dlq_url   = string
    sns_topic_arn      = string
    sns_chat_topic_arn = string
    database_url       = string
    owner_database_url = string
    db_app_role        = string
    redis_url          = string
  })
}

variable "chat_events" {
  description = "Events published to the chat topic (CHAT_EVENTS, joined with commas)."
  type        = list(string)
  default     = ["image.failed", "replay.summary"]
}

variable "db_secret_arn" {
  description = "RDS-managed master user secret; its `password` key becomes the migrate task's PGPASSWORD."
  type        = string
}

variable "db_app_secret_arn" {
  description = "The application role's secret; its `password` key becomes PGPASSWORD of api, worker and replay, and DATABASE_APP_PASSWORD of migrate."
  type        = string
}

variable "admin_api_key_secret_arn" {
  description = "Secret injected as ADMIN_API_KEY."
  type        = string
}

variable "api" {
  description = "API task size and initial count (autoscaling owns the count afterwards)."
  type = object({
    cpu           = number
    memory        = number
    desired_count = number
  })
  default = {
    cpu           = 512
    memory        = 1024
    desired_count = 1
  }
}

variable "worker" {
  description = "Worker task size, initial count, concurrency and capacity provider."
  type = object({
    cpu           = number
    memory        = number
    desired_count = number
    concurrency   = number
    use_spot      = bool
  })
  default = {
    cpu           = 1024
    memory        = 2048
    desired_count = 1
    concurrency   = 4
    use_spot      = false
  }
}

variable "ops_task" {
  description = "Size of the one-off migrate/replay tasks."
  type = object({
    cpu    = number
    memory = number
  })
  default = {
    cpu    = 256
    memory = 512
  }
}

variable "shutdown_deadline_secs" {
  description = "SHUTDOWN_DEADLINE_SECS: how long a worker finishes in-flight jobs after SIGTERM."
  type        = number
  default     = 30
}

variable "stop_timeout_margin_secs" {
  description = "Extra seconds ECS waits beyond the shutdown deadline before SIGKILL: the worker flushes its spans then, so at least that flush's bound (5 s)."
  type        = number
  default     = 5
}

variable "public_base_url" {
  description = "PUBLIC_BASE_URL of api and worker (links in events). Empty: https://<ALB DNS name>."
  type        = string
  default     = ""

  validation {
    condition     = var.public_base_url == "" || can(regex("^https://[^/]+", var.public_base_url))
    error_message = "public_base_url must be empty or an https:// URL such as https://images.example.com."
  }
}

variable "delivery_base_url" {
  description = "DELIVERY_BASE_URL of api and worker: the CDN's address (modules/delivery), https://<custom domain or *.cloudfront.net>."
  type        = string

  validation {
    condition     = can(regex("^https://[^/]+$", var.delivery_base_url))
    error_message = "delivery_base_url must be https:// and a hostname, without a path or trailing slash."
  }
}

variable "delivery_key_id" {
  description = "DELIVERY_KEY_ID: CloudFront's id of the public key that signs delivery URLs now. null: no signing key, so neither DELIVERY_KEY_ID nor DELIVERY_SIGNING_KEY is set and no signed URLs are made."
  type        = string
  default     = null
}

variable "delivery_signing_key_secret_arn" {
  description = "Secret injected as DELIVERY_SIGNING_KEY (PKCS#8 PEM of the private half of delivery_key_id) while delivery_key_id is set."
  type        = string
}

variable "cors_allowed_origins" {
  description = "CORS_ALLOWED_ORIGINS (joined with commas): web origins whose pages may PUT presigned uploads; the media bucket's CORS rule admits the same ones."
  type        = list(string)
  default     = []
}

variable "upload_url_ttl_secs" {
  description = "UPLOAD_URL_TTL_SECS: lifetime of the presigned PUT URLs of POST /v1/uploads."
  type        = number
  default     = 900

  validation {
    # The URL is signed with the task role's temporary credentials and dies with their session
    # anyway; keep it short.
    condition     = var.upload_url_ttl_secs >= 60 && var.upload_url_ttl_secs <= 3600 && floor(var.upload_url_ttl_secs) == var.upload_url_ttl_secs
    error_message = "upload_url_ttl_secs must be a whole number of seconds between 60 and 3600."
  }
}

variable "rate_limit_per_second" {
  description = "RATE_LIMIT_PER_SECOND: average requests per second each API key may make."
  type        = number
  default     = 20

  validation {
    condition     = var.rate_limit_per_second >= 1 && floor(var.rate_limit_per_second) == var.rate_limit_per_second
    error_message = "rate_limit_per_second must be a whole number >= 1."
  }
}

variable "rate_limit_burst" {
  description = "RATE_LIMIT_BURST: requests a key may make at once above its average rate."
  type        = number
  default     = 40

  validation {
    condition     = var.rate_limit_burst >= 1 && floor(var.rate_limit_burst) == var.rate_limit_burst
    error_message = "rate_limit_burst must be a whole number >= 1."
  }
}

variable "tenant_rate_limit_per_second" {
  description = "TENANT_RATE_LIMIT_PER_SECOND: average requests per second all of one tenant's keys may make together."
  type        = number
  default     = 100

  validation {
    condition     = var.tenant_rate_limit_per_second >= 1 && floor(var.tenant_rate_limit_per_second) == var.tenant_rate_limit_per_second
    error_message = "tenant_rate_limit_per_second must be a whole number >= 1."
  }
}

variable "tenant_rate_limit_burst" {
  description = "TENANT_RATE_LIMIT_BURST: requests a tenant may make at once above its average rate."
  type        = number
  default     = 200

  validation {
    condition     = var.tenant_rate_limit_burst >= 1 && floor(var.tenant_rate_limit_burst) == var.tenant_rate_limit_burst
    error_message = "tenant_rate_limit_burst must be a whole number >= 1."
  }
}

variable "originals_retention_days" {
  description = "ORIGINALS_RETENTION_DAYS: days after upload an original is deleted once its job succeeded, unless its tenant sets its own; 0 keeps originals. Must be 0 or one of originals_retention_choices."
  type        = number
  default     = 0

  validation {
    condition     = var.originals_retention_days >= 0 && floor(var.originals_retention_days) == var.originals_retention_days
    error_message = "originals_retention_days must be a whole number of days >= 0."
  }
}

variable "originals_retention_choices" {
  description = "ORIGINALS_RETENTION_CHOICES (joined with commas): the retention day counts the media bucket has lifecycle rules for (the storage module's variable of the same name)."
  type        = list(number)
  default     = [30, 90, 365]

  validation {
    condition     = alltrue([for d in var.originals_retention_choices : d >= 1 && floor(d) == d])
    error_message = "Each retention choice must be a whole number of days >= 1."
  }
}

variable "stale_variants_grace_hours" {
  description = "STALE_VARIANTS_GRACE_HOURS: how long a superseded variant is kept after its replacement exists (clients may still hold its URL)."
  type        = number
  default     = 24

  validation {
    condition     = var.stale_variants_grace_hours >= 1 && floor(var.stale_variants_grace_hours) == var.stale_variants_grace_hours
    error_message = "stale_variants_grace_hours must be a whole number of hours >= 1."
  }
}

variable "container_insights" {
  description = "Container Insights level: enabled (required for RunningTaskCount) or enhanced."
  type        = string
  default     = "enabled"
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}

# The digest was not pulled here (no registry is reachable from the build machine). It is the
# multi-architecture index digest of ADOT v0.48.0 that other public deployments pin, on Public ECR
# and on Docker Hub alike (compared on 2026-12-07). Confirm it with imagetools before a first deploy.
variable "adot_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image of the metrics sidecars, pinned by digest (a public tag can move; the service image is pinned by its immutable ECR tag instead). Check a new one with `docker buildx imagetools inspect IMAGE`."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.48.0@sha256:9b28046359054b414f4ba76056ba4e8cffda2d53fbcee06171d7eeecd71326c3"

  validation {
    condition     = can(regex("^[^@]+:[^@/]+@sha256:[0-9a-f]{64}$", var.adot_collector_image))
    error_message = "adot_collector_image must be REPOSITORY:TAG@sha256:DIGEST."
  }
}

variable "traces_enabled" {
  description = "Whether api and worker send traces to X-Ray through their collector sidecars (OTEL_* variables, the collectors' traces pipeline, the task roles' X-Ray grant). false: none of the three exists, and the binary traces nothing."
  type        = bool
  default     = true
}

variable "trace_sampling_ratio" {
  description = "OTEL_TRACES_SAMPLER_ARG of api and worker: the share of new traces recorded (parentbased_traceidratio; a caller's sampled traceparent is followed whatever this says). X-Ray bills each trace recorded."
  type        = number
  default     = 0.05

  validation {
    condition     = var.trace_sampling_ratio >= 0 && var.trace_sampling_ratio <= 1
    error_message = "trace_sampling_ratio must be between 0 and 1 (0.05 records one new trace in 20)."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the sidecars publish the services' metrics to (the observability module's)."
  type        = string
}

variable "metrics_log_group" {
  description = "Log group for the sidecars' EMF events, from the observability module: name and arn."
  type = object({
    name = string
    arn  = string
  })
}
