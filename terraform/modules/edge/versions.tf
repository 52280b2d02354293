terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # CloudFront KeyValueStore and cloudfront-js-2.0 need 5.x; tested with 5.100.0.
      version = ">= 5.30, < 6.0"
    }
  }
}
