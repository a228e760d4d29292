//! # image-service
//!
//! The one binary. Every role is a subcommand, so one container image runs
//! them all:
//!
//! - `run`: the API and the worker in one process, on whatever the settings
//!   name (embedded defaults when nothing is set); migrates its database first.
//! - `api`: the HTTP API alone.
//! - `worker`: the queue consumer alone.
//! - `migrate`: apply (or roll back, or list) the database migrations.
//! - `replay dlq|jobs` and `reprocess`: the operators' replays (`ops`).
//! - `keys create|list|revoke`: API keys (`keys`).
//! - `submit PATH… [--wait]`: upload images and follow their jobs (`submit`).
//! - `jobs get|list|wait`, `images get|list|delete|variant`: the API's
//!   resources through the typed client (`remote`).
//! - `openapi`: print the API's OpenAPI document.
//! - `webhooks secret|failed|replay`: signing secrets and expired deliveries (`webhooks`).
//! - `completions SHELL`: a completion script for bash, zsh, fish, …
//!
//! Settings come from flags or environment variables, before or after the
//! subcommand: see `--help`. `--json` prints results as JSON lines, and the
//! exit code says what kind of failure it was (`exit`, `docs/cli.md`).

mod exit;
mod keys;
mod ops;
mod remote;
mod submit;
mod telemetry;
mod webhooks;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use migrations::{Migrator, MigratorTrait};
use pipeline::{Backends, Settings};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "image-service",
    version,
    about = "Event-driven image pipeline: upload, queue, resize, store, notify."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print results as JSON, one value per line, instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: remote::ApiArgs,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the worker in one process (embedded defaults unless configured).
    Run,
    /// Run the HTTP API.
    Api,
    /// Run the queue worker.
    Worker,
    /// Apply, roll back or list database migrations.
    Migrate {
        /// What to do.
        #[arg(value_enum, default_value_t = MigrateAction::Up)]
        action: MigrateAction,
        /// After `up` on Postgres: create or update this role, which the
        /// services connect as. It may read and write rows, never change the
        /// schema. The migrations themselves run as DATABASE_URL's user, the
        /// owner.
        #[arg(long, env = "DATABASE_APP_ROLE", requires = "app_password")]
        app_role: Option<String>,
        /// The application role's password (from a secret, never a flag in
        /// production).
        #[arg(long, env = "DATABASE_APP_PASSWORD", hide_env_values = true)]
        app_password: Option<String>,
    },
    /// Replay dead-lettered messages or past jobs.
    #[command(subcommand)]
    Replay(ops::Replay),
    /// Regenerate a preset's variants (after the preset changed).
    Reprocess(ops::ReprocessArgs),
    /// Create, list or revoke API keys.
    #[command(subcommand)]
    Keys(keys::Keys),
    /// Create or list tenants: who owns images, jobs and keys.
    #[command(subcommand)]
    Tenants(keys::Tenants),
    /// Upload images to a running API; with --wait, follow them to the end.
    Submit(submit::SubmitArgs),
    /// Read jobs from a running API, or wait for one.
    #[command(subcommand)]
    Jobs(remote::Jobs),
    /// Read or delete images on a running API.
    #[command(subcommand)]
    Images(remote::Images),
    /// Print the API's OpenAPI document (as served at /openapi.json, or its
    /// 3.0 rendering at /openapi-3.0.json).
    Openapi {
        /// `3.1`, or `3.0` for generators that read only 3.0.
        #[arg(long, default_value = "3.1", value_parser = ["3.1", "3.0"])]
        spec_version: String,
    },
    /// Webhook signing secrets, and deliveries that expired unaccepted.
    #[command(subcommand)]
    Webhooks(webhooks::Webhooks),
    /// Print a shell completion script (`image-service completions bash > …`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the latest migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
    /// Roll back every migration.
    Reset,
}

