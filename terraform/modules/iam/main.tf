# One task role per role of the binary, each with exactly the actions the contract lists on
# exactly our resources, plus one execution role that ECS itself uses to pull the image, ship
# logs and inject secrets. The policy documents are JSON templates under policies/ so the
# emulator tests can render the same documents with their own ARNs.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region

  # Inputs shared by the task-role templates.
  task_policy_vars = {
    bucket_arn     = var.bucket_arn
    queue_arn      = var.queue_arn
    dlq_arn        = var.dlq_arn
    topic_arn      = var.topic_arn
    chat_topic_arn = var.chat_topic_arn
    kms_key_arn    = var.kms_key_arn
    # The bulk lane: replays and reprocessing are sent to it, and `replay dlq` moves both DLQs
    # into it (the move task's caller needs sqs:SendMessage on the destination, and reads its ARN
    # with sqs:GetQueueAttributes), so the api and replay roles send there and work both DLQs;
    # the worker consumes it as it does the live queue.
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
    bulk_queue_arn = var.bulk_queue_arn
    bulk_dlq_arn   = var.bulk_dlq_arn
    # The key is used only on the role's behalf by S3, SQS and SNS (kms:ViaService).
    region = local.region
    # The cluster is named like the stack (compute/ecs), so its tasks' ARNs
    # are known here; the worker sets scale-in protection on its own task.
    ecs_tasks_arn = "arn:${data.aws_partition.current.partition}:ecs:${local.region}:${local.account_id}:task/${var.name}/*"
  }

  task_roles = {
    api    = templatefile("${path.module}/policies/api.json.tpl", local.task_policy_vars)
    worker = templatefile("${path.module}/policies/worker.json.tpl", local.task_policy_vars)
    replay = templatefile("${path.module}/policies/replay.json.tpl", local.task_policy_vars)
  }

  execution_policy = templatefile("${path.module}/policies/execution.json.tpl", {
    ecr_repository_arn       = var.ecr_repository_arn
    api_log_group_arn        = var.log_group_arns.api
    worker_log_group_arn     = var.log_group_arns.worker
    ops_log_group_arn        = var.log_group_arns.ops
    db_secret_arn            = var.db_secret_arn
    db_app_secret_arn        = var.db_app_secret_arn
    admin_api_key_secret_arn = var.admin_api_key_secret_arn
    # DELIVERY_SIGNING_KEY of api and worker (modules/data).
    delivery_signing_key_secret_arn = var.delivery_signing_key_secret_arn
    kms_key_arn                     = var.kms_key_arn
    region                          = local.region
  })
}

# ECS may assume the roles only on behalf of this account's tasks (confused deputy).
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "task" {
  for_each = local.task_roles

  name               = "${var.name}-${each.key}-task"
  description        = "Task role of `image-service ${each.key}`"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "task" {
  for_each = local.task_roles

  name   = "${each.key}-least-privilege"
  role   = aws_iam_role.task[each.key].id
  policy = each.value
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-task-execution"
  description        = "Used by ECS to pull the image, ship logs and inject secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-inject-secrets"
  role   = aws_iam_role.execution.id
  policy = local.execution_policy
}
