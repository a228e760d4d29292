output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "api_service_name" {
  description = "API service name."
  value       = aws_ecs_service.api.name
}

output "worker_service_name" {
  description = "Worker service name."
  value       = aws_ecs_service.worker.name
}

output "migrate_task_definition_arn" {
  description = "Run once per release before the services roll (`image-service migrate`)."
  value       = aws_ecs_task_definition.ops["migrate"].arn
}

output "replay_task_definition_arn" {
  description = "Operator task for `image-service replay dlq|jobs` and `reprocess --preset NAME`."
  value       = aws_ecs_task_definition.ops["replay"].arn
}

output "service_task_definitions" {
  description = "ECS service name => the task definition it runs once its deployment completes; anything else after a release means the circuit breaker rolled it back."
  value = {
    (aws_ecs_service.api.name)    = aws_ecs_service.api.task_definition
    (aws_ecs_service.worker.name) = aws_ecs_service.worker.task_definition
  }
}

output "alb_dns_name" {
  description = "Point the service's DNS name (CNAME/alias) here."
  value       = aws_lb.api.dns_name
}

output "alb_arn_suffix" {
  description = "CloudWatch dimension LoadBalancer."
  value       = aws_lb.api.arn_suffix
}

output "target_group_arn_suffix" {
  description = "CloudWatch dimension TargetGroup."
  value       = aws_lb_target_group.api.arn_suffix
}

output "worker_stop_timeout" {
  description = "stopTimeout of the worker container (SHUTDOWN_DEADLINE_SECS + margin)."
  value       = local.worker_stop_timeout
}

output "public_base_url" {
  description = "PUBLIC_BASE_URL the api and worker tasks get."
  value       = local.public_base_url
}
