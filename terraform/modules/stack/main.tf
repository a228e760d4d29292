# The whole service for one environment. The env roots only choose sizes and names.
#
#   clients ──HTTPS──> ALB ──> api tasks ──> S3 (originals/, uploads/ via presigned PUT)
#                                  │              │ ObjectCreated uploads/*
#                                  └──SendMessage─┴──────> SQS jobs ───────(maxReceiveCount)──> DLQ
#   replays, reprocessing ─────────SendMessage───────────> SQS jobs-bulk ──(maxReceiveCount)──> bulk DLQ
#   (api admin endpoints, replay task; `replay dlq` moves both DLQs into jobs-bulk)
#                                                            │
#                               worker tasks <──Receive──────┘ (both lanes, the live one first)
#                                   ──> S3 variants/ + private/, Postgres, SNS events + chat topic (-> Chatbot)
#
#   web pages ──HTTPS──> CloudFront (delivery) ──OAC──> S3 variants/ (public), private/ (signed URLs)

locals {
  name = "${var.project}-${var.env}"
  tags = {
    Project     = var.project
    Environment = var.env
  }
}

module "network" {
  source = "../network"

  name               = local.name
  cidr_block         = var.vpc_cidr
  az_suffixes        = var.az_suffixes
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = module.storage.kms_key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

module "storage" {
  source = "../storage"

  name                        = local.name
  upload_cors_allowed_origins = var.upload_cors_allowed_origins
  originals_retention_choices = var.originals_retention_choices
  # The CDN in front of the variants (modules/delivery, called by storage: the bucket and key
  # policies name the distribution, and the distribution reads the bucket).
  delivery_public_keys      = var.delivery_public_keys
  delivery_signing_key_name = var.delivery_signing_key_name
  delivery_domain_name      = var.delivery_domain_name
  delivery_certificate_arn  = var.delivery_certificate_arn
  tags                      = local.tags
}

module "queues" {
  source = "../queues"

  name                   = local.name
  kms_key_arn            = module.storage.kms_key_arn
  bucket_id              = module.storage.bucket_name
  bucket_arn             = module.storage.bucket_arn
  worst_case_job_seconds = var.worst_case_job_seconds
  max_receive_count      = var.max_receive_count
  tags                   = local.tags
}

module "notifications" {
  source = "../notifications"

  name                      = local.name
  kms_key_arn               = module.storage.kms_key_arn
  event_email_addresses     = var.event_email_addresses
  event_email_filter_policy = var.event_email_filter_policy
  ops_email_addresses       = var.ops_email_addresses
  slack_team_id             = var.slack_team_id
  slack_channel_id          = var.slack_channel_id
  chat_events               = var.chat_events
  tags                      = local.tags
}

module "registry" {
  source = "../registry"

  name        = local.name
  kms_key_arn = module.storage.kms_key_arn
  tags        = local.tags
}

module "data" {
  source = "../data"

  name                       = local.name
  subnet_ids                 = module.network.private_subnet_ids
  database_security_group_id = module.network.security_group_ids.database
  cache_security_group_id    = module.network.security_group_ids.cache
  kms_key_arn                = module.storage.kms_key_arn
  db_instance_class          = var.db_instance_class
  db_multi_az                = var.db_multi_az
  db_backup_retention_days   = var.db_backup_retention_days
  deletion_protection        = var.deletion_protection
  cache_node_type            = var.cache_node_type
  cache_nodes                = var.cache_nodes
  tags                       = local.tags
}

module "iam" {
  source = "../iam"

  name                     = local.name
  bucket_arn               = module.storage.bucket_arn
  queue_arn                = module.queues.queue_arn
  dlq_arn                  = module.queues.dlq_arn
  bulk_queue_arn           = module.queues.bulk_queue_arn
  bulk_dlq_arn             = module.queues.bulk_dlq_arn
  topic_arn                = module.notifications.events_topic_arn
  chat_topic_arn           = module.notifications.chat_topic_arn
  kms_key_arn              = module.storage.kms_key_arn
  ecr_repository_arn       = module.registry.repository_arn
  log_group_arns           = module.observability.log_group_arns
  db_secret_arn            = module.data.db_master_secret_arn
  db_app_secret_arn        = module.data.db_app_secret_arn
  admin_api_key_secret_arn = module.data.admin_api_key_secret_arn
  # The execution role reads it whether or not the tasks use it yet.
  delivery_signing_key_secret_arn = module.data.delivery_signing_key_secret_arn
  tags                            = local.tags
}

module "compute" {
  source = "../compute/ecs"

