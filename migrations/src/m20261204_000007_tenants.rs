//! Tenants: every image, job and API key belongs to one. Rows that existed
//! before tenants belong to the default tenant, which this migration creates.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::{prelude::*, schema::*};

/// The default tenant's id. `entities::tenants::DEFAULT_TENANT` is the same
/// value; `cli/tests/it/tenants.rs` checks that the two agree.
pub(crate) const DEFAULT_TENANT: Uuid = Uuid::from_u128(0x019a_e9c0_0000_7000_8000_0000_0000_0001);

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Images {
    Table,
    Id,
    TenantId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    Id,
    TenantId,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    TenantId,
}

/// Adds `tenant_id` to `table`, gives every existing row the default tenant,
/// and (where the database can alter a column) makes it required.
async fn add_tenant_column<T: Iden + Copy + 'static, C: Iden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    column: C,
) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(table).add_column(uuid_null(column)).to_owned()).await?;
    let backfill =
        Query::update().table(table).value(column, DEFAULT_TENANT).and_where(Expr::col(column).is_null()).to_owned();
    manager.exec_stmt(backfill).await?;
    if manager.get_database_backend() == DbBackend::Postgres {
        manager
            .alter_table(Table::alter().table(table).modify_column(ColumnDef::new(column).uuid().not_null()).to_owned())
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(pk_uuid(Tenants::Id))
                    .col(string_len(Tenants::Name, 64).unique_key())
                    .col(timestamp_with_time_zone(Tenants::CreatedAt))
                    .to_owned(),
            )
            .await?;
        let default = Query::insert()
            .into_table(Tenants::Table)
            .columns([Tenants::Id, Tenants::Name, Tenants::CreatedAt])
            .values_panic([DEFAULT_TENANT.into(), "default".into(), chrono::Utc::now().into()])
            .to_owned();
        manager.exec_stmt(default).await?;
        add_tenant_column(manager, Images::Table, Images::TenantId).await?;
        add_tenant_column(manager, Jobs::Table, Jobs::TenantId).await?;
        add_tenant_column(manager, ApiKeys::Table, ApiKeys::TenantId).await?;
        // Every read of the API is by tenant, then by id or newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_images_tenant")
                    .table(Images::Table)
                    .col(Images::TenantId)
                    .col(Images::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_jobs_tenant").table(Jobs::Table).col(Jobs::TenantId).col(Jobs::Id).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_jobs_tenant").table(Jobs::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_images_tenant").table(Images::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(ApiKeys::Table).drop_column(ApiKeys::TenantId).to_owned()).await?;
        manager.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::TenantId).to_owned()).await?;
        manager.alter_table(Table::alter().table(Images::Table).drop_column(Images::TenantId).to_owned()).await?;
        manager.drop_table(Table::drop().table(Tenants::Table).to_owned()).await
    }
}
