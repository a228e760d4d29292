{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReadOriginalsAndUploads",
      "Effect": "Allow",
      "Action": ["s3:GetObject"],
      "Resource": ["${bucket_arn}/originals/*", "${bucket_arn}/uploads/*"]
    },
    {
      "Sid": "WriteVariantsAndOriginals",
      "Effect": "Allow",
      "Action": ["s3:PutObject"],
      "Resource": ["${bucket_arn}/variants/*", "${bucket_arn}/private/*", "${bucket_arn}/originals/*"]
    },
    {
      "Sid": "TagOriginalsForRetention",
      "Effect": "Allow",
      "Action": ["s3:PutObjectTagging"],
      "Resource": ["${bucket_arn}/originals/*"],
      "Condition": {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["image-service-retention-days"]}}
    },
    {
      "Sid": "ScaleInProtectionWhileBusy",
      "Effect": "Allow",
      "Action": ["ecs:UpdateTaskProtection"],
      "Resource": ["${ecs_tasks_arn}"]
    },
    {
      "Sid": "DeleteProcessedUploadsAndVariantsOfDeletedImages",
      "Effect": "Allow",
      "Action": ["s3:DeleteObject"],
      "Resource": ["${bucket_arn}/uploads/*", "${bucket_arn}/variants/*", "${bucket_arn}/private/*"]
    },
    {
      "Sid": "ConsumeJobs",
      "Effect": "Allow",
      "Action": [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes"
      ],
      "Resource": ["${queue_arn}", "${bulk_queue_arn}"]
    },
    {
      "Sid": "PublishEvents",
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
