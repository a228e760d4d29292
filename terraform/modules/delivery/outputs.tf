output "base_url" {
  description = "DELIVERY_BASE_URL: https:// and the custom domain if one is set, else the distribution's *.cloudfront.net name."
  value       = local.custom_domain ? "https://${var.domain_name}" : "https://${aws_cloudfront_distribution.this.domain_name}"
}

output "signing_key_id" {
  description = "DELIVERY_KEY_ID: CloudFront's id of the public key named by signing_key_name; null without keys (no signed URLs)."
  value       = local.signing ? aws_cloudfront_public_key.signers[var.signing_key_name].id : null
}

output "distribution_arn" {
  description = "The distribution's ARN: the only reader the media bucket and its key admit (AWS:SourceArn)."
  value       = aws_cloudfront_distribution.this.arn
}

output "distribution_id" {
  description = "Distribution id (aws cloudfront create-invalidation --distribution-id ...)."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_domain_name" {
  description = "The distribution's *.cloudfront.net name: the CNAME/alias target of delivery_domain_name."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "key_group_id" {
  description = "Key group trusted on /private/*; null without keys."
  value       = local.signing ? aws_cloudfront_key_group.signers[0].id : null
}

output "log_delivery_source_arn" {
  description = "Delivery source of the access logs: the one writer the access-log bucket admits under AWSLogs/<account>/CloudFront/ (aws:SourceArn)."
  value       = aws_cloudwatch_log_delivery_source.access.arn
}
