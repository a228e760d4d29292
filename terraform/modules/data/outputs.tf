output "db_instance_id" {
  description = "RDS instance identifier (CloudWatch dimension DBInstanceIdentifier)."
  value       = aws_db_instance.this.identifier
}

# Both URLs verify the server: verify-full checks the certificate against the RDS CA bundle in
# the image and the host name against the certificate. Neither carries a password: sqlx reads
# PGPASSWORD, which the tasks get from a secret.
locals {
  db_tls = "sslmode=verify-full&sslrootcert=${var.db_ca_bundle_path}"
}

output "database_url" {
  description = "DATABASE_URL of the services: the application role, which may not change the schema."
  value       = "postgres://${var.db_app_username}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${var.db_name}?${local.db_tls}"
}

output "owner_database_url" {
  description = "DATABASE_URL of the migrate task: the master user, who owns the schema."
  value       = "postgres://${var.db_username}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${var.db_name}?${local.db_tls}"
}

output "db_app_username" {
  description = "The application role (DATABASE_APP_ROLE of the migrate task)."
  value       = var.db_app_username
}

output "db_app_secret_arn" {
  description = "Secret holding the application role's password (JSON: username, password). The version's ARN, so a task definition that names it waits for the value."
  value       = aws_secretsmanager_secret_version.db_app.arn
}

output "db_master_secret_arn" {
  description = "Secret RDS manages for the master user (JSON with username and password)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "redis_url" {
  description = "REDIS_URL (TLS)."
  value       = "rediss://${aws_elasticache_replication_group.this.primary_endpoint_address}:${aws_elasticache_replication_group.this.port}"
}

output "admin_api_key_secret_arn" {
  description = "Secret holding ADMIN_API_KEY."
  value       = aws_secretsmanager_secret.admin_api_key.arn
}

output "delivery_signing_key_secret_arn" {
  description = "Secret holding DELIVERY_SIGNING_KEY (the CDN's URL-signing private key)."
  value       = aws_secretsmanager_secret.delivery_signing_key.arn
}
