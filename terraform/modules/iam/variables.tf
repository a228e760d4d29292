variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "bucket_arn" {
  description = "Media bucket ARN."
  type        = string
}

variable "queue_arn" {
  description = "Job queue ARN."
  type        = string
}

variable "dlq_arn" {
  description = "Dead-letter queue ARN."
  type        = string
}

variable "bulk_queue_arn" {
  description = "Bulk lane ARN (replays and reprocessing)."
  type        = string
}

variable "bulk_dlq_arn" {
  description = "The bulk lane's dead-letter queue ARN."
  type        = string
}

variable "topic_arn" {
  description = "Event topic ARN."
  type        = string
}

variable "chat_topic_arn" {
  description = "Chat topic ARN (AWS Chatbot custom notifications, SNS_CHAT_TOPIC_ARN)."
  type        = string
}

variable "kms_key_arn" {
  description = "Service KMS key ARN (objects, messages, secrets)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "Repository the execution role pulls the image from."
  type        = string
}

variable "log_group_arns" {
  description = "Log group ARNs (without the :* suffix) the execution role ships container logs to."
  type = object({
    api    = string
    worker = string
    ops    = string
  })
}

variable "db_secret_arn" {
  description = "Secrets Manager secret RDS manages for the master user."
  type        = string
}

variable "db_app_secret_arn" {
  description = "Secrets Manager secret of the application database role (modules/data)."
  type        = string
}

variable "admin_api_key_secret_arn" {
  description = "Secrets Manager secret holding ADMIN_API_KEY."
  type        = string
}

variable "delivery_signing_key_secret_arn" {
  description = "Secrets Manager secret holding DELIVERY_SIGNING_KEY (the CDN's URL-signing private key)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
