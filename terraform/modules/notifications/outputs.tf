output "events_topic_arn" {
  description = "Event topic ARN (SNS_TOPIC_ARN)."
  value       = aws_sns_topic.events.arn
}

output "chat_topic_arn" {
  description = "Topic for AWS Chatbot custom notifications (SNS_CHAT_TOPIC_ARN)."
  value       = aws_sns_topic.chat.arn
}

output "chat_events" {
  description = "Events the services publish to the chat topic (CHAT_EVENTS)."
  value       = var.chat_events
}

output "ops_topic_arn" {
  description = "Topic that CloudWatch alarms notify."
  value       = aws_sns_topic.ops.arn
}

output "slack_enabled" {
  description = "Whether the AWS Chatbot Slack channel is configured."
  value       = local.slack_enabled
}
