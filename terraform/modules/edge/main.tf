# The URR edge: a CloudFront distribution whose viewer-request function
# (edge-functions/dist/gate.js, the comment-free build of gate.js) holds visitors back at the edge when a waiting room
# is active. The rooms' state lives in a KeyValueStore that the URR operator
# writes, so turning a room on or off is a data write that reaches every edge
# location in seconds, not a redeploy of code.

locals {
  function_code = file(coalesce(var.function_code_path, "${path.module}/../../../edge-functions/dist/gate.js"))
}

resource "aws_cloudfront_key_value_store" "rooms" {
  name    = "${var.name}-rooms"
  comment = "URR waiting rooms: written by the URR operator, read by the gate function"
}

resource "aws_cloudfront_function" "gate" {
  name                         = "${var.name}-gate"
  runtime                      = "cloudfront-js-2.0"
  comment                      = "URR waiting-room gate (viewer-request)"
  publish                      = true
  code                         = local.function_code
  key_value_store_associations = [aws_cloudfront_key_value_store.rooms.arn]
}

# API and ticket traffic is per user: never cached.
data "aws_cloudfront_cache_policy" "caching_disabled" {
  name = "Managed-CachingDisabled"
}

# Also forwards the CloudFront headers, CloudFront-Viewer-Address among them:
# an Event with spec.clientAddress.source CloudFrontViewerAddress keys its
# per-address limits on it (trustworthy because the origin only answers
# requests carrying X-URR-Origin-Verify, origin.tf).
data "aws_cloudfront_origin_request_policy" "all_viewer" {
  name = "Managed-AllViewerExceptHostHeader"
}

# The waiting page is the same HTML for every visitor: cache it, keyed on
# nothing, so a crowd of millions costs the origin almost nothing.
resource "aws_cloudfront_cache_policy" "waiting_page" {
  name        = "${var.name}-waiting-page"
  comment     = "URR waiting page: identical for every visitor"
  min_ttl     = 1
  default_ttl = 60
  max_ttl     = 300
  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

# The tier-1 serving parameters (/v1/rooms/{room}/serving) are the same for
# every visitor of a room: cached a few seconds, keyed by the path alone (the
# room is in it), with no cookie, header or query string forwarded, so a
# crowd of waiters costs the origin one request per room and edge location
# every few seconds. The page computes the counter from them itself and
# corrects the answer's `now` by its Age header (docs/waiting-page.md).
resource "aws_cloudfront_cache_policy" "serving" {
  name        = "${var.name}-serving"
  comment     = "URR serving-counter parameters: identical for every visitor of a room"
  min_ttl     = 1
  default_ttl = 5
  max_ttl     = 10
  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

# The security headers the seed set at the edge, on every response.
resource "aws_cloudfront_response_headers_policy" "security" {
  name    = "${var.name}-security-headers"
  comment = "URR security headers"
  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
    xss_protection {
      protection = true
      mode_block = true
      override   = true
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_310:Origin failover needs a second origin stack; the waiting room is the overload protection, and a second region is a deployment choice outside this module.
  #checkov:skip=CKV_AWS_374:Geo restriction is a per-sale business decision (ticket sales are often worldwide); left to the caller's WAF rules.
  #checkov:skip=CKV_AWS_305:No default root object: the origin serves the application, the distribution fronts API and pages alike.
  #checkov:skip=CKV2_AWS_47:The web ACL is the caller's (var.web_acl_arn); its managed rule groups (including Log4j) are configured there.
  #checkov:skip=CKV2_AWS_32:The response headers policy is attached to every cache behavior below; the check does not follow the reference.
  enabled         = true
  is_ipv6_enabled = true
  http_version    = "http2and3"
  comment         = "URR (${var.name}): waiting-room gate in front of the ticketing services"
  aliases         = var.aliases
  price_class     = var.price_class
  web_acl_id      = var.web_acl_arn
  tags            = var.tags

  origin {
    origin_id   = "urr-origin"
    domain_name = var.origin_domain_name
    # The origin refuses requests without it (origin.tf).
    custom_header {
      name  = "X-URR-Origin-Verify"
      value = data.aws_secretsmanager_secret_version.origin_verify.secret_string
    }
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  default_cache_behavior {
    target_origin_id           = "urr-origin"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = data.aws_cloudfront_cache_policy.caching_disabled.id
    origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.gate.arn
    }
  }

  ordered_cache_behavior {
    path_pattern               = var.waiting_page_path_pattern
    target_origin_id           = "urr-origin"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = aws_cloudfront_cache_policy.waiting_page.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
  }

  # Before the default behaviour, without the gate function: the gate lets the
  # queue API through anyway, and a function run per cached hit is a cost
  # for nothing.
  ordered_cache_behavior {
    path_pattern               = var.serving_path_pattern
    target_origin_id           = "urr-origin"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = aws_cloudfront_cache_policy.serving.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
  }

  logging_config {
    bucket          = var.logging_bucket_domain_name
    include_cookies = false
    prefix          = "${var.name}/"
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn            = var.acm_certificate_arn
    cloudfront_default_certificate = var.acm_certificate_arn == null
    ssl_support_method             = var.acm_certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.acm_certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }
}
