# Log groups of the three task shapes, encrypted and with bounded retention. The worker's JSON
# logs feed a metric filter counting ERROR lines.

locals {
  log_groups = {
    api    = "/ecs/${var.name}/api"
    worker = "/ecs/${var.name}/worker"
    ops    = "/ecs/${var.name}/ops"
  }
  metric_namespace = "ImageService/${var.name}"
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

# tracing-subscriber's JSON format puts the level at the top: {"level":"ERROR",...}.
resource "aws_cloudwatch_log_metric_filter" "worker_errors" {
  name           = "${var.name}-worker-errors"
  log_group_name = aws_cloudwatch_log_group.this["worker"].name
  pattern        = "{ $.level = \"ERROR\" }"

  metric_transformation {
    name          = "WorkerErrors"
    namespace     = local.metric_namespace
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

# Embedded-metric-format events from the ADOT sidecars (modules/compute/ecs): CloudWatch Logs
# extracts the metrics into local.metric_namespace as they arrive, so the events themselves are
# needed only briefly. Seven days keeps them for a look at the raw samples at a seventh of the
# ingestion-plus-storage cost of the service logs' retention.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format.html
resource "aws_cloudwatch_log_group" "metrics" {
  name              = "/ecs/${var.name}/metrics"
  retention_in_days = var.metrics_log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}
