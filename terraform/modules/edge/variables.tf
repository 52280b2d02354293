variable "name" {
  description = "Prefix of every resource name (e.g. urr-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,40}$", var.name))
    error_message = "name must be 1-40 letters, digits or dashes."
  }
}

variable "origin_domain_name" {
  description = "Domain name of the origin behind the gate (the load balancer in front of the URR services)."
  type        = string
}

variable "aliases" {
  description = "Alternate domain names (CNAMEs) served by the distribution."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (us-east-1) for the aliases. Required when aliases are set."
  type        = string
  default     = null
}

variable "web_acl_arn" {
  description = "AWS WAF web ACL (scope CLOUDFRONT) attached to the distribution."
  type        = string
}

variable "logging_bucket_domain_name" {
  description = "S3 bucket (domain name) receiving CloudFront standard access logs."
  type        = string
}

variable "function_code_path" {
  description = "Path of the gate function's code."
  type        = string
  default     = null
}

variable "waiting_page_path_pattern" {
  description = "Path pattern of the waiting page, cached at the edge (identical for every visitor)."
  type        = string
  default     = "/waiting/*"
}

variable "serving_path_pattern" {
  description = "Path pattern of the tier-1 serving parameters, cached a few seconds at the edge keyed by path (the room is in it)."
  type        = string
  default     = "/v1/rooms/*/serving"
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_All"
}

variable "tags" {
  description = "Tags on every taggable resource."
  type        = map(string)
  default     = {}
}

variable "origin_verify_secret_arn" {
  description = "Secrets Manager secret (at least 32 characters) that CloudFront sends to the origin as X-URR-Origin-Verify; the same secret is the Event's spec.auth.originSecretRef."
  type        = string
}

variable "origin_security_group_id" {
  description = "Security group of the origin load balancer: gets an ingress rule for HTTPS from CloudFront's origin-facing prefix list only (give it no other ingress). Null: manage the group elsewhere."
  type        = string
  default     = null
}