/// The command line: every setting is global, so it may come before or
/// after the subcommand (`image-service worker --sqs-queue-url …`).
fn command() -> clap::Command {
    Cli::command().mut_args(|arg| arg.global(true))
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    // Off the runtime: the exporter's HTTP client is a blocking one.
    let tracing = tokio::task::spawn_blocking(telemetry::init).await.unwrap_or_default();
    let result = run(cli).await;
    // Spans still buffered go out before the process does.
    tokio::task::spawn_blocking(move || tracing.shutdown()).await.ok();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::classify(&err).into()
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Before any client is built: one crypto provider for every TLS stack.
    pipeline::tls::install_crypto_provider();
    if matches!(cli.command, Command::Run | Command::Worker) {
        // Jobs allocate and free tens of MiB each; keep it for the next job.
        imaging::allocator::retain_large_buffers();
    }
    let (settings, api, json) = (cli.settings, cli.api, cli.json);
    match cli.command {
        Command::Run => run_all(settings).await,
        Command::Api => run_api(settings).await,
        Command::Worker => run_worker(settings).await,
        Command::Migrate { action, app_role, app_password } => {
            let app_role = app_role.zip(app_password);
            migrate(settings, action, app_role).await
        }
        Command::Replay(command) => ops::replay(settings, json, command).await,
        Command::Reprocess(args) => ops::reprocess(settings, json, args).await,
        Command::Keys(command) => keys::keys(settings, json, command).await,
        Command::Tenants(command) => keys::tenants(settings, json, command).await,
        Command::Submit(args) => submit::submit(&api, json, args).await,
        Command::Jobs(command) => remote::jobs(&api, json, command).await,
        Command::Images(command) => remote::images(&api, json, command).await,
        Command::Openapi { spec_version } => {
            let document = if spec_version == "3.0" { api::openapi::document_3_0() } else { api::openapi::document() };
            print!("{document}");
            Ok(())
        }
        Command::Webhooks(command) => webhooks::webhooks(settings, json, command).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "image-service", &mut std::io::stdout());
            Ok(())
        }
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<Backends> {
    let backends = Backends::connect(settings).await.map_err(|err| {
        exit::Failure::error(exit::Exit::Unavailable, format!("failed to connect the backends: {err:#}"))
    })?;
    tracing::info!(backends = %backends.summary, "backends ready");
    Ok(backends)
}

/// Cancels the returned token on SIGTERM (ECS, docker stop) or Ctrl-C.
fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = terminate => {}
        }
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    token
}

async fn run_all(settings: Settings) -> anyhow::Result<()> {
    let backends = connect(&settings).await?;
    pipeline::db::migrate(&backends.db).await.context("failed to migrate the database")?;
    let key_note = bootstrap_key(&settings, &backends).await?;
    let app = api::Application::build(&settings, backends.clone())
        .await
        .with_context(|| format!("failed to listen on {}", settings.listen_addr))?;
    let worker = worker::Worker::new(backends, &settings).await.context("failed to start the worker")?;
    let address = app.local_addr()?;
    println!(
        "image-service listening on http://{address}  (POST /v1/images, GET /v1/jobs/{{id}}, GET /v1/images/{{id}})"
    );
    if let Some(note) = key_note {
        println!("{note}");
    }

    let shutdown = shutdown_token();
    let deadline = Duration::from_secs(settings.shutdown_deadline_secs);
    spawn_metrics(&worker, &settings, &shutdown);
    let worker_task = tokio::spawn(worker.run_until_stopped(shutdown.clone().cancelled_owned(), deadline));
    app.run_until_stopped(shutdown.cancelled_owned()).await.context("the API failed")?;
    worker_task.await.context("the worker task failed")?;
    Ok(())
}

/// On a first start with keys required and none to use, creates an admin
/// key and saves it to `DATA_DIR/api-key` (mode 0600), so the all-in-one
/// command is usable at once. Returns a line telling where the key is.
async fn bootstrap_key(settings: &Settings, backends: &Backends) -> anyhow::Result<Option<String>> {
    if settings.api_auth == pipeline::settings::AuthMode::Off || settings.admin_api_key.is_some() {
        return Ok(None);
    }
    let path = settings.data_dir.join("api-key");
    if !pipeline::api_keys::list(&backends.db).await?.is_empty() {
        return Ok(path.exists().then(|| format!("API key: in {} (send it as Authorization: Bearer)", path.display())));
    }
    let (_, secret) = pipeline::api_keys::create(
        &backends.db,
        pipeline::tenants::DEFAULT_TENANT,
        "local (created by `run`)",
        entities::api_keys::Scope::Admin,
    )
    .await?;
    std::fs::create_dir_all(&settings.data_dir)?;
    write_private(&path, &secret).with_context(|| format!("failed to save the key to {}", path.display()))?;
    // Only the path: a terminal's scrollback and a log collector keep what
    // is printed.
    Ok(Some(format!("API key created and saved to {} (send it as Authorization: Bearer)", path.display())))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    writeln!(file, "{secret}")
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{secret}\n"))
}

