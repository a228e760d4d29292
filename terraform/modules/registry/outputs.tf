output "repository_url" {
  description = "Registry URL to push to and pull from."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "Repository ARN (execution role pull permission)."
  value       = aws_ecr_repository.this.arn
}
