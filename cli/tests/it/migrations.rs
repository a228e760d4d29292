//! The migrations apply, roll back and re-apply on both databases.

use entities::prelude::{Images, Jobs, QueueMessages, Variants};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use tempfile::TempDir;

use crate::support::db;

async fn tables_exist(db: &DatabaseConnection) -> [bool; 4] {
    [
        Images::find().count(db).await.is_ok(),
        Jobs::find().count(db).await.is_ok(),
        Variants::find().count(db).await.is_ok(),
        QueueMessages::find().count(db).await.is_ok(),
    ]
}

async fn up_down_up(url: &str) {
    let db = pipeline::db::connect(url).await.expect("connect");
    assert_eq!(tables_exist(&db).await, [false; 4]);

    Migrator::up(&db, None).await.expect("up");
    assert_eq!(tables_exist(&db).await, [true; 4]);
    assert!(Migrator::get_pending_migrations(&db).await.expect("pending").is_empty());

    Migrator::down(&db, None).await.expect("down");
    assert_eq!(tables_exist(&db).await, [false; 4]);

    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(tables_exist(&db).await, [true; 4]);
}

#[tokio::test]
async fn migrations_apply_roll_back_and_reapply_on_postgres() {
    up_down_up(&db::postgres().await).await;
}

#[tokio::test]
async fn migrations_apply_roll_back_and_reapply_on_sqlite() {
    let dir = TempDir::new().expect("temp dir");
    up_down_up(&db::sqlite(&dir)).await;
}
