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
    /// Most database connections this process opens [default: 8; ingest on SQLite: 2, as
    /// SQLite serialises writers and each connection costs ingest about 5 MiB].
    #[arg(long = "db-pool-size", env = "SALEBOARD_DB_POOL_SIZE",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: Option<u32>,
}

/// Connections when `--db-pool-size` is not given.
pub const DEFAULT_POOL_SIZE: u32 = 8;

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
    /// These settings with `connections` on SQLite when `--db-pool-size` was not given (the
    /// ingest service: SQLite lets one writer in at a time, and each pooled connection keeps
    /// its own page cache and prepared statements).
    #[must_use]
    pub fn with_sqlite_default_pool(mut self, connections: u32) -> Self {
        if self.pool_size.is_none() && self.url.starts_with("sqlite:") {
            self.pool_size = Some(connections);
        }
        self
    }

    /// The pool size: as given, else [`DEFAULT_POOL_SIZE`].
    #[must_use]
    pub fn pool_size(&self) -> u32 {
        self.pool_size.unwrap_or(DEFAULT_POOL_SIZE)
    }

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
            max_connections: self.pool_size(),
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

#[cfg(test)]
mod tests {
    use super::{DEFAULT_POOL_SIZE, DatabaseArgs};

    fn args(url: &str, pool_size: Option<u32>) -> DatabaseArgs {
        DatabaseArgs {
            url: url.to_owned(),
            pool_size,
        }
    }

    #[test]
    fn sqlite_default_pool_applies_only_to_sqlite_without_a_size_given() {
        assert_eq!(
            args("sqlite:x.db", None)
                .with_sqlite_default_pool(2)
                .pool_size(),
            2
        );
        assert_eq!(
            args("sqlite:x.db", Some(5))
                .with_sqlite_default_pool(2)
                .pool_size(),
            5,
            "a size given stays"
        );
        assert_eq!(
            args("postgres://sb@db/sb", None)
                .with_sqlite_default_pool(2)
                .pool_size(),
            DEFAULT_POOL_SIZE
        );
        assert_eq!(args("sqlite:x.db", None).pool_size(), DEFAULT_POOL_SIZE);
    }
}
