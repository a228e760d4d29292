output "db_instance_id" {
  description = "RDS instance identifier (CloudWatch dimension DBInstanceIdentifier)."
  value       = aws_db_instance.this.identifier
}

output "database_url" {
  description = "DATABASE_URL without password; the password comes from the secret as PGPASSWORD."
  value       = "postgres://${var.db_username}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${var.db_name}?sslmode=require"
}

output "db_master_secret_arn" {
  description = "Secret RDS manages for the master user (JSON with username and password)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "redis_url" {
  description = "REDIS_URL (TLS)."
  value       = "rediss://${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"
}

output "admin_api_key_secret_arn" {
  description = "Secret holding ADMIN_API_KEY."
  value       = aws_secretsmanager_secret.admin_api_key.arn
}

output "delivery_signing_key_secret_arn" {
  description = "Secret holding DELIVERY_SIGNING_KEY (the CDN's URL-signing private key)."
  value       = aws_secretsmanager_secret.delivery_signing_key.arn
}
