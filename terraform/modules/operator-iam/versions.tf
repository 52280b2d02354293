terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Tested with 5.100.0.
      version = ">= 5.30, < 6.0"
    }
  }
}
