variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the service log groups."
  type        = number
  default     = 90
}

variable "metrics_log_retention_days" {
  description = "Retention of the EMF log group (the metrics are extracted on arrival; the events are only for a look at raw samples)."
  type        = number
  default     = 7
}

variable "ops_topic_arn" {
  description = "Encrypted SNS topic every alarm notifies (email, Slack)."
  type        = string
}

variable "queue_name" {
  description = "Job queue name."
  type        = string
}

variable "dlq_name" {
  description = "Dead-letter queue name."
  type        = string
}

variable "bulk_queue_name" {
  description = "Bulk lane name (replays and reprocessing)."
  type        = string
}

variable "bulk_dlq_name" {
  description = "The bulk lane's dead-letter queue name."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name."
  type        = string
}

variable "worker_service_name" {
  description = "Worker service name."
  type        = string
}

variable "api_service_name" {
  description = "API service name."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ALB dimension LoadBalancer."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "Target group dimension TargetGroup."
  type        = string
}

variable "db_instance_id" {
  description = "RDS DBInstanceIdentifier."
  type        = string
}

variable "oldest_message_age_threshold_seconds" {
  description = "Alarm when the oldest job has waited longer than this (workers stuck or too few)."
  type        = number
  default     = 900
}

variable "worker_error_rate_threshold_percent" {
  description = "Alarm when worker ERROR log lines exceed this percentage of received jobs over 5 minutes."
  type        = number
  default     = 5
}

variable "api_5xx_threshold" {
  description = "Alarm when the API returns more 5xx than this in 5 minutes."
  type        = number
  default     = 10
}

variable "rds_cpu_threshold_percent" {
  description = "Alarm when RDS CPU stays above this for 15 minutes."
  type        = number
  default     = 80
}

variable "rds_free_storage_threshold_bytes" {
  description = "Alarm when RDS free storage falls below this."
  type        = number
  default     = 2147483648 # 2 GiB
}

variable "runbook_base_url" {
  description = "Where the runbook pages live (docs/runbooks of this repository, e.g. https://github.com/ORG/REPO/blob/main/docs/runbooks); every alarm description links to its page there."
  type        = string
  default     = "docs/runbooks"
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
