# The ECS cluster and the three shapes of the one binary: `api` behind the ALB, `worker` consuming
# the job queue, and one-off `migrate` / `replay` tasks run by operators (docs/deploy.md).

data "aws_region" "current" {}

locals {
  region   = data.aws_region.current.region
  api_port = 8080
  # The ALB's idle timeout, and the api's keep-alive idle timeout a little beyond it.
  alb_idle_timeout_secs = 120
  api_keep_alive_secs   = local.alb_idle_timeout_secs + 5
  metrics               = 9090
  tmp_mount             = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]

  # ECS sends SIGTERM, waits stopTimeout, then SIGKILLs. The worker needs its whole shutdown
  # deadline to finish in-flight jobs, plus a margin to flush and exit; ECS caps it at 120 s.
  # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html
  worker_stop_timeout = var.shutdown_deadline_secs + var.stop_timeout_margin_secs
  # At exit the binary sends the spans it still holds, and waits at most this long for that:
  # the shutdown timeout of opentelemetry_sdk's TracerProvider (0.33: 5 s). Each service's
  # stopTimeout leaves it this time after its own work, or the task's last spans die in SIGKILL.
  trace_flush_secs = 5
  # The api gets SIGTERM only after the ALB has drained it for the deregistration delay (alb.tf),
  # so few requests are still open then: they get this long, and the flush the rest.
  api_drain_secs   = 25
  api_stop_timeout = local.api_drain_secs + local.trace_flush_secs

  # Each service's container starts after the collector sidecar of its task (metrics.tf), which
  # every api and worker task runs, for metrics and traces alike. ECS stops containers in the
  # reverse order of their dependencies: at a stop or scale-in the service gets SIGTERM first and
  # the collector only once the service has exited, so the spans the service flushes at exit
  # still find a receiver, and the collector then sends them on. START, not HEALTHY: the
  # collector is not essential, and the service must never wait on its health to start.
  # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDependency.html
  collector_dependency = {
    for role, container in local.adot_containers : role => [{ containerName = container.name, condition = "START" }]
  }

  # Links in events (worker) and in API answers. Without an explicit hostname the ALB's own name is
  # the only address this module knows; its certificate is for the API hostname, so operators set
  # public_base_url (docs/deploy.md).
  public_base_url = var.public_base_url != "" ? trimsuffix(var.public_base_url, "/") : "https://${aws_lb.api.dns_name}"

  # Configuration every role reads; names are the contract's environment variables.
  common_environment = {
    AWS_REGION    = local.region
    APP_ENV       = var.app_env
    LOG_FORMAT    = "json"
    DATABASE_URL  = var.config.database_url
    S3_BUCKET     = var.config.s3_bucket
    S3_KMS_KEY_ID = var.config.s3_kms_key_id
    SQS_QUEUE_URL = var.config.sqs_queue_url
    SQS_DLQ_URL   = var.config.sqs_dlq_url
    SNS_TOPIC_ARN = var.config.sns_topic_arn
    # The bulk lane (issue #27): the api's admin replays and the replay task send there, the
    # worker receives from it after the live queue, and `replay dlq` redrives both DLQs into it.
    SQS_BULK_QUEUE_URL = var.config.sqs_bulk_queue_url
    SQS_BULK_DLQ_URL   = var.config.sqs_bulk_dlq_url
    # The api reads through the cache; the worker invalidates entries when a job changes state.
    REDIS_URL = var.config.redis_url
    # Chat (AWS Chatbot) gets its own topic; the services publish there only the events named in
    # CHAT_EVENTS (docs/notifications.md).
    SNS_CHAT_TOPIC_ARN = var.config.sns_chat_topic_arn
    CHAT_EVENTS        = join(",", var.chat_events)
    # Originals retention (issue #20): the default N (0 = keep), the day counts the media bucket
    # has lifecycle rules for (the binary refuses any other global or tenant value), and how long
    # superseded variants outlive their replacement. The api validates and sweeps, the worker tags.
    ORIGINALS_RETENTION_DAYS    = tostring(var.originals_retention_days)
    ORIGINALS_RETENTION_CHOICES = join(",", [for d in var.originals_retention_choices : tostring(d)])
    STALE_VARIANTS_GRACE_HOURS  = tostring(var.stale_variants_grace_hours)
  }

  # The global default must be one the bucket's lifecycle can honour.
  originals_retention_valid = var.originals_retention_days == 0 || contains(var.originals_retention_choices, var.originals_retention_days)

  # Secrets reach the container through the execution role, never as plain environment values.
  # DATABASE_URL carries no password: libpq-style clients (sqlx, hence sea-orm) read PGPASSWORD.
  # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html
  # The services and replay connect as the application role (rows only); only migrate connects
  # as the master user, the schema's owner, and sets the application role's password and grants.
  database_secret = [{ name = "PGPASSWORD", valueFrom = "${var.db_app_secret_arn}:password::" }]
  owner_secrets = [
    { name = "PGPASSWORD", valueFrom = "${var.db_secret_arn}:password::" },
    { name = "DATABASE_APP_PASSWORD", valueFrom = "${var.db_app_secret_arn}:password::" },
  ]
  migrate_environment = merge(local.common_environment, {
    DATABASE_URL      = var.config.owner_database_url
    DATABASE_APP_ROLE = var.config.db_app_role
  })
  admin_secret = [{ name = "ADMIN_API_KEY", valueFrom = var.admin_api_key_secret_arn }]

  # Delivery URLs (docs/deploy.md, "CDN delivery"): both services build them, the api for its
  # answers and the worker for the image.processed event. Kept out of the one-off tasks, like
  # PUBLIC_BASE_URL: the migrate task definition must not wait for a CloudFront distribution.
  # Without a signing key (no delivery_public_keys) the services make no signed URLs, and the
  # secret, which then may still be empty, is not injected: ECS would not start a task whose
  # secret has no value.
  delivery_signing = var.delivery_key_id != null
  delivery_environment = merge(
    {
      DELIVERY_BASE_URL = var.delivery_base_url
      # Origins whose pages may PUT presigned uploads: the media bucket's CORS rule allows the
      # same list (modules/storage, upload_cors_allowed_origins).
      CORS_ALLOWED_ORIGINS = join(",", var.cors_allowed_origins)
    },
    local.delivery_signing ? { DELIVERY_KEY_ID = var.delivery_key_id } : {},
  )
  delivery_secret = local.delivery_signing ? [{ name = "DELIVERY_SIGNING_KEY", valueFrom = var.delivery_signing_key_secret_arn }] : []

  # Traces (docs/operations.md, "Traces on AWS"): each service posts OTLP/HTTP to the collector
  # sidecar of its own task (metrics.tf), which sends the spans on to X-Ray. Only the services run
  # a sidecar, so the one-off tasks don't trace. Without traces_enabled none of these is set, and
  # the binary installs no tracing layer at all.
  trace_environment = {
    for role in ["api", "worker"] : role => var.traces_enabled ? {
      OTEL_EXPORTER_OTLP_ENDPOINT = "http://${local.otlp_endpoint}"
      OTEL_SERVICE_NAME           = "image-${role}"
      # A new trace is recorded at this ratio; a request whose caller's traceparent is sampled is
      # recorded whatever it says, so one upload stays one trace from the client to the event.
      OTEL_TRACES_SAMPLER     = "parentbased_traceidratio"
      OTEL_TRACES_SAMPLER_ARG = tostring(var.trace_sampling_ratio)
    } : {}
  }

  # Only the services link to the API; the one-off tasks stay independent of the ALB, so the
  # migrate task definition can still be applied on its own before it (docs/deploy.md, step 6).
  api_environment = merge(local.common_environment, local.delivery_environment, local.trace_environment.api, {
    LISTEN_ADDR = "0.0.0.0:${local.api_port}"
    # The ALB appends the address it saw to X-Forwarded-For: the rightmost entry is the client
    # the per-address limit of callers without a key counts (docs/operations.md).
    TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    # Behind the ALB a request head arrives whole, so this is the keep-alive idle timeout, which
    # must outlast the ALB's.
    HTTP_HEADER_READ_TIMEOUT_SECS = tostring(local.api_keep_alive_secs)
    PUBLIC_BASE_URL               = local.public_base_url
    # POST /v1/uploads: the presigned PUT to uploads/{job_id} is valid this long.
    UPLOAD_URL_TTL_SECS = tostring(var.upload_url_ttl_secs)
    # Per API key token bucket: average rate and burst.
    RATE_LIMIT_PER_SECOND = tostring(var.rate_limit_per_second)
    RATE_LIMIT_BURST      = tostring(var.rate_limit_burst)
    # And one bucket for all of a tenant's keys together.
    TENANT_RATE_LIMIT_PER_SECOND = tostring(var.tenant_rate_limit_per_second)
    TENANT_RATE_LIMIT_BURST      = tostring(var.tenant_rate_limit_burst)
  })

  worker_environment = merge(local.common_environment, local.delivery_environment, local.trace_environment.worker, {
    PUBLIC_BASE_URL        = local.public_base_url
    METRICS_ADDR           = "0.0.0.0:${local.metrics}"
    WORKER_CONCURRENCY     = tostring(var.worker.concurrency)
    SHUTDOWN_DEADLINE_SECS = tostring(var.shutdown_deadline_secs)
  })

  api_container = {
    name                   = "api"
    image                  = var.image
    essential              = true
    command                = ["api"]
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = local.api_port, protocol = "tcp" }]
    environment            = [for k in sort(keys(local.api_environment)) : { name = k, value = local.api_environment[k] }]
    secrets                = concat(local.database_secret, local.admin_secret, local.delivery_secret)
    mountPoints            = local.tmp_mount
    stopTimeout            = local.api_stop_timeout
    dependsOn              = local.collector_dependency.api
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names.api
        awslogs-region        = local.region
        awslogs-stream-prefix = "api"
      }
    }
  }

  worker_container = {
    name                   = "worker"
    image                  = var.image
    essential              = true
    command                = ["worker"]
    readonlyRootFilesystem = true
    environment            = [for k in sort(keys(local.worker_environment)) : { name = k, value = local.worker_environment[k] }]
    secrets                = concat(local.database_secret, local.delivery_secret)
    mountPoints            = local.tmp_mount
    stopTimeout            = local.worker_stop_timeout
    dependsOn              = local.collector_dependency.worker
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names.worker
        awslogs-region        = local.region
        awslogs-stream-prefix = "worker"
      }
    }
  }

  # One-off operator tasks share one shape; `replay` takes its subcommand as a command override
  # (replay dlq | replay jobs | reprocess --preset NAME).
  ops_containers = {
    migrate = {
      command     = ["migrate"]
      role        = null
      environment = local.migrate_environment
      secrets     = local.owner_secrets
    }
    replay = {
      command     = ["replay", "dlq"]
      role        = var.task_role_arns.replay
      environment = local.common_environment
      secrets     = local.database_secret
    }
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  # Any `ecs execute-command` session is logged, encrypted, to the ops log group.
  configuration {
    execute_command_configuration {
      kms_key_id = var.kms_key_arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = var.log_group_names.ops
      }
    }
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# --- Task definitions ------------------------------------------------------------------------

resource "aws_ecs_task_definition" "api" {
  family                   = "${var.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.api.cpu
  memory                   = var.api.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arns.api
  container_definitions    = jsonencode([local.api_container, local.adot_containers.api])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Scratch space on the task's ephemeral storage; the root filesystem stays read-only.
  volume {
    name = "tmp"
  }

  tags = var.tags

  # Both services refuse to start on a default outside the choices: fail the plan instead.
  lifecycle {
    precondition {
      condition     = local.originals_retention_valid
      error_message = "originals_retention_days must be 0 (keep forever) or one of originals_retention_choices."
    }
  }
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker.cpu
  memory                   = var.worker.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arns.worker
  container_definitions    = jsonencode([local.worker_container, local.adot_containers.worker])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "tmp"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.worker_stop_timeout >= 2 && local.worker_stop_timeout <= 120
      error_message = "SHUTDOWN_DEADLINE_SECS + margin must fit ECS's stopTimeout range (2..120 s)."
    }

    # The margin after the shutdown deadline is when the worker flushes its spans.
    precondition {
      condition     = var.stop_timeout_margin_secs >= local.trace_flush_secs
      error_message = "stop_timeout_margin_secs must leave the worker the time it takes to flush its spans at exit (local.trace_flush_secs)."
    }

    precondition {
      condition     = local.originals_retention_valid
      error_message = "originals_retention_days must be 0 (keep forever) or one of originals_retention_choices."
    }
  }
}

