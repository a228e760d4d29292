variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting every queue (SSE-KMS)."
  type        = string
}

variable "bucket_id" {
  description = "Media bucket whose uploads/ ObjectCreated events feed the job queue."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the media bucket; the only source allowed to send S3 events to the queue."
  type        = string
}

variable "worst_case_job_seconds" {
  description = "Longest a single job may take (decode, resize to every preset, encode, upload)."
  type        = number
  default     = 120
}

variable "visibility_timeout_multiplier" {
  description = "Visibility timeout = worst_case_job_seconds * this, so a slow job is not handed to a second worker."
  type        = number
  default     = 5

  validation {
    condition     = var.visibility_timeout_multiplier >= 2
    error_message = "The visibility timeout must be well above the worst-case job time (multiplier >= 2)."
  }
}

variable "max_receive_count" {
  description = "Deliveries of one message before SQS moves it to the DLQ (each is one retry with backoff)."
  type        = number
  default     = 5
}

variable "message_retention_seconds" {
  description = "How long an unprocessed job stays on the live or the bulk queue (default 4 days)."
  type        = number
  default     = 345600
}

variable "dlq_message_retention_seconds" {
  description = "How long a poison job waits in either DLQ for replay (default and maximum 14 days)."
  type        = number
  default     = 1209600
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
