# The services' Prometheus metrics reach CloudWatch through an ADOT collector sidecar in the api
# and worker tasks (docs/operations.md, "Metrics on AWS"): its prometheus receiver scrapes the
# service's /metrics over the task's localhost, and the awsemf exporter writes them as
# embedded-metric-format log events to the metrics log group, from which CloudWatch Logs
# extracts them into var.metrics_namespace. No code in the binary knows about CloudWatch, and
# compose scrapes the very same endpoint with Prometheus.
# https://aws-otel.github.io/docs/getting-started/container-insights/ecs-prometheus
# https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/exporter/awsemfexporter
#
# The same sidecar carries the services' traces to X-Ray (docs/operations.md, "Traces on AWS"):
# its otlp receiver takes the spans the binary posts over OTLP/HTTP, and the awsxray exporter
# sends them as segment documents with PutTraceSegments. The binary speaks plain OpenTelemetry
# (OTEL_* variables, set in main.tf) and knows nothing of X-Ray either.
# https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/exporter/awsxrayexporter

locals {
  # What each role's collector scrapes: the api serves /metrics on its listener (the ALB answers
  # 404 for it outside), the worker on METRICS_ADDR.
  metrics_targets = {
    api    = "localhost:${local.api_port}"
    worker = "localhost:${local.metrics}"
  }

  # Only what the alarms and the dashboard read is kept: each metric name with one set of
  # dimensions is a custom metric billed monthly, and every sample is EMF log ingestion. The
  # labels kept are bounded (outcomes and error codes are fixed sets); per-route API series stay
  # in Prometheus only, and the API's availability SLO reads the ALB's own metrics instead.
  metric_declarations = {
    api = [
      { dimensions = [["result"]], metric_name_selectors = ["^image_api_cache_lookups_total$"] },
    ]
    worker = [
      # SLO 1's good/total pair (modules/observability/slo.tf).
      { dimensions = [["within_objective"]], metric_name_selectors = ["^image_worker_events_total$"] },
      { dimensions = [["outcome", "code"]], metric_name_selectors = ["^image_worker_jobs_total$"] },
      { dimensions = [["queue"]], metric_name_selectors = ["^image_worker_queue_messages$"] },
      { dimensions = [["result"]], metric_name_selectors = ["^image_worker_webhook_deliveries_total$"] },
      { dimensions = [["stage"]], metric_name_selectors = ["^image_worker_stage_seconds$"] },
      { dimensions = [["lane"]], metric_name_selectors = ["^image_worker_queue_lag_seconds$"] },
      { dimensions = [[]], metric_name_selectors = ["^image_worker_upload_to_event_seconds$", "^image_worker_jobs_in_flight$"] },
    ]
  }

  # The scrape keeps the raw series of those names alone (a histogram's are _bucket, _sum and
  # _count), so the rest never becomes EMF log volume.
  metrics_keep = {
    for role, declarations in local.metric_declarations : role => join("|", [
      for selector in flatten([for d in declarations : d.metric_name_selectors]) :
      "${trimsuffix(trimprefix(selector, "^"), "$")}(_bucket|_sum|_count)?"
    ])
  }

  # Where the services send their spans: the task's localhost only. A task's containers share one
  # network namespace (awsvpc), so the service reaches the collector there, and nothing outside the
  # task can (no port mapping, and no security group opens 4318).
  otlp_http_port = 4318
  otlp_endpoint  = "localhost:${local.otlp_http_port}"

  # What the collector adds for traces: nothing at all while traces_enabled is false.
  traces_collector = var.traces_enabled ? {
    receivers = {
      otlp = { protocols = { http = { endpoint = local.otlp_endpoint } } }
    }
    processors = {
      # Spans leave within a second or so, in the calls of up to 50 segments PutTraceSegments
      # takes; the metrics' 60 s batch would hold a trace back a minute, and lose more at a stop.
      "batch/traces" = { timeout = "1s", send_batch_size = 50 }
    }
    exporters = {
      # No region and no ids to convert, as for awsemf: the exporter takes the task's region
      # (ECS sets AWS_REGION in every container), and X-Ray accepts the W3C trace ids the binary
      # makes (random ones, no X-Ray id generator) from ADOT collector 0.34.0 on; the exporter only
      # rewrites them in X-Ray's spelling. index_all_attributes stays off (the default): span
      # attributes become segment metadata, not annotations, which X-Ray caps at 50 per trace;
      # the job resource and every event already carry the trace id to look a trace up by.
      # https://aws.amazon.com/about-aws/whats-new/2023/10/aws-x-ray-w3c-format-trace-ids-distributed-tracing/
      # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-environment-variables.html
      awsxray = {}
    }
    pipelines = {
      # resourcedetection adds the task's ECS attributes, which the segments carry as their aws.ecs.
      traces = { receivers = ["otlp"], processors = ["resourcedetection", "batch/traces"], exporters = ["awsxray"] }
    }
  } : { receivers = {}, processors = {}, exporters = {}, pipelines = {} }

  adot_config = {
    for role, target in local.metrics_targets : role => yamlencode({
      receivers = merge(local.traces_collector.receivers, {
        prometheus = {
          config = {
            # One sample a minute: CloudWatch's standard resolution, and the alarms' finest period.
            global = { scrape_interval = "60s", scrape_timeout = "10s" }
            scrape_configs = [{
              job_name       = role
              static_configs = [{ targets = [target] }]
              metric_relabel_configs = [{
                source_labels = ["__name__"]
                regex         = local.metrics_keep[role]
                action        = "keep"
              }]
            }]
          }
        }
      })
      processors = merge(local.traces_collector.processors, {
        # The task id names each task's log stream.
        resourcedetection = { detectors = ["env", "ecs"] }
        batch             = { timeout = "60s" }
      })
      exporters = merge(local.traces_collector.exporters, {
        awsemf = {
          namespace       = var.metrics_namespace
          log_group_name  = var.metrics_log_group.name
          log_stream_name = "${role}/{TaskId}"
          # Prometheus counters arrive cumulative; awsemf sends each scrape's increase, so a
          # metric's Sum over a period is the count of that period across every task.
          # No rollups: each metric is published with exactly the dimensions declared (every
          # rollup would be another billed metric).
          dimension_rollup_option = "NoDimensionRollup"
          metric_declarations     = local.metric_declarations[role]
        }
      })
      service = {
        pipelines = merge(local.traces_collector.pipelines, {
          metrics = { receivers = ["prometheus"], processors = ["resourcedetection", "batch"], exporters = ["awsemf"] }
        })
      }
    })
  }

  adot_containers = {
    for role in keys(local.metrics_targets) : role => {
      name  = "adot-collector"
      image = var.adot_collector_image
      # Not essential: a collector that dies costs metrics, never the service's work.
      essential              = false
      readonlyRootFilesystem = true
      # The image reads its whole configuration from this variable: no file, no SSM parameter
      # (and no ssm:GetParameter grant) to keep in step with the task definition.
      environment = [{ name = "AOT_CONFIG_CONTENT", value = local.adot_config[role] }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.log_group_names[role]
          awslogs-region        = local.region
          awslogs-stream-prefix = "adot"
        }
      }
    }
  }

  # Role names from the iam module's ARNs (arn:aws:iam::ACCOUNT:role/NAME).
  metrics_roles = { for role in keys(local.metrics_targets) : role => regex("[^/]+$", var.task_role_arns[role]) }
  # The same roles, while their collectors send traces.
  traces_roles = var.traces_enabled ? local.metrics_roles : {}
}

