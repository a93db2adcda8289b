//! How a batch of valid transactions meets the ledger: the rules that need what is already
//! stored. Storage loads the relevant rows into a [`LedgerState`] inside its write transaction,
//! then [`LedgerState::resolve`] decides every outcome in order, as if each transaction were
//! applied one after the other. Accepted rows are added to the state, so a later transaction of
//! the same batch sees them (a refund of a sale earlier in the batch, an in-batch duplicate).

use std::collections::HashMap;

use crate::{Kind, Reason, Rejection, SiteId, TransactionId, ValidTransaction};

/// A transaction of the ledger, as far as resolution needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The transaction's content.
    pub tx: ValidTransaction,
    /// Its ledger position.
    pub position: u64,
}

/// What happened to one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// To be appended at this position.
    Accepted {
        /// Ledger position assigned.
        position: u64,
    },
    /// Already stored with the same content, at this position.
    Duplicate {
        /// Position of the stored original.
        position: u64,
    },
    /// Not stored.
    Rejected(Rejection),
}

/// The part of the ledger a batch can touch, plus the rows the batch accepts as it goes.
#[derive(Debug, Default)]
pub struct LedgerState {
    rows: HashMap<(SiteId, TransactionId), Stored>,
    refunded: HashMap<(SiteId, TransactionId), i128>,
    next_position: u64,
}

impl LedgerState {
    /// A state whose next accepted row gets `head + 1`.
    #[must_use]
    pub fn new(head: u64) -> Self {
        Self {
            next_position: head + 1,
            ..Self::default()
        }
    }

    /// Records a stored row. Storage must load every row whose id a batch names, as its own
    /// `transaction_id` or as a refund's `refund_of`.
    pub fn insert_stored(&mut self, site: SiteId, stored: Stored) {
        self.rows.insert((site, stored.tx.id.clone()), stored);
    }

    /// Records the sum already refunded against a stored sale.
    pub fn insert_refunded(&mut self, site: SiteId, sale: TransactionId, refunded_minor: i128) {
        self.refunded.insert((site, sale), refunded_minor);
    }

    /// Position the next accepted row will get.
    #[must_use]
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// Decides one transaction of `site`, in batch order.
    pub fn resolve(&mut self, site: &SiteId, tx: &ValidTransaction) -> Decision {
        let key = (site.clone(), tx.id.clone());
        if let Some(existing) = self.rows.get(&key) {
            return if existing.tx == *tx {
                Decision::Duplicate {
                    position: existing.position,
                }
            } else {
                Decision::Rejected(Rejection::new(
                    Reason::IdConflict,
                    format!(
                        "transaction_id {:?} was already used by this site for a transaction with \
                         different content (ledger position {}); the first version stands",
                        tx.id.as_str(),
                        existing.position
                    ),
                ))
            };
        }
        if let Some(sale) = tx.refund_of()
            && let Err(rejection) = self.check_refund(site, sale, tx)
        {
            return Decision::Rejected(rejection);
        }
        let position = self.next_position;
        self.next_position += 1;
        if let Some(sale) = tx.refund_of() {
            *self
                .refunded
                .entry((site.clone(), sale.clone()))
                .or_insert(0) += i128::from(tx.amount_minor);
        }
        self.rows.insert(
            key,
            Stored {
                tx: tx.clone(),
                position,
            },
        );
        Decision::Accepted { position }
    }

