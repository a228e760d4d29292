output "kms_key_arn" {
  description = "Full ARN of the service key (S3_KMS_KEY_ID)."
  value       = aws_kms_key.this.arn
}

output "kms_key_policy_id" {
  description = "Id of the key policy resource; depend on it before services use the key."
  value       = aws_kms_key_policy.this.id
}

output "bucket_name" {
  description = "Media bucket name (S3_BUCKET)."
  value       = aws_s3_bucket.media.id
}

output "bucket_arn" {
  description = "Media bucket ARN."
  value       = aws_s3_bucket.media.arn
}

output "logs_bucket_name" {
  description = "Bucket receiving ALB (prefix alb/) and S3 (prefix s3/) access logs."
  value       = aws_s3_bucket.logs.id
}
