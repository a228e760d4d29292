//! Emulator resources with unique names: a KMS key, a bucket whose default
//! encryption is that key, a job queue and a bulk lane, each with a
//! dead-letter queue, and a topic with a queue subscribed to it.

use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use pipeline::Settings;
use pipeline::event::Event;
use uuid::Uuid;

/// The emulator's endpoint, exported by `scripts/test`.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL must point at the moto server; run the tests with scripts/test")
}

/// One test's AWS resources and clients.
pub struct AwsFixture {
    pub bucket: String,
    pub kms_key_arn: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub bulk_queue_url: String,
    pub bulk_dlq_url: String,
    pub topic_arn: String,
    pub events_queue_url: String,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
}

/// Creates a KMS key through the KMS JSON protocol. The tests need only this
/// one call, which does not justify another SDK crate.
async fn create_kms_key(endpoint: &str) -> String {
    let response = reqwest::Client::new()
        .post(endpoint)
        .header("x-amz-target", "TrentService.CreateKey")
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(r#"{"Description":"image-service test key"}"#)
        .send()
        .await
        .expect("KMS CreateKey");
    let body: serde_json::Value = response.json().await.expect("KMS CreateKey json");
    body["KeyMetadata"]["Arn"].as_str().expect("key ARN").to_owned()
}

/// A queue `name` whose messages move to `name-dlq` after three receives;
/// returns both URLs.
async fn create_queue_pair(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let dlq_url = create_queue(sqs, &format!("{name}-dlq"), &[]).await;
    let dlq_arn = queue_arn(sqs, &dlq_url).await;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3 }).to_string();
    let queue_url = create_queue(
        sqs,
        name,
        &[(QueueAttributeName::RedrivePolicy, redrive), (QueueAttributeName::VisibilityTimeout, "30".into())],
    )
    .await;
    (queue_url, dlq_url)
}

impl AwsFixture {
    /// Creates every resource under names unique to this test.
    pub async fn create() -> Self {
        let endpoint = endpoint();
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(&endpoint).load().await;
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let sns = aws_sdk_sns::Client::new(&conf);
        let id = Uuid::new_v4().simple().to_string();

        let kms_key_arn = create_kms_key(&endpoint).await;

        let bucket = format!("images-{id}");
        s3.create_bucket().bucket(&bucket).send().await.expect("create bucket");
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(&kms_key_arn)
            .build()
            .expect("encryption default");
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(by_default)
            .bucket_key_enabled(true)
            .build();
        s3.put_bucket_encryption()
            .bucket(&bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder().rules(rule).build().expect("encryption config"),
            )
            .send()
            .await
            .expect("put bucket encryption");

        let (queue_url, dlq_url) = create_queue_pair(&sqs, &format!("jobs-{id}")).await;
        let (bulk_queue_url, bulk_dlq_url) = create_queue_pair(&sqs, &format!("jobs-bulk-{id}")).await;

        let topic_arn = sns
            .create_topic()
            .name(format!("events-{id}"))
            .send()
            .await
            .expect("create topic")
            .topic_arn
            .expect("topic arn");
        let events_queue_url = create_queue(&sqs, &format!("events-{id}"), &[]).await;
        let events_queue_arn = queue_arn(&sqs, &events_queue_url).await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(events_queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .expect("subscribe");

        Self {
            bucket,
            kms_key_arn,
            queue_url,
            dlq_url,
            bulk_queue_url,
            bulk_dlq_url,
            topic_arn,
            events_queue_url,
            s3,
            sqs,
            sns,
        }
    }

    /// `settings` pointed at this fixture's resources.
    pub fn configure(&self, settings: &mut Settings) {
        settings.aws_endpoint_url = Some(endpoint());
        settings.s3_bucket = Some(self.bucket.clone());
        settings.s3_kms_key_id = Some(self.kms_key_arn.clone());
        settings.sqs_queue_url = Some(self.queue_url.clone());
        settings.sqs_dlq_url = Some(self.dlq_url.clone());
        settings.sqs_bulk_queue_url = Some(self.bulk_queue_url.clone());
        settings.sqs_bulk_dlq_url = Some(self.bulk_dlq_url.clone());
        settings.sns_topic_arn = Some(self.topic_arn.clone());
    }

    /// Makes S3 tell the job queue about every object created under `uploads/`,
    /// as Terraform configures the bucket.
    pub async fn notify_uploads(&self) {
        use aws_sdk_s3::types::{
            Event as S3EventType, FilterRule, FilterRuleName, NotificationConfiguration,
            NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
        };
        let aws = self;
        let queue_arn = aws
            .sqs
            .get_queue_attributes()
            .queue_url(&aws.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("arn")
            .attributes
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
            .expect("queue arn");
        let filter = NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value("uploads/").build())
                    .build(),
            )
            .build();
        let config = QueueConfiguration::builder()
            .queue_arn(queue_arn)
            .events(S3EventType::S3ObjectCreated)
            .filter(filter)
            .build()
            .expect("queue configuration");
        aws.s3
            .put_bucket_notification_configuration()
            .bucket(&aws.bucket)
            .notification_configuration(NotificationConfiguration::builder().queue_configurations(config).build())
            .send()
            .await
            .expect("notification configuration");
    }

