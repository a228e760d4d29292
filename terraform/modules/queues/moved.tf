# Until the two lanes became one for_each definition (main.tf, local.lanes), each queue, DLQ and
# policy had its own resource block. These blocks tell Terraform that a stack applied before then
# holds the same objects under the old addresses, so `terraform apply` moves them in state
# instead of destroying the production queues (and every message on them) and creating new ones.
# Keep them as long as any stack may still hold the old addresses; removing one later is safe
# only once every state has been applied with it.
# https://developer.hashicorp.com/terraform/language/modules/develop/refactoring

# The live lane: jobs and its DLQ.
moved {
  from = aws_sqs_queue.jobs
  to   = aws_sqs_queue.queue["live"]
}

moved {
  from = aws_sqs_queue.dlq
  to   = aws_sqs_queue.dlq["live"]
}

moved {
  from = aws_sqs_queue_redrive_allow_policy.dlq
  to   = aws_sqs_queue_redrive_allow_policy.dlq["live"]
}

moved {
  from = aws_sqs_queue_policy.jobs
  to   = aws_sqs_queue_policy.queue["live"]
}

moved {
  from = aws_sqs_queue_policy.dlq
  to   = aws_sqs_queue_policy.dlq["live"]
}

# The bulk lane: jobs-bulk and its DLQ.
moved {
  from = aws_sqs_queue.bulk
  to   = aws_sqs_queue.queue["bulk"]
}

moved {
  from = aws_sqs_queue.bulk_dlq
  to   = aws_sqs_queue.dlq["bulk"]
}

moved {
  from = aws_sqs_queue_redrive_allow_policy.bulk_dlq
  to   = aws_sqs_queue_redrive_allow_policy.dlq["bulk"]
}

moved {
  from = aws_sqs_queue_policy.bulk
  to   = aws_sqs_queue_policy.queue["bulk"]
}

moved {
  from = aws_sqs_queue_policy.bulk_dlq
  to   = aws_sqs_queue_policy.dlq["bulk"]
}
