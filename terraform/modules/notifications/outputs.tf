output "events_topic_arn" {
  description = "Event topic ARN (SNS_TOPIC_ARN)."
  value       = aws_sns_topic.events.arn
}

output "ops_topic_arn" {
  description = "Topic that CloudWatch alarms notify."
  value       = aws_sns_topic.ops.arn
}

output "slack_enabled" {
  description = "Whether the AWS Chatbot Slack channel is configured."
  value       = local.slack_enabled
}
