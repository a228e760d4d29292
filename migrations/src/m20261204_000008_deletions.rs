//! `deletions`: the audit record of every image deleted, and the work list
//! of deletions whose objects are not all gone yet. It holds ids and times
//! only: no image data and no client metadata.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deletions {
    Table,
    Id,
    TenantId,
    ImageId,
    JobIds,
    RequestedBy,
    RequestedAt,
    CompletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deletions::Table)
                    .col(pk_uuid(Deletions::Id))
                    .col(uuid(Deletions::TenantId))
                    .col(uuid(Deletions::ImageId).unique_key())
                    .col(text(Deletions::JobIds))
                    .col(uuid_null(Deletions::RequestedBy))
                    .col(timestamp_with_time_zone(Deletions::RequestedAt))
                    .col(timestamp_with_time_zone_null(Deletions::CompletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deletions_pending")
                    .table(Deletions::Table)
                    .col(Deletions::CompletedAt)
                    .col(Deletions::RequestedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Deletions::Table).to_owned()).await
    }
}
