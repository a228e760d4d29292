# Public HTTPS entry point for the API. Port 80 only redirects; headers that are not valid HTTP
# are dropped before they reach the service.

resource "aws_lb" "api" {
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [var.security_group_ids.alb]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  # Uploads of large originals over slow links. The api keeps idle connections open longer
  # (HTTP_HEADER_READ_TIMEOUT_SECS, local.api_keep_alive_secs), so it never closes one the ALB
  # is about to reuse, which the ALB would answer with a 502.
  idle_timeout = local.alb_idle_timeout_secs

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "alb"
    enabled = true
  }

  tags = var.tags
}

resource "aws_lb_target_group" "api" {
  name                 = "${var.name}-api"
  vpc_id               = var.vpc_id
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = local.api_port
  deregistration_delay = 30

  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  tags = var.tags
}

# The API's Prometheus metrics are for the scraper inside the VPC, which
# reaches the tasks directly; the internet gets a 404 for them.
resource "aws_lb_listener_rule" "hide_metrics" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  condition {
    path_pattern {
      values = ["/metrics", "/metrics/*"]
    }
  }

  action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/problem+json"
      message_body = "{\"type\":\"https://image-service.dev/problems/not-found\",\"title\":\"Not Found\",\"status\":404,\"code\":\"not-found\",\"detail\":\"not found\"}"
      status_code  = "404"
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "http_redirect" {
  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }

  tags = var.tags
}
