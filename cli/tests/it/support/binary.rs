//! The shipped binary's roles, run as processes on the embedded defaults in
//! a temporary `DATA_DIR`, as they are deployed.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// A running role, killed when the test ends, however it ends.
pub struct Role(pub Child);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A local address nothing listens on (yet).
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").to_string()
}

/// `image-service ARGS` on `dir`'s embedded defaults: warnings only, no
/// trace exporter, stdout discarded.
pub fn command(dir: &TempDir, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_image-service"));
    command
        .args(args)
        .env("DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("LOG_FORMAT")
        .stdout(Stdio::null());
    command
}

/// Migrates `dir`'s database and creates a client API key; returns the key.
pub fn migrate_with_key(dir: &TempDir) -> String {
    let migrated = command(dir, &["migrate"]).status().expect("migrate runs");
    assert!(migrated.success(), "migrate");
    let created = command(dir, &["keys", "create", "--name", "test", "--scope", "client"])
        .stdout(Stdio::piped())
        .output()
        .expect("keys create runs");
    assert!(created.status.success(), "keys create: {}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8(created.stdout).expect("utf-8");
    stdout.lines().last().expect("the key is printed").trim().to_owned()
}

/// The body of `url` once it answers 2xx.
pub async fn get_when_up(url: &str) -> String {
    for _ in 0..300 {
        if let Ok(response) = reqwest::get(url).await
            && response.status().is_success()
        {
            return response.text().await.expect("body");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered");
}
