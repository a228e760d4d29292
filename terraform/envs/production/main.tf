# Production: a NAT gateway per AZ, Multi-AZ Postgres, a cache replica, at least one worker
# always warm on on-demand Fargate.

module "stack" {
  source = "../../modules/stack"

  env                = "production"
  vpc_cidr           = "10.50.0.0/16"
  az_suffixes        = ["a", "b"]
  single_nat_gateway = false

  certificate_arn             = var.certificate_arn
  alb_deletion_protection     = true
  upload_cors_allowed_origins = var.upload_cors_allowed_origins
  public_base_url             = var.public_base_url
  image_tag                   = var.image_tag

  # The CDN in front of the variants (docs/deploy.md, "CDN delivery").
  delivery_public_keys      = var.delivery_public_keys
  delivery_signing_key_name = var.delivery_signing_key_name
  delivery_domain_name      = var.delivery_domain_name
  delivery_certificate_arn  = var.delivery_certificate_arn

  # Keep originals unless the operator opts in (tfvars): deleting them cannot be undone once the
  # noncurrent version has expired too.
  originals_retention_days    = var.originals_retention_days
  originals_retention_choices = var.originals_retention_choices
  stale_variants_grace_hours  = var.stale_variants_grace_hours

  # Traces to X-Ray (docs/operations.md, "Traces on AWS"): tfvars may turn them off or change the
  # share of new traces recorded.
  traces_enabled       = var.traces_enabled
  trace_sampling_ratio = var.trace_sampling_ratio

  api_task = {
    cpu           = 512
    memory        = 1024
    desired_count = 2
  }
  worker_task = {
    cpu           = 2048
    memory        = 4096
    desired_count = 1
    concurrency   = 8
    use_spot      = false
  }
  api_min_tasks    = 2
  api_max_tasks    = 6
  worker_min_tasks = 1
  worker_max_tasks = 20

  db_instance_class        = "db.t4g.medium"
  db_multi_az              = true
  db_backup_retention_days = 14
  deletion_protection      = true
  cache_node_type          = "cache.t4g.small"
  cache_nodes              = 2

  event_email_addresses = var.event_email_addresses
  ops_email_addresses   = var.ops_email_addresses
  slack_team_id         = var.slack_team_id
  slack_channel_id      = var.slack_channel_id
  log_retention_days    = 365
}
