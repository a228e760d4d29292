# Worker: target tracking on backlog per task, the metric AWS recommends for queue consumers
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-using-sqs-queue.html
# plus a step policy that wakes the service from zero tasks, where backlog per task is undefined.
# The backlog is both lanes' (the live queue and the bulk lane of replays and reprocessing): the
# same workers drain both, so a replay of a million jobs must add tasks as a burst of uploads does.
# SQS reports a queue's metrics only while the queue is active, so each lane's series is FILLed
# with 0: the bulk lane is idle most of the time, and a silent lane must not blank the other's.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
# API: target tracking on CPU.

locals {
  worker_resource_id = "service/${var.cluster_name}/${var.worker_service_name}"
  api_resource_id    = "service/${var.cluster_name}/${var.api_service_name}"

  # Acceptable backlog per task = how many messages one task clears within the acceptable latency.
  #   throughput per task      = worker_concurrency / seconds_per_job   = 4 / 2 s  = 2 jobs/s
  #   backlog per task target  = acceptable_latency * throughput        = 60 s * 2 = 120 messages
  # With 600 messages visible the policy asks for 600 / 120 = 5 tasks.
  backlog_per_task_target = floor(var.acceptable_latency_seconds * var.worker_concurrency / var.seconds_per_job)
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = local.worker_resource_id
  min_capacity       = var.worker_min_tasks
  max_capacity       = var.worker_max_tasks

  tags = var.tags
}

resource "aws_appautoscaling_policy" "worker_backlog_per_task" {
  name               = "${var.name}-worker-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = local.backlog_per_task_target
    scale_in_cooldown  = var.scale_in_cooldown_seconds
    scale_out_cooldown = var.scale_out_cooldown_seconds

    customized_metric_specification {
      metrics {
        id          = "live"
        label       = "Live jobs waiting (ApproximateNumberOfMessagesVisible)"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = var.queue_name
            }
          }
        }
      }

      metrics {
        id          = "bulk"
        label       = "Bulk jobs waiting (ApproximateNumberOfMessagesVisible)"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = var.bulk_queue_name
            }
          }
        }
      }

      metrics {
        id          = "visible"
        label       = "Jobs waiting in both lanes"
        expression  = "FILL(live, 0) + FILL(bulk, 0)"
        return_data = false
      }

      metrics {
        id          = "tasks"
        label       = "Running worker tasks (RunningTaskCount)"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = var.cluster_name
            }

            dimensions {
              name  = "ServiceName"
              value = var.worker_service_name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Backlog per task"
        expression  = "visible / tasks"
        return_data = true
      }
    }
  }
}

# At zero tasks `visible / tasks` has no value, so target tracking cannot act. This alarm fires
# when jobs are visible in either lane (ApproximateNumberOfMessagesVisible > 0) while no worker
# runs, and the step policy sets one task; target tracking takes over from there. Limiting it to
# "no task running" keeps it from fighting target tracking during normal operation.
resource "aws_cloudwatch_metric_alarm" "worker_wake_up" {
  alarm_name          = "${var.name}-worker-wake-up"
  alarm_description   = "Jobs are waiting and no worker task runs: start one."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.worker_wake_up.arn]

  metric_query {
    id          = "live"
    return_data = false

    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        QueueName = var.queue_name
      }
    }
  }

  metric_query {
    id          = "bulk"
    return_data = false

    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        QueueName = var.bulk_queue_name
      }
    }
  }

  metric_query {
    id          = "visible"
    label       = "Jobs visible in both lanes"
    expression  = "FILL(live, 0) + FILL(bulk, 0)"
    return_data = false
  }

  metric_query {
    id          = "tasks"
    return_data = false

    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        ClusterName = var.cluster_name
        ServiceName = var.worker_service_name
      }
    }
  }

  metric_query {
    id          = "waiting_without_workers"
    label       = "Jobs visible while no worker runs"
    expression  = "IF(visible > 0 AND FILL(tasks, 0) < 1, visible, 0)"
    return_data = true
  }

  tags = var.tags
}

resource "aws_appautoscaling_policy" "worker_wake_up" {
  name               = "${var.name}-worker-wake-up"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = var.scale_out_cooldown_seconds
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = max(1, var.worker_min_tasks)
    }
  }
}

# --- API ---------------------------------------------------------------------------------------

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = local.api_resource_id
  min_capacity       = var.api_min_tasks
  max_capacity       = var.api_max_tasks

  tags = var.tags
}

resource "aws_appautoscaling_policy" "api_cpu" {
  name               = "${var.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension
  resource_id        = aws_appautoscaling_target.api.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.api_cpu_target_percent
    scale_in_cooldown  = var.scale_in_cooldown_seconds
    scale_out_cooldown = var.scale_out_cooldown_seconds

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
