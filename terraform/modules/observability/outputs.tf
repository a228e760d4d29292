output "log_group_names" {
  description = "Log group name per task shape: api, worker, ops."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

output "log_group_arns" {
  description = "Log group ARN per task shape: api, worker, ops."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.arn }
}

output "dashboard_name" {
  description = "CloudWatch dashboard name."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "metric_namespace" {
  description = "CloudWatch namespace of the services' own metrics (the ADOT sidecars' EMF and the log metric filter)."
  value       = local.metric_namespace
}

output "metrics_log_group" {
  description = "Log group the ADOT sidecars write EMF events to: name and ARN."
  value       = { name = aws_cloudwatch_log_group.metrics.name, arn = aws_cloudwatch_log_group.metrics.arn }
}
