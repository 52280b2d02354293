# An example environment using the edge module. Replace the placeholders, then:
#   terraform init && terraform apply
# The state goes to S3 with locking (fill in your bucket and table; the seed's
# staging had no remote state, which broke team work).
terraform {
  required_version = ">= 1.5"
  backend "s3" {}
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30, < 6.0"
    }
  }
}

# CloudFront, its functions and KeyValueStores live in us-east-1.
provider "aws" {
  region = "us-east-1"
}

variable "origin_domain_name" {
  description = "The load balancer in front of the URR services."
  type        = string
}

variable "web_acl_arn" {
  description = "WAF web ACL (scope CLOUDFRONT)."
  type        = string
}

variable "origin_verify_secret_arn" {
  description = "Secrets Manager secret CloudFront sends to the origin (X-URR-Origin-Verify)."
  type        = string
}

variable "origin_security_group_id" {
  description = "The origin load balancer's security group (HTTPS from CloudFront only)."
  type        = string
}

variable "logging_bucket_domain_name" {
  description = "S3 bucket for access logs, e.g. my-logs.s3.amazonaws.com."
  type        = string
}

module "edge" {
  source                     = "../../modules/edge"
  name                       = "urr-demo"
  origin_domain_name         = var.origin_domain_name
  web_acl_arn                = var.web_acl_arn
  logging_bucket_domain_name = var.logging_bucket_domain_name
  origin_verify_secret_arn   = var.origin_verify_secret_arn
  origin_security_group_id   = var.origin_security_group_id
  tags = {
    "app.kubernetes.io/part-of" = "urr"
  }
}

output "key_value_store_arn" {
  description = "Put this in each WaitingRoom's spec.edge.keyValueStoreArn."
  value       = module.edge.key_value_store_arn
}

output "domain_name" {
  value = module.edge.domain_name
}
