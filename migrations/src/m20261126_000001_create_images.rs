use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Images {
    Table,
    Id,
    SourceKey,
    Sha256,
    Bytes,
    Format,
    Width,
    Height,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Images::Table)
                    .col(pk_uuid(Images::Id))
                    .col(string(Images::SourceKey))
                    .col(string_len(Images::Sha256, 64))
                    .col(big_integer(Images::Bytes))
                    .col(string_len_null(Images::Format, 16))
                    .col(integer_null(Images::Width))
                    .col(integer_null(Images::Height))
                    .col(timestamp_with_time_zone(Images::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Duplicate uploads are found by content hash.
        manager
            .create_index(Index::create().name("idx_images_sha256").table(Images::Table).col(Images::Sha256).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Images::Table).to_owned()).await
    }
}