resource "aws_ecs_task_definition" "ops" {
  for_each = local.ops_containers

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.ops_task.cpu
  memory                   = var.ops_task.memory
  execution_role_arn       = var.execution_role_arn
  # migrate only talks to Postgres, so it runs without any AWS permissions.
  task_role_arn = each.value.role

  container_definitions = jsonencode([{
    name                   = each.key
    image                  = var.image
    essential              = true
    command                = each.value.command
    readonlyRootFilesystem = true
    environment            = [for k in sort(keys(each.value.environment)) : { name = k, value = each.value.environment[k] }]
    secrets                = each.value.secrets
    mountPoints            = local.tmp_mount
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names.ops
        awslogs-region        = local.region
        awslogs-stream-prefix = each.key
      }
    }
  }])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "tmp"
  }

  tags = var.tags
}

# --- Services --------------------------------------------------------------------------------

resource "aws_ecs_service" "api" {
  name                              = "api"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.api.arn
  desired_count                     = var.api.desired_count
  health_check_grace_period_seconds = 30
  propagate_tags                    = "SERVICE"
  enable_ecs_managed_tags           = true

  capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.security_group_ids.api]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = local.api_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  # The autoscaling module owns the task count after the first apply.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https, aws_ecs_cluster_capacity_providers.this]
}

resource "aws_ecs_service" "worker" {
  name                    = "worker"
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.worker.arn
  desired_count           = var.worker.desired_count
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  # Spot suits the worker: an interrupted task gets SIGTERM, finishes within its deadline, and
  # anything unfinished reappears on the queue after the visibility timeout.
  capacity_provider_strategy {
    capacity_provider = var.worker.use_spot ? "FARGATE_SPOT" : "FARGATE"
    weight            = 1
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.security_group_ids.worker]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.this]
}