  name                         = local.name
  app_env                      = var.env
  vpc_id                       = module.network.vpc_id
  public_subnet_ids            = module.network.public_subnet_ids
  private_subnet_ids           = module.network.private_subnet_ids
  security_group_ids           = module.network.security_group_ids
  kms_key_arn                  = module.storage.kms_key_arn
  certificate_arn              = var.certificate_arn
  alb_deletion_protection      = var.alb_deletion_protection
  access_logs_bucket           = module.storage.logs_bucket_name
  image                        = "${module.registry.repository_url}:${var.image_tag}"
  cpu_architecture             = var.cpu_architecture
  task_role_arns               = module.iam.task_role_arns
  execution_role_arn           = module.iam.execution_role_arn
  log_group_names              = module.observability.log_group_names
  metrics_namespace            = module.observability.metric_namespace
  metrics_log_group            = module.observability.metrics_log_group
  db_secret_arn                = module.data.db_master_secret_arn
  db_app_secret_arn            = module.data.db_app_secret_arn
  admin_api_key_secret_arn     = module.data.admin_api_key_secret_arn
  api                          = var.api_task
  worker                       = var.worker_task
  shutdown_deadline_secs       = var.shutdown_deadline_secs
  chat_events                  = module.notifications.chat_events
  public_base_url              = var.public_base_url
  upload_url_ttl_secs          = var.upload_url_ttl_secs
  rate_limit_per_second        = var.rate_limit_per_second
  rate_limit_burst             = var.rate_limit_burst
  tenant_rate_limit_per_second = var.tenant_rate_limit_per_second
  tenant_rate_limit_burst      = var.tenant_rate_limit_burst
  # Traces through the sidecars to X-Ray (docs/operations.md, "Traces on AWS").
  traces_enabled       = var.traces_enabled
  trace_sampling_ratio = var.trace_sampling_ratio
  # The same choices as the bucket's lifecycle rules (module.storage): one list, both sides.
  originals_retention_days    = var.originals_retention_days
  originals_retention_choices = var.originals_retention_choices
  stale_variants_grace_hours  = var.stale_variants_grace_hours
  # Delivery URLs through the CDN; signed ones only once a key exists (modules/delivery).
  delivery_base_url               = module.storage.delivery_base_url
  delivery_key_id                 = module.storage.delivery_key_id
  delivery_signing_key_secret_arn = module.data.delivery_signing_key_secret_arn
  # One list of upload origins: the bucket's CORS rule (module.storage) and the services' own.
  cors_allowed_origins = var.upload_cors_allowed_origins
  tags                 = local.tags

  config = {
    s3_bucket          = module.storage.bucket_name
    s3_kms_key_id      = module.storage.kms_key_arn
    sqs_queue_url      = module.queues.queue_url
    sqs_dlq_url        = module.queues.dlq_url
    sqs_bulk_queue_url = module.queues.bulk_queue_url
    sqs_bulk_dlq_url   = module.queues.bulk_dlq_url
    sns_topic_arn      = module.notifications.events_topic_arn
    sns_chat_topic_arn = module.notifications.chat_topic_arn
    database_url       = module.data.database_url
    owner_database_url = module.data.owner_database_url
    db_app_role        = module.data.db_app_username
    redis_url          = module.data.redis_url
  }
}

module "autoscaling" {
  source = "../autoscaling"

  name                       = local.name
  cluster_name               = module.compute.cluster_name
  worker_service_name        = module.compute.worker_service_name
  api_service_name           = module.compute.api_service_name
  queue_name                 = module.queues.queue_name
  bulk_queue_name            = module.queues.bulk_queue_name
  worker_min_tasks           = var.worker_min_tasks
  worker_max_tasks           = var.worker_max_tasks
  api_min_tasks              = var.api_min_tasks
  api_max_tasks              = var.api_max_tasks
  acceptable_latency_seconds = var.acceptable_latency_seconds
  seconds_per_job            = var.seconds_per_job
  worker_concurrency         = var.worker_task.concurrency
  tags                       = local.tags
}

module "observability" {
  source = "../observability"

  name                    = local.name
  kms_key_arn             = module.storage.kms_key_arn
  log_retention_days      = var.log_retention_days
  ops_topic_arn           = module.notifications.ops_topic_arn
  queue_name              = module.queues.queue_name
  dlq_name                = module.queues.dlq_name
  bulk_queue_name         = module.queues.bulk_queue_name
  bulk_dlq_name           = module.queues.bulk_dlq_name
  cluster_name            = module.compute.cluster_name
  worker_service_name     = module.compute.worker_service_name
  api_service_name        = module.compute.api_service_name
  alb_arn_suffix          = module.compute.alb_arn_suffix
  target_group_arn_suffix = module.compute.target_group_arn_suffix
  db_instance_id          = module.data.db_instance_id
  runbook_base_url        = var.runbook_base_url
  tags                    = local.tags
}

data "aws_region" "current" {}
