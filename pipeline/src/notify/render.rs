//! What each kind of subscriber receives, as pure functions of the event.
//!
//! Machines get the JSON event. People get short text: an email with a
//! subject and a link, a Slack or Discord message, or an AWS Chatbot custom
//! notification (the only schema Chatbot renders in Slack).

use serde_json::{Value, json};

use crate::event::{Event, EventKind};

/// SNS caps a subject at 100 characters.
const SUBJECT_LIMIT: usize = 100;

fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Label and value pairs that describe the event to a person.
fn facts(event: &Event) -> Vec<(&'static str, String)> {
    let mut facts = Vec::new();
    if let Some(job) = event.job_id {
        facts.push(("Job", job.to_string()));
    }
    if let Some(image) = event.image_id {
        facts.push(("Image", image.to_string()));
    }
    facts.push(("Status", event.status.clone()));
    facts.push(("Environment", event.env.clone()));
    facts.push(("When", event.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()));
    if let Some(error) = &event.error {
        facts.push(("Error", format!("{}: {}", error.code, error.message)));
    }
    if let Some(t) = &event.timings {
        facts.push(("Took", format!("{} (queued {})", seconds(t.total_ms), seconds(t.queued_ms))));
    }
    if let Some(summary) = &event.summary {
        facts.push(("Operation", summary.operation.clone()));
        if summary.dry_run {
            facts.push(("Dry run", "yes, nothing was changed".into()));
        }
        for (name, count) in &summary.counts {
            facts.push(("Count", format!("{name} = {count}")));
        }
    }
    facts
}

fn variant_lines(event: &Event) -> Vec<String> {
    event
        .variants
        .iter()
        .map(|v| format!("{} {}x{} {} ({} bytes)", v.preset, v.width, v.height, v.format, v.bytes))
        .collect()
}

/// The smallest variant's delivery URL, when it is absolute (an email can't
/// follow a relative one).
fn thumbnail(event: &Event) -> Option<&str> {
    let smallest = event.variants.iter().filter(|v| v.delivery_url.is_some()).min_by_key(|v| v.width)?;
    smallest.delivery_url.as_deref().filter(|url| url.starts_with("https://") || url.starts_with("http://"))
}

/// Where a person can look at the job: its keyless status page when the
/// event carries one, else the key-gated job, if the API's address is known.
fn job_link(event: &Event, base_url: Option<&str>) -> Option<String> {
    if let Some(url) = &event.status_url {
        return Some(url.clone());
    }
    Some(crate::links::Links::at(base_url?).job(event.job_id?))
}

