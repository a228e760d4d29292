//! What clients attach to an upload, and how long originals are kept.
//!
//! - `images.external_id` (unique per tenant) and `images.metadata` (a JSON
//!   object of at most 4 KiB, stored as text) come from the upload.
//! - `deletions` hold both only until the deletion's `image.deleted` event
//!   has gone out; a completed record keeps neither.
//! - `tenants.originals_retention_days` overrides the global retention; null
//!   follows it. `images.original_expires_at` is set when a job succeeds
//!   under a retention, and `images.original_removed_at` once the sweeper
//!   has removed the original.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Images {
    Table,
    TenantId,
    ExternalId,
    Metadata,
    OriginalExpiresAt,
    OriginalRemovedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    OriginalsRetentionDays,
}

#[derive(DeriveIden, Clone, Copy)]
enum Deletions {
    Table,
    ExternalId,
    Metadata,
}

const EXTERNAL_ID_INDEX: &str = "images_tenant_external_id";
const EXPIRY_INDEX: &str = "images_original_expires_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string_len_null(Images::ExternalId, 200),
            text_null(Images::Metadata),
            timestamp_with_time_zone_null(Images::OriginalExpiresAt),
            timestamp_with_time_zone_null(Images::OriginalRemovedAt),
        ] {
            let mut column = column;
            manager.alter_table(Table::alter().table(Images::Table).add_column(&mut column).to_owned()).await?;
        }
        // Null external ids are distinct in a unique index, on Postgres and SQLite alike.
        manager
            .create_index(
                Index::create()
                    .name(EXTERNAL_ID_INDEX)
                    .table(Images::Table)
                    .col(Images::TenantId)
                    .col(Images::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name(EXPIRY_INDEX).table(Images::Table).col(Images::OriginalExpiresAt).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(integer_null(Tenants::OriginalsRetentionDays))
                    .to_owned(),
            )
            .await?;
        for column in [string_len_null(Deletions::ExternalId, 200), text_null(Deletions::Metadata)] {
            let mut column = column;
            manager.alter_table(Table::alter().table(Deletions::Table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Deletions::Metadata, Deletions::ExternalId] {
            manager.alter_table(Table::alter().table(Deletions::Table).drop_column(column).to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(Tenants::Table).drop_column(Tenants::OriginalsRetentionDays).to_owned())
            .await?;
        for name in [EXPIRY_INDEX, EXTERNAL_ID_INDEX] {
            manager.drop_index(Index::drop().name(name).table(Images::Table).to_owned()).await?;
        }
        for column in [Images::OriginalRemovedAt, Images::OriginalExpiresAt, Images::Metadata, Images::ExternalId] {
            manager.alter_table(Table::alter().table(Images::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
