output "bootstrap_brokers_sasl_scram" {
  description = "Bootstrap brokers for SCRAM authentication (host:9096,...): what the URR services use."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap brokers for IAM authentication (host:9098,...); the URR services cannot use it (librdkafka has no IAM signer)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "scram_username" {
  description = "SASL/SCRAM user of the URR services."
  value       = var.scram_username
}

output "scram_secret_arn" {
  description = "Secrets Manager secret (AmazonMSK_...) with the SCRAM user and password, associated with the cluster."
  value       = aws_secretsmanager_secret.scram.arn
}

output "connection_string_format" {
  description = "URR_KAFKA_BROKERS (the kafka-brokers Secret value) with <password> in place of the percent-encoded SCRAM password. ca= names the URR images' CA bundle: librdkafka's OpenSSL default paths may find no roots in distroless."
  value       = "sasl_ssl://${var.scram_username}:<password>@${aws_msk_cluster.this.bootstrap_brokers_sasl_scram}?mechanism=SCRAM-SHA-512&ca=/etc/ssl/certs/ca-certificates.crt"
}

output "security_group_id" {
  value = aws_security_group.this.id
}
