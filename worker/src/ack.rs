//! Acknowledgements, batched: jobs that finish together share one
//! `DeleteMessageBatch` call, and each entry's failure is reported to its job.

use std::sync::Arc;
use std::time::Duration;

use pipeline::queue::{JobQueue, QueueError};
use tokio::sync::{mpsc, oneshot};

type Ack = (String, oneshot::Sender<Result<(), QueueError>>);

/// A handle to the batching task.
#[derive(Clone)]
pub(crate) struct Acker {
    tx: mpsc::Sender<Ack>,
}

/// How long the first acknowledgement of a batch waits for company.
const LINGER: Duration = Duration::from_millis(5);

impl Acker {
    /// Starts the batching task for `queue`.
    pub fn spawn(queue: Arc<dyn JobQueue>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Ack>(256);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + LINGER;
                while batch.len() < 10 {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(ack)) => batch.push(ack),
                        _ => break,
                    }
                }
                let receipts: Vec<String> = batch.iter().map(|(receipt, _)| receipt.clone()).collect();
                let results = queue.delete_batch(&receipts).await;
                for ((_, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
        });
        Self { tx }
    }

    /// Deletes one message, batched with any others acknowledged at the same time.
    pub async fn delete(&self, receipt: String) -> Result<(), QueueError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((receipt, reply))
            .await
            .map_err(|_| QueueError::Unavailable("acknowledgement task stopped".into()))?;
        answer.await.map_err(|_| QueueError::Unavailable("acknowledgement task stopped".into()))?
    }
}
