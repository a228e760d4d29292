{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "EcrAuthorizationTokenHasNoResourceType",
      "Effect": "Allow",
      "Action": ["ecr:GetAuthorizationToken"],
      "Resource": ["*"]
    },
    {
      "Sid": "PullServiceImage",
      "Effect": "Allow",
      "Action": [
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage"
      ],
      "Resource": ["${ecr_repository_arn}"]
    },
    {
      "Sid": "ShipContainerLogs",
      "Effect": "Allow",
      "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
      "Resource": [
        "${api_log_group_arn}",
        "${api_log_group_arn}:*",
        "${worker_log_group_arn}",
        "${worker_log_group_arn}:*",
        "${ops_log_group_arn}",
        "${ops_log_group_arn}:*"
      ]
    },
    {
      "Sid": "InjectSecrets",
      "Effect": "Allow",
      "Action": ["secretsmanager:GetSecretValue"],
      "Resource": ["${db_secret_arn}", "${db_app_secret_arn}", "${admin_api_key_secret_arn}", "${delivery_signing_key_secret_arn}"]
    },
    {
      "Sid": "DecryptSecretsThroughSecretsManager",
      "Effect": "Allow",
      "Action": ["kms:Decrypt"],
      "Resource": ["${kms_key_arn}"],
      "Condition": {
        "StringEquals": {"kms:ViaService": "secretsmanager.${region}.amazonaws.com"}
      }
    }
  ]
}
