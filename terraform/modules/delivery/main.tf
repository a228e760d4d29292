# The CDN in front of the media bucket: delivery URLs are https://<cdn>/<object key>
# (pipeline/src/delivery.rs), so the distribution maps a path onto the bucket unchanged.
#
#   /variants/*  tenants in public mode: the URL alone is enough (its token is 122 random bits)
#   /private/*   tenants in signed mode: a CloudFront canned-policy signed URL (Expires, Signature,
#                Key-Pair-Id), ECDSA P-256, checked against the key group at the edge
#   anything else  404 from a CloudFront Function; never reaches the bucket
#
# The bucket stays private: only this distribution may read, only those two prefixes (the bucket
# policy and the key policy in modules/storage, which calls this module, name its ARN), through
# Origin Access Control.
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html

locals {
  origin_id     = "media"
  custom_domain = var.domain_name != ""
  # Signed mode exists once a public key does; without one /private/* is refused outright.
  signing = length(var.public_keys) > 0
}

resource "aws_cloudfront_origin_access_control" "media" {
  name                              = "${var.name}-media"
  description                       = "CloudFront reads variants/ and private/ of the ${var.name} media bucket"
  origin_access_control_origin_type = "s3"
  # Sign every origin request, whatever the viewer sent: the bucket policy admits only signed ones.
  signing_behavior = "always"
  signing_protocol = "sigv4"
}

