# MSK for payment-events, reservation-events and transfer-events: TLS between
# clients and brokers and inside the cluster, encryption at rest with a KMS
# key, IAM or SCRAM client authentication (no unauthenticated access), broker
# logs to CloudWatch, reachable only from the given security groups.

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-"
  description = "MSK for URR ${var.name}: only from the cluster"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = each.value
  from_port                    = 9094
  to_port                      = 9098
  ip_protocol                  = "tcp"
  description                  = "Kafka TLS, SCRAM and IAM listeners from the URR services"
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/aws/msk/${var.name}"
  retention_in_days = 365
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_msk_configuration" "this" {
  name           = var.name
  kafka_versions = [var.kafka_version]
  # Topics are created by Terraform's caller or the services with explicit
  # settings; durable defaults for the outbox topics.
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    num.partitions=6
  PROPERTIES
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]
    storage_info {
      ebs_storage_info {
        volume_size = var.volume_size
      }
    }
  }
  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }
  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }
  client_authentication {
    unauthenticated = false
    sasl {
      iam   = true
      scram = true
    }
  }
  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }
  enhanced_monitoring = "PER_TOPIC_PER_BROKER"
  tags                = var.tags
}

# SASL/SCRAM credentials of the URR services (SCRAM-SHA-512 on 9096). MSK reads
# them from Secrets Manager: the secret's name must start with AmazonMSK_ and it
# must be encrypted with a customer-managed KMS key (MSK cannot use the AWS
# managed key). The password is written with secret_string_wo: it is sent to
# Secrets Manager and kept out of the Terraform state and plan.
resource "aws_secretsmanager_secret" "scram" {
  #checkov:skip=CKV2_AWS_57:MSK SCRAM credentials have no managed rotation; rotating means a new password in this secret and in the services' kafka-brokers Secret together (bump scram_password_version).
  name        = "AmazonMSK_${var.name}-${var.scram_username}"
  description = "SASL/SCRAM credentials of the URR services on MSK ${var.name}"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "scram" {
  secret_id = aws_secretsmanager_secret.scram.id
  secret_string_wo = jsonencode({
    username = var.scram_username
    password = var.scram_password
  })
  secret_string_wo_version = var.scram_password_version
}

resource "aws_msk_scram_secret_association" "this" {
  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = [aws_secretsmanager_secret.scram.arn]
  depends_on      = [aws_secretsmanager_secret_version.scram]
}
