{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "DrainAndRedriveDeadLetters",
      "Effect": "Allow",
      "Action": [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:StartMessageMoveTask",
        "sqs:ListMessageMoveTasks",
        "sqs:CancelMessageMoveTask"
      ],
      "Resource": ["${dlq_arn}", "${bulk_dlq_arn}"]
    },
    {
      "Sid": "ReEnqueueJobsOnTheBulkLane",
      "Effect": "Allow",
      "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
      "Resource": ["${bulk_queue_arn}"]
    },
    {
      "Sid": "PublishReplaySummary",
      "Effect": "Allow",
      "Action": ["sns:Publish"],
      "Resource": ["${topic_arn}", "${chat_topic_arn}"]
    },
    {
      "Sid": "UseServiceKey",
      "Effect": "Allow",
      "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
      "Resource": ["${kms_key_arn}"],
      "Condition": {
        "StringEquals": {
          "kms:ViaService": ["s3.${region}.amazonaws.com", "sqs.${region}.amazonaws.com", "sns.${region}.amazonaws.com"]
        }
      }
    }
  ]
}
