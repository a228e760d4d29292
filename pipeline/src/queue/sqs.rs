//! [`JobQueue`] on Amazon SQS.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use chrono::DateTime;

use super::{Delivery, JobQueue, Lane, Outgoing, QueueError, RedriveStatus};
use crate::trace::TRACEPARENT;

/// The job queue on SQS. It only translates calls; decisions are the worker's.
#[derive(Clone, Debug)]
pub struct SqsJobQueue {
    client: Client,
    queue_url: String,
}

impl SqsJobQueue {
    /// A queue handle for `queue_url`.
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    async fn attribute(&self, name: QueueAttributeName) -> Result<Option<String>, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(name.clone())
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.attributes.and_then(|mut a| a.remove(&name)))
    }
}

fn unavailable<E: std::error::Error>(err: E) -> QueueError {
    QueueError::Unavailable(DisplayErrorContext(err).to_string())
}

/// The message attribute that carries a message's trace context: W3C's
/// `traceparent`, the name OpenTelemetry's messaging conventions use. (SQS's
/// own `AWSTraceHeader` system attribute is X-Ray's format.)
fn trace_attributes(message: &Outgoing) -> Option<HashMap<String, MessageAttributeValue>> {
    let traceparent = message.trace.as_ref()?;
    let value = MessageAttributeValue::builder().data_type("String").string_value(traceparent).build().ok()?;
    Some(HashMap::from([(TRACEPARENT.to_owned(), value)]))
}

