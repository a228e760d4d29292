provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "image-service"
      Environment = "staging"
      ManagedBy   = "terraform"
      Repository  = "image-service/terraform/envs/staging"
    }
  }
}
