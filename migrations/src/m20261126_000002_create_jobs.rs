use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_images::Images;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    ImageId,
    Status,
    Attempts,
    ErrorCode,
    ErrorMessage,
    IdempotencyKey,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
    EventPublishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(pk_uuid(Jobs::Id))
                    .col(uuid(Jobs::ImageId))
                    .col(string_len(Jobs::Status, 16))
                    .col(integer(Jobs::Attempts).default(0))
                    .col(string_len_null(Jobs::ErrorCode, 64))
                    .col(text_null(Jobs::ErrorMessage))
                    .col(string_len_null(Jobs::IdempotencyKey, 255).unique_key())
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Jobs::StartedAt))
                    .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                    .col(timestamp_with_time_zone_null(Jobs::EventPublishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_jobs_image")
                            .from(Jobs::Table, Jobs::ImageId)
                            .to(Images::Table, Images::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Listing by status and time (GET /v1/jobs, replay filters) without a scan.
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_status_created")
                    .table(Jobs::Table)
                    .col(Jobs::Status)
                    .col(Jobs::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("idx_jobs_image").table(Jobs::Table).col(Jobs::ImageId).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Jobs::Table).to_owned()).await
    }
}
