//! `queue_fair_groups`: each fair-share group's last key on each queue, so a
//! send takes its key in one atomic upsert. Reading the group's last queued
//! key and inserting one past it in two statements let concurrent sends of
//! one tenant share a key, and a tenant uploading in parallel then got as
//! many messages per key as it had uploads in flight.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum QueueFairGroups {
    Table,
    Queue,
    FairGroup,
    LastKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(QueueFairGroups::Table)
                    .if_not_exists()
                    .col(string_len(QueueFairGroups::Queue, 128))
                    .col(string_len(QueueFairGroups::FairGroup, 128))
                    .col(big_integer(QueueFairGroups::LastKey))
                    .primary_key(Index::create().col(QueueFairGroups::Queue).col(QueueFairGroups::FairGroup))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(QueueFairGroups::Table).to_owned()).await
    }
}
