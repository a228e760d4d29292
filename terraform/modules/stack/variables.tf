variable "project" {
  description = "Project name; resources are named <project>-<env>."
  type        = string
  default     = "image-service"
}

variable "env" {
  description = "Environment name (APP_ENV): staging or production."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.env)
    error_message = "env must be staging or production."
  }
}

# --- Network ----------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "VPC CIDR."
  type        = string
}

variable "az_suffixes" {
  description = "Availability zones as region-name suffixes (a, b, ...)."
  type        = list(string)
  default     = ["a", "b"]
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheap) instead of one per AZ (resilient)."
  type        = bool
  default     = true
}

# --- Edge ------------------------------------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate ARN for the API's HTTPS listener (same region)."
  type        = string
}

variable "alb_deletion_protection" {
  description = "Protect the ALB from deletion."
  type        = bool
  default     = true
}

variable "upload_cors_allowed_origins" {
  description = "Browser origins allowed to PUT to presigned upload URLs (POST /v1/uploads); empty: no CORS rule."
  type        = list(string)
  default     = []
}

variable "public_base_url" {
  description = "PUBLIC_BASE_URL: the API's public address for links in events (https://images.example.com). Empty: https://<ALB DNS name>, whose certificate will not match; set the hostname the certificate is for."
  type        = string
  default     = ""
}

# --- CDN delivery (modules/delivery) --------------------------------------------------------

variable "delivery_public_keys" {
  description = "Name => PEM of an ECDSA P-256 public key, all in the CDN's key group (signed delivery URLs under /private/). Empty: no signed delivery; /private/* answers 404."
  type        = map(string)
  default     = {}
}

variable "delivery_signing_key_name" {
  description = "The key of delivery_public_keys whose private half (the delivery signing key secret) signs URLs now; empty when the map is."
  type        = string
  default     = ""
}

variable "delivery_domain_name" {
  description = "Custom hostname of the CDN (cdn.example.com); empty: its *.cloudfront.net name."
  type        = string
  default     = ""
}

variable "delivery_certificate_arn" {
  description = "ACM certificate for delivery_domain_name, issued in us-east-1; empty when the domain is."
  type        = string
  default     = ""
}

# --- Containers ------------------------------------------------------------------------------

variable "image_tag" {
  description = "Immutable image tag in the service's ECR repository to deploy."
  type        = string
}

