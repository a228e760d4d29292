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
