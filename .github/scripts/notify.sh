#!/usr/bin/env bash
# Post one line of text to Slack and/or Discord incoming webhooks.
#
#   NOTIFY_TEXT="..." SLACK_WEBHOOK_URL=... DISCORD_WEBHOOK_URL=... notify.sh
#
# Each webhook is optional: an unset one is skipped with a notice, so forks and
# repositories without the secrets still pass. The text arrives through the
# environment and is JSON-encoded by jq, never spliced into a shell command or
# a JSON string by hand (PR titles are attacker-controlled).
set -euo pipefail

text="${NOTIFY_TEXT:?NOTIFY_TEXT is required}"
sent=0

post() {
  local name="$1" url="$2" body="$3"
  # --fail-with-body: a rejected webhook fails the step and shows why.
  if curl --silent --show-error --fail-with-body --max-time 15 --retry 2 \
      -H 'Content-Type: application/json' --data "$body" "$url" >/dev/null; then
    echo "notified $name"
    sent=$((sent + 1))
  else
    echo "::warning::$name notification failed"
  fi
}

if [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
  post Slack "$SLACK_WEBHOOK_URL" "$(jq -n --arg text "$text" '{text: $text}')"
else
  echo "::notice::SLACK_WEBHOOK_URL is not set; skipping Slack."
fi

if [ -n "${DISCORD_WEBHOOK_URL:-}" ]; then
  # Discord caps content at 2000 characters.
  post Discord "$DISCORD_WEBHOOK_URL" "$(jq -n --arg text "${text:0:1900}" '{content: $text}')"
else
  echo "::notice::DISCORD_WEBHOOK_URL is not set; skipping Discord."
fi

echo "notifications sent: $sent"
