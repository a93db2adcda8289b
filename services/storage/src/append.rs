//! The part of an append that is the same on every database: which rows to load, and turning
//! the loaded state plus the batch into decisions and rows to insert.

use std::collections::BTreeSet;

use saleboard_domain::resolve::{Decision, LedgerState, Stored};
use saleboard_domain::{SiteId, TransactionId};

use crate::model::RawRow;
use crate::{Candidate, Result, StorageError};

/// The stored columns of a ledger row that resolution needs, as both databases return them:
/// site_id, transaction_id, store_id, kind, currency, amount_minor, occurred_at_ns, refund_of,
/// position.
pub(crate) type KeyRow = (String, String, String, i16, String, i64, i64, String, i64);

/// Puts loaded rows into the state.
pub(crate) fn load_stored(state: &mut LedgerState, rows: Vec<KeyRow>) -> Result<()> {
    for (
        site_id,
        transaction_id,
        store_id,
        kind,
        currency,
        amount_minor,
        occurred_at_ns,
        refund_of,
        position,
    ) in rows
    {
        let (site, tx, position) = RawRow {
            site_id,
            transaction_id,
            store_id,
            kind,
            currency,
            amount_minor,
            occurred_at_ns,
            refund_of,
            position,
        }
        .into_domain()?;
        state.insert_stored(site, Stored { tx, position });
    }
    Ok(())
}

/// Puts loaded (site, sale, refunded sum) rows into the state.
pub(crate) fn load_refunded(
    state: &mut LedgerState,
    sums: Vec<(String, String, i64)>,
) -> Result<()> {
    for (site, sale, sum) in sums {
        let site = SiteId::parse(&site).map_err(|e| StorageError::corrupt("ledger", e))?;
        let sale = TransactionId::parse(&sale).map_err(|e| StorageError::corrupt("ledger", e))?;
        state.insert_refunded(site, sale, i128::from(sum));
    }
    Ok(())
}

/// (site_id, transaction_id) pairs whose stored rows the batch needs: its own ids (for
/// duplicates and conflicts) and the sales its refunds name.
pub(crate) fn keys_to_load(batch: &[Candidate]) -> Vec<(String, String)> {
    let mut keys = BTreeSet::new();
    for c in batch {
        keys.insert((c.site.as_str(), c.tx.id.as_str()));
        if let Some(sale) = c.tx.refund_of() {
            keys.insert((c.site.as_str(), sale.as_str()));
        }
    }
    keys.into_iter()
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
        .collect()
}

/// (site_id, sale id) pairs whose refunded sums the batch needs.
pub(crate) fn refund_targets(batch: &[Candidate]) -> Vec<(String, String)> {
    let keys: BTreeSet<_> = batch
        .iter()
        .filter_map(|c| c.tx.refund_of().map(|s| (c.site.as_str(), s.as_str())))
        .collect();
    keys.into_iter()
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
        .collect()
}

/// Decides the batch in order. Returns the decisions and the accepted candidates with their
/// positions, in position order.
pub(crate) fn decide<'a>(
    state: &mut LedgerState,
    batch: &'a [Candidate],
) -> (Vec<Decision>, Vec<(&'a Candidate, u64)>) {
    let mut accepted = Vec::new();
    let decisions = batch
        .iter()
        .map(|c| {
            let d = state.resolve(&c.site, &c.tx);
            if let Decision::Accepted { position } = d {
                accepted.push((c, position));
            }
            d
        })
        .collect();
    (decisions, accepted)
}