/// The email: a subject (at most 100 characters) and a plain-text body.
pub fn email(event: &Event, base_url: Option<&str>) -> (String, String) {
    let subject = truncate(&format!("[image-service {}] {}", event.env, event.headline()), SUBJECT_LIMIT);
    let mut body = format!("{}\n\n", event.headline());
    for (label, value) in facts(event) {
        body.push_str(&format!("{label:<12} {value}\n"));
    }
    let variants = variant_lines(event);
    if !variants.is_empty() {
        body.push_str("\nVariants:\n");
        for line in variants {
            body.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(url) = thumbnail(event) {
        body.push_str(&format!("\nThumbnail: {url}\n"));
    }
    if let Some(link) = job_link(event, base_url) {
        body.push_str(&format!("\nDetails: {link}\n"));
    }
    (subject, body)
}

/// The SNS message with `MessageStructure=json`: the JSON event for
/// machines (`default`, `sqs`, `https`, `http`, `email-json`, `lambda`),
/// and the text for `email`.
pub fn sns_message(event: &Event, base_url: Option<&str>) -> String {
    let payload = serde_json::to_string(event).unwrap_or_default();
    let (_, text) = email(event, base_url);
    json!({
        "default": payload,
        "sqs": payload,
        "https": payload,
        "http": payload,
        "email-json": payload,
        "lambda": payload,
        "email": text,
    })
    .to_string()
}

fn markdown_details(event: &Event, base_url: Option<&str>) -> String {
    let mut text: String = facts(event).into_iter().map(|(label, value)| format!("*{label}:* {value}\n")).collect();
    for line in variant_lines(event) {
        text.push_str(&format!("• {line}\n"));
    }
    if let Some(url) = thumbnail(event) {
        text.push_str(&format!("<{url}|Thumbnail>\n"));
    }
    if let Some(link) = job_link(event, base_url) {
        text.push_str(&format!("<{link}|Open the job>\n"));
    }
    text
}

/// An AWS Chatbot custom notification, which Chatbot renders in Slack.
/// <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>
pub fn chatbot(event: &Event, base_url: Option<&str>) -> Value {
    json!({
        "version": "1.0",
        "source": "custom",
        "id": event.event_id.to_string(),
        "content": {
            "textType": "client-markdown",
            "title": truncate(&event.headline(), 250),
            "description": truncate(&markdown_details(event, base_url), 8000),
            "keywords": [event.env.clone(), event.status.clone(), event.event.as_str()],
        },
        "metadata": {
            "eventType": event.event.as_str(),
            "summary": truncate(&event.headline(), 250),
        }
    })
}

/// A Slack incoming-webhook message: a fallback `text` and Block Kit blocks.
/// <https://api.slack.com/messaging/webhooks>
pub fn slack(event: &Event, base_url: Option<&str>) -> Value {
    json!({
        "text": truncate(&event.headline(), 3000),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": truncate(&event.headline(), 150) } },
            { "type": "section", "text": { "type": "mrkdwn", "text": truncate(&markdown_details(event, base_url), 3000) } },
        ],
    })
}

/// A Discord webhook message with one embed.
/// <https://discord.com/developers/docs/resources/webhook#execute-webhook>
pub fn discord(event: &Event, base_url: Option<&str>) -> Value {
    let color = match event.event {
        EventKind::ImageProcessed => 0x2E_A0_43,
        EventKind::ImageFailed => 0xD1_24_2F,
        EventKind::ReplaySummary => 0x09_69_DA,
        EventKind::ImageDeleted => 0x6E_77_81,
    };
    let fields: Vec<Value> = facts(event)
        .into_iter()
        .take(25)
        .map(|(name, value)| json!({ "name": name, "value": truncate(&value, 1024), "inline": false }))
        .collect();
    let mut embed = json!({
        "title": truncate(&event.headline(), 256),
        "description": truncate(&variant_lines(event).join("\n"), 4096),
        "color": color,
        "timestamp": event.occurred_at.to_rfc3339(),
        "fields": fields,
    });
    if let Some(link) = job_link(event, base_url) {
        embed["url"] = Value::String(link);
    }
    if let Some(url) = thumbnail(event) {
        embed["thumbnail"] = json!({ "url": url });
    }
    json!({ "content": truncate(&event.headline(), 2000), "embeds": [embed] })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::event::{EVENT_SCHEMA_VERSION, EventError, EventVariant, Timings};

    fn failed_event() -> Event {
        let job = Uuid::parse_str("01a21762-4675-7492-b801-0ab7d552b0f5").unwrap_or_default();
        Event {
            schema_version: EVENT_SCHEMA_VERSION,
            event: EventKind::ImageFailed,
            event_id: Event::id_for(job, "failed"),
            job_id: Some(job),
            image_id: Uuid::parse_str("01a21762-4675-7492-b801-0ab6423643f6").ok(),
            tenant_id: Some(entities::tenants::DEFAULT_TENANT),
            external_id: None,
            metadata: None,
            status: "failed".into(),
            status_url: None,
            image: None,
            variants: Vec::new(),
            error: Some(EventError { code: "truncated-image".into(), message: "the image data is truncated".into() }),
            timings: Some(Timings { queued_ms: 120, processing_ms: 80, total_ms: 200 }),
            summary: None,
            env: "production".into(),
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 26, 10, 24, 11).single().unwrap_or_default(),
            trace_id: None,
        }
    }

    #[test]
    fn email_text_matches_its_snapshot() {
        let (subject, body) = email(&failed_event(), Some("https://images.example.com/"));
        assert_eq!(
            subject,
            "[image-service production] Image failed: job 01a21762-4675-7492-b801-0ab7d552b0f5 (truncated-image)"
        );
        assert_eq!(body, include_str!("snapshots/email_failed.txt"));
    }

    #[test]
    fn email_subjects_fit_the_sns_limit() {
        let mut event = failed_event();
        event.env = "a-very-long-environment-name-that-goes-on-and-on".into();
        let (subject, _) = email(&event, None);
        assert!(subject.chars().count() <= SUBJECT_LIMIT, "{subject}");
    }

    #[test]
    fn the_sns_message_carries_json_for_machines_and_text_for_email() {
        let event = failed_event();
        let message: Value = serde_json::from_str(&sns_message(&event, None)).unwrap_or_default();
        for key in ["default", "sqs", "https"] {
            let inner: Event =
                serde_json::from_str(message[key].as_str().unwrap_or_default()).unwrap_or_else(|_| failed_event());
            assert_eq!(inner, event, "{key}");
        }
        assert!(message["email"].as_str().unwrap_or_default().starts_with("Image failed: job"));
    }

    #[test]
    fn chatbot_messages_follow_the_custom_notification_schema() {
        let message = chatbot(&failed_event(), None);
        assert_eq!(message["version"], "1.0");
        assert_eq!(message["source"], "custom");
        assert_eq!(message["content"]["textType"], "client-markdown");
        assert!(message["content"]["description"].as_str().unwrap_or_default().contains("truncated-image"));
    }

    #[test]
    fn processed_events_list_their_variants() {
        let mut event = failed_event();
        event.event = EventKind::ImageProcessed;
        event.status = "succeeded".into();
        event.error = None;
        event.variants = vec![EventVariant {
            preset: "thumb".into(),
            preset_version: "297dcd6e".into(),
            format: "webp".into(),
            width: 256,
            height: 144,
            bytes: 5802,
            key: "variants/x/t/thumb-297dcd6e.webp".into(),
            mime_type: "image/webp".into(),
            delivery_url: Some("https://cdn.example/variants/x/t/thumb-297dcd6e.webp".into()),
            url: None,
        }];
        let payload = discord(&event, None);
        assert_eq!(payload["embeds"][0]["description"], "thumb 256x144 webp (5802 bytes)");
        assert_eq!(payload["embeds"][0]["thumbnail"]["url"], "https://cdn.example/variants/x/t/thumb-297dcd6e.webp");
        let (_, body) = email(&event, None);
        assert!(body.contains("Thumbnail: https://cdn.example/variants/x/t/thumb-297dcd6e.webp"), "{body}");
        event.status_url = Some("https://api.example/v1/status/j?Expires=1&Signature=s&Key-Pair-Id=k".into());
        let (_, body) = email(&event, Some("https://api.example"));
        assert!(body.contains("Details: https://api.example/v1/status/j?Expires=1"), "the keyless page: {body}");
        assert_eq!(event.presets(), ["thumb"]);
    }
}
