terraform {
  # Write-only attributes and ephemeral variables (the SCRAM password).
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Tested with 5.100.0; secret_string_wo (write-only) needs >= 5.89.
      version = ">= 5.89, < 6.0"
    }
  }
}
