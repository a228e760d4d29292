#!/usr/bin/env bash
# Post one message to Slack and/or Discord incoming webhooks.
#
#   NOTIFY_TEXT="..." SLACK_WEBHOOK_URL=... DISCORD_WEBHOOK_URL=... notify.sh
#
# Each webhook is optional: an unset one is skipped with a notice, so forks and
# repositories without the secrets still pass. A set one that refuses the
# message fails the script, after the other was tried, with the receiver's
# answer in the log: a revoked or mistyped webhook is noticed, not skipped.
#
# The text arrives through the environment and is JSON-encoded by jq, never
# spliced into a shell command or a JSON string by hand (PR titles are
# attacker-controlled). For the same reason neither message can ping anyone:
# - Slack (https://api.slack.com/messaging/webhooks): `text` is mrkdwn, where
#   <!channel> notifies the channel and <url|label> disguises a link; &, < and
#   > are escaped as Slack documents
#   (https://api.slack.com/reference/surfaces/formatting#escaping).
# - Discord (https://discord.com/developers/docs/resources/webhook#execute-webhook):
#   `allowed_mentions.parse = []` turns @everyone, @here, roles and users into
#   plain text; `content` is capped at 2000 characters (cut by character, so a
#   multi-byte one is never split).
# tests/infra/release/test_notify.py runs this against a local receiver.
set -euo pipefail

text="${NOTIFY_TEXT:?NOTIFY_TEXT is required}"
sent=0
failed=0

post() {
  local name="$1" url="$2" body="$3" answer
  # The body goes through stdin, not argv; --fail-with-body keeps the receiver's
  # explanation (Slack answers e.g. "invalid_payload", Discord a JSON error).
  if answer="$(curl --silent --show-error --fail-with-body --max-time 15 --retry 2 \
      -H 'Content-Type: application/json' --data-binary @- "$url" <<<"$body" 2>&1)"; then
    echo "notified $name"
    sent=$((sent + 1))
  else
    echo "::error::$name refused the notification: $answer"
    failed=$((failed + 1))
  fi
}

if [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
  post Slack "$SLACK_WEBHOOK_URL" "$(jq -n --arg text "$text" \
    '{text: ($text | gsub("&"; "&amp;") | gsub("<"; "&lt;") | gsub(">"; "&gt;"))}')"
else
  echo "::notice::SLACK_WEBHOOK_URL is not set; skipping Slack."
fi

if [ -n "${DISCORD_WEBHOOK_URL:-}" ]; then
  post Discord "$DISCORD_WEBHOOK_URL" "$(jq -n --arg text "$text" \
    '{content: $text[:2000], allowed_mentions: {parse: []}}')"
else
  echo "::notice::DISCORD_WEBHOOK_URL is not set; skipping Discord."
fi

echo "notifications sent: $sent, refused: $failed"
[ "$failed" -eq 0 ]
