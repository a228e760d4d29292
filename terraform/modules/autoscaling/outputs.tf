output "backlog_per_task_target" {
  description = "Target messages per worker task derived from latency, job time and concurrency."
  value       = local.backlog_per_task_target
}
