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
  description = "Slack channel id for chat notifications and alarms. Empty: no Slack."
  type        = string
  default     = ""
}

variable "chat_events" {
  description = "Events the services publish to the chat topic for Slack (CHAT_EVENTS); the filtering happens in the service, not in SNS."
  type        = list(string)
  default     = ["image.failed", "replay.summary"]

  validation {
    condition     = alltrue([for e in var.chat_events : contains(["image.processed", "image.failed", "replay.summary"], e)])
    error_message = "chat_events may name only image.processed, image.failed and replay.summary."
  }
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
