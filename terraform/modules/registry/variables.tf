variable "name" {
  description = "Repository name, e.g. image-service-staging."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the images."
  type        = string
}

variable "keep_images" {
  description = "Number of most recent images kept; older ones are expired (rollback window)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource on top of the provider default tags."
  type        = map(string)
  default     = {}
}
