//! `image-service keys create|list|revoke`: the API keys clients send as
//! `Authorization: Bearer`. The secret is printed once, at creation; the
//! database keeps only its hash.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use entities::api_keys::Scope;
use pipeline::Settings;

/// `image-service keys …`
#[derive(Subcommand)]
pub enum Keys {
    /// Create a key and print its secret (only the secret goes to stdout).
    Create {
        /// Who or what the key is for.
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum, default_value_t = ScopeArg::Client)]
        scope: ScopeArg,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id or prefix; the API stops accepting it within 30 s.
    Revoke {
        /// The key's id, or the prefix `keys list` shows.
        key: String,
    },
}

/// A key's scope.
#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Upload and read.
    Client,
    /// Everything, including replays.
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(scope: ScopeArg) -> Self {
        match scope {
            ScopeArg::Client => Scope::Client,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

pub async fn keys(settings: Settings, command: Keys) -> anyhow::Result<()> {
    let url = settings.database_url();
    if settings.database_url.is_none() {
        std::fs::create_dir_all(&settings.data_dir).context("failed to create DATA_DIR")?;
    }
    let db = pipeline::db::connect(&url).await.context("failed to connect to the database")?;
    if url.starts_with("sqlite:") {
        // The embedded database belongs to this process, as in `run`; a
        // shared Postgres is migrated by `image-service migrate`.
        pipeline::db::migrate(&db).await.context("failed to migrate the database")?;
    }
    match command {
        Keys::Create { name, scope } => {
            let (key, secret) = pipeline::api_keys::create(&db, &name, scope.into()).await?;
            eprintln!(
                "created {} key {:?} ({}); store the secret now, it is not shown again:",
                key.scope.as_str(),
                key.name,
                key.id
            );
            println!("{secret}");
        }
        Keys::List => {
            println!("{:<36}  {:<12}  {:<6}  {:<20}  {:<8}  name", "id", "prefix", "scope", "created", "state");
            for key in pipeline::api_keys::list(&db).await? {
                let state = if key.revoked_at.is_some() { "revoked" } else { "live" };
                println!(
                    "{:<36}  {:<12}  {:<6}  {:<20}  {:<8}  {}",
                    key.id,
                    key.prefix,
                    key.scope.as_str(),
                    key.created_at.format("%Y-%m-%d %H:%M:%S"),
                    state,
                    key.name
                );
            }
        }
        Keys::Revoke { key } => match pipeline::api_keys::revoke(&db, &key).await? {
            0 => anyhow::bail!("no live key has the id or prefix {key:?}"),
            n => eprintln!("revoked {n} key(s)"),
        },
    }
    Ok(())
}
