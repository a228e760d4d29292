"""Tests for .github/scripts/notify.sh against a local webhook receiver.

The script runs as the workflows run it (text and webhook URLs in the environment) and posts to a
small HTTP server on 127.0.0.1 that records every request and answers the way Slack and Discord
do. The assertions are on the payloads' documented shapes:
- Slack incoming webhooks: https://api.slack.com/messaging/webhooks (`text` and/or `blocks`);
- Discord "Execute Webhook": https://discord.com/developers/docs/resources/webhook#execute-webhook
  (`content` up to 2000 characters and/or `embeds`, plus `allowed_mentions`).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / ".github" / "scripts" / "notify.sh"

SLACK_FIELDS = {"text", "blocks", "attachments", "thread_ts", "mrkdwn"}
DISCORD_FIELDS = {
    "content", "username", "avatar_url", "tts", "embeds", "allowed_mentions", "components",
    "attachments", "flags", "thread_name", "applied_tags", "poll",
}
DISCORD_CONTENT_LIMIT = 2000

# path -> (status, body) the receiver answers with: Slack says "ok", Discord 204 without a body,
# and a refusal looks like Slack's answer to a malformed payload.
ANSWERS = {"/slack": (200, b"ok"), "/discord": (204, b""), "/refuse": (400, b"invalid_payload")}


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the name http.server dispatches to)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(
            {"path": self.path, "content_type": self.headers["Content-Type"], "json": json.loads(body)}
        )
        status, answer = ANSWERS[self.path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server, path):
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def notify(text=None, slack=None, discord=None):
    # A clean environment: no proxy variable may send the local requests elsewhere.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    for name, value in {"NOTIFY_TEXT": text, "SLACK_WEBHOOK_URL": slack, "DISCORD_WEBHOOK_URL": discord}.items():
        if value is not None:
            env[name] = value
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


def received(server, path):
    return [r["json"] for r in server.received if r["path"] == path]


def assert_slack_shape(payload):
    assert set(payload) <= SLACK_FIELDS, payload
    assert isinstance(payload.get("text"), str) and payload["text"] or isinstance(payload.get("blocks"), list)


def assert_discord_shape(payload):
    assert set(payload) <= DISCORD_FIELDS, payload
    assert payload.get("content") or payload.get("embeds")
    assert len(payload.get("content", "")) <= DISCORD_CONTENT_LIMIT


def test_posts_the_text_to_both_webhooks_as_json(receiver):
    text = "org/repo PR #7 Add thumbnails: checks passed\nhttps://github.com/org/repo/pull/7"

    result = notify(text, slack=url(receiver, "/slack"), discord=url(receiver, "/discord"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert {r["content_type"] for r in receiver.received} == {"application/json"}
    (slack,) = received(receiver, "/slack")
    (discord,) = received(receiver, "/discord")
    assert_slack_shape(slack)
    assert_discord_shape(discord)
    assert slack["text"] == text
    assert discord["content"] == text
    assert "notifications sent: 2" in result.stdout


def test_slack_text_cannot_ping_the_channel_or_disguise_a_link(receiver):
    title = "<!channel> see <https://evil.example|the docs> & more"

    result = notify(title, slack=url(receiver, "/slack"))

    assert result.returncode == 0, result.stdout + result.stderr
    (slack,) = received(receiver, "/slack")
    assert_slack_shape(slack)
    assert slack["text"] == "&lt;!channel&gt; see &lt;https://evil.example|the docs&gt; &amp; more"


def test_discord_message_pings_nobody_and_fits_the_limit(receiver):
    text = "@everyone " + "é" * 3000

    result = notify(text, discord=url(receiver, "/discord"))

    assert result.returncode == 0, result.stdout + result.stderr
    (discord,) = received(receiver, "/discord")
    assert_discord_shape(discord)
    assert discord["allowed_mentions"] == {"parse": []}
    assert discord["content"] == text[:DISCORD_CONTENT_LIMIT]


def test_unset_webhooks_are_skipped_with_a_notice(receiver):
    result = notify("release v1.2.3")

    assert result.returncode == 0, result.stdout + result.stderr
    assert receiver.received == []
    assert "SLACK_WEBHOOK_URL is not set" in result.stdout
    assert "DISCORD_WEBHOOK_URL is not set" in result.stdout


def test_a_refused_message_fails_with_the_answer_after_the_other_webhook_was_tried(receiver):
    result = notify("release v1.2.3", slack=url(receiver, "/refuse"), discord=url(receiver, "/discord"))

    assert result.returncode != 0
    assert "Slack refused the notification" in result.stdout
    assert "invalid_payload" in result.stdout
    assert received(receiver, "/discord") == [{"content": "release v1.2.3", "allowed_mentions": {"parse": []}}]


def test_text_is_required(receiver):
    result = notify(slack=url(receiver, "/slack"))

    assert result.returncode != 0
    assert "NOTIFY_TEXT is required" in result.stderr
    assert receiver.received == []
