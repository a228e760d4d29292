# Slack through AWS Chatbot, only when both Slack ids are set. The workspace must first be
# authorised once in the Chatbot console (that step has no API).
# https://docs.aws.amazon.com/chatbot/latest/adminguide/slack-setup.html

data "aws_iam_policy_document" "chatbot_assume" {
  count = local.slack_enabled ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["chatbot.amazonaws.com"]
    }
  }
}

# The channel only receives notifications: its role gets no permissions at all.
resource "aws_iam_role" "chatbot" {
  count = local.slack_enabled ? 1 : 0

  name               = "${var.name}-chatbot"
  assume_role_policy = data.aws_iam_policy_document.chatbot_assume[0].json

  tags = var.tags
}

# Chatbot subscribes itself to the listed topics. It renders CloudWatch alarms (ops) natively and
# anything else only in its custom-notification schema, which is what the services publish to the
# chat topic, for the events in CHAT_EVENTS only. The event topic is not listed: its messages are
# the JSON event, which Chatbot would drop.
# https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html
resource "aws_chatbot_slack_channel_configuration" "this" {
  count = local.slack_enabled ? 1 : 0

  configuration_name = var.name
  iam_role_arn       = aws_iam_role.chatbot[0].arn
  slack_team_id      = var.slack_team_id
  slack_channel_id   = var.slack_channel_id
  sns_topic_arns     = [aws_sns_topic.chat.arn, aws_sns_topic.ops.arn]
  # Caps what channel members could ever do through the bot at read-only, whatever role is
  # attached later (the default guardrail is AdministratorAccess).
  guardrail_policy_arns = ["arn:${data.aws_partition.current.partition}:iam::aws:policy/ReadOnlyAccess"]
  logging_level         = "ERROR"

  tags = var.tags
}
