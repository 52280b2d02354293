# A whole URR environment on AWS: the edge (CloudFront, the gate function, the
# KeyValueStore), the operator's IRSA role, and the data tier (ElastiCache,
# RDS, MSK). Fill in the variables (a tfvars file kept out of git), then:
#   terraform init -backend-config=backend.hcl && terraform apply
# State: S3 with native locking (use_lockfile, Terraform >= 1.10). The seed's
# staging had no remote state at all. Terraform >= 1.11: the MSK SCRAM password
# is an ephemeral variable written with a write-only attribute (never in state).
terraform {
  required_version = ">= 1.11"
  backend "s3" {
    key          = "urr/platform/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
    # bucket and region come from backend.hcl.
  }
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.89, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region
}

# CloudFront and its KeyValueStore live in us-east-1.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

variable "region" {
  description = "Region of the cluster and the data tier."
  type        = string
  default     = "ap-northeast-2"
}

variable "name" {
  description = "Environment name, e.g. urr-prod."
  type        = string
  default     = "urr-prod"
}

variable "vpc_id" {
  type = string
}

variable "origin_verify_secret_arn" {
  description = "Secrets Manager secret in us-east-1 that CloudFront sends to the origin (X-URR-Origin-Verify); the same value is the Event's spec.auth.originSecretRef."
  type        = string
}

variable "origin_security_group_id" {
  description = "Security group of the load balancer in front of the services: HTTPS from CloudFront only."
  type        = string
}

variable "cache_subnet_ids" {
  type = list(string)
}

variable "database_subnet_ids" {
  type = list(string)
}

variable "streaming_subnet_ids" {
  type = list(string)
}

variable "node_security_group_ids" {
  description = "The EKS node (or pod) security groups the services run in."
  type        = list(string)
}

variable "oidc_provider_arn" {
  type = string
}

variable "oidc_provider_url" {
  type = string
}

variable "kms_key_arn" {
  type = string
}

variable "rds_monitoring_role_arn" {
  type = string
}

variable "redis_auth_token" {
  type      = string
  sensitive = true
}

variable "kafka_scram_username" {
  description = "SASL/SCRAM user of the URR services on MSK."
  type        = string
  default     = "urr"
}

variable "kafka_scram_password" {
  description = "SASL/SCRAM password (TF_VAR_kafka_scram_password, from a secret store); write-only, never in the state."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "kafka_scram_password_version" {
  description = "Bump when kafka_scram_password changes, to write the new one."
  type        = number
  default     = 1
}

variable "origin_domain_name" {
  type = string
}

variable "web_acl_arn" {
  type = string
}

variable "logging_bucket_domain_name" {
  type = string
}

locals {
  tags = { "app.kubernetes.io/part-of" = "urr", environment = var.name }
}

module "edge" {
  source                     = "../../modules/edge"
  providers                  = { aws = aws.us_east_1 }
  name                       = var.name
  origin_domain_name         = var.origin_domain_name
  web_acl_arn                = var.web_acl_arn
  logging_bucket_domain_name = var.logging_bucket_domain_name
  origin_verify_secret_arn   = var.origin_verify_secret_arn
  # The load balancer is in var.region, the module's provider in us-east-1:
  # the rule is made below with the regional provider instead.
  origin_security_group_id = null
  tags                     = local.tags
}

# The load balancer admits HTTPS from CloudFront's origin-facing addresses only
# (the managed prefix list of the load balancer's own region).
data "aws_ec2_managed_prefix_list" "cloudfront_origin_facing" {
  name = "com.amazonaws.global.cloudfront.origin-facing"
}

resource "aws_vpc_security_group_ingress_rule" "origin_from_cloudfront" {
  security_group_id = var.origin_security_group_id
  description       = "HTTPS from CloudFront origin-facing addresses only"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = data.aws_ec2_managed_prefix_list.cloudfront_origin_facing.id
}

module "operator_iam" {
  source               = "../../modules/operator-iam"
  role_name            = "${var.name}-operator"
  oidc_provider_arn    = var.oidc_provider_arn
  oidc_provider_url    = var.oidc_provider_url
  key_value_store_arns = [module.edge.key_value_store_arn]
  tags                 = local.tags
}

module "redis" {
  source                    = "../../modules/redis"
  name                      = var.name
  vpc_id                    = var.vpc_id
  subnet_ids                = var.cache_subnet_ids
  client_security_group_ids = var.node_security_group_ids
  auth_token                = var.redis_auth_token
  kms_key_arn               = var.kms_key_arn
  tags                      = local.tags
}

module "postgres" {
  source                    = "../../modules/postgres"
  name                      = var.name
  vpc_id                    = var.vpc_id
  subnet_ids                = var.database_subnet_ids
  client_security_group_ids = var.node_security_group_ids
  kms_key_arn               = var.kms_key_arn
  monitoring_role_arn       = var.rds_monitoring_role_arn
  tags                      = local.tags
}

module "kafka" {
  source                    = "../../modules/kafka"
  name                      = var.name
  vpc_id                    = var.vpc_id
  subnet_ids                = var.streaming_subnet_ids
  client_security_group_ids = var.node_security_group_ids
  kms_key_arn               = var.kms_key_arn
  scram_username            = var.kafka_scram_username
  scram_password            = var.kafka_scram_password
  scram_password_version    = var.kafka_scram_password_version
  tags                      = local.tags
}

output "operator_role_arn" {
  description = "Helm value serviceAccount.roleArn."
  value       = module.operator_iam.role_arn
}

output "key_value_store_arn" {
  description = "WaitingRoom spec.edge.keyValueStoreArn."
  value       = module.edge.key_value_store_arn
}

output "redis_endpoint" {
  description = "redis-url: rediss://:<auth token>@<this>:6379"
  value       = module.redis.primary_endpoint
}

output "postgres_address" {
  description = "ticket-/payment-database-url: postgres://<user>:<password>@<this>:5432/<db>?sslmode=require"
  value       = module.postgres.address
}

output "kafka_bootstrap_brokers" {
  description = "MSK's SASL/SCRAM over TLS listener (host:9096,...), the one the services use."
  value       = module.kafka.bootstrap_brokers_sasl_scram
}

output "kafka_brokers_connection" {
  description = "kafka-brokers (URR_KAFKA_BROKERS) with <password> in place of the percent-encoded SCRAM password, which Terraform never stores."
  value       = module.kafka.connection_string_format
}
