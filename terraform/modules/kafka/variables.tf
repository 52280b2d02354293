variable "name" {
  description = "Cluster name."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,63}$", var.name))
    error_message = "name: letters, digits and dashes, at most 64."
  }
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private streaming subnets, one per broker AZ."
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

variable "kafka_version" {
  description = "Kafka version."
  type        = string
  default     = "3.6.0"
}

variable "broker_count" {
  description = "Brokers (a multiple of the subnet count)."
  type        = number
  default     = 3
}

variable "instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "volume_size" {
  description = "EBS GiB per broker."
  type        = number
  default     = 100
}

variable "kms_key_arn" {
  description = "KMS key for data at rest and the broker logs."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "scram_username" {
  description = "SASL/SCRAM user of the URR services (also part of the secret's name)."
  type        = string
  default     = "urr"
  validation {
    # Characters that need no percent-encoding in the connection string and
    # are valid in a Secrets Manager name.
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,64}$", var.scram_username))
    error_message = "scram_username: letters, digits, '_', '.' and '-', at most 64."
  }
}

variable "scram_password" {
  description = "SASL/SCRAM password (at least 16 characters); pass it from a secret store (TF_VAR_...), never commit it. Write-only: not stored in the state."
  type        = string
  sensitive   = true
  ephemeral   = true
  validation {
    condition     = length(var.scram_password) >= 16
    error_message = "scram_password must be at least 16 characters."
  }
}

variable "scram_password_version" {
  description = "Bump to write a changed scram_password (the password itself is write-only, so Terraform cannot see a change)."
  type        = number
  default     = 1
}
