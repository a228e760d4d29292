//! Per-tenant quotas: uploads per UTC day and bytes stored, with the
//! counters they are checked against. A null limit is no limit.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    MaxUploadsPerDay,
    MaxBytesStored,
    BytesStored,
}

#[derive(DeriveIden)]
enum TenantDailyUploads {
    Table,
    TenantId,
    Day,
    Uploads,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            big_integer_null(Tenants::MaxUploadsPerDay),
            big_integer_null(Tenants::MaxBytesStored),
            big_integer(Tenants::BytesStored).default(0).to_owned(),
        ] {
            let mut column = column;
            manager.alter_table(Table::alter().table(Tenants::Table).add_column(&mut column).to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(TenantDailyUploads::Table)
                    .col(uuid(TenantDailyUploads::TenantId))
                    .col(string_len(TenantDailyUploads::Day, 10))
                    .col(big_integer(TenantDailyUploads::Uploads).default(0))
                    .primary_key(Index::create().col(TenantDailyUploads::TenantId).col(TenantDailyUploads::Day))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TenantDailyUploads::Table).to_owned()).await?;
        for column in [Tenants::BytesStored, Tenants::MaxBytesStored, Tenants::MaxUploadsPerDay] {
            manager.alter_table(Table::alter().table(Tenants::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
