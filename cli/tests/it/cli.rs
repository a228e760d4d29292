//! The command line as scripts use it: its exit codes, one per kind of
//! failure (`docs/cli.md#exit-codes`), `--json` output, settings after the
//! subcommand, and completions.

use std::process::Output;
use std::time::Duration;

use tempfile::TempDir;
use uuid::Uuid;

use crate::support::{TestApp, base_settings, db, testdata};

/// The binary with the app's database, its URL and a client key.
fn cli(app: &TestApp, dir: &TempDir, settings: &pipeline::Settings) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_image-service"));
    command
        .env("DATABASE_URL", settings.database_url())
        .env("DATA_DIR", dir.path())
        .env("IMAGE_SERVICE_URL", &app.address)
        .env("IMAGE_SERVICE_API_KEY", &app.client_key)
        .env("RUST_LOG", "warn");
    command
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[tokio::test]
async fn each_kind_of_failure_has_its_own_exit_code() {
    // Arrange: the service with a worker running on its own.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    tokio::spawn(app.worker.clone().run_until_stopped(std::future::pending(), Duration::from_secs(1)));
    let run = |args: &[&str]| {
        let mut command = cli(&app, &dir, &settings);
        command.args(args);
        async move { command.output().await.expect("cli runs") }
    };
    let good = testdata("dice_rgba.png").display().to_string();
    let corrupt = testdata("bad/corrupt_data.jpg").display().to_string();
    let missing = Uuid::now_v7().to_string();

    // Act
    let ok = run(&["submit", "--wait", &good]).await;
    let usage = run(&["submit"]).await;
    let unknown_flag = run(&["jobs", "list", "--no-such-flag"]).await;
    let not_found = run(&["jobs", "get", &missing]).await;
    let no_tenant = run(&["keys", "create", "--name", "x", "--tenant", "nobody"]).await;
    let refused = run(&["submit", "--api-key", "isk_wrong", &good]).await;
    let failed = run(&["submit", "--wait", &corrupt]).await;
    let unavailable = run(&["jobs", "get", &missing, "--url", "http://127.0.0.1:9"]).await;

    // Assert
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert_eq!(code(&usage), 2, "{}", stderr(&usage));
    assert_eq!(code(&unknown_flag), 2, "{}", stderr(&unknown_flag));
    assert_eq!(code(&not_found), 3, "{}", stderr(&not_found));
    assert!(stderr(&not_found).contains("not-found"), "{}", stderr(&not_found));
    assert_eq!(code(&no_tenant), 3, "{}", stderr(&no_tenant));
    assert_eq!(code(&refused), 4, "{}", stderr(&refused));
    assert!(stderr(&refused).contains("401 unauthorized"), "{}", stderr(&refused));
    assert_eq!(code(&failed), 5, "{}", stderr(&failed));
    assert!(
        String::from_utf8_lossy(&failed.stdout).contains("\tfailed\t"),
        "{}",
        String::from_utf8_lossy(&failed.stdout)
    );
    assert_eq!(code(&unavailable), 6, "{}", stderr(&unavailable));
}

#[tokio::test]
async fn json_output_parses_and_carries_what_the_tables_show() {
    // Arrange: a directory of images, one of them nested, and a text file.
    let dir = TempDir::new().expect("temp dir");
    let settings = base_settings(dir.path(), db::sqlite(&dir));
    let app = TestApp::spawn(&settings).await;
    tokio::spawn(app.worker.clone().run_until_stopped(std::future::pending(), Duration::from_secs(1)));
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(photos.join("2026")).expect("mkdir");
    std::fs::copy(testdata("dice_rgba.png"), photos.join("dice.png")).expect("copy");
    std::fs::copy(testdata("orient3.jpg"), photos.join("2026/orient.jpg")).expect("copy");
    std::fs::write(photos.join("notes.txt"), "not an image").expect("write");
    let run = |args: Vec<String>| {
        let mut command = cli(&app, &dir, &settings);
        command.args(args);
        async move { command.output().await.expect("cli runs") }
    };

    // Act: the settings and --json after the subcommand.
    let submitted = run(vec![
        "submit".into(),
        "--wait".into(),
        "--concurrency".into(),
        "2".into(),
        photos.display().to_string(),
        "--json".into(),
    ])
    .await;
    let listed = run(vec!["jobs".into(), "list".into(), "--json".into(), "--status".into(), "succeeded".into()]).await;
    let images = run(vec!["images".into(), "list".into(), "--json".into()]).await;
    let keys = run(vec!["keys".into(), "list".into(), "--json".into()]).await;

    // Assert
    assert_eq!(code(&submitted), 0, "{}", stderr(&submitted));
    let outcomes = json_lines(&submitted);
    assert_eq!(outcomes.len(), 2, "the text file is skipped: {outcomes:?}");
    for outcome in &outcomes {
        assert_eq!(outcome["job"]["status"], "succeeded", "{outcome}");
        assert_eq!(outcome["image"]["variants"].as_array().map(Vec::len), Some(3), "{outcome}");
    }
    let jobs = json_lines(&listed);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let mut job_ids: Vec<_> = jobs.iter().map(|j| j["id"].clone()).collect();
    let mut submitted_ids: Vec<_> = outcomes.iter().map(|o| o["job"]["id"].clone()).collect();
    job_ids.sort_by_key(ToString::to_string);
    submitted_ids.sort_by_key(ToString::to_string);
    assert_eq!(job_ids, submitted_ids);
    assert_eq!(json_lines(&images).len(), 2);
    assert!(json_lines(&keys).iter().any(|k| k["scope"] == "admin"), "{:?}", json_lines(&keys));
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_image-service"))
            .args(["completions", shell])
            .output()
            .await
            .expect("cli runs");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        assert!(script.contains("submit") && script.contains("sqs-queue-url"), "{shell}: {script:.200}");
    }
}
