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
  description = "Bucket receiving ALB (prefix alb/), S3 (prefix s3/) and CDN (prefix AWSLogs/<account>/CloudFront/) access logs."
  value       = aws_s3_bucket.logs.id
}

output "delivery_base_url" {
  description = "DELIVERY_BASE_URL: the CDN's https:// address (modules/delivery)."
  value       = module.delivery.base_url
}

output "delivery_key_id" {
  description = "DELIVERY_KEY_ID: CloudFront's id of the signing public key; null without delivery_public_keys."
  value       = module.delivery.signing_key_id
}

output "delivery_distribution_id" {
  description = "CDN distribution id (invalidations)."
  value       = module.delivery.distribution_id
}

output "delivery_distribution_domain_name" {
  description = "The CDN's *.cloudfront.net name: the CNAME/alias target of delivery_domain_name."
  value       = module.delivery.distribution_domain_name
}
