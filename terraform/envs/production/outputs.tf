# Named like the configuration keys the services read; `terraform output -json` feeds scripts.

output "aws_region" {
  description = "AWS_REGION."
  value       = module.stack.aws_region
}

output "app_env" {
  description = "APP_ENV."
  value       = module.stack.app_env
}

output "s3_bucket" {
  description = "S3_BUCKET."
  value       = module.stack.s3_bucket
}

output "s3_kms_key_id" {
  description = "S3_KMS_KEY_ID."
  value       = module.stack.s3_kms_key_id
}

output "sqs_queue_url" {
  description = "SQS_QUEUE_URL."
  value       = module.stack.sqs_queue_url
}

output "sqs_dlq_url" {
  description = "SQS_DLQ_URL."
  value       = module.stack.sqs_dlq_url
}

output "sqs_bulk_queue_url" {
  description = "SQS_BULK_QUEUE_URL."
  value       = module.stack.sqs_bulk_queue_url
}

output "sqs_bulk_dlq_url" {
  description = "SQS_BULK_DLQ_URL."
  value       = module.stack.sqs_bulk_dlq_url
}

output "sns_topic_arn" {
  description = "SNS_TOPIC_ARN."
  value       = module.stack.sns_topic_arn
}

output "sns_chat_topic_arn" {
  description = "SNS_CHAT_TOPIC_ARN."
  value       = module.stack.sns_chat_topic_arn
}

output "chat_events" {
  description = "CHAT_EVENTS."
  value       = module.stack.chat_events
}

output "database_url" {
  description = "DATABASE_URL without the password."
  value       = module.stack.database_url
}

output "redis_url" {
  description = "REDIS_URL."
  value       = module.stack.redis_url
}

output "public_base_url" {
  description = "PUBLIC_BASE_URL."
  value       = module.stack.public_base_url
}

output "delivery_base_url" {
  description = "DELIVERY_BASE_URL."
  value       = module.stack.delivery_base_url
}

output "delivery_key_id" {
  description = "DELIVERY_KEY_ID (null without delivery_public_keys)."
  value       = module.stack.delivery_key_id
}

output "delivery_distribution_id" {
  description = "CDN distribution id."
  value       = module.stack.delivery_distribution_id
}

output "delivery_distribution_domain_name" {
  description = "CNAME/alias target of delivery_domain_name."
  value       = module.stack.delivery_distribution_domain_name
}

output "delivery_signing_key_secret_arn" {
  description = "Secret holding DELIVERY_SIGNING_KEY."
  value       = module.stack.delivery_signing_key_secret_arn
}

output "db_master_secret_arn" {
  description = "RDS-managed master user secret."
  value       = module.stack.db_master_secret_arn
}

output "admin_api_key_secret_arn" {
  description = "Secret holding ADMIN_API_KEY."
  value       = module.stack.admin_api_key_secret_arn
}

output "ecr_repository_url" {
  description = "Registry to push the image to."
  value       = module.stack.ecr_repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster."
  value       = module.stack.ecs_cluster_name
}

output "migrate_task_definition_arn" {
  description = "Task definition for `image-service migrate`."
  value       = module.stack.migrate_task_definition_arn
}

output "replay_task_definition_arn" {
  description = "Task definition for operator replays."
  value       = module.stack.replay_task_definition_arn
}

output "service_task_definitions" {
  description = "ECS service name => the task definition it must run after a deployment."
  value       = module.stack.service_task_definitions
}

output "ops_task_network" {
  description = "Network configuration for `aws ecs run-task`."
  value       = module.stack.ops_task_network
}

output "alb_dns_name" {
  description = "ALB DNS name."
  value       = module.stack.alb_dns_name
}

output "backlog_per_task_target" {
  description = "Worker autoscaling target."
  value       = module.stack.backlog_per_task_target
}
