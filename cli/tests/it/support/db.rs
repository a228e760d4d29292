//! Fresh databases: one Postgres database or SQLite file per test.

use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;
use uuid::Uuid;

/// The Postgres server the tests create databases on.
fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A new, empty Postgres database; returns its URL.
pub async fn postgres() -> String {
    let server = postgres_server();
    let admin = Database::connect(format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("Postgres is required at {server} (scripts/test checks it): {e}"));
    let name = format!("image_service_test_{}", Uuid::new_v4().simple());
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    format!("{server}/{name}")
}

/// A new SQLite file in `dir`; returns its URL.
pub fn sqlite(dir: &TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display())
}
