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
