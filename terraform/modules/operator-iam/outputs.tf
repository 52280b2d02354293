output "role_arn" {
  description = "Set as the chart value serviceAccount.roleArn."
  value       = aws_iam_role.operator.arn
}
