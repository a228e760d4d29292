//! What a web page needs to show an image.
//!
//! - `images.delivery_token`: the random segment of the image's delivery
//!   URLs (`pipeline::delivery`). Null until the image's next job gives it one,
//!   so the rows of earlier images need no backfill.
//! - `images.thumbhash` and `images.dominant_colour`: the placeholder a
//!   page paints before the variants load, from the image's last job.
//! - `tenants.delivery_mode`: `public` or `signed`; null follows `DELIVERY_MODE`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Images {
    Table,
    DeliveryToken,
    Thumbhash,
    DominantColour,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    DeliveryMode,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string_len_null(Images::DeliveryToken, 32),
            string_len_null(Images::Thumbhash, 64),
            string_len_null(Images::DominantColour, 7),
        ] {
            let mut column = column;
            manager.alter_table(Table::alter().table(Images::Table).add_column(&mut column).to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter().table(Tenants::Table).add_column(string_len_null(Tenants::DeliveryMode, 8)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Tenants::Table).drop_column(Tenants::DeliveryMode).to_owned()).await?;
        for column in [Images::DominantColour, Images::Thumbhash, Images::DeliveryToken] {
            manager.alter_table(Table::alter().table(Images::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
