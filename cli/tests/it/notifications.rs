//! Notifications: SNS filter policies on the emulator, chat payloads, and
//! webhooks that are slow or down.

use pipeline::event::Event;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::aws::AwsFixture;
use crate::support::{RawSink, SinkBehaviour, TestApp, base_settings, db};

#[tokio::test]
async fn sns_subscriptions_with_filter_policies_receive_exactly_their_events() {
    // Arrange: machines get everything; people only failures and summaries;
    // a thumbnail service only events that carry a thumb variant.
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let people =
        aws.subscribe_queue(&aws.topic_arn, Some(json!({ "event": ["image.failed", "replay.summary"] }))).await;
    let thumbs = aws.subscribe_queue(&aws.topic_arn, Some(json!({ "preset": ["thumb"] }))).await;
    let production = aws.subscribe_queue(&aws.topic_arn, Some(json!({ "env": ["production"] }))).await;
    let chat_topic = aws.create_topic("chat").await;
    let chat = aws.subscribe_queue(&chat_topic, None).await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    settings.sns_chat_topic_arn = Some(chat_topic);
    settings.app_env = "staging".into();
    let app = TestApp::spawn(&settings).await;
    let good = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;
    let bad = app.ingest("notimage.jpg").await;

    // Act
    app.worker.drain().await.expect("drain");

    // Assert
    let machines = aws.drain_queue(&aws.events_queue_url).await;
    assert_eq!(machines.len(), 2, "{machines:?}");
    for (body, attribute) in &machines {
        let event: Event = serde_json::from_value(body.clone()).expect("the sqs body is the JSON event");
        assert_eq!(attribute.as_deref(), Some(event.event.as_str()));
        assert_eq!(event.env, "staging");
        assert!(event.timings.is_some());
    }
    let people = aws.drain_queue(&people).await;
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(people[0].0["job_id"], bad.to_string());
    assert_eq!(people[0].0["error"]["code"], "unsupported-format");
    let thumbs = aws.drain_queue(&thumbs).await;
    assert_eq!(thumbs.len(), 1, "{thumbs:?}");
    assert_eq!(thumbs[0].0["job_id"], good.to_string());
    assert!(aws.drain_queue(&production).await.is_empty(), "staging events match no production filter");
    let chat = aws.drain_queue(&chat).await;
    assert_eq!(chat.len(), 1, "only the failure reaches the chat topic: {chat:?}");
    assert_eq!(chat[0].0["version"], "1.0");
    assert_eq!(chat[0].0["source"], "custom");
    assert!(chat[0].0["content"]["title"].as_str().unwrap_or_default().contains(&bad.to_string()));
}

fn assert_slack_message(body: &Value) {
    // https://api.slack.com/reference/block-kit/blocks
    let text = body["text"].as_str().expect("fallback text");
    assert!(!text.is_empty() && text.chars().count() <= 3000);
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(blocks[0]["text"]["text"].as_str().is_some_and(|t| t.chars().count() <= 150));
    for block in &blocks[1..] {
        assert_eq!(block["type"], "section");
        assert_eq!(block["text"]["type"], "mrkdwn");
        assert!(block["text"]["text"].as_str().is_some_and(|t| !t.is_empty() && t.chars().count() <= 3000));
    }
}

fn assert_discord_message(body: &Value) {
    // https://discord.com/developers/docs/resources/message#embed-object-embed-limits
    let content = body["content"].as_str().expect("content");
    assert!(!content.is_empty() && content.chars().count() <= 2000);
    let embeds = body["embeds"].as_array().expect("embeds");
    assert!(!embeds.is_empty() && embeds.len() <= 10);
    let embed = &embeds[0];
    assert!(embed["title"].as_str().is_some_and(|t| t.chars().count() <= 256));
    assert!(embed["description"].as_str().is_some_and(|t| t.chars().count() <= 4096));
    assert!(embed["color"].as_u64().is_some_and(|c| c <= 0xFF_FF_FF));
    assert!(chrono::DateTime::parse_from_rfc3339(embed["timestamp"].as_str().unwrap_or_default()).is_ok());
    let fields = embed["fields"].as_array().expect("fields");
    assert!(fields.len() <= 25);
    for field in fields {
        assert!(field["name"].as_str().is_some_and(|n| !n.is_empty() && n.chars().count() <= 256));
        assert!(field["value"].as_str().is_some_and(|v| !v.is_empty() && v.chars().count() <= 1024));
    }
}

