# ADMIN_API_KEY: the secret exists here, its value is put once by an operator
# (docs/deploy.md) so it never passes through Terraform state. Tasks receive it through the
# execution role as an ECS `secrets` entry, never as a plain environment value.

resource "aws_secretsmanager_secret" "admin_api_key" {
  name                    = "${var.name}/admin-api-key"
  description             = "Bootstrap admin API key of ${var.name} (ADMIN_API_KEY)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7

  tags = var.tags
}

# DELIVERY_SIGNING_KEY: the PKCS#8 PEM of the ECDSA P-256 private key whose public half is the
# signing key of the CDN's key group (delivery_signing_key_name, modules/delivery). Same rules:
# Terraform makes the secret, an operator puts the value (docs/deploy.md, "CDN delivery"), the
# tasks get it as an ECS `secrets` entry. Rotation is a new key pair put here and added to the key
# group, not a Secrets Manager rotation: URLs signed by the old key must keep working.
resource "aws_secretsmanager_secret" "delivery_signing_key" {
  name                    = "${var.name}/delivery-signing-key"
  description             = "ECDSA P-256 private key (PKCS#8 PEM) signing the CDN delivery URLs of ${var.name} (DELIVERY_SIGNING_KEY)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7

  tags = var.tags
}
