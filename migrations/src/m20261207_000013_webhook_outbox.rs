//! `webhook_deliveries`: the webhook outbox. A row is written in the same
//! transaction as the state change its event announces, one per configured
//! webhook that wants the event, and any worker process delivers it until the
//! receiver accepts it or it expires.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    EventId,
    EventKind,
    Target,
    Body,
    State,
    Attempts,
    NextAttemptAt,
    ExpiresAt,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(pk_uuid(WebhookDeliveries::Id))
                    .col(uuid(WebhookDeliveries::EventId))
                    .col(string_len(WebhookDeliveries::EventKind, 32))
                    .col(string_len(WebhookDeliveries::Target, 16))
                    .col(text(WebhookDeliveries::Body))
                    .col(string_len(WebhookDeliveries::State, 16))
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::ExpiresAt))
                    .col(string_len_null(WebhookDeliveries::LastError, 64))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        // One delivery of an event per webhook, however often it is announced.
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_event_target")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EventId)
                    .col(WebhookDeliveries::Target)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::State)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned()).await
    }
}