    fn check_refund(
        &self,
        site: &SiteId,
        sale_id: &TransactionId,
        tx: &ValidTransaction,
    ) -> Result<(), Rejection> {
        let sale_key = (site.clone(), sale_id.clone());
        let Some(sale) = self.rows.get(&sale_key) else {
            return Err(Rejection::new(
                Reason::UnknownSale,
                format!(
                    "refund_of {:?} names no transaction of this site in the ledger or earlier \
                     in this request",
                    sale_id.as_str()
                ),
            ));
        };
        if sale.tx.kind() != Kind::Sale {
            return Err(Rejection::new(
                Reason::RefundOfNonSale,
                format!(
                    "refund_of {:?} names a REFUND; a refund must name a SALE",
                    sale_id.as_str()
                ),
            ));
        }
        if sale.tx.currency != tx.currency {
            return Err(Rejection::new(
                Reason::RefundCurrencyMismatch,
                format!(
                    "currency {} differs from the currency {} of sale {:?}",
                    tx.currency,
                    sale.tx.currency,
                    sale_id.as_str()
                ),
            ));
        }
        let already = self.refunded.get(&sale_key).copied().unwrap_or(0);
        let remaining = i128::from(sale.tx.amount_minor) - already;
        if i128::from(tx.amount_minor) > remaining {
            return Err(Rejection::new(
                Reason::RefundExceedsSale,
                format!(
                    "amount_minor {} is more than the {remaining} minor units of sale {:?} not \
                     yet refunded",
                    tx.amount_minor,
                    sale_id.as_str()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, Nature, StoreId, UnixNanos};

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).expect("valid site")
    }

    fn tx(
        id: &str,
        kind: Kind,
        cur: &str,
        amount: i64,
        refund_of: Option<&str>,
    ) -> ValidTransaction {
        ValidTransaction {
            id: TransactionId::parse(id).expect("valid id"),
            store_id: StoreId::default(),
            nature: match (kind, refund_of) {
                (Kind::Sale, None) => Nature::Sale,
                (Kind::Refund, Some(of)) => Nature::Refund {
                    of: TransactionId::parse(of).expect("valid id"),
                },
                other => panic!("not a valid transaction: {other:?}"),
            },
            currency: Currency::parse(cur).expect("valid currency"),
            amount_minor: amount,
            occurred_at: UnixNanos(1),
        }
    }

    fn sale(id: &str, amount: i64) -> ValidTransaction {
        tx(id, Kind::Sale, "IDR", amount, None)
    }

    fn refund(id: &str, of: &str, amount: i64) -> ValidTransaction {
        tx(id, Kind::Refund, "IDR", amount, Some(of))
    }

    fn reason(d: &Decision) -> Option<Reason> {
        match d {
            Decision::Rejected(r) => Some(r.reason),
            _ => None,
        }
    }

    #[test]
    fn positions_follow_the_head_and_skip_nothing() {
        let mut st = LedgerState::new(41);
        let a = site("a");
        assert_eq!(
            st.resolve(&a, &sale("1", 5)),
            Decision::Accepted { position: 42 }
        );
        assert_eq!(
            st.resolve(&a, &sale("2", 1)),
            Decision::Accepted { position: 43 }
        );
        assert_eq!(
            st.resolve(&a, &sale("1", 5)),
            Decision::Duplicate { position: 42 }
        );
        assert_eq!(
            st.resolve(&a, &sale("3", 5)),
            Decision::Accepted { position: 44 }
        );
        assert_eq!(st.next_position(), 45);
    }

    #[test]
    fn duplicate_and_conflict_against_the_ledger() {
        let mut st = LedgerState::new(10);
        let a = site("a");
        st.insert_stored(
            a.clone(),
            Stored {
                tx: sale("T", 100),
                position: 3,
            },
        );
        assert_eq!(
            st.resolve(&a, &sale("T", 100)),
            Decision::Duplicate { position: 3 }
        );
        assert_eq!(
            reason(&st.resolve(&a, &sale("T", 101))),
            Some(Reason::IdConflict)
        );
        // Another site may use the same id.
        assert_eq!(
            st.resolve(&site("b"), &sale("T", 101)),
            Decision::Accepted { position: 11 }
        );
    }

    #[test]
    fn in_batch_duplicate_and_conflict() {
        let mut st = LedgerState::new(0);
        let a = site("a");
        assert_eq!(
            st.resolve(&a, &sale("T", 1)),
            Decision::Accepted { position: 1 }
        );
        assert_eq!(
            st.resolve(&a, &sale("T", 1)),
            Decision::Duplicate { position: 1 }
        );
        assert_eq!(
            reason(&st.resolve(&a, &sale("T", 2))),
            Some(Reason::IdConflict)
        );
    }

    #[test]
    fn refunds_partial_full_and_over() {
        let mut st = LedgerState::new(0);
        let a = site("a");
        st.insert_stored(
            a.clone(),
            Stored {
                tx: sale("S", 100),
                position: 1,
            },
        );
        st.insert_refunded(a.clone(), TransactionId::parse("S").expect("id"), 30);
        assert_eq!(
            st.resolve(&a, &refund("R1", "S", 50)),
            Decision::Accepted { position: 1 }
        );
        assert_eq!(
            reason(&st.resolve(&a, &refund("R2", "S", 21))),
            Some(Reason::RefundExceedsSale)
        );
        assert_eq!(
            st.resolve(&a, &refund("R3", "S", 20)),
            Decision::Accepted { position: 2 }
        );
        assert_eq!(
            reason(&st.resolve(&a, &refund("R4", "S", 1))),
            Some(Reason::RefundExceedsSale)
        );
        // A resent refund is a duplicate, not an over-refund.
        assert_eq!(
            st.resolve(&a, &refund("R1", "S", 50)),
            Decision::Duplicate { position: 1 }
        );
    }

    #[test]
    fn refund_of_a_sale_earlier_in_the_batch() {
        let mut st = LedgerState::new(0);
        let a = site("a");
        assert_eq!(
            st.resolve(&a, &sale("S", 10)),
            Decision::Accepted { position: 1 }
        );
        assert_eq!(
            st.resolve(&a, &refund("R", "S", 10)),
            Decision::Accepted { position: 2 }
        );
    }

    #[test]
    fn refund_rules_that_need_the_sale() {
        let mut st = LedgerState::new(0);
        let (a, b) = (site("a"), site("b"));
        st.insert_stored(
            a.clone(),
            Stored {
                tx: sale("S", 100),
                position: 1,
            },
        );
        st.insert_stored(
            a.clone(),
            Stored {
                tx: refund("R0", "S", 1),
                position: 2,
            },
        );
        assert_eq!(
            reason(&st.resolve(&a, &refund("R1", "nope", 1))),
            Some(Reason::UnknownSale)
        );
        // The sale of another site is not this site's sale.
        assert_eq!(
            reason(&st.resolve(&b, &refund("R1", "S", 1))),
            Some(Reason::UnknownSale)
        );
        assert_eq!(
            reason(&st.resolve(&a, &refund("R2", "R0", 1))),
            Some(Reason::RefundOfNonSale)
        );
        let usd = tx("R3", Kind::Refund, "USD", 1, Some("S"));
        assert_eq!(
            reason(&st.resolve(&a, &usd)),
            Some(Reason::RefundCurrencyMismatch)
        );
        // A rejected sale cannot be refunded later in the batch.
        assert_eq!(
            reason(&st.resolve(&a, &sale("S", 5))),
            Some(Reason::IdConflict)
        );
        assert_eq!(
            reason(&st.resolve(&a, &refund("R4", "X", 1))),
            Some(Reason::UnknownSale)
        );
    }

    #[test]
    fn refund_sums_do_not_overflow() {
        let mut st = LedgerState::new(0);
        let a = site("a");
        st.insert_stored(
            a.clone(),
            Stored {
                tx: sale("S", i64::MAX),
                position: 1,
            },
        );
        st.insert_refunded(
            a.clone(),
            TransactionId::parse("S").expect("id"),
            i128::from(i64::MAX) - 1,
        );
        assert_eq!(
            st.resolve(&a, &refund("R1", "S", 1)),
            Decision::Accepted { position: 1 }
        );
        assert_eq!(
            reason(&st.resolve(&a, &refund("R2", "S", i64::MAX))),
            Some(Reason::RefundExceedsSale)
        );
    }
}
