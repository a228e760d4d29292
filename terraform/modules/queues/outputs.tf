output "queue_url" {
  description = "Job queue URL (SQS_QUEUE_URL)."
  value       = aws_sqs_queue.queue["live"].url
}

output "queue_arn" {
  description = "Job queue ARN."
  value       = aws_sqs_queue.queue["live"].arn
}

output "queue_name" {
  description = "Job queue name (CloudWatch dimension QueueName)."
  value       = aws_sqs_queue.queue["live"].name
}

output "dlq_url" {
  description = "Dead-letter queue URL (SQS_DLQ_URL)."
  value       = aws_sqs_queue.dlq["live"].url
}

output "dlq_arn" {
  description = "Dead-letter queue ARN."
  value       = aws_sqs_queue.dlq["live"].arn
}

output "dlq_name" {
  description = "Dead-letter queue name (CloudWatch dimension QueueName)."
  value       = aws_sqs_queue.dlq["live"].name
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the job queue."
  value       = aws_sqs_queue.queue["live"].visibility_timeout_seconds
}

output "bulk_queue_url" {
  description = "Bulk lane URL (SQS_BULK_QUEUE_URL): replays and reprocessing."
  value       = aws_sqs_queue.queue["bulk"].url
}

output "bulk_queue_arn" {
  description = "Bulk lane ARN."
  value       = aws_sqs_queue.queue["bulk"].arn
}

output "bulk_queue_name" {
  description = "Bulk lane name (CloudWatch dimension QueueName)."
  value       = aws_sqs_queue.queue["bulk"].name
}

output "bulk_dlq_url" {
  description = "The bulk lane's dead-letter queue URL (SQS_BULK_DLQ_URL)."
  value       = aws_sqs_queue.dlq["bulk"].url
}

output "bulk_dlq_arn" {
  description = "The bulk lane's dead-letter queue ARN."
  value       = aws_sqs_queue.dlq["bulk"].arn
}

output "bulk_dlq_name" {
  description = "The bulk lane's dead-letter queue name (CloudWatch dimension QueueName)."
  value       = aws_sqs_queue.dlq["bulk"].name
}