variable "cpu_architecture" {
  # The release workflow builds linux/amd64 only: GitHub's standard runners are x86_64, and
  # emulating arm64 there would multiply a no-cache release build's time. ARM64 (Graviton, ~20%
  # cheaper) needs the image built for linux/arm64 as well; tests/infra/release/test_architecture.py
  # fails while the two disagree.
  description = "CPU architecture of every task (X86_64 or ARM64); must be a platform the release workflow builds."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "api_task" {
  description = "API task size and initial count."
  type = object({
    cpu           = number
    memory        = number
    desired_count = number
  })
}

variable "worker_task" {
  description = "Worker task size, initial count, WORKER_CONCURRENCY and Fargate Spot use."
  type = object({
    cpu           = number
    memory        = number
    desired_count = number
    concurrency   = number
    use_spot      = bool
  })
}

variable "shutdown_deadline_secs" {
  description = "SHUTDOWN_DEADLINE_SECS of the worker."
  type        = number
  default     = 30
}

variable "upload_url_ttl_secs" {
  description = "UPLOAD_URL_TTL_SECS: how long a presigned upload URL of POST /v1/uploads stays valid."
  type        = number
  default     = 900
}

variable "rate_limit_per_second" {
  description = "RATE_LIMIT_PER_SECOND: average requests per second each API key may make."
  type        = number
  default     = 20
}

variable "rate_limit_burst" {
  description = "RATE_LIMIT_BURST: requests a key may make at once above its average rate."
  type        = number
  default     = 40
}

variable "tenant_rate_limit_per_second" {
  description = "TENANT_RATE_LIMIT_PER_SECOND: average requests per second all of one tenant's keys may make together."
  type        = number
  default     = 100
}

variable "tenant_rate_limit_burst" {
  description = "TENANT_RATE_LIMIT_BURST: requests a tenant may make at once above its average rate."
  type        = number
  default     = 200
}

variable "traces_enabled" {
  description = "Traces of api and worker to X-Ray through the collector sidecars (docs/operations.md, \"Traces on AWS\"); false: no OTEL_* variables, no traces pipeline, no X-Ray grant."
  type        = bool
  default     = true
}

variable "trace_sampling_ratio" {
  description = "OTEL_TRACES_SAMPLER_ARG of api and worker: the share of new traces recorded, 0..1."
  type        = number
  default     = 0.05
}

# --- Originals retention (issue #20) ---------------------------------------------------------

variable "originals_retention_days" {
  description = "ORIGINALS_RETENTION_DAYS: default days after upload an original is deleted once its job succeeded (tenants may set their own); 0 keeps originals forever. 0 or one of originals_retention_choices."
  type        = number
  default     = 0
}

variable "originals_retention_choices" {
  description = "ORIGINALS_RETENTION_CHOICES: retention day counts the media bucket gets a lifecycle rule for; the binary accepts no other value. A value <= the originals' transition age (30 days) still pays the cheaper class's minimum storage duration."
  type        = list(number)
  default     = [30, 90, 365]
}

variable "stale_variants_grace_hours" {
  description = "STALE_VARIANTS_GRACE_HOURS: how long superseded variants are kept after their replacement exists."
  type        = number
  default     = 24
}

# --- Queue and scaling -------------------------------------------------------------------------

variable "worst_case_job_seconds" {
  description = "Longest a single job may take; the visibility timeout is a multiple of it."
  type        = number
  default     = 120
}

variable "max_receive_count" {
  description = "Deliveries before a job goes to the DLQ."
  type        = number
  default     = 5
}

variable "worker_min_tasks" {
  description = "Fewest worker tasks (0 = scale to zero)."
  type        = number
}

variable "worker_max_tasks" {
  description = "Most worker tasks."
  type        = number
}

variable "api_min_tasks" {
  description = "Fewest API tasks."
  type        = number
}

variable "api_max_tasks" {
  description = "Most API tasks."
  type        = number
}

variable "acceptable_latency_seconds" {
  description = "Acceptable queue wait before a job starts (backlog-per-task target)."
  type        = number
  default     = 60
}

variable "seconds_per_job" {
  description = "Measured average seconds per job per worker slot."
  type        = number
  default     = 2
}

# --- Data ------------------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_multi_az" {
  description = "RDS standby in a second AZ."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "RDS automated backup retention."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Protect RDS from deletion."
  type        = bool
  default     = true
}

variable "cache_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.micro"
}

variable "cache_nodes" {
  description = "ElastiCache nodes (2+ = failover)."
  type        = number
  default     = 1
}

# --- Notifications and observability -----------------------------------------------------------

variable "event_email_addresses" {
  description = "Email subscribers of the event topic."
  type        = list(string)
  default     = []
}

variable "event_email_filter_policy" {
  description = "Filter policy (event/status/preset/env) for the email subscribers."
  type        = map(list(string))
  default = {
    event = ["image.failed", "replay.summary"]
  }
}

variable "ops_email_addresses" {
  description = "Email subscribers of the alarm topic."
  type        = list(string)
  default     = []
}

variable "slack_team_id" {
  description = "Slack workspace id for AWS Chatbot; empty disables Slack."
  type        = string
  default     = ""
}

variable "slack_channel_id" {
  description = "Slack channel id for AWS Chatbot; empty disables Slack."
  type        = string
  default     = ""
}

variable "chat_events" {
  description = "Events the services publish to the chat topic for Slack (CHAT_EVENTS)."
  type        = list(string)
  default     = ["image.failed", "replay.summary"]
}

variable "log_retention_days" {
  description = "Retention of service and VPC flow log groups."
  type        = number
  default     = 90
}

variable "runbook_base_url" {
  description = "Where docs/runbooks of this repository is read (e.g. https://github.com/ORG/REPO/blob/main/docs/runbooks); every alarm links its page there."
  type        = string
  default     = "docs/runbooks"
}
