//! `saleboard verify`: recomputes every total from the ledger (site totals, hourly totals and
//! the breakdowns, per site and national) and compares it with the stored totals at the same
//! ledger position, and checks that the totals are not behind the ledger
//! (waiting up to `--wait-ms` for the aggregator to catch up with the head it saw at start).
//! Prints each difference; exits non-zero when there is one or when the totals lag. It also
//! recomputes the audit log's hash chain (as `saleboard admin audit verify` does over the
//! API), and checks that its last entry is the one the log's head names.

use saleboard_domain::totals::{HourlyTotals, TotalsBook};
use saleboard_runtime::database::DatabaseArgs;

/// Arguments of `saleboard verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
    /// How long the totals may take to catch up with the ledger head seen at start, in ms,
    /// before verify reports them as lagging.
    #[arg(long, env = "SALEBOARD_VERIFY_WAIT_MS", default_value_t = 5_000)]
    pub wait_ms: u64,
}

/// Ledger rows read per page.
const PAGE: u32 = 50_000;

fn describe_hourly(h: Option<&HourlyTotals>) -> String {
    h.map_or_else(
        || "nothing".to_owned(),
        |h| format!("{} sales, net {}", h.sale_count, h.net_minor),
    )
}

/// Differences between stored and recomputed totals, as lines for people.
#[must_use]
pub fn differences(stored: &TotalsBook, recomputed: &TotalsBook) -> Vec<String> {
    let mut out = Vec::new();
    let (stored_totals, recomputed_totals) = (stored.totals(), recomputed.totals());
    let keys: std::collections::BTreeSet<_> = stored_totals
        .keys()
        .chain(recomputed_totals.keys())
        .collect();
    for key in keys {
        let (s, r) = (stored_totals.get(key), recomputed_totals.get(key));
        if s != r {
            out.push(format!(
                "event {} totals {} {}: stored {}, ledger says {}",
                key.0,
                key.1,
                key.2,
                saleboard_domain::totals::describe(s),
                saleboard_domain::totals::describe(r)
            ));
        }
    }
    let (stored_hourly, recomputed_hourly) = (stored.hourly(), recomputed.hourly());
    let keys: std::collections::BTreeSet<_> = stored_hourly
        .keys()
        .chain(recomputed_hourly.keys())
        .collect();
    for key in keys {
        let (s, r) = (stored_hourly.get(key), recomputed_hourly.get(key));
        if s != r {
            out.push(format!(
                "event {} hourly {} {} hour {}: stored {}, ledger says {}",
                key.0,
                key.1,
                key.2,
                key.3.to_rfc3339(),
                describe_hourly(s),
                describe_hourly(r)
            ));
        }
    }
    out
}