/// SQS caps a long poll at 20 seconds and a visibility timeout at 12 hours.
fn seconds(duration: Duration, max: u64) -> i32 {
    i32::try_from(duration.as_secs().min(max)).unwrap_or(i32::MAX)
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    /// The group rides as `MessageGroupId`: on a standard queue that makes
    /// it an SQS fair queue, which keeps one tenant's burst from raising the
    /// others' dwell time.
    /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html>
    #[tracing::instrument(skip_all)]
    async fn send(&self, message: &Outgoing) -> Result<String, QueueError> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .set_message_group_id(message.group.clone())
            .set_message_attributes(trace_attributes(message))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn receive(&self, max: u32, wait: Duration, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(seconds(wait, 20))
            .visibility_timeout(seconds(visibility, 43_200))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .message_attribute_names(TRACEPARENT)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let text = |name: MessageSystemAttributeName| m.attributes.as_ref().and_then(|a| a.get(&name)).cloned();
                let attribute = |name: MessageSystemAttributeName| text(name).and_then(|v| v.parse::<i64>().ok());
                Delivery {
                    receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(1),
                    sent_at: attribute(MessageSystemAttributeName::SentTimestamp)
                        .and_then(DateTime::from_timestamp_millis),
                    message_id: m.message_id.unwrap_or_default(),
                    receipt: m.receipt_handle.unwrap_or_default(),
                    group: text(MessageSystemAttributeName::MessageGroupId),
                    body: m.body.unwrap_or_default(),
                    lane: Lane::Live,
                    trace: m.message_attributes.as_ref().and_then(|a| a.get(TRACEPARENT)?.string_value.clone()),
                }
            })
            .collect())
    }

    async fn send_batch(&self, messages: &[Outgoing]) -> Vec<Result<String, QueueError>> {
        let entries: Result<Vec<_>, _> = messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&message.body)
                    .set_message_group_id(message.group.clone())
                    .set_message_attributes(trace_attributes(message))
                    .build()
            })
            .collect();
        let sent = match entries {
            Ok(entries) => {
                self.client.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await
            }
            Err(err) => return messages.iter().map(|_| Err(QueueError::Unavailable(err.to_string()))).collect(),
        };
        let out = match sent {
            Ok(out) => out,
            Err(err) => {
                let message = DisplayErrorContext(err).to_string();
                return messages.iter().map(|_| Err(QueueError::Unavailable(message.clone()))).collect();
            }
        };
        let mut results: Vec<Result<String, QueueError>> =
            messages.iter().map(|_| Err(QueueError::Unavailable("not in the batch answer".into()))).collect();
        for ok in out.successful {
            if let Some(slot) = ok.id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot = Ok(ok.message_id);
            }
        }
        for failed in out.failed {
            if let Some(slot) = failed.id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot =
                    Err(QueueError::Unavailable(format!("{}: {}", failed.code, failed.message.unwrap_or_default())));
            }
        }
        results
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>> {
        let entries: Result<Vec<_>, _> = receipts
            .iter()
            .enumerate()
            .map(|(i, receipt)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build()
            })
            .collect();
        let sent = match entries {
            Ok(entries) => {
                self.client.delete_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await
            }
            Err(err) => return receipts.iter().map(|_| Err(QueueError::Unavailable(err.to_string()))).collect(),
        };
        let out = match sent {
            Ok(out) => out,
            Err(err) => {
                let message = DisplayErrorContext(err).to_string();
                return receipts.iter().map(|_| Err(QueueError::Unavailable(message.clone()))).collect();
            }
        };
        let mut results: Vec<Result<(), QueueError>> = receipts.iter().map(|_| Ok(())).collect();
        for failed in out.failed {
            if let Some(slot) = failed.id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot =
                    Err(QueueError::Unavailable(format!("{}: {}", failed.code, failed.message.unwrap_or_default())));
            }
        }
        results
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(timeout, 43_200))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn approximate_depth(&self) -> Result<u64, QueueError> {
        let mut depth = 0;
        for name in
            [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        {
            depth += self.attribute(name).await?.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
        Ok(depth)
    }

    async fn address(&self) -> Result<Option<String>, QueueError> {
        self.attribute(QueueAttributeName::QueueArn).await
    }

    /// `StartMessageMoveTask` from this (dead-letter) queue to `destination`,
    /// or back to its source. <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html>
    async fn start_redrive(
        &self,
        destination: Option<&str>,
        max_per_second: Option<u32>,
    ) -> Result<Option<String>, QueueError> {
        let arn = self
            .attribute(QueueAttributeName::QueueArn)
            .await?
            .ok_or_else(|| QueueError::Unavailable("the queue has no ARN".into()))?;
        let out = self
            .client
            .start_message_move_task()
            .source_arn(arn)
            .set_destination_arn(destination.map(str::to_owned))
            .set_max_number_of_messages_per_second(max_per_second.and_then(|n| i32::try_from(n).ok()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.task_handle)
    }

    async fn redrive_status(&self, handle: &str) -> Result<RedriveStatus, QueueError> {
        let arn = self
            .attribute(QueueAttributeName::QueueArn)
            .await?
            .ok_or_else(|| QueueError::Unavailable("the queue has no ARN".into()))?;
        let out = self.client.list_message_move_tasks().source_arn(arn).send().await.map_err(unavailable)?;
        let task = out
            .results
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.task_handle.as_deref() == Some(handle) || t.task_handle.is_none())
            .ok_or_else(|| QueueError::Unavailable(format!("no move task {handle}")))?;
        Ok(RedriveStatus {
            status: task.status.unwrap_or_default(),
            moved: u64::try_from(task.approximate_number_of_messages_moved).unwrap_or_default(),
            to_move: task
                .approximate_number_of_messages_to_move
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or_default(),
            failure: task.failure_reason,
        })
    }

    async fn redrive_limit(&self) -> Result<Option<u32>, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(policy) = out.attributes.as_ref().and_then(|a| a.get(&QueueAttributeName::RedrivePolicy)) else {
            return Ok(None);
        };
        // {"deadLetterTargetArn": "...", "maxReceiveCount": 5}; some tools write the count as a string.
        let policy: serde_json::Value =
            serde_json::from_str(policy).map_err(|e| QueueError::Unavailable(format!("redrive policy: {e}")))?;
        let count = match &policy["maxReceiveCount"] {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        Ok(count.and_then(|n| u32::try_from(n).ok()))
    }
}