async fn run_api(settings: Settings) -> anyhow::Result<()> {
    let backends = connect(&settings).await?;
    if settings.api_auth == pipeline::settings::AuthMode::Required
        && settings.admin_api_key.is_none()
        && pipeline::api_keys::list(&backends.db).await.map(|keys| keys.is_empty()).unwrap_or(false)
    {
        tracing::warn!(
            "no API keys exist yet: every request will get 401; create one with `image-service keys create`"
        );
    }
    let app = api::Application::build(&settings, backends)
        .await
        .with_context(|| format!("failed to listen on {}", settings.listen_addr))?;
    tracing::info!(address = %app.local_addr()?, "api listening");
    app.run_until_stopped(shutdown_token().cancelled_owned()).await.context("the API failed")
}

async fn run_worker(settings: Settings) -> anyhow::Result<()> {
    let backends = connect(&settings).await?;
    let worker = worker::Worker::new(backends, &settings).await.context("failed to start the worker")?;
    let deadline = Duration::from_secs(settings.shutdown_deadline_secs);
    let shutdown = shutdown_token();
    spawn_metrics(&worker, &settings, &shutdown);
    worker.run_until_stopped(shutdown.cancelled_owned(), deadline).await;
    Ok(())
}

/// Serves the worker's metrics in the background; a port already taken is
/// logged, not fatal, since metrics are not the job.
fn spawn_metrics(worker: &worker::Worker, settings: &Settings, shutdown: &CancellationToken) {
    let (worker, address, stopped) = (worker.clone(), settings.metrics_addr, shutdown.clone().cancelled_owned());
    tokio::spawn(async move {
        let served = match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => worker::serve_metrics(worker, listener, stopped).await,
            Err(err) => Err(err),
        };
        if let Err(err) = served {
            tracing::warn!(%address, error = %err, "metrics endpoint unavailable");
        }
    });
}

async fn migrate(settings: Settings, action: MigrateAction, app_role: Option<(String, String)>) -> anyhow::Result<()> {
    let url = settings.database_url();
    if url.starts_with("sqlite:") && settings.database_url.is_none() {
        // The default SQLite file lives in DATA_DIR, which may not exist yet.
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("failed to create {}", settings.data_dir.display()))?;
    }
    let db = pipeline::db::connect(&url).await.context("failed to connect to the database")?;
    match action {
        MigrateAction::Up => Migrator::up(&db, None).await,
        MigrateAction::Down => Migrator::down(&db, Some(1)).await,
        MigrateAction::Status => Migrator::status(&db).await,
        MigrateAction::Reset => Migrator::reset(&db).await,
    }
    .context("migration failed")?;
    tracing::info!("migrations done");
    if let (MigrateAction::Up, Some((role, password))) = (action, app_role) {
        pipeline::roles::grant_app_role(&db, &role, &password)
            .await
            .with_context(|| format!("failed to grant the application role {role}"))?;
        tracing::info!(%role, "application role granted row access");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks a command's definition only when that command is parsed;
    /// this checks every subcommand's at once (a bool positional without a
    /// value action, for one, panics on first use).
    #[test]
    fn every_command_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn settings_are_taken_after_the_subcommand_too() {
        let parsed = |args: &[&str]| {
            let matches = command().try_get_matches_from(args).expect("parses");
            Cli::from_arg_matches(&matches).expect("matches")
        };

        let after = parsed(&["image-service", "worker", "--sqs-queue-url", "http://q/1", "--json"]);
        let before = parsed(&["image-service", "--sqs-queue-url", "http://q/1", "worker"]);

        assert_eq!(after.settings.sqs_queue_url.as_deref(), Some("http://q/1"));
        assert_eq!(before.settings.sqs_queue_url.as_deref(), Some("http://q/1"));
        assert!(after.json && !before.json);
    }
}
