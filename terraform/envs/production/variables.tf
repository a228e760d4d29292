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

variable "cors_allowed_origins" {
  description = "Browser origins allowed to PUT presigned uploads."
  type        = list(string)
  default     = []
}
