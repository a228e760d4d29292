# One page for the pipeline: both queue lanes, workers, API, database.

data "aws_region" "current" {}

locals {
  region = data.aws_region.current.region

  widgets = [
    {
      title = "Jobs: visible, in flight, dead-lettered"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.queue_name],
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.queue_name],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { label = "DLQ visible" }],
      ]
      stat = "Maximum"
    },
    # The bulk lane (replays, reprocessing) beside the live one: a growing bulk backlog is
    # expected during a replay; a live one is not.
    {
      title = "Bulk lane: visible, in flight, dead-lettered"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.bulk_queue_name],
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.bulk_queue_name],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.bulk_dlq_name, { label = "bulk DLQ visible" }],
      ]
      stat = "Maximum"
    },
    {
      title = "Oldest job age (s)"
      metrics = [
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_name, { label = "live" }],
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.bulk_queue_name, { label = "bulk" }],
      ]
      stat = "Maximum"
    },
    {
      title = "Running tasks"
      metrics = [
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name],
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.api_service_name],
      ]
      stat = "Average"
    },
    {
      title = "Backlog per worker task"
      metrics = [
        # Both lanes, as the worker autoscaling counts them (modules/autoscaling).
        [{ expression = "(FILL(live, 0) + FILL(bulk, 0)) / tasks", label = "backlog per task", id = "backlog" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.queue_name, { id = "live", visible = false }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.bulk_queue_name, { id = "bulk", visible = false }],
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name, { id = "tasks", visible = false }],
      ]
      stat = "Average"
    },
    # The services' own metrics, from the ADOT sidecars' EMF (modules/compute/ecs/metrics.tf).
    {
      title = "Jobs by outcome and error code"
      metrics = [
        [{ expression = "SEARCH('{${local.metric_namespace},code,outcome} MetricName=\"image_worker_jobs_total\"', 'Sum', 60)", label = "", id = "jobs" }],
      ]
      stat = "Sum"
    },
    {
      title = "SLO 1: outcome events within 60 s of the upload"
      metrics = [
        [{ expression = "100 * FILL(good, 0) / MAX([FILL(good, 0) + FILL(bad, 0), 1])", label = "% within 60 s (objective 99)", id = "sli" }],
        [local.metric_namespace, "image_worker_events_total", "within_objective", "true", { id = "good", visible = false }],
        [local.metric_namespace, "image_worker_events_total", "within_objective", "false", { id = "bad", visible = false }],
      ]
      stat = "Sum"
    },
    {
      title = "Webhook deliveries retried, expired"
      metrics = [
        [local.metric_namespace, "image_worker_webhook_deliveries_total", "result", "retried"],
        [local.metric_namespace, "image_worker_webhook_deliveries_total", "result", "expired"],
      ]
      stat = "Sum"
    },
    {
      title   = "Worker errors"
      metrics = [[local.metric_namespace, "WorkerErrors"]]
      stat    = "Sum"
    },
    {
      title = "API requests and 5xx"
      metrics = [
        ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix],
        ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix, "TargetGroup", var.target_group_arn_suffix],
        ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", var.alb_arn_suffix],
      ]
      stat = "Sum"
    },
    {
      title   = "API latency p95 (s)"
      metrics = [["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix]]
      stat    = "p95"
    },
    {
      title = "Postgres CPU, connections"
      metrics = [
        ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", var.db_instance_id],
        ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", var.db_instance_id, { yAxis = "right" }],
      ]
      stat = "Average"
    },
    {
      title   = "Postgres free storage (bytes)"
      metrics = [["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", var.db_instance_id]]
      stat    = "Minimum"
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name

  dashboard_body = jsonencode({
    widgets = [
      for i, w in local.widgets : {
        type   = "metric"
        x      = (i % 3) * 8
        y      = floor(i / 3) * 6
        width  = 8
        height = 6
        properties = {
          title   = w.title
          region  = local.region
          metrics = w.metrics
          stat    = w.stat
          period  = 60
          view    = "timeSeries"
        }
      }
    ]
  })
}
