//! [`Notifier`] for the embedded defaults: one JSON line per event on stdout.

use async_trait::async_trait;

use super::{Notifier, NotifyError};
use crate::event::Event;

/// Prints each event as one JSON line on stdout, where `scripts/run` shows it.
#[derive(Clone, Debug, Default)]
pub struct ConsoleNotifier;

#[async_trait]
impl Notifier for ConsoleNotifier {
    async fn publish(&self, event: &Event) -> Result<(), NotifyError> {
        let line = serde_json::to_string(event).map_err(|e| NotifyError(e.to_string()))?;
        println!("{line}");
        Ok(())
    }
}
