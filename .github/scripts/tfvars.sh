#!/usr/bin/env bash
# Print the tfvars (JSON) the release workflow deploys terraform/envs/production
# with, from the environment the deploy job maps its GitHub variables into
# (docs/deploy.md, "GitHub settings"):
#
#   IMAGE_TAG=1.4.2 REGION=eu-west-1 CERTIFICATE_ARN=arn:aws:acm:eu-west-1:… \
#     tfvars.sh > production.tfvars.json
#
# It writes every variable of the env root, not only those without a default:
# a release plan made without, say, ops_email_addresses would reset it to []
# and drop the alarm subscriptions. tests/infra/release/test_deploy.py fails
# when variables.tf declares one this script does not write.
#
# Lists arrive as JSON arrays ('["oncall@example.com"]'); unset means [].
# Maps arrive as JSON objects ('{"k2026a": "-----BEGIN PUBLIC KEY-----\n…"}'); unset means {}.
# Numbers and booleans unset take the env root's defaults, written out here.
set -euo pipefail

die() { echo "::error::$*" >&2; exit 1; }

json_list() {
  local name="$1" value="${2:-[]}"
  jq -e 'type == "array" and all(.[]; type == "string")' <<<"$value" >/dev/null 2>&1 \
    || die "$name must be a JSON array of strings, e.g. [\"oncall@example.com\"]"
  printf '%s' "$value"
}

: "${IMAGE_TAG:?IMAGE_TAG is required (the release version)}"
: "${REGION:?REGION is required (variable AWS_REGION)}"
[ -n "${CERTIFICATE_ARN:-}" ] || die "CERTIFICATE_ARN is required (variable TF_CERTIFICATE_ARN)"
# The ALB only takes a certificate from its own region.
[[ "$CERTIFICATE_ARN" == "arn:aws:acm:$REGION:"* ]] \
  || die "TF_CERTIFICATE_ARN must be an ACM certificate in $REGION, got $CERTIFICATE_ARN"

ops_emails="$(json_list TF_OPS_EMAIL_ADDRESSES "${OPS_EMAIL_ADDRESSES:-}")"
event_emails="$(json_list TF_EVENT_EMAIL_ADDRESSES "${EVENT_EMAIL_ADDRESSES:-}")"
cors_origins="$(json_list TF_UPLOAD_CORS_ALLOWED_ORIGINS "${UPLOAD_CORS_ALLOWED_ORIGINS:-}")"

json_map() {
  local name="$1" value="${2:-}"
  [ -n "$value" ] || value='{}'
  jq -e 'type == "object" and all(.[]; type == "string")' <<<"$value" >/dev/null 2>&1 \
    || die "$name must be a JSON object of strings, e.g. {\"k2026a\": \"-----BEGIN PUBLIC KEY-----\\n…\"}"
  printf '%s' "$value"
}

# CDN delivery (docs/deploy.md, "CDN delivery"): the public keys of the key group and the one that
# signs; the private key is never here, it goes straight into the delivery signing key secret.
delivery_keys="$(json_map TF_DELIVERY_PUBLIC_KEYS "${DELIVERY_PUBLIC_KEYS:-}")"
signing_key="${DELIVERY_SIGNING_KEY_NAME:-}"
jq -e --arg name "$signing_key" 'if length == 0 then $name == "" else has($name) end' <<<"$delivery_keys" >/dev/null \
  || die "TF_DELIVERY_SIGNING_KEY_NAME must be one of the names in TF_DELIVERY_PUBLIC_KEYS (empty while that is), got '$signing_key'"
# CloudFront only takes certificates from us-east-1, whatever AWS_REGION is.
delivery_domain="${DELIVERY_DOMAIN_NAME:-}"
delivery_certificate="${DELIVERY_CERTIFICATE_ARN:-}"
if [ -n "$delivery_domain" ] || [ -n "$delivery_certificate" ]; then
  [ -n "$delivery_domain" ] && [ -n "$delivery_certificate" ] \
    || die "set TF_DELIVERY_DOMAIN_NAME and TF_DELIVERY_CERTIFICATE_ARN together, or neither"
  [[ "$delivery_certificate" == "arn:aws:acm:us-east-1:"* ]] \
    || die "TF_DELIVERY_CERTIFICATE_ARN must be an ACM certificate in us-east-1 (CloudFront's), got $delivery_certificate"
fi

whole() {
  [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a whole number, got $2"
  printf '%s' "$2"
}
retention_days="$(whole TF_ORIGINALS_RETENTION_DAYS "${ORIGINALS_RETENTION_DAYS:-0}")"
grace_hours="$(whole TF_STALE_VARIANTS_GRACE_HOURS "${STALE_VARIANTS_GRACE_HOURS:-24}")"
retention_choices="${ORIGINALS_RETENTION_CHOICES:-[30, 90, 365]}"
jq -e 'type == "array" and length > 0 and all(.[]; type == "number" and . >= 1 and . == floor)' \
  <<<"$retention_choices" >/dev/null 2>&1 \
  || die "TF_ORIGINALS_RETENTION_CHOICES must be a JSON array of whole days, e.g. [30, 90, 365]"

# Traces (docs/operations.md, "Traces on AWS"): unset keeps them on, at the env root's ratio. The
# ratio's range (0..1) is the Terraform variable's own validation.
traces_enabled="${TRACES_ENABLED:-true}"
[[ "$traces_enabled" == "true" || "$traces_enabled" == "false" ]] \
  || die "TF_TRACES_ENABLED must be true or false, got '$traces_enabled'"
sampling_ratio="${TRACE_SAMPLING_RATIO:-0.05}"
jq -e 'type == "number"' <<<"$sampling_ratio" >/dev/null 2>&1 \
  || die "TF_TRACE_SAMPLING_RATIO must be a number from 0 to 1, e.g. 0.05, got '$sampling_ratio'"

jq -n \
  --arg region "$REGION" \
  --arg certificate_arn "$CERTIFICATE_ARN" \
  --arg image_tag "$IMAGE_TAG" \
  --arg public_base_url "${PUBLIC_BASE_URL:-}" \
  --arg slack_team_id "${SLACK_TEAM_ID:-}" \
  --arg slack_channel_id "${SLACK_CHANNEL_ID:-}" \
  --argjson ops_email_addresses "$ops_emails" \
  --argjson event_email_addresses "$event_emails" \
  --argjson upload_cors_allowed_origins "$cors_origins" \
  --argjson originals_retention_days "$retention_days" \
  --argjson originals_retention_choices "$retention_choices" \
  --argjson stale_variants_grace_hours "$grace_hours" \
  --argjson delivery_public_keys "$delivery_keys" \
  --arg delivery_signing_key_name "$signing_key" \
  --arg delivery_domain_name "$delivery_domain" \
  --arg delivery_certificate_arn "$delivery_certificate" \
  --argjson traces_enabled "$traces_enabled" \
  --argjson trace_sampling_ratio "$sampling_ratio" \
  '$ARGS.named'
