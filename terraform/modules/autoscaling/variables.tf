variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster of the services."
  type        = string
}

variable "worker_service_name" {
  description = "Worker service to scale on queue backlog."
  type        = string
}

variable "api_service_name" {
  description = "API service to scale on CPU."
  type        = string
}

variable "queue_name" {
  description = "Job queue name (CloudWatch dimension QueueName)."
  type        = string
}

variable "bulk_queue_name" {
  description = "Bulk lane name (CloudWatch dimension QueueName): its backlog counts like the job queue's."
  type        = string
}

variable "worker_min_tasks" {
  description = "Fewest worker tasks; 0 lets the service scale to zero when the queue is empty."
  type        = number
  default     = 0
}

variable "worker_max_tasks" {
  description = "Most worker tasks (cost ceiling and database connection budget)."
  type        = number
  default     = 10
}

variable "api_min_tasks" {
  description = "Fewest API tasks (behind the ALB it cannot scale to zero)."
  type        = number
  default     = 1
}

variable "api_max_tasks" {
  description = "Most API tasks."
  type        = number
  default     = 4
}

variable "api_cpu_target_percent" {
  description = "Average CPU the API service is kept at."
  type        = number
  default     = 60
}

variable "acceptable_latency_seconds" {
  description = "How long a job may wait in the queue before a worker starts it."
  type        = number
  default     = 60
}

variable "seconds_per_job" {
  description = "Average wall time of one job in one worker slot (measure it: docs/benchmarks.md)."
  type        = number
  default     = 2
}

variable "worker_concurrency" {
  description = "WORKER_CONCURRENCY: jobs in flight per worker task."
  type        = number
  default     = 4
}

variable "scale_in_cooldown_seconds" {
  description = "Pause after a scale-in before another; long enough for in-flight jobs to drain."
  type        = number
  default     = 300
}

variable "scale_out_cooldown_seconds" {
  description = "Pause after a scale-out before another."
  type        = number
  default     = 60
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
