# The media bucket: uploads/ (transient, presigned PUTs), originals/, and the variants under
# variants/ (public delivery) and private/ (signed delivery), which the CDN (modules/delivery)
# serves. Encrypted with the service key (bucket keys cut KMS request costs), private, TLS only.

locals {
  media_bucket = "${var.name}-media-${local.account_id}"

  # Originals retention (issue #20): once an image's job has succeeded and a retention of N days
  # applies to it, the worker tags originals/{image_id} with this key and the value "N"
  # (PutObjectTagging, worker.json.tpl); the lifecycle rule for N then expires it. The binary
  # uses the same key: changing it here strands every original tagged under the old one.
  originals_retention_tag = "image-service-retention-days"
}

resource "aws_s3_bucket" "media" {
  bucket = local.media_bucket

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "media" {
  bucket = aws_s3_bucket.media.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "media" {
  bucket = aws_s3_bucket.media.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "media" {
  bucket = aws_s3_bucket.media.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "media" {
  bucket = aws_s3_bucket.media.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    # One data key per bucket instead of per object: far fewer KMS calls.
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "media" {
  bucket = aws_s3_bucket.media.id

  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${local.media_bucket}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "media" {
  # checkov drops the static rules of a block that also has a dynamic "rule", so it misses the
  # bucket-wide abort rule below (bridgecrewio/checkov#5363); test_media_bucket_aborts_incomplete_
  # multipart_uploads_bucket_wide checks what CKV_AWS_300 would.
  #checkov:skip=CKV_AWS_300:false positive with dynamic rules (checkov#5363); checked in tests/infra/terraform
  bucket = aws_s3_bucket.media.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_multipart_days
    }
  }

  # uploads/ only holds an object until the worker has copied it to originals/.
  rule {
    id     = "expire-uploads"
    status = "Enabled"

    filter {
      prefix = "uploads/"
    }

    expiration {
      days = var.uploads_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  rule {
    id     = "originals-to-cheaper-storage"
    status = "Enabled"

    filter {
      prefix = "originals/"
    }

    transition {
      days          = var.originals_transition_days
      storage_class = var.originals_storage_class
    }
  }

  # One rule per day count the binary may use (ORIGINALS_RETENTION_CHOICES). Days count from the
  # upload, not from the tagging, and S3 rounds up to the next midnight UTC; an untagged original
  # (retention 0, or its job never succeeded) matches none of these and is kept. The bucket is
  # versioned, so expiring the current version only adds a delete marker: the bytes go with the
  # noncurrent version, noncurrent_version_expiration_days later (expire-noncurrent-versions).
  dynamic "rule" {
    for_each = var.originals_retention_choices

    content {
      id     = "expire-originals-after-${rule.value}-days"
      status = "Enabled"

      filter {
        and {
          prefix = "originals/"
          tags = {
            (local.originals_retention_tag) = tostring(rule.value)
          }
        }
      }

      expiration {
        days = rule.value
      }
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.media]
}

# Browsers PUT straight to the presigned URL of `POST /v1/uploads`: cross-origin, so S3 must answer
# the preflight. The URL carries its auth in the query string and is signed with Content-Type and
# Content-Length; when the api also signs the SSE-KMS headers (S3_KMS_KEY_ID set), the browser must
# send those two as well. Nothing else is allowed, and there is no rule at all without origins.
resource "aws_s3_bucket_cors_configuration" "media" {
  count = length(var.upload_cors_allowed_origins) > 0 ? 1 : 0

  bucket = aws_s3_bucket.media.id

  cors_rule {
    id              = "presigned-upload-put"
    allowed_methods = ["PUT"]
    allowed_origins = var.upload_cors_allowed_origins
    allowed_headers = [
      "content-type",
      "content-length",
      "x-amz-server-side-encryption",
      "x-amz-server-side-encryption-aws-kms-key-id",
    ]
    expose_headers  = ["ETag"]
    max_age_seconds = 3600
  }
}

data "aws_iam_policy_document" "media" {
  # The CDN's only way in: Origin Access Control signs its requests as cloudfront.amazonaws.com on
  # behalf of one distribution, which may read the two delivery prefixes and nothing else (no
  # ListBucket either: a missing key is a 403, not a listing). Public access stays blocked: a
  # service principal limited to one AWS:SourceArn is not public access.
  # https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html
  statement {
    sid     = "CdnReadsDeliveryPrefixes"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.media.arn}/variants/*",
      "${aws_s3_bucket.media.arn}/private/*",
    ]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [module.delivery.distribution_arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.media.arn, "${aws_s3_bucket.media.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOutdatedTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.media.arn, "${aws_s3_bucket.media.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }

  # A writer may leave the encryption headers out, and presigned browser PUTs do: the bucket's
  # default encryption (the service key, bucket key on) applies. A writer that sends a header must
  # name aws:kms and this key. Each deny therefore needs the header present (Null = false) AND a
  # different value: StringNotEquals alone, or ...IfExists, is true for a missing key and would
  # deny every header-less PUT.
  # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  statement {
    sid       = "DenyOtherKmsKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.media.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.this.arn]
    }
  }

  # aws:kms without a key id would encrypt with the AWS managed key aws/s3, not the service key.
  statement {
    sid       = "DenyKmsWithoutServiceKeyId"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.media.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["true"]
    }
  }

  statement {
    sid       = "DenyNonKmsEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.media.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }
}

resource "aws_s3_bucket_policy" "media" {
  bucket = aws_s3_bucket.media.id
  policy = data.aws_iam_policy_document.media.json

  depends_on = [aws_s3_bucket_public_access_block.media]
}
