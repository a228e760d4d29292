//! Fair share on the queue table: `queue_messages.fair_group` (the tenant a
//! message was sent for) and `fair_key` (its place in the fair order).
//! Receives read `(queue, fair_key, id)` in order; a send looks up its
//! group's last key through `(queue, fair_group, fair_key)`. Messages queued
//! before this migration keep key 0 and go first, as they did.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum QueueMessages {
    Table,
    Id,
    Queue,
    FairGroup,
    FairKey,
}

const FAIR_INDEX: &str = "idx_queue_messages_fair";
const GROUP_INDEX: &str = "idx_queue_messages_group";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut key = big_integer(QueueMessages::FairKey);
        key.default(0);
        for column in [string_len_null(QueueMessages::FairGroup, 128), key] {
            let mut column = column;
            manager.alter_table(Table::alter().table(QueueMessages::Table).add_column(&mut column).to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(FAIR_INDEX)
                    .table(QueueMessages::Table)
                    .col(QueueMessages::Queue)
                    .col(QueueMessages::FairKey)
                    .col(QueueMessages::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(GROUP_INDEX)
                    .table(QueueMessages::Table)
                    .col(QueueMessages::Queue)
                    .col(QueueMessages::FairGroup)
                    .col(QueueMessages::FairKey)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [GROUP_INDEX, FAIR_INDEX] {
            manager.drop_index(Index::drop().name(name).table(QueueMessages::Table).to_owned()).await?;
        }
        for column in [QueueMessages::FairKey, QueueMessages::FairGroup] {
            manager.alter_table(Table::alter().table(QueueMessages::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