# The collectors write EMF events to the one metrics log group: that is all they may do. EMF
# needs no cloudwatch:PutMetricData: CloudWatch Logs extracts the metrics from the events.
data "aws_iam_policy_document" "metrics" {
  statement {
    sid       = "WriteEmfEvents"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [var.metrics_log_group.arn, "${var.metrics_log_group.arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "metrics" {
  for_each = local.metrics_roles

  name   = "emf-metrics"
  role   = each.value
  policy = data.aws_iam_policy_document.metrics.json
}

# The collectors send the services' spans to X-Ray, and PutTraceSegments is the only X-Ray call
# the awsxray exporter makes as configured here. Not the rest of AWSXRayDaemonWriteAccess:
# - PutTelemetryRecords carries the exporter's own health counts only when its `telemetry`
#   setting is enabled, and it is off by default (awsxray = {} above);
# - GetSamplingRules and GetSamplingTargets serve X-Ray's central sampling, which the binary does
#   not use: it samples itself (OTEL_TRACES_SAMPLER, main.tf), and the collector has no awsxray
#   receiver to proxy those reads for an X-Ray SDK.
# PutTraceSegments has no resource type: X-Ray only takes "*" for it.
# https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/exporter/awsxrayexporter#exporter-configuration
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html
data "aws_iam_policy_document" "traces" {
  statement {
    sid       = "SendTraces"
    actions   = ["xray:PutTraceSegments"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "traces" {
  for_each = local.traces_roles

  name   = "xray-traces"
  role   = each.value
  policy = data.aws_iam_policy_document.traces.json
}
