//! `api_keys`: the keys clients authenticate with, stored as hashes.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// What a key may do. `Admin` includes everything `Client` may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Upload images and read jobs, images and variants.
    #[sea_orm(string_value = "client")]
    Client,
    /// Everything a client may, plus the operators' endpoints.
    #[sea_orm(string_value = "admin")]
    Admin,
}

impl Scope {
    /// The name stored and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Admin => "admin",
        }
    }

    /// Whether a key of this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        self == Self::Admin || needed == Self::Client
    }
}

/// One API key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// The key's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning tenant ([`crate::tenants`]).
    pub tenant_id: Uuid,
    /// Who or what the key is for.
    pub name: String,
    /// The first characters of the secret, to recognise it in listings.
    pub prefix: String,
    /// Hex SHA-256 of the whole secret.
    #[serde(skip)]
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// What the key may do.
    pub scope: Scope,
    /// When it was created.
    pub created_at: DateTimeUtc,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTimeUtc>,
}

/// `api_keys` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
