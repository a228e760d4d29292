//! `image-service webhooks secret|failed|replay`: signing secrets, and the
//! webhook deliveries that expired before their receiver accepted them.

use std::time::Duration;

use clap::Subcommand;
use pipeline::Settings;
use uuid::Uuid;

/// `image-service webhooks …`
#[derive(Subcommand)]
pub enum Webhooks {
    /// Print a new random signing secret (`whsec_…`) for WEBHOOK_SECRETS.
    Secret,
    /// List deliveries that expired unaccepted, newest first.
    Failed {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Send expired deliveries again, retried for WEBHOOK_DELIVERY_TTL_SECS
    /// more: the ones named, or every one with --all. Each keeps its
    /// webhook-id, so a receiver that saw it already can tell.
    Replay {
        /// Delivery ids, as `webhooks failed` lists them.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<Uuid>,
        /// Every expired delivery.
        #[arg(long)]
        all: bool,
    },
}

pub async fn webhooks(settings: Settings, json: bool, command: Webhooks) -> anyhow::Result<()> {
    match command {
        Webhooks::Secret => println!("{}", pipeline::notify::SigningKey::generate()),
        Webhooks::Failed { limit } => {
            let db = crate::keys::open(&settings).await?;
            let failed = pipeline::outbox::failed(&db, limit).await?;
            if json {
                for delivery in &failed {
                    println!("{}", serde_json::to_string(delivery)?);
                }
            } else {
                println!(
                    "{:<36}  {:<36}  {:<16}  {:<8}  {:>8}  {:<10}  expired",
                    "id", "event_id", "event", "target", "attempts", "last_error"
                );
                for d in &failed {
                    println!(
                        "{:<36}  {:<36}  {:<16}  {:<8}  {:>8}  {:<10}  {}",
                        d.id,
                        d.event_id,
                        d.event_kind,
                        d.target,
                        d.attempts,
                        d.last_error.as_deref().unwrap_or("-"),
                        d.expires_at.format("%Y-%m-%d %H:%M:%S")
                    );
                }
            }
            eprintln!("{} expired deliver{}", failed.len(), if failed.len() == 1 { "y" } else { "ies" });
        }
        Webhooks::Replay { ids, all } => {
            let db = crate::keys::open(&settings).await?;
            let ttl = Duration::from_secs(settings.webhook_delivery_ttl_secs);
            let ids = (!all).then_some(ids.as_slice());
            let replayed = pipeline::outbox::replay(&db, ids, ttl).await?;
            eprintln!(
                "{replayed} deliver{} pending again; a worker sends them",
                if replayed == 1 { "y is" } else { "ies are" }
            );
            crate::remote::emit(json, &serde_json::json!({ "replayed": replayed }), |_| println!("{replayed}"))?;
        }
    }
    Ok(())
}