    /// Visible plus in-flight messages on a queue.
    pub async fn depth(&self, queue_url: &str) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        let attributes = out.attributes.unwrap_or_default();
        [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
            .iter()
            .map(|name| attributes.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
            .sum()
    }

    /// Waits for exactly `n` events on the subscribed queue (then checks no
    /// more come). Each is returned with its `event` message attribute.
    pub async fn take_events(&self, n: usize) -> Vec<(Event, String)> {
        let events = self.take_events_with_attributes(n).await;
        events
            .into_iter()
            .map(|(event, mut attributes)| (event, attributes.remove("event").unwrap_or_default()))
            .collect()
    }

    /// The same, each event with its string message attributes by name.
    pub async fn take_events_with_attributes(
        &self,
        n: usize,
    ) -> Vec<(Event, std::collections::HashMap<String, String>)> {
        let mut events = Vec::new();
        let mut empty_polls = 0;
        while events.len() < n || empty_polls < 1 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.events_queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive events");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                empty_polls += 1;
                assert!(empty_polls < 30 || events.len() >= n, "only {} of {n} events arrived", events.len());
                if events.len() >= n {
                    break;
                }
                continue;
            }
            for message in messages {
                let event: Event = serde_json::from_str(message.body().unwrap_or_default()).expect("event json");
                let attributes = message
                    .message_attributes()
                    .map(|a| a.iter().filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned()))).collect())
                    .unwrap_or_default();
                events.push((event, attributes));
                self.sqs
                    .delete_message()
                    .queue_url(&self.events_queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete event");
            }
        }
        assert_eq!(events.len(), n, "unexpected number of events");
        events
    }
}

impl AwsFixture {
    /// A new topic with this fixture's naming.
    pub async fn create_topic(&self, name: &str) -> String {
        let name = format!("{name}-{}", Uuid::new_v4().simple());
        self.sns.create_topic().name(name).send().await.expect("create topic").topic_arn.expect("topic arn")
    }

    /// A new queue subscribed to `topic_arn` with raw delivery and an optional
    /// filter policy on message attributes; returns the queue URL.
    pub async fn subscribe_queue(&self, topic_arn: &str, filter_policy: Option<serde_json::Value>) -> String {
        let url = create_queue(&self.sqs, &format!("sub-{}", Uuid::new_v4().simple()), &[]).await;
        let arn = queue_arn(&self.sqs, &url).await;
        let mut request = self
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", "true");
        if let Some(policy) = filter_policy {
            request = request.attributes("FilterPolicy", policy.to_string());
        }
        request.send().await.expect("subscribe");
        url
    }

    /// Every message on a queue (bodies and their `event` attribute), waiting
    /// until two polls in a row come back empty.
    pub async fn drain_queue(&self, queue_url: &str) -> Vec<(serde_json::Value, Option<String>)> {
        let mut out = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let received = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                empty += 1;
            }
            for message in messages {
                let body = serde_json::from_str(message.body().unwrap_or_default()).expect("json body");
                let event = message
                    .message_attributes()
                    .and_then(|a| a.get("event"))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned);
                out.push((body, event));
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        out
    }
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str, attributes: &[(QueueAttributeName, String)]) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key.clone(), value);
    }
    request.send().await.expect("create queue").queue_url.expect("queue url")
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue arn");
    out.attributes.and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned()).expect("queue arn attribute")
}
