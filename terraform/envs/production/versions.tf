terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    # The database application role's password (modules/data): an ephemeral random_password.
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  # State in S3 with S3-native locking (use_lockfile, Terraform >= 1.10): no DynamoDB table.
  # bucket and region come from backend.hcl at init (docs/deploy.md):
  #   terraform init -backend-config=backend.hcl
  backend "s3" {
    key          = "image-service/production/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
