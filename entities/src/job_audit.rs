//! `job_audit`: what operators did to jobs.

use sea_orm::entity::prelude::*;

/// One operator action on one job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_audit")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The job acted on.
    pub job_id: Uuid,
    /// `redriven`, `revived`, `replayed`, `reprocess`.
    pub action: String,
    /// Free-form detail (which run, which filter).
    pub detail: String,
    /// When.
    pub created_at: DateTimeUtc,
}

/// `job_audit` has no declared relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
