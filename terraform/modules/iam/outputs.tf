output "task_role_arns" {
  description = "Task role ARN per role: api, worker, replay."
  value       = { for role, r in aws_iam_role.task : role => r.arn }
}

output "execution_role_arn" {
  description = "Task execution role ARN."
  value       = aws_iam_role.execution.arn
}
