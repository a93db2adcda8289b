//! `saleboard migrate`: apply pending migrations and report the ledger head.

use saleboard_runtime::database::DatabaseArgs;

/// Arguments of `saleboard migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
}

/// Runs the command.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn run(args: &MigrateArgs) -> anyhow::Result<()> {
    let store = args.database.open().await?;
    let head = store.ledger_head().await?;
    println!(
        "{} ({}) is migrated; the ledger holds {head} transactions",
        saleboard_storage::redact(&args.database.url),
        store.backend()
    );
    Ok(())
}
