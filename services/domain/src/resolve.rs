//! How a batch of valid transactions meets the ledger: the rules that need what is already
//! stored. Storage loads the relevant rows into a [`LedgerState`] inside its write transaction,
//! then [`LedgerState::resolve`] decides every outcome in order, as if each transaction were
//! applied one after the other. Accepted rows are added to the state, so a later transaction of
//! the same batch sees them (a refund of a sale earlier in the batch, an in-batch duplicate).
//!
//! The event of a transaction is decided here too, against the events as committed (storage
//! reads them under the same writer lock as the ledger head): a sale belongs to the event whose
//! window holds its `occurred_at`, a refund to its sale's event; a closed event takes nothing.

// foldhash (hashbrown's default hasher, seeded per map) instead of SipHash: resolution runs
// under the ledger's writer lock, so its hashing is on every append's critical path.
use foldhash::HashMap;

use crate::event::{EventState, Events};
use crate::{Kind, Reason, Rejection, SiteId, TransactionId, UnixNanos, ValidTransaction};

/// A transaction of the ledger, as far as resolution needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The transaction's content.
    pub tx: ValidTransaction,
    /// Its ledger position.
    pub position: u64,
    /// The event it was counted in.
    pub event_id: String,
}

/// What happened to one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// To be appended at this position, counted in this event.
    Accepted {
        /// Ledger position assigned.
        position: u64,
        /// The event it belongs to.
        event_id: String,
    },
    /// Already stored with the same content, at this position.
    Duplicate {
        /// Position of the stored original.
        position: u64,
        /// The event the original was counted in.
        event_id: String,
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
    events: Events,
    now: UnixNanos,
}

impl LedgerState {
    /// A state whose next accepted row gets `head + 1`, deciding events against `events` (as
    /// committed) at `now`.
    #[must_use]
    pub fn new(head: u64, events: Events, now: UnixNanos) -> Self {
        Self {
            next_position: head + 1,
            events,
            now,
            ..Self::default()
        }
    }

    /// Records a stored row. Storage must load every row whose id a batch names, as its own
    /// `transaction_id` or as a refund's `refund_of`, and the void of each sale a refund names
    /// ([`TransactionId::void_of`]), if there is one.
    pub fn insert_stored(&mut self, site: SiteId, stored: Stored) {
        self.rows.insert((site, stored.tx.id.clone()), stored);
    }

    /// Records the sum already refunded against a stored sale.
    pub fn insert_refunded(&mut self, site: SiteId, sale: TransactionId, refunded_minor: i128) {
        self.refunded.insert((site, sale), refunded_minor);
    }

    /// A row as stored or accepted so far (an accepted refund with its sale's segments).
    #[must_use]
    pub fn stored(&self, site: &SiteId, id: &TransactionId) -> Option<&Stored> {
        self.rows.get(&(site.clone(), id.clone()))
    }

