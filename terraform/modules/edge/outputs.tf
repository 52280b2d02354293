output "distribution_id" {
  description = "CloudFront distribution id."
  value       = aws_cloudfront_distribution.this.id
}

output "domain_name" {
  description = "The distribution's domain name (point the aliases here)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "key_value_store_arn" {
  description = "KeyValueStore ARN: the WaitingRoom's spec.edge.keyValueStoreArn, and what the operator's IAM role must be allowed to write."
  value       = aws_cloudfront_key_value_store.rooms.arn
}

output "function_arn" {
  description = "ARN of the gate function."
  value       = aws_cloudfront_function.gate.arn
}
