# Three topics, all KMS-encrypted (the key policy in the storage module lets SNS and CloudWatch use
# the key):
# - `events` carries the service's own events (image.processed, image.failed, replay.summary),
#   published with MessageStructure=json (the JSON event for sqs/https/lambda, short text for
#   email) and typed message attributes event/status/preset/env for filter policies;
# - `chat` (SNS_CHAT_TOPIC_ARN) carries the same events in AWS Chatbot's custom-notification
#   schema, only those named in CHAT_EVENTS (the service filters before publishing); Chatbot
#   subscribes to it, never to `events`, whose raw JSON it cannot render;
# - `ops` carries CloudWatch alarms.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id    = data.aws_caller_identity.current.account_id
  slack_enabled = var.slack_team_id != "" && var.slack_channel_id != ""
  topics = {
    events = aws_sns_topic.events.arn
    chat   = aws_sns_topic.chat.arn
    ops    = aws_sns_topic.ops.arn
  }
}

resource "aws_sns_topic" "events" {
  name              = "${var.name}-events"
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

# Exists whether or not Slack is configured, so the services' configuration does not depend on
# it; without a Chatbot channel it simply has no subscribers.
resource "aws_sns_topic" "chat" {
  name              = "${var.name}-chat"
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

resource "aws_sns_topic" "ops" {
  name              = "${var.name}-ops"
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "topic" {
  for_each = local.topics

  # Same-account principals with an identity policy (the api, worker and replay roles) may publish;
  # nobody outside the account may do anything.
  statement {
    sid = "OwnerAccountManagesTopic"
    actions = [
      "sns:Publish",
      "sns:Subscribe",
      "sns:GetTopicAttributes",
      "sns:SetTopicAttributes",
      "sns:ListSubscriptionsByTopic",
    ]
    resources = [each.value]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "ops" ? [1] : []

    content {
      sid       = "CloudWatchAlarmsPublish"
      actions   = ["sns:Publish"]
      resources = [each.value]

      principals {
        type        = "Service"
        identifiers = ["cloudwatch.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  for_each = local.topics

  arn    = each.value
  policy = data.aws_iam_policy_document.topic[each.key].json
}

resource "aws_sns_topic_subscription" "event_email" {
  for_each = toset(var.event_email_addresses)

  topic_arn           = aws_sns_topic.events.arn
  protocol            = "email"
  endpoint            = each.value
  filter_policy_scope = "MessageAttributes"
  filter_policy       = jsonencode(var.event_email_filter_policy)
}

resource "aws_sns_topic_subscription" "ops_email" {
  for_each = toset(var.ops_email_addresses)

  topic_arn = aws_sns_topic.ops.arn
  protocol  = "email"
  endpoint  = each.value
}