# The key is the path and nothing else. A variant's bytes never change under one key (the preset
# version and the format are in it), so a year is safe; the service also sets
# Cache-Control: public, max-age=31536000, immutable on the object, which these TTLs honour.
# The query string stays out of the key: on /private/* it carries Expires, Signature and
# Key-Pair-Id, which CloudFront checks before the cache and which would otherwise split one
# variant into one cache entry per signed URL.
resource "aws_cloudfront_cache_policy" "variants" {
  name        = "${var.name}-variants"
  comment     = "Delivery URLs of ${var.name}: keyed on the path only"
  min_ttl     = 0
  default_ttl = 31536000
  max_ttl     = 31536000

  parameters_in_cache_key_and_forwarded_to_origin {
    # Images are already compressed: no Accept-Encoding variants.
    enable_accept_encoding_brotli = false
    enable_accept_encoding_gzip   = false

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

# What a page needs around an image: nosniff, the immutable Cache-Control if the object lacks one,
# CORS for <img crossorigin> and fetch() from any site (the bytes are public to whoever holds the
# URL anyway), HSTS, and none of S3's x-amz-* response headers (they name the KMS key).
resource "aws_cloudfront_response_headers_policy" "variants" {
  name    = "${var.name}-variants"
  comment = "Delivery URLs of ${var.name}: nosniff, immutable caching, CORS GET/HEAD, HSTS"

  cors_config {
    access_control_allow_credentials = false
    access_control_max_age_sec       = 86400
    origin_override                  = true

    access_control_allow_headers {
      items = ["*"]
    }

    access_control_allow_methods {
      items = ["GET", "HEAD"]
    }

    access_control_allow_origins {
      items = ["*"]
    }

    access_control_expose_headers {
      items = ["ETag"]
    }
  }

  custom_headers_config {
    # override = false: the object's own Cache-Control (set by the service) wins.
    items {
      header   = "Cache-Control"
      value    = "public, max-age=31536000, immutable"
      override = false
    }
  }

  security_headers_config {
    content_type_options {
      override = true
    }

    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
  }

  remove_headers_config {
    items {
      header = "x-amz-server-side-encryption"
    }
    items {
      header = "x-amz-server-side-encryption-aws-kms-key-id"
    }
    items {
      header = "x-amz-server-side-encryption-bucket-key-enabled"
    }
    items {
      header = "x-amz-version-id"
    }
  }
}

# The default behaviour, and /private/* while there is no key group, answer 404 at the edge: a
# path outside the two prefixes never reaches the bucket (whose policy would refuse it anyway),
# and an unsigned /private/* request cannot be served when no key could have signed it.
resource "aws_cloudfront_function" "not_found" {
  name    = "${var.name}-not-found"
  comment = "404 for every path ${var.name} does not deliver"
  runtime = "cloudfront-js-2.0"
  publish = true
  code    = file("${path.module}/not-found.js")
}

# --- Signed URLs ------------------------------------------------------------------------------
# Every key of public_keys is in the key group, so a URL signed by a key that no longer signs
# stays valid until it expires; DELIVERY_KEY_ID names the one that signs now.
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-trusted-signers.html

resource "aws_cloudfront_public_key" "signers" {
  for_each = var.public_keys

  name        = "${var.name}-${each.key}"
  comment     = "ECDSA P-256 key ${each.key} signing ${var.name} delivery URLs"
  encoded_key = each.value
}

resource "aws_cloudfront_key_group" "signers" {
  count = local.signing ? 1 : 0

  name    = "${var.name}-delivery"
  comment = "Keys whose signed URLs ${var.name} honours under /private/"
  items   = [for name in sort(keys(var.public_keys)) : aws_cloudfront_public_key.signers[name].id]
}

# --- Distribution -----------------------------------------------------------------------------

resource "aws_cloudfront_distribution" "this" {
  # Standard logging v2 (logs.tf) writes the access logs: the legacy logging_config needs ACLs on
  # the target bucket, which every bucket here disables (BucketOwnerEnforced).
  #checkov:skip=CKV_AWS_86:access logs go through standard logging v2 (logs.tf), which checkov does not see
  #checkov:skip=CKV_AWS_68:no WAF yet, as on the ALB (CKV2_AWS_28 in .checkov.yaml): only GETs of public bytes reach it
  #checkov:skip=CKV_AWS_310:one origin, the single-region media bucket (no replica to fail over to, CKV_AWS_144)
  #checkov:skip=CKV_AWS_305:no root document; every path but variants/ and private/ answers 404 at the edge
  #checkov:skip=CKV_AWS_374:images are served worldwide; geo restriction is a tenant decision the service lacks
  #checkov:skip=CKV_AWS_174:the default *.cloudfront.net certificate fails it; with delivery_certificate_arn it is TLSv1.2_2021 (tests/infra/terraform)
  #checkov:skip=CKV2_AWS_42:a custom certificate is optional (delivery_domain_name); the default one serves *.cloudfront.net
  #checkov:skip=CKV2_AWS_47:no WAF web ACL is attached (see CKV_AWS_68)
  enabled         = true
  comment         = "${var.name}: image variants (delivery URLs)"
  is_ipv6_enabled = true
  http_version    = "http2and3"
  price_class     = var.price_class
  aliases         = local.custom_domain ? [var.domain_name] : []

  origin {
    origin_id                = local.origin_id
    domain_name              = var.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.media.id
  }

  ordered_cache_behavior {
    path_pattern               = "/variants/*"
    target_origin_id           = local.origin_id
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    viewer_protocol_policy     = "redirect-to-https"
    compress                   = false
    cache_policy_id            = aws_cloudfront_cache_policy.variants.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.variants.id
  }

  ordered_cache_behavior {
    path_pattern               = "/private/*"
    target_origin_id           = local.origin_id
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    viewer_protocol_policy     = "redirect-to-https"
    compress                   = false
    cache_policy_id            = aws_cloudfront_cache_policy.variants.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.variants.id
    # A request without a valid signature of a key in the group gets 403 from CloudFront.
    trusted_key_groups = local.signing ? [aws_cloudfront_key_group.signers[0].id] : []

    # No key group: trusted_key_groups is empty, which would mean "no signature needed". The
    # 404 function stands in, so /private/* is never served unsigned.
    dynamic "function_association" {
      for_each = local.signing ? [] : [aws_cloudfront_function.not_found.arn]

      content {
        event_type   = "viewer-request"
        function_arn = function_association.value
      }
    }
  }

  # Everything else: 404 at the edge. It still names the origin because a default behaviour must.
  default_cache_behavior {
    target_origin_id           = local.origin_id
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    viewer_protocol_policy     = "redirect-to-https"
    compress                   = false
    cache_policy_id            = aws_cloudfront_cache_policy.variants.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.variants.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.not_found.arn
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  # minimum_protocol_version only applies to a custom certificate; with the default one
  # CloudFront takes TLSv1 and serves *.cloudfront.net with its own policy.
  viewer_certificate {
    cloudfront_default_certificate = !local.custom_domain
    acm_certificate_arn            = local.custom_domain ? var.certificate_arn : null
    ssl_support_method             = local.custom_domain ? "sni-only" : null
    minimum_protocol_version       = local.custom_domain ? "TLSv1.2_2021" : "TLSv1"
  }

  tags = var.tags
}
