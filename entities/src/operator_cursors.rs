//! `operator_cursors`: where a resumable operator run stopped.

use sea_orm::entity::prelude::*;

/// The saved position of one named run, such as `reprocess:thumb`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "operator_cursors")]
pub struct Model {
    /// The run's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The last key the run finished.
    pub cursor: String,
    /// When it was saved.
    pub updated_at: DateTimeUtc,
}

/// `operator_cursors` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
