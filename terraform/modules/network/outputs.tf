output "vpc_id" {
  description = "VPC id."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Subnets for the ALB and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Subnets for tasks, RDS and ElastiCache."
  value       = aws_subnet.private[*].id
}

output "security_group_ids" {
  description = "Security group per role: alb, api, worker, ops, database, cache."
  value = {
    alb      = aws_security_group.alb.id
    api      = aws_security_group.api.id
    worker   = aws_security_group.worker.id
    ops      = aws_security_group.ops.id
    database = aws_security_group.database.id
    cache    = aws_security_group.cache.id
  }
}
