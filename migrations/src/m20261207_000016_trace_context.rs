//! The W3C trace context (`traceparent`) a job carries from its upload to
//! its event: on the job row (the presigned path, where S3's event cannot
//! carry it, and the job resource's `trace_id`), on the queue table's
//! messages (as an SQS message attribute does), and on the webhook outbox's
//! rows (each delivery's `traceparent` header). Null when tracing is off.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum QueueMessages {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Column {
    TraceParent,
}

fn tables() -> [DynIden; 3] {
    [Jobs::Table.into_iden(), QueueMessages::Table.into_iden(), WebhookDeliveries::Table.into_iden()]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            // 55 characters: `00-` + 32 + `-` + 16 + `-` + 2; room for a later version.
            let mut column = string_len_null(Column::TraceParent, 128);
            manager.alter_table(Table::alter().table(table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.alter_table(Table::alter().table(table).drop_column(Column::TraceParent).to_owned()).await?;
        }
        Ok(())
    }
}
