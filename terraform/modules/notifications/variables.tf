variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting both topics."
  type        = string
}

variable "event_email_addresses" {
  description = "Addresses subscribed to the event topic (each must confirm by email)."
  type        = list(string)
  default     = []
}

variable "event_email_filter_policy" {
  description = "SNS filter policy (message attributes event/status/preset/env) for the email subscriptions."
  type        = map(list(string))
  default = {
    event = ["image.failed", "replay.summary"]
  }
}

variable "ops_email_addresses" {
  description = "Addresses subscribed to the ops (alarm) topic."
  type        = list(string)
  default     = []
}

variable "slack_team_id" {
  description = "Slack workspace id authorised in the AWS Chatbot console. Empty: no Slack."
  type        = string
  default     = ""
}

variable "slack_channel_id" {
  description = "Slack channel id for events and alarms. Empty: no Slack."
  type        = string
  default     = ""
}

variable "slack_filter_policy" {
  description = "SNS filter policy for the Slack subscription of the event topic."
  type        = map(list(string))
  default = {
    event = ["image.failed", "replay.summary"]
  }
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
