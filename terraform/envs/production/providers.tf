provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "image-service"
      Environment = "production"
      ManagedBy   = "terraform"
      Repository  = "image-service/terraform/envs/production"
    }
  }
}
