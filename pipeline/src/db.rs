//! Connecting to the database and migrating it.

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
pub use sea_orm::DatabaseConnection;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DbErr};

/// How long a SQLite statement waits for another connection's write lock
/// before it fails with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `url` (`postgres://…` or `sqlite://…`).
///
/// SQLite runs in WAL mode, so the API and the worker can read while one of
/// them writes, and waits for the write lock as [`busy`] describes.
///
/// # Errors
/// When the database cannot be reached or the URL is invalid.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
        })
        .map_sqlx_sqlite_pool_opts(|pool| pool.after_connect(|conn, _| Box::pin(busy::install(conn))));
    if url.starts_with("sqlite:") {
        // SQLite serialises writers anyway; a small pool avoids lock churn.
        options.max_connections(4);
    } else {
        options.max_connections(16);
    }
    Database::connect(options).await
}

/// Applies every pending migration.
///
/// # Errors
/// When a migration fails; the database is left at the last good migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Waiting for SQLite's write lock in steps as short as the writes it waits for.
///
/// SQLite has one write lock per database file, and a connection that finds
/// it taken calls its busy handler, then tries again. The built-in handler
/// (what `busy_timeout` installs) sleeps 1, 2, 5, 10, 15, 20, 25 ms… between
/// tries. This service's write transactions are short (WAL with
/// `synchronous = NORMAL`: no fsync per commit), and the API and the worker
/// each write several times a job, so those sleeps mostly left the lock free
/// while both waited: in the tiny-job benchmark the sqlx threads slept about
/// 2.4 times per job, and the p99 latency at 80% load was 40–80 ms. This
/// handler starts at 50 µs and doubles up to 1 ms (p99 11–16 ms, the same
/// throughput; `docs/benchmarks.md`), and gives up once its waits add up to
/// the same [`SQLITE_BUSY_TIMEOUT`].
mod busy {
    use std::ffi::{c_int, c_void};
    use std::time::Duration;

    use sea_orm::sqlx::SqliteConnection;

    use super::SQLITE_BUSY_TIMEOUT;

    const FIRST_WAIT: Duration = Duration::from_micros(50);
    const LONGEST_WAIT: Duration = Duration::from_millis(1);
    /// From this try on every wait is [`LONGEST_WAIT`] (50 µs × 2^5 is past it).
    const DOUBLINGS: u32 = 16;

    /// The wait before try number `count + 1` of one statement.
    fn wait_before_retry(count: u32) -> Duration {
        FIRST_WAIT.saturating_mul(1 << count.min(DOUBLINGS)).min(LONGEST_WAIT)
    }

    /// The waits before try number `count + 1`, summed. Like SQLite's own
    /// handler, the limit counts the waits it scheduled, so no clock is kept.
    fn waited(count: u32) -> Duration {
        let doubling: Duration = (0..count.min(DOUBLINGS)).map(wait_before_retry).sum();
        doubling + LONGEST_WAIT.saturating_mul(count.saturating_sub(DOUBLINGS))
    }

    /// SQLite's busy callback: `count` is how often it was already called for
    /// this lock; return non-zero to try again, zero to give up.
    extern "C" fn on_busy(_: *mut c_void, count: c_int) -> c_int {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        if waited(count) >= SQLITE_BUSY_TIMEOUT {
            return 0;
        }
        std::thread::sleep(wait_before_retry(count));
        1
    }

    /// Replaces the connection's busy handler with [`on_busy`].
    pub(super) async fn install(conn: &mut SqliteConnection) -> Result<(), sea_orm::sqlx::Error> {
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        #[allow(unsafe_code)]
        // SAFETY: `db` is an open connection, held locked by `handle` so no
        // statement runs on it meanwhile. `on_busy` is a plain function that
        // ignores its pointer argument (null here), so nothing it could read
        // can dangle, and it does not unwind: it neither panics nor calls
        // anything that does.
        let status = unsafe { libsqlite3_sys::sqlite3_busy_handler(db, Some(on_busy), std::ptr::null_mut()) };
        if status == libsqlite3_sys::SQLITE_OK {
            Ok(())
        } else {
            Err(sea_orm::sqlx::Error::Configuration(format!("sqlite3_busy_handler failed ({status})").into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{ConnectionTrait, TransactionTrait};

    use super::connect;

    /// Two pools on one file, as the API and the worker are: a write that
    /// meets the other's open write transaction waits for it, then succeeds.
    #[tokio::test]
    async fn a_write_waits_for_another_connections_write_lock() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("lock.db").display());
        let (api, worker) = (connect(&url).await?, connect(&url).await?);
        api.execute_unprepared("CREATE TABLE t (x INTEGER)").await?;

        let holding = api.begin().await?;
        holding.execute_unprepared("INSERT INTO t VALUES (1)").await?;
        let waiting = tokio::spawn(async move { worker.execute_unprepared("INSERT INTO t VALUES (2)").await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the second write did not wait for the lock");
        holding.commit().await?;
        waiting.await??;

        let rows =
            api.query_all_raw(sea_orm::Statement::from_string(api.get_database_backend(), "SELECT x FROM t")).await?;
        assert_eq!(rows.len(), 2);
        Ok(())
    }
}
