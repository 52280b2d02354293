# The origin locked to this distribution (issue 16): a request that reaches
# the load balancer without coming through CloudFront skipped the waiting-room
# gate, so the origin must refuse it.
#
# 1. CloudFront adds `X-URR-Origin-Verify: <secret>` to every origin request.
#    The secret lives in Secrets Manager (created and rotated outside this
#    module); the services read the same secret through the Event's
#    `spec.auth.originSecretRef` (URR_ORIGIN_SECRET) and answer 403
#    `origin-forbidden` without it (runtime-services/common/src/server/origin.rs).
# 2. The load balancer's security group admits HTTPS only from CloudFront's
#    origin-facing managed prefix list, so nothing else reaches it at all.

data "aws_secretsmanager_secret_version" "origin_verify" {
  secret_id = var.origin_verify_secret_arn
}

data "aws_ec2_managed_prefix_list" "cloudfront_origin_facing" {
  count = var.origin_security_group_id == null ? 0 : 1
  name  = "com.amazonaws.global.cloudfront.origin-facing"
}

resource "aws_vpc_security_group_ingress_rule" "origin_from_cloudfront" {
  count             = var.origin_security_group_id == null ? 0 : 1
  security_group_id = var.origin_security_group_id
  description       = "HTTPS from CloudFront origin-facing addresses only"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = data.aws_ec2_managed_prefix_list.cloudfront_origin_facing[0].id
}
