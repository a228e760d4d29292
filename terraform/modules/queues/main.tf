# Two lanes, each a standard queue with its own dead-letter queue. Messages are small JSON (ids
# and keys only); a job that fails max_receive_count times lands in its lane's DLQ, where
# `image-service replay dlq` picks it up.
#
# - jobs (lane `live`): live uploads (the api, and S3's uploads/ notifications);
# - jobs-bulk (lane `bulk`): operators' replays and reprocessing (issue #27), so a backfill of a
#   million images never sits in front of a live upload. Workers receive from both, the live lane
#   first and the bulk lane for a bounded share of their slots. `replay dlq` redrives BOTH
#   dead-letter queues into the bulk lane (StartMessageMoveTask with DestinationArn, or
#   receive/send/delete), so a replayed poison job waits behind live traffic too.
#
# Both lanes are fair queues: the services send every job with MessageGroupId = its tenant id,
# and on a standard queue that alone makes SQS keep one tenant's backlog from raising the other
# tenants' dwell time (no queue attribute and no IAM action turns it on). S3's notifications carry
# no group id; SQS counts each as a tenant of its own.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html

data "aws_caller_identity" "current" {}

locals {
  # SQS caps the visibility timeout at 12 hours.
  visibility_timeout_seconds = min(43200, var.worst_case_job_seconds * var.visibility_timeout_multiplier)

  # The lanes, by key: the suffix of each lane's queue name (its DLQ adds "-dlq"). Both lanes
  # are one definition below, so a replayed job gets exactly a live job's settings: it takes as
  # long as a live one, and its DLQ must outlive the queue for the same reason. The keys are
  # part of every resource address (moved.tf moved the pre-lane addresses onto them); renaming
  # one would destroy and recreate that lane's queues.
  lanes = {
    live = "jobs"
    bulk = "jobs-bulk"
  }
}

resource "aws_sqs_queue" "dlq" {
  for_each = local.lanes

  name                              = "${var.name}-${each.value}-dlq"
  message_retention_seconds         = var.dlq_message_retention_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  tags = var.tags

  lifecycle {
    # SQS keeps a message's original enqueue timestamp when it moves to the DLQ, so a DLQ with a
    # shorter retention silently drops poison jobs before anyone can replay them.
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
    precondition {
      condition     = var.dlq_message_retention_seconds > var.message_retention_seconds
      error_message = "The DLQ must retain messages longer than the main queue."
    }
  }
}

resource "aws_sqs_queue" "queue" {
  for_each = local.lanes

  name                              = "${var.name}-${each.value}"
  visibility_timeout_seconds        = local.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds
  receive_wait_time_seconds         = 20 # long polling: fewer empty receives, lower cost
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

# Only the lane's own queue may use its DLQ. (This policy says which queues may dead-letter into
# a queue; the redrive of both DLQs into the bulk queue needs no queue policy: a move task acts
# with its caller's sqs:SendMessage on the destination, an identity grant of the same account.)
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = local.lanes

  queue_url = aws_sqs_queue.dlq[each.key].id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.queue[each.key].arn]
  })
}

# The live queue only: uploads/ notifications go to the live lane, never to the bulk lane.
data "aws_iam_policy_document" "s3_events" {
  # S3 may send ObjectCreated events, but only for our bucket in our account (confused deputy).
  # https://docs.aws.amazon.com/AmazonS3/latest/userguide/ways-to-add-notification-config-to-bucket.html
  statement {
    sid       = "AllowMediaBucketEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.queue["live"].arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.bucket_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# Each lane's queue: the S3 statement on the live lane (first, as before the lanes were one
# definition, so the policy JSON did not change), and on both the Deny of plain HTTP.
data "aws_iam_policy_document" "queue" {
  for_each = local.lanes

  source_policy_documents = each.key == "live" ? [data.aws_iam_policy_document.s3_events.json] : []

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.queue[each.key].arn]

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
}

resource "aws_sqs_queue_policy" "queue" {
  for_each = local.lanes

  queue_url = aws_sqs_queue.queue[each.key].id
  policy    = data.aws_iam_policy_document.queue[each.key].json
}

# The DLQs: no Allow at all (nothing may send to them but the roles' own grants and SQS's
# dead-lettering), and the Deny of plain HTTP.
data "aws_iam_policy_document" "dlq" {
  for_each = local.lanes

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq[each.key].arn]

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
}

resource "aws_sqs_queue_policy" "dlq" {
  for_each = local.lanes

  queue_url = aws_sqs_queue.dlq[each.key].id
  policy    = data.aws_iam_policy_document.dlq[each.key].json
}

# Presigned PUTs land in uploads/; S3 tells the job queue. The notification lives here, next to
# the queue policy that authorises it: S3 checks that it may send when the notification is saved.
resource "aws_s3_bucket_notification" "uploads" {
  bucket = var.bucket_id

  queue {
    id            = "uploads-to-job-queue"
    queue_arn     = aws_sqs_queue.queue["live"].arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "uploads/"
  }

  depends_on = [aws_sqs_queue_policy.queue]
}
