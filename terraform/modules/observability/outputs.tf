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
