//! Deduplication: which image of a tenant holds the bytes with a given
//! SHA-256. The primary key makes two concurrent uploads of the same bytes
//! one image. New tenants deduplicate; the default tenant, whose clients
//! were there before, keeps what they had (a repeated upload is a new job)
//! until an operator turns it on.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261204_000007_tenants::DEFAULT_TENANT;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Deduplicate,
}

#[derive(DeriveIden)]
enum ImageDigests {
    Table,
    TenantId,
    Sha256,
    ImageId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Tenants::Table).add_column(boolean(Tenants::Deduplicate).default(true)).to_owned(),
            )
            .await?;
        let keep_as_before = Query::update()
            .table(Tenants::Table)
            .value(Tenants::Deduplicate, false)
            .and_where(Expr::col(Tenants::Id).eq(DEFAULT_TENANT))
            .to_owned();
        manager.exec_stmt(keep_as_before).await?;
        manager
            .create_table(
                Table::create()
                    .table(ImageDigests::Table)
                    .col(uuid(ImageDigests::TenantId))
                    .col(string_len(ImageDigests::Sha256, 64))
                    .col(uuid(ImageDigests::ImageId).unique_key())
                    .primary_key(Index::create().col(ImageDigests::TenantId).col(ImageDigests::Sha256))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ImageDigests::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Tenants::Table).drop_column(Tenants::Deduplicate).to_owned()).await
    }
}
