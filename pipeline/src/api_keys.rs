//! API keys: generated here, shown once, stored only as a SHA-256 hash.
//!
//! A key is `isk_` followed by 64 hex digits (256 random bits). With that much
//! entropy a plain SHA-256 is the right hash: nothing can be guessed, and a
//! lookup is one indexed equality, fast enough to run on every request.

use chrono::Utc;
use entities::api_keys::{self, Scope};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What every key starts with, so scanners and people can recognise one.
pub const KEY_PREFIX: &str = "isk_";

/// Hex SHA-256 of a presented secret: what the table is searched by.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a key for a tenant and returns its row with the secret, which is
/// not stored.
///
/// # Errors
/// Database errors.
pub async fn create(
    db: &DatabaseConnection,
    tenant_id: Uuid,
    name: &str,
    scope: Scope,
) -> Result<(api_keys::Model, String), DbErr> {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let secret = format!("{KEY_PREFIX}{}", hex::encode(random));
    let row = api_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id),
        name: Set(name.to_owned()),
        prefix: Set(secret[..12].to_owned()),
        secret_hash: Set(hash(&secret)),
        scope: Set(scope),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
    };
    let model = api_keys::Entity::insert(row).exec_with_returning(db).await?;
    Ok((model, secret))
}

/// The live (not revoked) key with this secret.
///
/// # Errors
/// Database errors.
pub async fn find_live(db: &DatabaseConnection, secret: &str) -> Result<Option<api_keys::Model>, DbErr> {
    api_keys::Entity::find()
        .filter(api_keys::Column::SecretHash.eq(hash(secret)))
        .filter(api_keys::Column::RevokedAt.is_null())
        .one(db)
        .await
}

/// Every key, oldest first.
///
/// # Errors
/// Database errors.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<api_keys::Model>, DbErr> {
    api_keys::Entity::find().order_by_asc(api_keys::Column::Id).all(db).await
}

/// Revokes a key by id or by its prefix. Returns how many keys it revoked.
///
/// # Errors
/// Database errors.
pub async fn revoke(db: &DatabaseConnection, id_or_prefix: &str) -> Result<u64, DbErr> {
    let mut update = api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_keys::Column::RevokedAt.is_null());
    update = match Uuid::parse_str(id_or_prefix) {
        Ok(id) => update.filter(api_keys::Column::Id.eq(id)),
        Err(_) => update.filter(api_keys::Column::Prefix.eq(id_or_prefix)),
    };
    Ok(update.exec(db).await?.rows_affected)
}
