use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    ReplayOf,
    Presets,
}

#[derive(DeriveIden)]
enum JobAudit {
    Table,
    Id,
    JobId,
    Action,
    Detail,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OperatorCursors {
    Table,
    Name,
    Cursor,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A replayed job is a new attempt linked to the one it replays.
        manager.alter_table(Table::alter().table(Jobs::Table).add_column(uuid_null(Jobs::ReplayOf)).to_owned()).await?;
        // Which presets a job makes; NULL means all of them.
        manager.alter_table(Table::alter().table(Jobs::Table).add_column(text_null(Jobs::Presets)).to_owned()).await?;
        manager
            .create_index(Index::create().name("idx_jobs_replay_of").table(Jobs::Table).col(Jobs::ReplayOf).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JobAudit::Table)
                    .col(big_pk_auto(JobAudit::Id))
                    .col(uuid(JobAudit::JobId))
                    .col(string_len(JobAudit::Action, 64))
                    .col(text(JobAudit::Detail))
                    .col(timestamp_with_time_zone(JobAudit::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_job_audit_job").table(JobAudit::Table).col(JobAudit::JobId).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OperatorCursors::Table)
                    .col(string_len(OperatorCursors::Name, 128).primary_key())
                    .col(text(OperatorCursors::Cursor))
                    .col(timestamp_with_time_zone(OperatorCursors::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(OperatorCursors::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(JobAudit::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_jobs_replay_of").table(Jobs::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::Presets).to_owned()).await?;
        manager.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::ReplayOf).to_owned()).await
    }
}
