//! The entities under short names.

pub use super::api_keys::Entity as ApiKeys;
pub use super::deletions::Entity as Deletions;
pub use super::images::Entity as Images;
pub use super::job_audit::Entity as JobAudit;
pub use super::jobs::Entity as Jobs;
pub use super::operator_cursors::Entity as OperatorCursors;
pub use super::queue_messages::Entity as QueueMessages;
pub use super::tenants::Entity as Tenants;
pub use super::variants::Entity as Variants;
pub use super::webhook_deliveries::Entity as WebhookDeliveries;
