output "primary_endpoint" {
  description = "Host of the primary; the URL for the Secret is rediss://:<token>@<host>:6379."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "security_group_id" {
  value = aws_security_group.this.id
}
