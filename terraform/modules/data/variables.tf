variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the database and the cache."
  type        = list(string)
}

variable "database_security_group_id" {
  description = "Security group of the database (ingress from tasks only)."
  type        = string
}

variable "cache_security_group_id" {
  description = "Security group of the cache (ingress from tasks only)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights, the master user secret and the cache."
  type        = string
}

variable "db_name" {
  description = "Database name in DATABASE_URL."
  type        = string
  default     = "image_service"
}

variable "db_app_username" {
  description = "The role the services connect as: rows only, no DDL. `image-service migrate` creates it and grants it row access (docs/deploy.md)."
  type        = string
  default     = "image_service_app"
}

variable "db_ca_bundle_path" {
  description = "Where the image keeps the RDS CA bundle that verify-full checks the server against (the Dockerfile puts it there)."
  type        = string
  default     = "/etc/ssl/certs/rds-global-bundle.pem"
}

variable "db_username" {
  description = "Master user name, the schema's owner: only the migrate task connects as it. Its password lives in the RDS-managed secret."
  type        = string
  default     = "image_service"
}

variable "db_engine_version" {
  description = "Postgres major version."
  type        = string
  default     = "17"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage in GiB (gp3)."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Standby in a second AZ (doubles the instance cost)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Automated backup retention."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Protect the database from `terraform destroy` and console deletes."
  type        = bool
  default     = true
}

variable "cache_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.micro"
}

variable "cache_nodes" {
  description = "Cache nodes (1 = no replica; 2+ enables automatic failover across AZs)."
  type        = number
  default     = 1
}

variable "cache_engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "cache_snapshot_retention_days" {
  description = "Daily cache snapshots kept (the cache only holds re-derivable data)."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
