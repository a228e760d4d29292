use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_images::Images;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Variants {
    Table,
    Id,
    ImageId,
    Preset,
    PresetVersion,
    Format,
    Width,
    Height,
    Bytes,
    ObjectKey,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Variants::Table)
                    .col(pk_auto(Variants::Id))
                    .col(uuid(Variants::ImageId))
                    .col(string_len(Variants::Preset, 64))
                    .col(string_len(Variants::PresetVersion, 16))
                    .col(string_len(Variants::Format, 16))
                    .col(integer(Variants::Width))
                    .col(integer(Variants::Height))
                    .col(big_integer(Variants::Bytes))
                    .col(string(Variants::ObjectKey))
                    .col(timestamp_with_time_zone(Variants::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_variants_image")
                            .from(Variants::Table, Variants::ImageId)
                            .to(Images::Table, Images::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per image, preset and version: a redelivered job upserts
        // instead of adding a second row.
        manager
            .create_index(
                Index::create()
                    .name("uq_variants_image_preset_version")
                    .table(Variants::Table)
                    .col(Variants::ImageId)
                    .col(Variants::Preset)
                    .col(Variants::PresetVersion)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Variants::Table).to_owned()).await
    }
}
