use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Name,
    Prefix,
    SecretHash,
    Scope,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    ApiKeyId,
    RequestFingerprint,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Keys are looked up by the hash of the presented secret; the secret
        // itself is shown once, at creation, and never stored.
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(pk_uuid(ApiKeys::Id))
                    .col(string_len(ApiKeys::Name, 128))
                    .col(string_len(ApiKeys::Prefix, 16))
                    .col(string_len(ApiKeys::SecretHash, 64).unique_key())
                    .col(string_len(ApiKeys::Scope, 16))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .to_owned(),
            )
            .await?;
        // Who created a job, and a digest of what they sent with an
        // Idempotency-Key, so a reused key with a different body is refused.
        manager.alter_table(Table::alter().table(Jobs::Table).add_column(uuid_null(Jobs::ApiKeyId)).to_owned()).await?;
        manager
            .alter_table(
                Table::alter().table(Jobs::Table).add_column(string_len_null(Jobs::RequestFingerprint, 64)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::RequestFingerprint).to_owned()).await?;
        manager.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::ApiKeyId).to_owned()).await?;
        manager.drop_table(Table::drop().table(ApiKeys::Table).to_owned()).await
    }
}
