# The two SLOs of docs/operations.md ("SLOs") as multi-window burn-rate alarms, the SRE
# workbook's method (ch. 5 "Alerting on SLOs", table 5-8): each pair alarms only when both its
# long window (the burn is real) and its short window (it is still going on) burn the 30-day
# error budget faster than the factor. docker/prometheus/rules.yml holds the same pairs for
# compose; tests/infra/observability checks both against the table in the docs.
# https://sre.google/workbook/alerting-on-slos/
#
# Each window is one metric alarm whose period is the window (one datapoint: the ratio over the
# whole window). PutMetricAlarm allows Period x EvaluationPeriods up to 7 days for periods of an
# hour or more, and up to a day below that, so the 3-day window fits.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
# The window alarms notify nobody; the composite alarm of each pair notifies the ops topic.

locals {
  burn_rate_windows = {
    fast   = { long = 3600, short = 300, factor = 14.4, severity = "page" }
    slow   = { long = 21600, short = 1800, factor = 6, severity = "page" }
    budget = { long = 259200, short = 21600, factor = 1, severity = "ticket" }
  }

  slos = {
    # SLO 1: the worker's outcome events, split by whether each went out within 60 s of the
    # upload (image_worker_events_total{within_objective}, scraped by the ADOT sidecar into
    # this namespace, modules/compute/ecs).
    job-events = {
      objective   = 0.99
      description = "jobs reaching their outcome event within 60 s of the upload"
    }
    # SLO 2: the ALB's own counts, not the API's image_api_http_requests_total: the ALB also
    # sees the requests no API task answered (502/503/504 when tasks crash or none is healthy),
    # which is what a client meets. Both kinds of 5xx are errors.
    api-availability = {
      objective   = 0.999
      description = "API requests answered without a 5xx"
    }
  }

  burn_rate_pairs = {
    for pair in setproduct(keys(local.slos), keys(local.burn_rate_windows)) : "${pair[0]}-${pair[1]}" => {
      slo       = pair[0]
      window    = pair[1]
      threshold = local.burn_rate_windows[pair[1]].factor * (1 - local.slos[pair[0]].objective)
    }
  }

  # One alarm per window of every pair.
  burn_rate_window_alarms = merge([
    for name, pair in local.burn_rate_pairs : {
      for span in ["long", "short"] : "${name}-${span}" => merge(pair, {
        pair   = name
        span   = span
        period = local.burn_rate_windows[pair.window][span]
      })
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "burn_rate_window" {
  for_each = local.burn_rate_window_alarms

  alarm_name          = "${var.name}-slo-${each.key}"
  alarm_description   = "Error ratio of ${local.slos[each.value.slo].description} over ${each.value.period} s above ${each.value.threshold} (${local.burn_rate_windows[each.value.window].factor}x the budget). Runbook: ${local.runbook_url["slo-${each.value.slo}-burn-rate"]}"
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  evaluation_periods  = 1
  # No events, no ratio: an idle system burns no budget.
  treat_missing_data = "notBreaching"
  alarm_actions      = []
  ok_actions         = []

  dynamic "metric_query" {
    for_each = each.value.slo == "job-events" ? {
      bad  = "false"
      good = "true"
    } : {}

    content {
      id          = metric_query.key
      return_data = false

      metric {
        namespace   = local.metric_namespace
        metric_name = "image_worker_events_total"
        dimensions  = { within_objective = metric_query.value }
        period      = each.value.period
        stat        = "Sum"
      }
    }
  }

  dynamic "metric_query" {
    for_each = each.value.slo == "api-availability" ? {
      target_5xx = { metric = "HTTPCode_Target_5XX_Count", dimensions = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix } }
      elb_5xx    = { metric = "HTTPCode_ELB_5XX_Count", dimensions = { LoadBalancer = var.alb_arn_suffix } }
      requests   = { metric = "RequestCount", dimensions = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix } }
    } : {}

    content {
      id          = metric_query.key
      return_data = false

      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value.metric
        dimensions  = metric_query.value.dimensions
        period      = each.value.period
        stat        = "Sum"
      }
    }
  }

  # The ratio of the window. RequestCount leaves out requests the ALB answered before choosing a
  # target (its own 503s), so those are added to the total; MAX([..., 1]) keeps a quiet window
  # from dividing by zero.
  metric_query {
    id          = "error_ratio"
    label       = "Error ratio over ${each.value.period} s"
    return_data = true
    expression = (each.value.slo == "job-events"
      ? "FILL(bad, 0) / MAX([FILL(bad, 0) + FILL(good, 0), 1])"
      : "(FILL(target_5xx, 0) + FILL(elb_5xx, 0)) / MAX([FILL(requests, 0) + FILL(elb_5xx, 0), 1])"
    )
  }

  tags = var.tags
}

resource "aws_cloudwatch_composite_alarm" "burn_rate" {
  for_each = local.burn_rate_pairs

  alarm_name        = "${var.name}-slo-${each.key}"
  alarm_description = "${title(local.burn_rate_windows[each.value.window].severity)}: ${local.slos[each.value.slo].description} burn the error budget at over ${local.burn_rate_windows[each.value.window].factor}x over ${local.burn_rate_windows[each.value.window].long} s and ${local.burn_rate_windows[each.value.window].short} s. Runbook: ${local.runbook_url["slo-${each.value.slo}-burn-rate"]}"
  alarm_rule        = "ALARM(\"${aws_cloudwatch_metric_alarm.burn_rate_window["${each.key}-long"].alarm_name}\") AND ALARM(\"${aws_cloudwatch_metric_alarm.burn_rate_window["${each.key}-short"].alarm_name}\")"
  alarm_actions     = local.alarm_actions
  ok_actions        = local.alarm_actions

  tags = merge(var.tags, { severity = local.burn_rate_windows[each.value.window].severity })
}