/// Differences between the stored breakdown figures (each site's, and the national rows the
/// leaderboard reads, with their site counts) and `at_breakdowns`, recomputed up to their own
/// watermark, and between the stored national hourly rows and `recomputed` (up to the applied
/// position), as lines for people.
#[must_use]
pub fn segment_differences(
    stored: &saleboard_storage::StoredTotals,
    recomputed: &TotalsBook,
    at_breakdowns: &TotalsBook,
) -> Vec<String> {
    let mut out = Vec::new();
    let flat = |book: &TotalsBook| {
        book.segment_sites()
            .iter()
            .flat_map(|((e, d, k, s), list)| {
                list.iter()
                    .map(move |(c, t)| ((e.clone(), *d, k.clone(), s.clone(), *c), *t))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (s_sites, r_sites) = (flat(&stored.book), flat(at_breakdowns));
    let keys: std::collections::BTreeSet<_> = s_sites.keys().chain(r_sites.keys()).collect();
    for key in keys {
        let (s, r) = (s_sites.get(key), r_sites.get(key));
        if s != r {
            let (event, dimension, k, site, currency) = key;
            out.push(format!(
                "event {event} {dimension} {k:?} {site} {currency}: stored {}, ledger says {}",
                saleboard_domain::totals::describe(s),
                saleboard_domain::totals::describe(r)
            ));
        }
    }
    let national = at_breakdowns.segments();
    let keys: std::collections::BTreeSet<_> =
        stored.segments.keys().chain(national.keys()).collect();
    for key in keys {
        let (event, dimension, k) = key;
        let (s, r) = (stored.segments.get(key), national.get(key));
        let currencies: std::collections::BTreeSet<_> = s
            .iter()
            .chain(r.iter())
            .flat_map(|f| f.totals.keys())
            .collect();
        for currency in currencies {
            let (st, rt) = (
                s.and_then(|f| f.totals.get(currency)),
                r.and_then(|f| f.totals.get(currency)),
            );
            if st != rt {
                out.push(format!(
                    "event {event} {dimension} {k:?} {currency} national: stored {}, ledger says {}",
                    saleboard_domain::totals::describe(st),
                    saleboard_domain::totals::describe(rt)
                ));
            }
        }
        let (sc, rc) = (s.map_or(0, |f| f.site_count), r.map_or(0, |f| f.site_count));
        if sc != rc {
            out.push(format!(
                "event {event} {dimension} {k:?} national site count: stored {sc}, ledger says {rc}"
            ));
        }
    }
    let hours = recomputed.national_hourly();
    let keys: std::collections::BTreeSet<_> =
        stored.national_hourly.keys().chain(hours.keys()).collect();
    for key in keys {
        let (s, r) = (stored.national_hourly.get(key), hours.get(key));
        if s != r {
            let (event, currency, hour) = key;
            out.push(format!(
                "event {event} national hourly {currency} hour {}: stored {}, ledger says {}",
                hour.to_rfc3339(),
                describe_hourly(s),
                describe_hourly(r)
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
    let store = args.database.open_existing().await?;
    let audit_ok = audit_chain(store.as_ref()).await?;
    if store.ledger_head().await? == 0 {
        println!(
            "the ledger of {} is empty: no transaction has been accepted yet, so there is nothing to verify",
            saleboard_storage::redact(&args.database.url)
        );
        return Ok(audit_ok);
    }
    let caught_up = caught_up(store.as_ref(), args.wait_ms).await?;
    let stored = store.load_totals().await?;
    // Everything up to the applied position; the breakdown figures, which carry their own
    // watermark, up to theirs.
    let mut recomputed = TotalsBook::default();
    let mut at_breakdowns = TotalsBook::default();
    // The late figures (with the breakdowns' watermark), against each event's end now.
    let mut late = saleboard_domain::late::LateBook::default();
    for event in store.events().await?.iter() {
        late.set_end(&event.event_id, event.ends_at);
    }
    let mut after = 0;
    while after < stored.applied {
        let rows = store.read_ledger(after, PAGE).await?;
        let Some(last) = rows.last().map(|r| r.position) else {
            break;
        };
        for row in rows.iter().take_while(|r| r.position <= stored.applied) {
            recomputed.apply(&row.event_id, &row.site, &row.tx)?;
            if row.position <= stored.breakdown_applied {
                at_breakdowns.apply_breakdowns(&row.event_id, &row.site, &row.tx)?;
                late.apply(&row.event_id, &row.site, &row.tx, row.received_at)?;
            }
        }
        after = last;
    }
    let mut diffs = differences(&stored.book, &recomputed);
    diffs.extend(segment_differences(&stored, &recomputed, &at_breakdowns));
    diffs.extend(late_differences(&stored.late, &late));
    for d in &diffs {
        println!("{d}");
    }
    if diffs.is_empty() {
        println!(
            "verified: {} totals, {} hourly totals, {} national hours and {} breakdown keys match the ledger up to position {}",
            recomputed.totals().len(),
            recomputed.hourly().len(),
            recomputed.national_hourly().len(),
            at_breakdowns.segments().len(),
            stored.applied
        );
        if stored.breakdown_applied < stored.applied {
            println!(
                "(the breakdown figures are stored up to position {}, and match the ledger there: \
                 the aggregator writes them less often while the ledger is busy)",
                stored.breakdown_applied
            );
        }
    } else {
        println!(
            "{} difference(s) between the stored totals and the ledger up to position {}",
            diffs.len(),
            stored.applied
        );
    }
    if let Err((applied, head)) = caught_up {
        println!(
            "the totals lag the ledger by {} rows: applied position {applied}, ledger head {head} \
             (after waiting {} ms); the aggregator is behind or stopped (see its GetStatus and \
             logs)",
            head - applied,
            args.wait_ms
        );
    }
    Ok(diffs.is_empty() && caught_up.is_ok() && audit_ok)
}

/// The late figures (issue 28) that differ between what is stored and the ledger.
fn late_differences(
    stored: &saleboard_domain::late::LateBook,
    recomputed: &saleboard_domain::late::LateBook,
) -> Vec<String> {
    let (stored, recomputed) = (stored.figures(), recomputed.figures());
    let mut keys: Vec<&saleboard_domain::totals::TotalsKey> =
        stored.keys().chain(recomputed.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| stored.get(*k) != recomputed.get(*k))
        .map(|(event, site, currency)| {
            let show = |v: Option<&saleboard_domain::late::LateTotals>| {
                let v = v.copied().unwrap_or_default();
                format!(
                    "late refunded {}, late sales {}, of {} sales worth {} ({} round)",
                    v.late_refunded_minor,
                    v.late_sales_minor,
                    v.sale_count,
                    v.gross_minor,
                    v.round_count
                )
            };
            let key = (event.clone(), site.clone(), *currency);
            format!(
                "late figures of site {site} in event {event}, {}: stored {}, ledger {}",
                currency.code(),
                show(stored.get(&key)),
                show(recomputed.get(&key))
            )
        })
        .collect()
}

/// Audit entries read per page.
const AUDIT_PAGE: u32 = 10_000;

/// Recomputes the audit log's chain from its first entry and compares its end with the log's
/// head; prints the first entry that breaks it. `Ok(true)` when it is intact.
///
/// # Errors
/// When the database cannot be read.
pub async fn audit_chain(store: &dyn saleboard_storage::Store) -> anyhow::Result<bool> {
    let mut check = saleboard_domain::audit::ChainCheck::default();
    let mut last = saleboard_domain::audit::GENESIS.to_owned();
    let mut after = 0;
    loop {
        let entries = store
            .audit_log(&saleboard_storage::AuditQuery {
                after,
                limit: AUDIT_PAGE,
                ..saleboard_storage::AuditQuery::default()
            })
            .await?;
        let Some(end) = entries.last().map(|e| e.position) else {
            break;
        };
        for e in &entries {
            if let Err(why) = check.check(e) {
                println!(
                    "the audit log's chain breaks at entry {} ({} by {} at {}): {why}",
                    e.position,
                    e.rpc,
                    e.organizer,
                    e.at.to_rfc3339()
                );
                return Ok(false);
            }
            last.clone_from(&e.sha256);
        }
        after = end;
    }
    let (head, head_sha256) = store.audit_head().await?;
    if head != check.checked() || head_sha256 != last {
        println!(
            "the audit log ends at entry {} but its head names entry {head} (sha256 \
             {head_sha256}): entries were removed or the head was altered",
            check.checked()
        );
        return Ok(false);
    }
    println!(
        "verified: the audit log's {} entries are chained, none altered; last sha256 {last}",
        check.checked()
    );
    Ok(true)
}

/// Waits up to `wait_ms` for the applied position to reach the ledger head as it is now:
/// `Err((applied, head))` when it does not.
async fn caught_up(
    store: &dyn saleboard_storage::Store,
    wait_ms: u64,
) -> anyhow::Result<Result<(), (u64, u64)>> {
    let head = store.ledger_head().await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    loop {
        let applied = store.applied_position().await?;
        if applied >= head {
            return Ok(Ok(()));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Err((applied, head)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
