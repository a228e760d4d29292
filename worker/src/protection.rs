//! ECS task scale-in protection: while a worker has jobs in flight, ECS must
//! not pick its task to stop when the service scales in.
//!
//! See <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-scale-in-protection-endpoint.html>.

use std::time::Duration;

/// The task protection endpoint of the ECS agent, when running on ECS.
#[derive(Clone)]
pub(crate) struct ScaleInProtection {
    client: reqwest::Client,
    url: String,
}

impl ScaleInProtection {
    /// Present only when `ECS_AGENT_URI` is set, as it is inside an ECS task.
    pub fn from_env() -> Option<Self> {
        let agent = std::env::var("ECS_AGENT_URI").ok()?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
        Some(Self { client, url: format!("{agent}/task-protection/v1/state") })
    }

    /// Turns protection on or off. Failures are logged, never fatal: without
    /// protection a stopped task's messages still come back after their
    /// visibility timeout.
    pub async fn set(&self, protected: bool) {
        // Expiry bounds the damage if the worker dies while protected.
        let body = serde_json::json!({ "ProtectionEnabled": protected, "ExpiresInMinutes": 60 });
        match self.client.put(&self.url).json(&body).send().await.and_then(|r| r.error_for_status()) {
            Ok(_) => tracing::debug!(protected, "scale-in protection updated"),
            Err(err) => tracing::warn!(protected, error = %err.without_url(), "scale-in protection update failed"),
        }
    }
}
