variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "uploads_expiration_days" {
  description = "Days before objects under uploads/ (transient presigned-PUT landing zone) expire."
  type        = number
  default     = 3
}

variable "originals_transition_days" {
  description = "Days before originals/ move to a cheaper storage class."
  type        = number
  default     = 30
}

variable "originals_storage_class" {
  description = "Storage class for originals after originals_transition_days (STANDARD_IA, GLACIER_IR, ...)."
  type        = string
  default     = "STANDARD_IA"
}

variable "originals_retention_choices" {
  description = <<-EOT
    ORIGINALS_RETENTION_CHOICES: the retention periods (days after upload) an original may get; the
    media bucket has one lifecycle rule per value, expiring originals/ objects that the worker
    tagged image-service-retention-days = "<days>". Empty: no retention rule, originals are kept.
    Removing a value removes its rule: originals already tagged with it are then kept forever.
    A value at or below originals_transition_days is legal but wasteful: the original still moves
    to originals_storage_class (S3 prefers a transition over adding a delete marker on the same
    day) and is billed that class's minimum storage duration (30 days STANDARD_IA, 90 days
    GLACIER_IR). On this versioned bucket the bytes stay noncurrent_version_expiration_days more.
  EOT
  type        = list(number)
  default     = [30, 90, 365]

  validation {
    condition     = alltrue([for d in var.originals_retention_choices : d >= 1 && floor(d) == d])
    error_message = "Each retention choice must be a whole number of days >= 1."
  }

  validation {
    # Each value names a rule id; duplicates would collide.
    condition     = length(distinct(var.originals_retention_choices)) == length(var.originals_retention_choices)
    error_message = "originals_retention_choices must not repeat a value."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object version is kept (versioning is on for accidental deletes)."
  type        = number
  default     = 30
}

variable "abort_multipart_days" {
  description = "Days before incomplete multipart uploads are aborted (their parts are billed until then)."
  type        = number
  default     = 1
}

variable "access_log_retention_days" {
  description = "Days ALB and S3 access logs are kept in the logs bucket."
  type        = number
  default     = 90
}

variable "upload_cors_allowed_origins" {
  description = "Browser origins (scheme://host[:port]) allowed to PUT to presigned upload URLs. Empty: no CORS rule."
  type        = list(string)
  default     = []

  validation {
    # One origin per entry, no path and no bare "*": S3 allows a wildcard inside a host
    # (https://*.example.com), but "*" would let any site's scripts use a leaked upload URL.
    condition     = alltrue([for o in var.upload_cors_allowed_origins : can(regex("^https?://[^/]+$", o))])
    error_message = "Each origin must look like https://app.example.com (scheme and host, no path, not \"*\")."
  }
}

variable "delivery_public_keys" {
  description = "modules/delivery public_keys: name => PEM of an ECDSA P-256 public key trusted for signed delivery URLs; empty: none."
  type        = map(string)
  default     = {}
}

variable "delivery_signing_key_name" {
  description = "modules/delivery signing_key_name: the key of delivery_public_keys that signs now."
  type        = string
  default     = ""
}

variable "delivery_domain_name" {
  description = "modules/delivery domain_name: custom hostname of the CDN; empty: *.cloudfront.net."
  type        = string
  default     = ""
}

variable "delivery_certificate_arn" {
  description = "modules/delivery certificate_arn: ACM certificate (us-east-1) for delivery_domain_name."
  type        = string
  default     = ""
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a scheduled KMS key deletion happens."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