    /// Position the next accepted row will get.
    #[must_use]
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// Decides one transaction of `site`, in batch order.
    pub fn resolve(&mut self, site: &SiteId, tx: &ValidTransaction) -> Decision {
        let key = (site.clone(), tx.id.clone());
        // A refund takes its sale's segments: that is the content stored, and the content a
        // resend is compared with (naming them or not, a refund means the same).
        let inherited;
        let tx = match self.inherited_segments(site, tx) {
            Some(segments) => {
                inherited = ValidTransaction {
                    segments,
                    ..tx.clone()
                };
                &inherited
            }
            None => tx,
        };
        if let Some(existing) = self.rows.get(&key) {
            return if existing.tx == *tx {
                Decision::Duplicate {
                    position: existing.position,
                    event_id: existing.event_id.clone(),
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
        let event_id = match tx.refund_of() {
            None => self.event_of_sale(tx),
            Some(sale) => self.check_refund(site, sale, tx),
        };
        let event_id = match event_id {
            Ok(id) => id,
            Err(rejection) => return Decision::Rejected(rejection),
        };
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
                event_id: event_id.clone(),
            },
        );
        Decision::Accepted { position, event_id }
    }

    /// The segments a refund takes from its sale, when they differ from the ones it names and
    /// it names none differently (a mismatch is refused by [`Self::check_refund`]).
    fn inherited_segments(&self, site: &SiteId, tx: &ValidTransaction) -> Option<crate::Segments> {
        let sale_id = tx.refund_of()?;
        let sale = self.rows.get(&(site.clone(), sale_id.clone()))?;
        if sale.tx.kind() != Kind::Sale || sale.tx.segments == tx.segments {
            return None;
        }
        tx.segments.inherit(&sale.tx.segments).ok()
    }

    /// The event whose window holds a sale, when it is not closed.
    fn event_of_sale(&self, tx: &ValidTransaction) -> Result<String, Rejection> {
        let Some(event) = self.events.for_sale(tx.occurred_at) else {
            return Err(self.outside_every_window(tx.occurred_at));
        };
        self.open(&event.event_id)?;
        Ok(event.event_id.clone())
    }

    /// Refuses a transaction of a closed (final) event.
    fn open(&self, event_id: &str) -> Result<(), Rejection> {
        match self.events.get(event_id) {
            Some(event) if event.state(self.now) != EventState::Closed => Ok(()),
            Some(event) => Err(Rejection::new(
                Reason::EventClosed,
                format!(
                    "event {:?} closed at {}: its totals are final",
                    event.event_id,
                    event.closes_at.to_rfc3339()
                ),
            )),
            None => Err(Rejection::new(
                Reason::EventClosed,
                format!("event {event_id:?} no longer takes transactions"),
            )),
        }
    }

    fn outside_every_window(&self, at: UnixNanos) -> Rejection {
        let windows: Vec<String> = self
            .events
            .newest_first()
            .iter()
            .take(3)
            .map(|e| e.window_text())
            .collect();
        let message = match windows.as_slice() {
            [] => format!("occurred_at {} is in no event's window", at.to_rfc3339()),
            [one] if self.events.as_slice().len() == 1 => format!(
                "occurred_at {} is outside the window of event {one}",
                at.to_rfc3339()
            ),
            some => format!(
                "occurred_at {} is in no event's window; the latest events: {}",
                at.to_rfc3339(),
                some.join("; ")
            ),
        };
        Rejection::new(Reason::OutsideEventWindow, message)
    }

    /// Checks a refund against its sale; the sale's event, which the refund belongs to.
    fn check_refund(
        &self,
        site: &SiteId,
        sale_id: &TransactionId,
        tx: &ValidTransaction,
    ) -> Result<String, Rejection> {
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
        if self
            .rows
            .contains_key(&(site.clone(), TransactionId::void_of(sale_id)))
        {
            return Err(Rejection::new(
                Reason::SaleVoided,
                format!(
                    "sale {:?} was voided by the organizers: it counts no more and takes no refund",
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
        if let Err(differ) = tx.segments.inherit(&sale.tx.segments) {
            let what: Vec<String> = differ
                .iter()
                .map(|(field, mine, theirs)| format!("{field} {mine:?} (the sale's: {theirs:?})"))
                .collect();
            return Err(Rejection::new(
                Reason::RefundSegmentMismatch,
                format!(
                    "{} differs from sale {:?}; a refund takes its sale's brand, category and \
                     origin: leave them empty or send the sale's",
                    what.join(", "),
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
        if tx.occurred_at < sale.tx.occurred_at {
            return Err(Rejection::new(
                Reason::RefundBeforeSale,
                format!(
                    "occurred_at {} is before sale {:?} occurred ({})",
                    tx.occurred_at.to_rfc3339(),
                    sale_id.as_str(),
                    sale.tx.occurred_at.to_rfc3339()
                ),
            ));
        }
        self.open(&sale.event_id)?;
        Ok(sale.event_id.clone())
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
            segments: crate::Segments::default(),
        }
    }

    fn sale(id: &str, amount: i64) -> ValidTransaction {
        tx(id, Kind::Sale, "IDR", amount, None)
    }

    fn refund(id: &str, of: &str, amount: i64) -> ValidTransaction {
        tx(id, Kind::Refund, "IDR", amount, Some(of))
    }

    /// Event "e" with the window [0, 100) and its settlement until 200; the clock at 50.
    fn events() -> Events {
        Events::new(vec![
            crate::Event::new("e", "E", UnixNanos(0), UnixNanos(100), "IDR")
                .and_then(|e| e.closing_at(UnixNanos(200)))
                .expect("valid"),
        ])
    }

    fn state(head: u64) -> LedgerState {
        LedgerState::new(head, events(), UnixNanos(50))
    }

    fn accepted(position: u64) -> Decision {
        Decision::Accepted {
            position,
            event_id: "e".into(),
        }
    }

    fn duplicate(position: u64) -> Decision {
        Decision::Duplicate {
            position,
            event_id: "e".into(),
        }
    }

    fn reason(d: &Decision) -> Option<Reason> {
        match d {
            Decision::Rejected(r) => Some(r.reason),
            _ => None,
        }
    }

    #[test]
    fn positions_follow_the_head_and_skip_nothing() {
        let mut st = state(41);
        let a = site("a");
        assert_eq!(st.resolve(&a, &sale("1", 5)), accepted(42));
        assert_eq!(st.resolve(&a, &sale("2", 1)), accepted(43));
        assert_eq!(st.resolve(&a, &sale("1", 5)), duplicate(42));
        assert_eq!(st.resolve(&a, &sale("3", 5)), accepted(44));
        assert_eq!(st.next_position(), 45);
    }

    #[test]
    fn a_voided_sale_takes_no_refund_and_its_resend_is_a_duplicate() {
        let mut st = state(10);
        let a = site("a");
        let s = sale("S", 100);
        let stored = |tx: ValidTransaction, position| Stored {
            tx,
            position,
            event_id: "e".into(),
        };
        st.insert_stored(a.clone(), stored(s.clone(), 3));
        st.insert_stored(a.clone(), stored(s.voided().expect("void"), 9));
        // Refunds of the sale were stored before it was voided (storage sums refunds only).
        st.insert_refunded(a.clone(), s.id.clone(), 30);
        let d = st.resolve(&a, &refund("R", "S", 1));
        assert_eq!(reason(&d), Some(Reason::SaleVoided));
        let Decision::Rejected(r) = d else {
            unreachable!("rejected above")
        };
        assert!(
            r.message.contains("voided by the organizers"),
            "{}",
            r.message
        );
        // The sale itself is stored: sent again, it is the same transaction.
        assert_eq!(st.resolve(&a, &s), duplicate(3));
        // Another site's sale of the same id is not voided.
        let b = site("b");
        st.insert_stored(b.clone(), stored(sale("S", 100), 4));
        assert_eq!(st.resolve(&b, &refund("R", "S", 1)), accepted(11));
    }

    fn at(t: ValidTransaction, occurred: i64) -> ValidTransaction {
        ValidTransaction {
            occurred_at: UnixNanos(occurred),
            ..t
        }
    }

    /// "old" [0, 100) closed at 150, "new" [200, 300) settling until 400; the clock at `now`.
    fn two_events(now: i64) -> LedgerState {
        let event = |id: &str, s, e, c| {
            crate::Event::new(id, id, UnixNanos(s), UnixNanos(e), "IDR")
                .and_then(|e| e.closing_at(UnixNanos(c)))
                .expect("valid")
        };
        LedgerState::new(
            0,
            Events::new(vec![event("old", 0, 100, 150), event("new", 200, 300, 400)]),
            UnixNanos(now),
        )
    }

    #[test]
    fn a_sale_is_counted_in_the_event_whose_window_holds_it() {
        let mut st = two_events(250);
        let a = site("a");
        assert_eq!(
            st.resolve(&a, &at(sale("S1", 10), 200)),
            Decision::Accepted {
                position: 1,
                event_id: "new".into()
            },
            "the first instant of the window"
        );
        assert_eq!(
            reason(&st.resolve(&a, &at(sale("S2", 10), 300))),
            Some(Reason::OutsideEventWindow),
            "the end is excluded"
        );
        assert_eq!(
            reason(&st.resolve(&a, &at(sale("S3", 10), 150))),
            Some(Reason::OutsideEventWindow)
        );
        let Decision::Rejected(r) = st.resolve(&a, &at(sale("S4", 10), 99)) else {
            panic!("a sale of a closed event");
        };
        assert_eq!(r.reason, Reason::EventClosed);
        assert!(r.message.contains("\"old\" closed at"), "{}", r.message);
        let Decision::Rejected(r) = st.resolve(&a, &at(sale("S5", 10), 120)) else {
            panic!("outside");
        };
        assert!(
            r.message.contains("no event's window") && r.message.contains("\"new\" (from"),
            "the message names the latest windows: {}",
            r.message
        );
    }

    #[test]
    fn a_refund_belongs_to_its_sale_event_until_it_closes() {
        let mut st = two_events(350);
        let a = site("a");
        st.insert_stored(
            a.clone(),
            Stored {
                tx: at(sale("S", 100), 250),
                position: 1,
                event_id: "new".into(),
            },
        );
        st.insert_stored(
            a.clone(),
            Stored {
                tx: at(sale("OLD", 100), 50),
                position: 2,
                event_id: "old".into(),
            },
        );
        // After its window, during the settlement: counted in the sale's event.
        assert_eq!(
            st.resolve(&a, &at(refund("R1", "S", 10), 340)),
            Decision::Accepted {
                position: 1,
                event_id: "new".into()
            }
        );
        assert_eq!(
            reason(&st.resolve(&a, &at(refund("R2", "S", 10), 240))),
            Some(Reason::RefundBeforeSale)
        );
        assert_eq!(
            reason(&st.resolve(&a, &at(refund("R3", "OLD", 10), 340))),
            Some(Reason::EventClosed),
            "the old event is final"
        );
        // Once the new event closes too.
        let mut closed = two_events(400);
        closed.insert_stored(
            a.clone(),
            Stored {
                tx: at(sale("S", 100), 250),
                position: 1,
                event_id: "new".into(),
            },
        );
        assert_eq!(
            reason(&closed.resolve(&a, &at(refund("R4", "S", 10), 399))),
            Some(Reason::EventClosed)
        );
    }

    #[test]
    fn duplicate_and_conflict_against_the_ledger() {
        let mut st = state(10);
        let a = site("a");
        st.insert_stored(
            a.clone(),
            Stored {
                tx: sale("T", 100),
                position: 3,
                event_id: "e".into(),
            },
        );
        assert_eq!(st.resolve(&a, &sale("T", 100)), duplicate(3));
        assert_eq!(
            reason(&st.resolve(&a, &sale("T", 101))),
            Some(Reason::IdConflict)
        );
        // Another site may use the same id.
        assert_eq!(st.resolve(&site("b"), &sale("T", 101)), accepted(11));
    }

    #[test]
    fn in_batch_duplicate_and_conflict() {
        let mut st = state(0);
        let a = site("a");
        assert_eq!(st.resolve(&a, &sale("T", 1)), accepted(1));
        assert_eq!(st.resolve(&a, &sale("T", 1)), duplicate(1));
        assert_eq!(
            reason(&st.resolve(&a, &sale("T", 2))),
            Some(Reason::IdConflict)
        );
    }

    #[test]
    fn refunds_partial_full_and_over() {
        let mut st = state(0);
        let a = site("a");
        st.insert_stored(
            a.clone(),
            Stored {
                tx: sale("S", 100),
                position: 1,
                event_id: "e".into(),
            },
        );
        st.insert_refunded(a.clone(), TransactionId::parse("S").expect("id"), 30);
        assert_eq!(st.resolve(&a, &refund("R1", "S", 50)), accepted(1));
        assert_eq!(
            reason(&st.resolve(&a, &refund("R2", "S", 21))),
            Some(Reason::RefundExceedsSale)
        );
        assert_eq!(st.resolve(&a, &refund("R3", "S", 20)), accepted(2));
        assert_eq!(
            reason(&st.resolve(&a, &refund("R4", "S", 1))),
            Some(Reason::RefundExceedsSale)
        );
        // A resent refund is a duplicate, not an over-refund.
        assert_eq!(st.resolve(&a, &refund("R1", "S", 50)), duplicate(1));
    }

    #[test]
    fn refund_of_a_sale_earlier_in_the_batch() {
        let mut st = state(0);
        let a = site("a");
        assert_eq!(st.resolve(&a, &sale("S", 10)), accepted(1));
        assert_eq!(st.resolve(&a, &refund("R", "S", 10)), accepted(2));
    }

    #[test]
    fn refund_rules_that_need_the_sale() {
        let mut st = state(0);
        let (a, b) = (site("a"), site("b"));
        st.insert_stored(
            a.clone(),
            Stored {
                tx: sale("S", 100),
                position: 1,
                event_id: "e".into(),
            },
        );
        st.insert_stored(
            a.clone(),
            Stored {
                tx: refund("R0", "S", 1),
                position: 2,
                event_id: "e".into(),
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
        let mut st = state(0);
        let a = site("a");
        st.insert_stored(
            a.clone(),
            Stored {
                tx: sale("S", i64::MAX),
                position: 1,
                event_id: "e".into(),
            },
        );
        st.insert_refunded(
            a.clone(),
            TransactionId::parse("S").expect("id"),
            i128::from(i64::MAX) - 1,
        );
        assert_eq!(st.resolve(&a, &refund("R1", "S", 1)), accepted(1));
        assert_eq!(
            reason(&st.resolve(&a, &refund("R2", "S", i64::MAX))),
            Some(Reason::RefundExceedsSale)
        );
    }
    fn with(
        t: ValidTransaction,
        brand: &str,
        category: &str,
        origin: crate::Origin,
    ) -> ValidTransaction {
        let slug = |v: &str| (!v.is_empty()).then(|| crate::Slug::parse(v).expect("slug"));
        ValidTransaction {
            segments: crate::Segments {
                brand: slug(brand),
                category: slug(category),
                origin,
            },
            ..t
        }
    }

    #[test]
    fn a_refund_takes_its_sales_segments_and_resends_compare_them() {
        use crate::Origin;
        let mut st = state(0);
        let a = site("a");
        let s = with(sale("S", 100), "nestle", "food", Origin::CrossBorder);
        assert_eq!(st.resolve(&a, &s), accepted(1));
        // Same id, another brand: a different transaction.
        assert_eq!(
            reason(&st.resolve(
                &a,
                &with(sale("S", 100), "unilever", "food", Origin::CrossBorder)
            )),
            Some(Reason::IdConflict)
        );
        assert_eq!(
            reason(&st.resolve(&a, &sale("S", 100))),
            Some(Reason::IdConflict),
            "a sale without its segments is other content"
        );
        // A bare refund is stored with the sale's segments.
        assert_eq!(st.resolve(&a, &refund("R1", "S", 10)), accepted(2));
        let stored = &st.rows[&(a.clone(), TransactionId::parse("R1").expect("id"))];
        assert_eq!(stored.tx.segments, s.segments);
        // Resent bare, or naming the sale's fields: the same refund.
        assert_eq!(st.resolve(&a, &refund("R1", "S", 10)), duplicate(2));
        assert_eq!(
            st.resolve(
                &a,
                &with(refund("R1", "S", 10), "nestle", "", Origin::Unspecified)
            ),
            duplicate(2)
        );
        // Naming a field that differs: refused, saying which.
        let Decision::Rejected(r) = st.resolve(
            &a,
            &with(refund("R2", "S", 10), "", "toys", Origin::Unspecified),
        ) else {
            panic!("a mismatch");
        };
        assert_eq!(r.reason, Reason::RefundSegmentMismatch);
        assert!(
            r.message
                .contains(r#"category "toys" (the sale's: "food")"#),
            "{}",
            r.message
        );
        assert_eq!(
            reason(&st.resolve(&a, &with(refund("R3", "S", 10), "", "", Origin::Domestic))),
            Some(Reason::RefundSegmentMismatch)
        );
        // Naming the sale's fields in full is fine.
        assert_eq!(
            st.resolve(
                &a,
                &with(refund("R4", "S", 10), "nestle", "food", Origin::CrossBorder)
            ),
            accepted(3)
        );
        // A refund of a sale without segments naming one is a mismatch too.
        assert_eq!(st.resolve(&a, &sale("P", 100)), accepted(4));
        assert_eq!(
            reason(&st.resolve(
                &a,
                &with(refund("R5", "P", 10), "nestle", "", Origin::Unspecified)
            )),
            Some(Reason::RefundSegmentMismatch)
        );
    }
}
