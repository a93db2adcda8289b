//! The database settings every service takes, and opening the store they name.

use std::sync::Arc;

use saleboard_storage::{ConnectOptions, StorageError, Store};

/// `--database-url` and `--db-pool-size`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database to use: `sqlite:PATH` (embedded; `dev`, `migrate` and the services create a
    /// missing file, `verify` does not) or `postgres://...`.
    #[arg(
        long = "database-url",
        env = "SALEBOARD_DATABASE_URL",
        default_value = "sqlite:saleboard.db",
        hide_env_values = true,
        value_parser = database_url
    )]
    pub url: String,
    /// Most database connections this process opens.
    #[arg(long = "db-pool-size", env = "SALEBOARD_DB_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
}

/// Accepts the URL schemes Saleboard can open, so a typo fails at start naming the flag.
fn database_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.starts_with("sqlite:")
        || value.starts_with("postgres://")
        || value.starts_with("postgresql://")
    {
        Ok(value.to_owned())
    } else {
        Err("expected sqlite:PATH (embedded) or postgres://USER:PASSWORD@HOST:PORT/DATABASE".into())
    }
}

impl DatabaseArgs {
    /// Connects (creating a SQLite file that does not exist) and applies pending migrations.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated; the message names the (redacted) URL.
    pub async fn open(&self) -> Result<Arc<dyn Store>, OpenError> {
        self.open_with(true).await
    }

    /// Connects to a database that must exist already (a SQLite file is never created), and
    /// applies pending migrations: for commands that read what is there.
    ///
    /// # Errors
    /// As [`DatabaseArgs::open`], and when a SQLite file does not exist (naming its path).
    pub async fn open_existing(&self) -> Result<Arc<dyn Store>, OpenError> {
        self.open_with(false).await
    }

    async fn open_with(&self, create_if_missing: bool) -> Result<Arc<dyn Store>, OpenError> {
        let url = saleboard_storage::redact(&self.url);
        let store = saleboard_storage::connect(&ConnectOptions {
            url: self.url.clone(),
            max_connections: self.pool_size,
            create_if_missing,
        })
        .await
        .map_err(|source| OpenError {
            url: url.clone(),
            step: "connect to",
            source,
        })?;
        store.migrate().await.map_err(|source| OpenError {
            url,
            step: "migrate",
            source,
        })?;
        Ok(store)
    }
}

/// The database named by the settings could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} the database {url}")]
pub struct OpenError {
    url: String,
    step: &'static str,
    #[source]
    source: StorageError,
}
