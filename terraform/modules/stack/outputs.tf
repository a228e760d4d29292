# Outputs named like the configuration keys the services read (S3_BUCKET -> s3_bucket, ...).

output "aws_region" {
  description = "AWS_REGION."
  value       = data.aws_region.current.region
}

output "app_env" {
  description = "APP_ENV."
  value       = var.env
}

output "s3_bucket" {
  description = "S3_BUCKET."
  value       = module.storage.bucket_name
}

output "s3_kms_key_id" {
  description = "S3_KMS_KEY_ID (full key ARN)."
  value       = module.storage.kms_key_arn
}

output "sqs_queue_url" {
  description = "SQS_QUEUE_URL."
  value       = module.queues.queue_url
}

output "sqs_dlq_url" {
  description = "SQS_DLQ_URL."
  value       = module.queues.dlq_url
}

output "sqs_bulk_queue_url" {
  description = "SQS_BULK_QUEUE_URL: the bulk lane (replays and reprocessing)."
  value       = module.queues.bulk_queue_url
}

output "sqs_bulk_dlq_url" {
  description = "SQS_BULK_DLQ_URL: the bulk lane's dead-letter queue."
  value       = module.queues.bulk_dlq_url
}

output "sns_topic_arn" {
  description = "SNS_TOPIC_ARN."
  value       = module.notifications.events_topic_arn
}

output "sns_chat_topic_arn" {
  description = "SNS_CHAT_TOPIC_ARN (AWS Chatbot custom notifications)."
  value       = module.notifications.chat_topic_arn
}

output "chat_events" {
  description = "CHAT_EVENTS."
  value       = join(",", module.notifications.chat_events)
}

output "database_url" {
  description = "DATABASE_URL without the password (tasks get PGPASSWORD from db_master_secret_arn)."
  value       = module.data.database_url
}

output "redis_url" {
  description = "REDIS_URL."
  value       = module.data.redis_url
}

output "public_base_url" {
  description = "PUBLIC_BASE_URL (public_base_url, else https://<ALB DNS name>)."
  value       = module.compute.public_base_url
}

output "delivery_base_url" {
  description = "DELIVERY_BASE_URL (the CDN: delivery_domain_name, else its *.cloudfront.net name)."
  value       = module.storage.delivery_base_url
}

output "delivery_key_id" {
  description = "DELIVERY_KEY_ID: CloudFront's id of the signing public key; null without delivery_public_keys."
  value       = module.storage.delivery_key_id
}

output "delivery_distribution_id" {
  description = "CDN distribution id (invalidations)."
  value       = module.storage.delivery_distribution_id
}

output "delivery_distribution_domain_name" {
  description = "The CDN's *.cloudfront.net name: point delivery_domain_name here (CNAME or alias)."
  value       = module.storage.delivery_distribution_domain_name
}

output "delivery_signing_key_secret_arn" {
  description = "Secret to put the delivery signing private key into (docs/deploy.md, CDN delivery)."
  value       = module.data.delivery_signing_key_secret_arn
}

output "db_master_secret_arn" {
  description = "RDS-managed secret with the master user's password."
  value       = module.data.db_master_secret_arn
}

output "admin_api_key_secret_arn" {
  description = "Secret to put ADMIN_API_KEY into (docs/deploy.md)."
  value       = module.data.admin_api_key_secret_arn
}

output "ecr_repository_url" {
  description = "Where to push the image."
  value       = module.registry.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster."
  value       = module.compute.cluster_name
}

output "migrate_task_definition_arn" {
  description = "Task definition for `image-service migrate`."
  value       = module.compute.migrate_task_definition_arn
}

output "replay_task_definition_arn" {
  description = "Task definition for `image-service replay ...` / `reprocess ...`."
  value       = module.compute.replay_task_definition_arn
}

output "service_task_definitions" {
  description = "ECS service name => the task definition it must run after a deployment (release workflow)."
  value       = module.compute.service_task_definitions
}

output "ops_task_network" {
  description = "awsvpcConfiguration for one-off tasks (aws ecs run-task)."
  value = {
    subnets        = module.network.private_subnet_ids
    securityGroups = [module.network.security_group_ids.ops]
    assignPublicIp = "DISABLED"
  }
}

output "alb_dns_name" {
  description = "Point the API's DNS record here."
  value       = module.compute.alb_dns_name
}

output "ops_topic_arn" {
  description = "Alarm topic."
  value       = module.notifications.ops_topic_arn
}

output "backlog_per_task_target" {
  description = "Worker autoscaling target (messages per task)."
  value       = module.autoscaling.backlog_per_task_target
}