#[tokio::test]
async fn slack_and_discord_webhooks_get_their_documented_payloads_for_failures_only() {
    // Arrange
    let dir = TempDir::new().expect("temp dir");
    let mut slack = RawSink::start(SinkBehaviour::Accept).await;
    let mut discord = RawSink::start(SinkBehaviour::Accept).await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.slack_webhook_url = Some(slack.url.clone().into());
    settings.discord_webhook_url = Some(discord.url.clone().into());
    settings.public_base_url = Some("https://images.example.com".into());
    let app = TestApp::spawn(&settings).await;
    app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;
    let bad = app.accepted(app.upload_raw("truncated_prog.jpg", "image/jpeg").await).await;

    // Act
    app.worker.drain().await.expect("drain");

    // Assert
    let slack = slack.take_exactly(1).await;
    assert_slack_message(&slack[0]);
    assert!(slack[0]["text"].as_str().unwrap_or_default().contains(&bad.to_string()));
    // The link opens the job's status without a key.
    assert!(slack[0].to_string().contains(&format!("https://images.example.com/v1/status/{bad}?Expires=")));
    let discord = discord.take_exactly(1).await;
    assert_discord_message(&discord[0]);
    assert!(discord[0]["embeds"][0]["title"].as_str().unwrap_or_default().contains("truncated-image"));
}

#[tokio::test]
async fn a_webhook_that_is_down_delays_nothing_and_is_retried_with_backoff() {
    // Arrange: one webhook never answers; another fails twice, then accepts.
    let dir = TempDir::new().expect("temp dir");
    let hanging = RawSink::start(SinkBehaviour::Hang).await;
    let mut flaky = RawSink::start(SinkBehaviour::FailFirst(2)).await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.slack_webhook_url = Some(hanging.url.clone().into());
    settings.chat_events = "image.processed".into();
    settings.webhook_url = Some(flaky.url.clone().into());
    settings.retry_base_delay_ms = 100;
    let app = TestApp::spawn(&settings).await;
    let id = app.accepted(app.upload_raw("dice_rgba.png", "image/png").await).await;

    // Act
    app.worker.drain().await.expect("drain");

    // Assert: the job is done while the hanging webhook still holds its request.
    let job = app.get_json(&format!("/v1/jobs/{id}"), 200).await;
    assert_eq!(job["status"], "succeeded");
    let delivered = flaky.take_exactly(1).await;
    assert_eq!(delivered[0]["job_id"], id.to_string());
    assert_eq!(flaky.attempts.load(std::sync::atomic::Ordering::SeqCst), 3, "two failures, then success");
    assert_eq!(hanging.attempts.load(std::sync::atomic::Ordering::SeqCst), 1, "the hanging request is still open");
}

#[tokio::test]
async fn a_backlog_of_accepted_deliveries_is_marked_however_large() {
    use entities::webhook_deliveries::{self, DeliveryState};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    // Arrange: more accepted deliveries than one SQLite expression can
    // name (its depth limit is 1000), as after the database was away.
    const BACKLOG: usize = 1100;
    let dir = TempDir::new().expect("temp dir");
    let sink = RawSink::start(SinkBehaviour::Accept).await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.webhook_url = Some(sink.url.clone().into());
    let backends = pipeline::Backends::connect(&settings).await.expect("backends connect");
    pipeline::db::migrate(&backends.db).await.expect("migrations apply");
    let outbox = backends.outbox.clone();
    for _ in 0..BACKLOG {
        let summary =
            pipeline::event::ReplaySummary { operation: "test".into(), dry_run: true, counts: Default::default() };
        let recorded =
            outbox.record(&backends.db, &Event::replay_summary(summary, "test".into())).await.expect("record");
        outbox.committed(recorded);
    }
    let claimed = outbox.claim_due(&backends.db, BACKLOG as u64).await.expect("claim");
    assert_eq!(claimed.len(), BACKLOG);
    for row in &claimed {
        let round = outbox.attempt(&backends.db, row).await.expect("attempt");
        assert_eq!(round.delivered, 1);
    }

    // Act
    outbox.flush_delivered(&backends.db).await.expect("flush");

    // Assert: every one is marked, so none is sent again when its lease ends.
    let delivered = webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::State.eq(DeliveryState::Delivered))
        .count(&backends.db)
        .await
        .expect("count");
    assert_eq!(delivered, BACKLOG as u64);
    assert_eq!(sink.attempts.load(std::sync::atomic::Ordering::SeqCst), BACKLOG);
}
