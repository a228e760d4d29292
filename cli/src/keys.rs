//! `image-service keys create|list|revoke`: the API keys clients send as
//! `Authorization: Bearer`. The secret is printed once, at creation; the
//! database keeps only its hash. Every key belongs to a tenant, made with
//! `image-service tenants create`.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use entities::api_keys::Scope;
use pipeline::Settings;

use crate::exit::{Exit, Failure};
use crate::remote::emit;

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
        /// The tenant it acts for (see `tenants create`).
        #[arg(long, default_value = pipeline::tenants::DEFAULT_TENANT_NAME)]
        tenant: String,
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

/// `image-service tenants …`
#[derive(Subcommand)]
pub enum Tenants {
    /// Create a tenant. Names are 1-64 characters of a-z, 0-9, '-' and '_'.
    Create {
        /// The tenant's name.
        name: String,
    },
    /// List tenants, with their quotas and what they use of them today.
    List,
    /// Turn deduplication on or off: with it on (the default), an upload of
    /// bytes the tenant already has returns that image instead of a new one.
    Dedup {
        /// The tenant's name.
        name: String,
        /// `on` or `off`.
        #[arg(action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
        on: bool,
    },
    /// Set a tenant's quotas; a quota left out is no limit. Past either,
    /// uploads get 429 quota-exceeded.
    SetQuota {
        /// The tenant's name.
        name: String,
        /// Uploads it may start per UTC day.
        #[arg(long)]
        uploads_per_day: Option<i64>,
        /// Bytes of originals and variants it may keep stored.
        #[arg(long)]
        max_bytes_stored: Option<i64>,
    },
    /// Set how long a tenant's originals are kept: N days after upload, and
    /// never before their job succeeded (variants stay). It applies to jobs
    /// that succeed from now on; reprocess to apply it to older images.
    SetRetention {
        /// The tenant's name.
        name: String,
        /// Days to keep originals; 0 keeps them for good.
        #[arg(long, conflicts_with = "global", required_unless_present = "global")]
        days: Option<u32>,
        /// Follow ORIGINALS_RETENTION_DAYS instead of a setting of its own.
        #[arg(long)]
        global: bool,
    },
    /// Set how a tenant's variants are delivered: `public` (the URL alone
    /// is enough) or `signed` (URLs carry an expiry and a signature). It
    /// applies to the variants jobs make from now on; `reprocess --preset P`,
    /// for each preset, moves existing ones (and removes the old copies).
    SetDelivery {
        /// The tenant's name.
        name: String,
        /// `public` or `signed`.
        #[arg(value_enum, conflicts_with = "global", required_unless_present = "global")]
        mode: Option<pipeline::delivery::Mode>,
        /// Follow DELIVERY_MODE instead of a setting of its own.
        #[arg(long)]
        global: bool,
    },
    /// Erase a tenant: every image (original, variants, rows, cache entries;
    /// each announced as image.deleted), then its keys, then the tenant.
    /// Resumable: run it again after an interruption.
    Delete {
        /// The tenant's name.
        name: String,
        /// Only count what would be erased.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn tenants(settings: Settings, json: bool, command: Tenants) -> anyhow::Result<()> {
    let db = open(&settings).await?;
    match command {
        Tenants::Create { name } => {
            let tenant = pipeline::tenants::create(&db, &name).await?;
            eprintln!("created tenant {:?} ({})", tenant.name, tenant.id);
            emit(json, &serde_json::json!({ "id": tenant.id, "name": tenant.name }), |_| println!("{}", tenant.id))?;
        }
        Tenants::Delete { name, dry_run } => {
            let tenant = tenant_named(&db, &name).await?;
            let backends = pipeline::Backends::connect(&settings).await.context("failed to connect the backends")?;
            let bar = crate::ops::Bar::new();
            let erased = pipeline::deletion::erase_tenant(&backends, &tenant, dry_run, &bar, &settings.app_env).await;
            bar.0.finish_and_clear();
            let erased = erased?;
            let verb = if erased.dry_run { "would erase" } else { "erased" };
            println!("{verb} tenant {name:?}: {} image(s), {} key(s)", erased.images, erased.keys);
        }
        Tenants::Dedup { name, on } => {
            let tenant = tenant_named(&db, &name).await?;
            pipeline::tenants::set_deduplicate(&db, tenant.id, on).await?;
            eprintln!("deduplication for tenant {name:?} is {}", if on { "on" } else { "off" });
        }
        Tenants::SetQuota { name, uploads_per_day, max_bytes_stored } => {
            let tenant = tenant_named(&db, &name).await?;
            let limits = pipeline::quota::Limits { uploads_per_day, bytes_stored: max_bytes_stored };
            pipeline::quota::set_limits(&db, tenant.id, limits).await?;
            eprintln!("set the quotas of tenant {name:?}: {}", describe_limits(&limits));
        }
        Tenants::SetRetention { name, days, global } => {
            let tenant = tenant_named(&db, &name).await?;
            let retention = pipeline::retention::Retention::from_settings(&settings);
            let days = if global { None } else { days };
            if let Some(days) = days {
                retention.check(days).map_err(anyhow::Error::msg)?;
            }
            pipeline::tenants::set_retention(&db, tenant.id, days).await?;
            let described = match days {
                None => format!("the global setting ({})", describe_retention(retention.default_days)),
                Some(days) => describe_retention(days),
            };
            eprintln!("originals of tenant {name:?} are kept for {described}");
        }
        Tenants::SetDelivery { name, mode, global } => {
            let tenant = tenant_named(&db, &name).await?;
            let mode = if global { None } else { mode };
            pipeline::tenants::set_delivery(&db, tenant.id, mode).await?;
            let described = match mode {
                None => format!("the global setting ({})", settings.delivery_mode.as_str()),
                Some(mode) => mode.as_str().to_owned(),
            };
            eprintln!("variants of tenant {name:?} are delivered {described}; reprocess to move the existing ones");
        }
        Tenants::List if json => {
            let now = chrono::Utc::now();
            for tenant in pipeline::tenants::list(&db).await? {
                let uploads_today = pipeline::quota::uploads_on(&db, tenant.id, now).await?;
                let row = serde_json::json!({
                    "id": tenant.id,
                    "name": tenant.name,
                    "created_at": tenant.created_at,
                    "uploads_today": uploads_today,
                    "max_uploads_per_day": tenant.max_uploads_per_day,
                    "bytes_stored": tenant.bytes_stored,
                    "max_bytes_stored": tenant.max_bytes_stored,
                    "originals_retention_days": tenant.originals_retention_days,
                });
                println!("{row}");
            }
        }
        Tenants::List => {
            let now = chrono::Utc::now();
            println!(
                "{:<36}  {:<20}  {:<24}  {:<28}  {:<10}  name",
                "id", "created", "uploads today / quota", "bytes stored / quota", "retention"
            );
            let default_days = settings.originals_retention_days;
            for tenant in pipeline::tenants::list(&db).await? {
                let today = pipeline::quota::uploads_on(&db, tenant.id, now).await?;
                let or_none = |limit: Option<i64>| limit.map_or_else(|| "-".to_owned(), |n| n.to_string());
                let retention = tenant.originals_retention_days.map_or_else(
                    || format!("{}*", describe_retention(default_days)),
                    |days| describe_retention(u32::try_from(days).unwrap_or(0)),
                );
                println!(
                    "{:<36}  {:<20}  {:<24}  {:<28}  {:<10}  {}",
                    tenant.id,
                    tenant.created_at.format("%Y-%m-%d %H:%M:%S"),
                    format!("{today} / {}", or_none(tenant.max_uploads_per_day)),
                    format!("{} / {}", tenant.bytes_stored, or_none(tenant.max_bytes_stored)),
                    retention,
                    tenant.name
                );
            }
        }
    }
    Ok(())
}

/// `30 days`, or `ever` for 0.
fn describe_retention(days: u32) -> String {
    if days == 0 { "ever".to_owned() } else { format!("{days} days") }
}

fn describe_limits(limits: &pipeline::quota::Limits) -> String {
    let or_unlimited = |limit: Option<i64>| limit.map_or_else(|| "no limit".to_owned(), |n| n.to_string());
    format!(
        "uploads per day {}, bytes stored {}",
        or_unlimited(limits.uploads_per_day),
        or_unlimited(limits.bytes_stored)
    )
}

/// The tenant with this name, or an error that says how to find or make one.
pub(crate) async fn tenant_named(
    db: &pipeline::db::DatabaseConnection,
    name: &str,
) -> anyhow::Result<entities::tenants::Model> {
    pipeline::tenants::find_by_name(db, name).await?.ok_or_else(|| {
        Failure::error(
            Exit::NotFound,
            format!("no tenant is named {name:?} (`tenants list` shows them; `tenants create {name}` makes one)"),
        )
    })
}

/// The database the settings name, migrated first when it is the embedded one.
pub(crate) async fn open(settings: &Settings) -> anyhow::Result<pipeline::db::DatabaseConnection> {
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
    Ok(db)
}

pub async fn keys(settings: Settings, json: bool, command: Keys) -> anyhow::Result<()> {
    let db = open(&settings).await?;
    match command {
        Keys::Create { name, scope, tenant } => {
            let owner = tenant_named(&db, &tenant).await?;
            let (key, secret) = pipeline::api_keys::create(&db, owner.id, &name, scope.into()).await?;
            eprintln!(
                "created {} key {:?} ({}) for tenant {:?}; store the secret now, it is not shown again:",
                key.scope.as_str(),
                key.name,
                key.id,
                owner.name
            );
            let created = serde_json::json!({
                "id": key.id, "name": key.name, "scope": key.scope.as_str(), "tenant": owner.name, "secret": secret,
            });
            emit(json, &created, |_| println!("{secret}"))?;
        }
        Keys::List if json => {
            let names: std::collections::HashMap<_, _> =
                pipeline::tenants::list(&db).await?.into_iter().map(|t| (t.id, t.name)).collect();
            for key in pipeline::api_keys::list(&db).await? {
                let row = serde_json::json!({
                    "id": key.id,
                    "prefix": key.prefix,
                    "scope": key.scope.as_str(),
                    "created_at": key.created_at,
                    "revoked_at": key.revoked_at,
                    "tenant": names.get(&key.tenant_id),
                    "name": key.name,
                });
                println!("{row}");
            }
        }
        Keys::List => {
            let names: std::collections::HashMap<_, _> =
                pipeline::tenants::list(&db).await?.into_iter().map(|t| (t.id, t.name)).collect();
            println!(
                "{:<36}  {:<12}  {:<6}  {:<20}  {:<8}  {:<16}  name",
                "id", "prefix", "scope", "created", "state", "tenant"
            );
            for key in pipeline::api_keys::list(&db).await? {
                let state = if key.revoked_at.is_some() { "revoked" } else { "live" };
                let tenant = names.get(&key.tenant_id).map_or("?", String::as_str);
                println!(
                    "{:<36}  {:<12}  {:<6}  {:<20}  {:<8}  {:<16}  {}",
                    key.id,
                    key.prefix,
                    key.scope.as_str(),
                    key.created_at.format("%Y-%m-%d %H:%M:%S"),
                    state,
                    tenant,
                    key.name
                );
            }
        }
        Keys::Revoke { key } => match pipeline::api_keys::revoke(&db, &key).await? {
            0 => return Err(Failure::error(Exit::NotFound, format!("no live key has the id or prefix {key:?}"))),
            n => eprintln!("revoked {n} key(s)"),
        },
    }
    Ok(())
}
