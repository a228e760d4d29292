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
