variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "cidr_block" {
  description = "VPC CIDR. Split into one public and one private /20 per availability zone."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_suffixes" {
  description = "Availability zones to spread subnets over, as suffixes of the region name (a, b, ...). RDS and the ALB need at least two."
  type        = list(string)
  default     = ["a", "b"]

  validation {
    condition     = length(var.az_suffixes) >= 2 && length(var.az_suffixes) <= 4
    error_message = "Give between 2 and 4 availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper, one AZ is a single point of failure) instead of one per AZ."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the VPC flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow log group."
  type        = number
  default     = 90
}

variable "api_port" {
  description = "Port the API container listens on (LISTEN_ADDR)."
  type        = number
  default     = 8080
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}

variable "alb_ingress_cidrs" {
  description = "IPv4 ranges allowed to reach the public load balancer on 80/443."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}
