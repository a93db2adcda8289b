//! `saleboard verify`: recomputes every total from the ledger and compares it with the stored
//! totals at the same ledger position. Prints each difference; exits non-zero when there is one.

use saleboard_domain::totals::TotalsBook;
use saleboard_runtime::database::DatabaseArgs;

/// Arguments of `saleboard verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
}

/// Ledger rows read per page.
const PAGE: u32 = 50_000;

/// Differences between stored and recomputed totals, as lines for people.
#[must_use]
pub fn differences(stored: &TotalsBook, recomputed: &TotalsBook) -> Vec<String> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<_> = stored
        .totals()
        .keys()
        .chain(recomputed.totals().keys())
        .collect();
    for key in keys {
        let (s, r) = (stored.totals().get(key), recomputed.totals().get(key));
        if s != r {
            out.push(format!(
                "totals {} {}: stored {s:?}, ledger says {r:?}",
                key.0, key.1
            ));
        }
    }
    let keys: std::collections::BTreeSet<_> = stored
        .hourly()
        .keys()
        .chain(recomputed.hourly().keys())
        .collect();
    for key in keys {
        let (s, r) = (stored.hourly().get(key), recomputed.hourly().get(key));
        if s != r {
            out.push(format!(
                "hourly {} {} hour {}: stored {s:?}, ledger says {r:?}",
                key.0, key.1, key.2.0
            ));
        }
    }
    out
}

/// Runs the command. `Ok(true)` when everything matches.
///
/// # Errors
/// When the database cannot be read or a recomputed total overflows.
pub async fn run(args: &VerifyArgs) -> anyhow::Result<bool> {
    let store = args.database.open().await?;
    let stored = store.load_totals().await?;
    let mut recomputed = TotalsBook::default();
    let mut after = 0;
    while after < stored.applied {
        let rows = store.read_ledger(after, PAGE).await?;
        let Some(last) = rows.last().map(|r| r.position) else {
            break;
        };
        for row in rows.iter().take_while(|r| r.position <= stored.applied) {
            recomputed.apply(&row.site, &row.tx)?;
        }
        after = last;
    }
    let diffs = differences(&stored.book, &recomputed);
    for d in &diffs {
        println!("{d}");
    }
    if diffs.is_empty() {
        println!(
            "verified: {} totals and {} hourly totals match the ledger up to position {}",
            recomputed.totals().len(),
            recomputed.hourly().len(),
            stored.applied
        );
    } else {
        println!(
            "{} difference(s) between the stored totals and the ledger up to position {}",
            diffs.len(),
            stored.applied
        );
    }
    Ok(diffs.is_empty())
}
