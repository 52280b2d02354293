variable "name" {
  description = "Identifier of the instance and its resources."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,59}$", var.name))
    error_message = "name: lowercase letters, digits and dashes, at most 60."
  }
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private database subnets, at least two AZs."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Give subnets in at least two availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL version."
  type        = string
  default     = "16.4"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.r7g.large"
}

variable "allocated_storage" {
  description = "Storage in GiB (autoscaling up to four times this)."
  type        = number
  default     = 100
}

variable "multi_az" {
  description = "A standby in another AZ."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 14
  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "Keep 7 to 35 days of backups."
  }
}

variable "kms_key_arn" {
  description = "KMS key for storage and Performance Insights."
  type        = string
}

variable "monitoring_role_arn" {
  description = "IAM role for Enhanced Monitoring."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
