# Every alarm notifies the ops topic on ALARM and on OK, and its description ends with the link
# to its runbook (docs/runbooks/<page>.md: what it means, how to confirm it, what to do).

locals {
  alarm_actions = [var.ops_topic_arn]

  # One page per alarm, named like the alarm (the burn-rate pairs share their SLO's page).
  runbook_pages = [
    "dlq-not-empty",
    "bulk-dlq-not-empty",
    "oldest-job-age",
    "worker-error-rate",
    "api-5xx",
    "rds-cpu",
    "rds-free-storage",
    "slo-job-events-burn-rate",
    "slo-api-availability-burn-rate",
  ]
  runbook_url = { for page in local.runbook_pages : page => "${trimsuffix(var.runbook_base_url, "/")}/${page}.md" }
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Poison jobs are waiting in the DLQ: inspect, then `image-service replay dlq`. Runbook: ${local.runbook_url["dlq-not-empty"]}"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# The bulk lane's own dead letters: replays or reprocessing jobs that failed max_receive_count
# times. `replay dlq` redrives this DLQ too, into the bulk queue.
resource "aws_cloudwatch_metric_alarm" "bulk_dlq_not_empty" {
  alarm_name          = "${var.name}-bulk-dlq-not-empty"
  alarm_description   = "Poison replay or reprocessing jobs are waiting in the bulk DLQ: inspect, then `image-service replay dlq`. Runbook: ${local.runbook_url["bulk-dlq-not-empty"]}"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.bulk_dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# The live queue only: the bulk lane gets a bounded share of the workers, so a large replay is
# expected to wait there (the dashboard shows its age).
resource "aws_cloudwatch_metric_alarm" "oldest_job_age" {
  alarm_name          = "${var.name}-oldest-job-age"
  alarm_description   = "The oldest job has waited over ${var.oldest_message_age_threshold_seconds} s: workers are stuck or at their maximum. Runbook: ${local.runbook_url["oldest-job-age"]}"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_message_age_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# Error rate = ERROR log lines per received job, in percent, over both lanes (the log lines do
# not say which lane a job came from). MAX([received, 1]) keeps an idle queue from dividing by
# zero; FILL keeps a lane that reports nothing (an idle bulk lane) from blanking the sum.
resource "aws_cloudwatch_metric_alarm" "worker_error_rate" {
  alarm_name          = "${var.name}-worker-error-rate"
  alarm_description   = "Worker ERROR lines exceed ${var.worker_error_rate_threshold_percent}% of received jobs. Runbook: ${local.runbook_url["worker-error-rate"]}"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.worker_error_rate_threshold_percent
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "errors"
    return_data = false

    metric {
      namespace   = local.metric_namespace
      metric_name = aws_cloudwatch_log_metric_filter.worker_errors.metric_transformation[0].name
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "received"
    return_data = false

    metric {
      namespace   = "AWS/SQS"
      metric_name = "NumberOfMessagesReceived"
      period      = 300
      stat        = "Sum"
      dimensions  = { QueueName = var.queue_name }
    }
  }

  metric_query {
    id          = "received_bulk"
    return_data = false

    metric {
      namespace   = "AWS/SQS"
      metric_name = "NumberOfMessagesReceived"
      period      = 300
      stat        = "Sum"
      dimensions  = { QueueName = var.bulk_queue_name }
    }
  }

  metric_query {
    id          = "error_rate"
    label       = "Worker error rate (%)"
    expression  = "100 * FILL(errors, 0) / MAX([FILL(received, 0) + FILL(received_bulk, 0), 1])"
    return_data = true
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-api-5xx"
  alarm_description   = "The API returned more than ${var.api_5xx_threshold} 5xx responses in 5 minutes. Runbook: ${local.runbook_url["api-5xx"]}"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_5xx_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "rds_cpu" {
  alarm_name          = "${var.name}-rds-cpu"
  alarm_description   = "Postgres CPU above ${var.rds_cpu_threshold_percent}% for 15 minutes. Runbook: ${local.runbook_url["rds-cpu"]}"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.rds_cpu_threshold_percent
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "rds_free_storage" {
  alarm_name          = "${var.name}-rds-free-storage"
  alarm_description   = "Postgres free storage below ${var.rds_free_storage_threshold_bytes} bytes. Runbook: ${local.runbook_url["rds-free-storage"]}"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.rds_free_storage_threshold_bytes
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}
