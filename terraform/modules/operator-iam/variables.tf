variable "role_name" {
  description = "Name of the IAM role."
  type        = string
  default     = "urr-operator"
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "oidc_provider_url" {
  description = "The OIDC issuer without https://, e.g. oidc.eks.us-east-1.amazonaws.com/id/ABC."
  type        = string
  validation {
    condition     = !startswith(var.oidc_provider_url, "https://")
    error_message = "Give the issuer without the https:// scheme."
  }
}

variable "namespace" {
  description = "Namespace of the operator's ServiceAccount (the Helm release namespace)."
  type        = string
  default     = "urr-system"
}

variable "service_account" {
  description = "Name of the operator's ServiceAccount."
  type        = string
  default     = "urr-operator"
}

variable "key_value_store_arns" {
  description = "The CloudFront KeyValueStores the operator writes (from the edge module)."
  type        = list(string)
  validation {
    condition     = length(var.key_value_store_arns) > 0 && alltrue([for arn in var.key_value_store_arns : can(regex("^arn:aws[a-z-]*:cloudfront::[0-9]{12}:key-value-store/", arn))])
    error_message = "Give at least one CloudFront KeyValueStore ARN."
  }
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
