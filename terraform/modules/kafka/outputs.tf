output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap brokers for IAM authentication (the kafka-brokers Secret value)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "bootstrap_brokers_sasl_scram" {
  description = "Bootstrap brokers for SCRAM authentication."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "security_group_id" {
  value = aws_security_group.this.id
}
