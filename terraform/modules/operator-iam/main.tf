# IRSA role for the URR operator's ServiceAccount: it may write the listed
# CloudFront KeyValueStores (the edge entries of WaitingRooms) and resolve a
# store by name, nothing else. Trust: only that ServiceAccount, through the
# cluster's OIDC provider.

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "operator" {
  name                 = var.role_name
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "kvs" {
  statement {
    sid = "WriteEdgeEntries"
    actions = [
      "cloudfront-keyvaluestore:DescribeKeyValueStore",
      "cloudfront-keyvaluestore:GetKey",
      "cloudfront-keyvaluestore:ListKeys",
      "cloudfront-keyvaluestore:PutKey",
      "cloudfront-keyvaluestore:DeleteKey",
      "cloudfront-keyvaluestore:UpdateKeys",
    ]
    resources = var.key_value_store_arns
  }
  statement {
    sid       = "ResolveStoreNames"
    actions   = ["cloudfront:DescribeKeyValueStore"]
    resources = var.key_value_store_arns
  }
}

resource "aws_iam_role_policy" "kvs" {
  name   = "urr-operator-kvs"
  role   = aws_iam_role.operator.id
  policy = data.aws_iam_policy_document.kvs.json
}
