# Every allowed flow in one place. Tasks reach AWS APIs over HTTPS (through the NAT gateway or the
# S3 gateway endpoint), Postgres and Redis only from the task groups, the API only from the ALB.

locals {
  postgres_port = 5432
  redis_port    = 6379
  # Groups of tasks that talk to AWS APIs, Postgres and Redis.
  task_groups = {
    api    = aws_security_group.api.id
    worker = aws_security_group.worker.id
    ops    = aws_security_group.ops.id
  }
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Public load balancer in front of the API"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-alb" })
}

resource "aws_security_group" "api" {
  name        = "${var.name}-api"
  description = "API tasks"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-api" })
}

resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "Worker tasks (no inbound traffic)"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-worker" })
}

resource "aws_security_group" "ops" {
  name        = "${var.name}-ops"
  description = "One-off operator tasks: migrate, replay, reprocess (no inbound traffic)"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-ops" })
}

resource "aws_security_group" "database" {
  name        = "${var.name}-database"
  description = "Postgres, reachable from the task groups only"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-database" })
}

resource "aws_security_group" "cache" {
  name        = "${var.name}-cache"
  description = "Redis read cache, reachable from the task groups only"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-cache" })
}

# --- ALB ---------------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# Port 80 only answers with a redirect to HTTPS (see the listener in compute/ecs).
resource "aws_vpc_security_group_ingress_rule" "alb_http_redirect" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from clients, redirected to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Forward to API tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.api.id
}

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "Requests and health checks from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.alb.id
}

# --- Tasks -> AWS APIs, Postgres, Redis -----------------------------------------------------------

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  for_each = local.task_groups

  security_group_id = each.value
  description       = "HTTPS to AWS APIs (S3, SQS, SNS, KMS, ECR, Secrets Manager, CloudWatch)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_postgres" {
  for_each = local.task_groups

  security_group_id            = each.value
  description                  = "Postgres"
  ip_protocol                  = "tcp"
  from_port                    = local.postgres_port
  to_port                      = local.postgres_port
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_redis" {
  for_each = local.task_groups

  security_group_id            = each.value
  description                  = "Redis read cache"
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
  referenced_security_group_id = aws_security_group.cache.id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_tasks" {
  for_each = local.task_groups

  security_group_id            = aws_security_group.database.id
  description                  = "Postgres from ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.postgres_port
  to_port                      = local.postgres_port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "cache_from_tasks" {
  for_each = local.task_groups

  security_group_id            = aws_security_group.cache.id
  description                  = "Redis from ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
  referenced_security_group_id = each.value
}
