# The CDN in front of the variants (modules/delivery). It is called from here, not from the stack,
# because it and this module's policies refer to each other: the distribution reads the media
# bucket and writes logs to the access-log bucket, and the bucket and key policies (s3.tf, kms.tf,
# logs_bucket.tf) admit exactly that distribution and its log delivery. One module owning both
# ends keeps the module graph acyclic (checkov renders no variables across a cycle between
# sibling modules: every count and for_each of the stack went unexpanded).

module "delivery" {
  source = "../delivery"

  name                        = var.name
  bucket_regional_domain_name = aws_s3_bucket.media.bucket_regional_domain_name
  logs_bucket_arn             = aws_s3_bucket.logs.arn
  # The log delivery starts once the log bucket's policy admits it, so CloudWatch Logs never adds
  # a statement of its own to that policy.
  logs_bucket_policy_id = aws_s3_bucket_policy.logs.id
  public_keys           = var.delivery_public_keys
  signing_key_name      = var.delivery_signing_key_name
  domain_name           = var.delivery_domain_name
  certificate_arn       = var.delivery_certificate_arn
  tags                  = var.tags
}
