variable "region" {
  description = "AWS region (AWS_REGION)."
  type        = string
  default     = "eu-west-1"
}

variable "certificate_arn" {
  description = "ACM certificate ARN for the API hostname, in the same region."
  type        = string
}

variable "image_tag" {
  description = "Immutable image tag to deploy (pushed to the ecr_repository_url output)."
  type        = string
}

variable "event_email_addresses" {
  description = "Email subscribers of the event topic (failures and replay summaries by default)."
  type        = list(string)
  default     = []
}

variable "ops_email_addresses" {
  description = "Email subscribers of the alarm topic."
  type        = list(string)
  default     = []
}

variable "slack_team_id" {
  description = "Slack workspace id authorised in AWS Chatbot; empty disables Slack."
  type        = string
  default     = ""
}

variable "slack_channel_id" {
  description = "Slack channel id; empty disables Slack."
  type        = string
  default     = ""
}

variable "upload_cors_allowed_origins" {
  description = "Browser origins allowed to PUT to presigned upload URLs, e.g. [\"https://app.example.com\"]."
  type        = list(string)
  default     = []
}

variable "public_base_url" {
  description = "PUBLIC_BASE_URL: the API hostname the certificate is for, e.g. https://images.example.com (links in events). Empty: https://<ALB DNS name>."
  type        = string
  default     = ""
}

variable "originals_retention_days" {
  description = "ORIGINALS_RETENTION_DAYS: default days after upload an original is deleted once its job succeeded (tenants may set their own); 0 keeps originals forever. 0 or one of originals_retention_choices."
  type        = number
  default     = 0
}

variable "originals_retention_choices" {
  description = "ORIGINALS_RETENTION_CHOICES: retention day counts (global or per tenant) the media bucket gets a lifecycle rule for. Dropping a value drops its rule: originals tagged with it are then kept."
  type        = list(number)
  default     = [30, 90, 365]
}

variable "stale_variants_grace_hours" {
  description = "STALE_VARIANTS_GRACE_HOURS: how long superseded variants are kept after their replacement exists."
  type        = number
  default     = 24
}

variable "delivery_public_keys" {
  description = "CDN key group: name => PEM of an ECDSA P-256 public key (openssl pkey -in key.pem -pubout). Keep a retired key until the URLs it signed have expired. Empty: no signed delivery."
  type        = map(string)
  default     = {}
}

variable "delivery_signing_key_name" {
  description = "Which key of delivery_public_keys signs now (its private half is in the delivery_signing_key_secret_arn secret); empty when the map is."
  type        = string
  default     = ""
}

variable "delivery_domain_name" {
  description = "Custom hostname of the CDN, e.g. cdn.example.com (DELIVERY_BASE_URL); empty: the distribution's *.cloudfront.net name."
  type        = string
  default     = ""
}

variable "delivery_certificate_arn" {
  description = "ACM certificate for delivery_domain_name, issued in us-east-1 (CloudFront's region); empty when the domain is."
  type        = string
  default     = ""
}

variable "traces_enabled" {
  description = "Traces of api and worker to X-Ray through their collector sidecars (docs/operations.md, \"Traces on AWS\"); false: no OTEL_* variables, no traces pipeline, no X-Ray grant. Metrics are not affected."
  type        = bool
  default     = true
}

variable "trace_sampling_ratio" {
  description = "OTEL_TRACES_SAMPLER_ARG of api and worker: the share of new traces recorded, 0..1 (a caller's sampled traceparent is followed whatever this says). X-Ray bills each trace recorded."
  type        = number
  default     = 0.05
}
