{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "StoreOriginalsAndPresignUploads",
      "Effect": "Allow",
      "Action": ["s3:PutObject"],
      "Resource": ["${bucket_arn}/originals/*", "${bucket_arn}/uploads/*"]
    },
    {
      "Sid": "AbandonFailedMultipartOriginals",
      "Effect": "Allow",
      "Action": ["s3:AbortMultipartUpload"],
      "Resource": ["${bucket_arn}/originals/*"]
    },
    {
      "Sid": "ServeVariantsAndOriginals",
      "Effect": "Allow",
      "Action": ["s3:GetObject"],
      "Resource": ["${bucket_arn}/variants/*", "${bucket_arn}/private/*", "${bucket_arn}/originals/*"]
    },
    {
      "Sid": "DeleteImages",
      "Effect": "Allow",
      "Action": ["s3:DeleteObject"],
      "Resource": ["${bucket_arn}/originals/*", "${bucket_arn}/variants/*", "${bucket_arn}/private/*", "${bucket_arn}/uploads/*"]
    },
    {
      "Sid": "FindAnImagesObjects",
      "Effect": "Allow",
      "Action": ["s3:ListBucket"],
      "Resource": ["${bucket_arn}"],
      "Condition": {"StringLike": {"s3:prefix": ["originals/*", "variants/*", "private/*", "uploads/*"]}}
    },
    {
      "Sid": "EnqueueJobs",
      "Effect": "Allow",
      "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
      "Resource": ["${queue_arn}"]
    },
    {
      "Sid": "AdminReplayEnqueuesOnTheBulkLane",
      "Effect": "Allow",
      "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
      "Resource": ["${bulk_queue_arn}"]
    },
    {
      "Sid": "AdminReplayRedrivesDeadLetters",
      "Effect": "Allow",
      "Action": [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:StartMessageMoveTask",
        "sqs:ListMessageMoveTasks"
      ],
      "Resource": ["${dlq_arn}", "${bulk_dlq_arn}"]
    },
    {
      "Sid": "AdminReplayPublishesSummary",
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
