# Access logs: CloudFront standard logging v2, delivered by CloudWatch Logs to the access-log
# bucket under AWSLogs/<account>/CloudFront/ (beside alb/ and s3/). v2 writes with the bucket
# owner's ownership, so that bucket keeps ACLs disabled; the legacy logging_config would need them.
# CloudFront is global and vends its logs from us-east-1, so the delivery resources live there
# (the bucket may be in any region). modules/storage calls this module and owns that bucket.
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging.html
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-V2-S3.html

locals {
  log_region = "us-east-1"
}

resource "aws_cloudwatch_log_delivery_source" "access" {
  region       = local.log_region
  name         = "${var.name}-cdn-access"
  log_type     = "ACCESS_LOGS"
  resource_arn = aws_cloudfront_distribution.this.arn

  tags = var.tags
}

resource "aws_cloudwatch_log_delivery_destination" "access" {
  region = local.log_region
  name   = "${var.name}-cdn-access-logs-bucket"
  # The fields and layout of the legacy CloudFront logs, so existing Athena tables still read them.
  output_format = "w3c"

  delivery_destination_configuration {
    destination_resource_arn = var.logs_bucket_arn
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_delivery" "access" {
  region                   = local.log_region
  delivery_source_name     = aws_cloudwatch_log_delivery_source.access.name
  delivery_destination_arn = aws_cloudwatch_log_delivery_destination.access.arn

  s3_delivery_configuration {
    # After AWSLogs/<account>/CloudFront/, which AWS always puts first.
    suffix_path                 = "{DistributionId}/{yyyy}/{MM}/{dd}/{HH}"
    enable_hive_compatible_path = false
  }

  tags = var.tags

  # The bucket policy must admit this delivery source first (modules/storage/logs_bucket.tf).
  depends_on = [var.logs_bucket_policy_id]
}
