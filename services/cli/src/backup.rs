//! `saleboard backup --out FILE` and `saleboard restore FILE`: a consistent, checksummed file
//! of a database (sites, API keys as hashes, events, rates, the ledger; the format is
//! `saleboard_storage::backup::format`), and its restore into an empty database of either
//! kind. The totals are not in the file: the aggregator folds the restored ledger.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use saleboard_runtime::database::DatabaseArgs;
use saleboard_storage::backup::Summary;
use tokio::io::{AsyncWriteExt as _, BufReader, BufWriter};

/// Bytes buffered between the database and the file.
const BUFFER: usize = 1 << 20;

/// Arguments of `saleboard backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
    /// Where to write the backup; `-` writes it to standard output. A file is written as
    /// FILE.partial and renamed once complete, so FILE is never half a backup.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `saleboard restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
    /// The backup; `-` reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Only read the file through and check it (structure, every row, the checksum); touch
    /// no database.
    #[arg(long)]
    pub check: bool,
}

/// Runs `saleboard backup`.
///
/// # Errors
/// When the database cannot be read or the file written (a file is then not left behind).
pub async fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    let store = args.database.open_existing().await?;
    let url = saleboard_storage::redact(&args.database.url);
    let written_by = concat!("saleboard ", env!("CARGO_PKG_VERSION"));
    let summary = if args.out == Path::new("-") {
        let mut out = BufWriter::with_capacity(BUFFER, tokio::io::stdout());
        store
            .backup(&mut out, written_by)
            .await
            .with_context(|| format!("cannot back up {url}"))?
    } else {
        let partial = partial_path(&args.out);
        let result = write_file(store.as_ref(), &partial, written_by).await;
        let summary = match result {
            Ok(summary) => summary,
            Err(e) => {
                drop(tokio::fs::remove_file(&partial).await);
                return Err(e.context(format!("cannot back up {url}")));
            }
        };
        tokio::fs::rename(&partial, &args.out)
            .await
            .with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    partial.display(),
                    args.out.display()
                )
            })?;
        summary
    };
    eprintln!(
        "backed up {url} ({} schema {}) as of {}: {}",
        summary.header.backend,
        summary.header.migration,
        written_at(&summary),
        counts(&summary)
    );
    eprintln!("{}", audit_chain(&summary));
    if args.out != Path::new("-") {
        eprintln!("wrote {}", args.out.display());
    }
    Ok(())
}

/// FILE.partial beside FILE.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

async fn write_file(
    store: &dyn saleboard_storage::Store,
    path: &Path,
    written_by: &str,
) -> anyhow::Result<Summary> {
    let file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(BUFFER, file);
    let summary = store.backup(&mut out, written_by).await?;
    out.shutdown()
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    // On disk before it takes the final name.
    out.into_inner()
        .sync_all()
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(summary)
}

/// Runs `saleboard restore`.
///
/// # Errors
/// When the file is refused (nothing is restored then), the database is not empty, or it
/// cannot be reached.
pub async fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let mut input: BufReader<Box<dyn tokio::io::AsyncRead + Unpin + Send>> =
        if args.file == Path::new("-") {
            BufReader::with_capacity(BUFFER, Box::new(tokio::io::stdin()))
        } else {
            let file = tokio::fs::File::open(&args.file)
                .await
                .with_context(|| format!("cannot open {}", args.file.display()))?;
            BufReader::with_capacity(BUFFER, Box::new(file))
        };
    let name = args.file.display();
    if args.check {
        let summary = saleboard_storage::backup::check(&mut input)
            .await
            .with_context(|| format!("{name} is not a backup this saleboard can restore"))?;
        println!(
            "{name}: a complete backup ({} schema {}, format {}, written by {}) as of {}: {}",
            summary.header.backend,
            summary.header.migration,
            summary.header.format,
            summary.header.written_by,
            written_at(&summary),
            counts(&summary)
        );
        println!("{}", audit_chain(&summary));
        return Ok(());
    }
    let store = args.database.open().await?;
    let url = saleboard_storage::redact(&args.database.url);
    let summary = store
        .restore(&mut input)
        .await
        .with_context(|| format!("nothing was restored into {url} from {name}"))?;
    println!(
        "restored {name} (from {} schema {}, as of {}) into {url}: {}",
        summary.header.backend,
        summary.header.migration,
        written_at(&summary),
        counts(&summary)
    );
    println!("{}", audit_chain(&summary));
    println!(
        "the totals are not in a backup: start the aggregator (or the whole suite) on this \
         database and it folds the {} ledger rows; `saleboard verify` then checks every total",
        summary.rows_of("ledger")
    );
    Ok(())
}

/// When the backup's read began, RFC 3339 in UTC.
fn written_at(summary: &Summary) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(summary.header.written_at_ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{} ns", summary.header.written_at_ns))
}

/// What the audit log's hash chain in the file says: whole, or where it breaks (kept as the
/// database held it, as evidence; `saleboard verify` names the same entry after a restore).
fn audit_chain(summary: &Summary) -> String {
    let entries = summary.rows_of("audit_log");
    match &summary.audit_break {
        None => format!("the audit log's {entries} entries are chained, none altered"),
        Some((position, why)) => format!(
            "WARNING: the audit log's chain breaks at entry {position}: {why}. It is kept as \
             the database held it (evidence of a change made outside Saleboard, in the \
             database or in this file); `saleboard verify` names the same entry"
        ),
    }
}

/// "3 sites, 4 API keys, ..." in file order.
fn counts(summary: &Summary) -> String {
    summary
        .rows
        .iter()
        .map(|(section, rows)| {
            let what = match *section {
                "api_keys" => "API keys",
                "exchange_rates" => "exchange rates",
                "organizers" => "named organizers",
                "audit_log" => "audit log entries",
                "admin_actions" => "organizers' actions",
                "site_holds" => "site holds",
                "integrity_policies" => "integrity policies",
                "integrity_flags" => "integrity flags",
                "integrity_end_rankings" => "end-ranking places",
                "ledger" => "ledger rows",
                other => other,
            };
            format!("{rows} {what}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
