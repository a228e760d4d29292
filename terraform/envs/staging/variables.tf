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
