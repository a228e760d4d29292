use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum QueueMessages {
    Table,
    Id,
    Queue,
    Body,
    Receipt,
    ReceiveCount,
    SentAtMs,
    VisibleAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(QueueMessages::Table)
                    .col(big_pk_auto(QueueMessages::Id))
                    .col(string_len(QueueMessages::Queue, 128))
                    .col(text(QueueMessages::Body))
                    .col(string_len_null(QueueMessages::Receipt, 64))
                    .col(integer(QueueMessages::ReceiveCount).default(0))
                    .col(big_integer(QueueMessages::SentAtMs))
                    .col(big_integer(QueueMessages::VisibleAtMs))
                    .to_owned(),
            )
            .await?;
        // A receive reads the oldest visible messages of one queue. Deleted
        // messages leave the table, so this index stays as small as the backlog.
        manager
            .create_index(
                Index::create()
                    .name("idx_queue_messages_visible")
                    .table(QueueMessages::Table)
                    .col(QueueMessages::Queue)
                    .col(QueueMessages::VisibleAtMs)
                    .col(QueueMessages::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(QueueMessages::Table).to_owned()).await
    }
}
