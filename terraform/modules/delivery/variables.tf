variable "name" {
  description = "Name prefix for every resource, e.g. image-service-staging."
  type        = string
}

variable "bucket_regional_domain_name" {
  description = "Regional domain name of the media bucket (the origin)."
  type        = string
}

variable "logs_bucket_arn" {
  description = "ARN of the access-log bucket, the destination of the access logs."
  type        = string
}

variable "logs_bucket_policy_id" {
  description = "Id of the access-log bucket's policy, which admits log_delivery_source_arn: the delivery waits for it."
  type        = string
}

variable "public_keys" {
  description = <<-EOT
    delivery_public_keys: name => PEM of an ECDSA P-256 public key (`openssl pkey -in key.pem -pubout`).
    Every key is in the key group, so URLs signed by a retired key stay valid until they expire:
    remove a key only after the longest URL lifetime has passed since it last signed. Empty: no
    key group, and /private/* answers 404 to every request (the services then make no signed URLs).
  EOT
  type        = map(string)
  default     = {}

  validation {
    # CloudFront public key names: letters, digits, - and _ (the env name is prefixed).
    condition     = alltrue([for name in keys(var.public_keys) : can(regex("^[A-Za-z0-9_-]{1,64}$", name))])
    error_message = "Each delivery public key name must be 1-64 letters, digits, '-' or '_'."
  }

  validation {
    # The DER of every P-256 SubjectPublicKeyInfo starts with the same 26 bytes (SEQUENCE,
    # id-ecPublicKey, prime256v1, BIT STRING, uncompressed point), which base64-encode to this.
    # An RSA key, or an EC key on another curve, does not match.
    condition     = alltrue([for pem in values(var.public_keys) : can(regex("^-----BEGIN PUBLIC KEY-----\\s*MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE[A-Za-z0-9+/=\\s]+-----END PUBLIC KEY-----$", trimspace(pem)))])
    error_message = "Each delivery public key must be the PEM (-----BEGIN PUBLIC KEY-----) of an ECDSA P-256 public key."
  }

  validation {
    # A key group holds at most 5 public keys.
    # https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-limits.html
    condition     = length(var.public_keys) <= 5
    error_message = "A CloudFront key group holds at most 5 public keys."
  }
}

variable "signing_key_name" {
  description = "delivery_signing_key_name: the key of public_keys whose private half (in the delivery signing key secret) signs URLs now. Empty exactly when public_keys is."
  type        = string
  default     = ""

  validation {
    condition     = length(var.public_keys) == 0 ? var.signing_key_name == "" : contains(keys(var.public_keys), var.signing_key_name)
    error_message = "delivery_signing_key_name must name one of delivery_public_keys (and be empty while that map is)."
  }
}

variable "domain_name" {
  description = "delivery_domain_name: custom hostname of the CDN (cdn.example.com). Empty: the distribution's own *.cloudfront.net name."
  type        = string
  default     = ""

  validation {
    condition     = var.domain_name == "" || can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.domain_name))
    error_message = "delivery_domain_name must be empty or a lower-case hostname such as cdn.example.com (no scheme, no path)."
  }
}

variable "certificate_arn" {
  description = "delivery_certificate_arn: ACM certificate for domain_name. CloudFront only takes certificates from us-east-1. Empty exactly when domain_name is."
  type        = string
  default     = ""

  validation {
    condition     = var.certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.certificate_arn))
    error_message = "delivery_certificate_arn must be empty or an ACM certificate ARN in us-east-1."
  }

  validation {
    condition     = (var.certificate_arn == "") == (var.domain_name == "")
    error_message = "Set delivery_domain_name and delivery_certificate_arn together, or neither."
  }
}

variable "price_class" {
  description = "Edge locations that serve the variants: PriceClass_100 (North America, Europe: cheapest), PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes them, on top of the provider default tags."
  type        = map(string)
  default     = {}
}
