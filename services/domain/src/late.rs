//! Late figures (issue 28), for the rules `INTEGRITY_RULE_LATE_REFUNDS` and
//! `INTEGRITY_RULE_LATE_SALES`: per (event, site, currency), the value of refunds received at
//! or after the event's end, and of sales received more than an hour after they occurred or
//! after the end; and, as their denominators, the sales and their value folded with them (at
//! the same ledger position: a late share is never the late figures of one position over the
//! gross of another). Kept by the aggregator's fold beside the totals, never by a scan when the
//! flags are evaluated.
//!
//! Whether a row is late depends on the event's `ends_at`, which organizers may move while the
//! event is not closed. The book remembers, per event, the end its figures were folded against
//! and the latest receipt folded: a new end that falls after every receipt folded changes no
//! row's lateness (the figures stand); any other change needs the event's figures counted again
//! from the ledger ([`LateBook::needs_recount`]). No I/O here.

use std::collections::{BTreeMap, HashMap};

use crate::totals::{TotalsKey, TotalsOverflow};
use crate::transaction::{Kind, ValidTransaction};
use crate::{Currency, SiteId, UnixNanos};

/// A sale received more than this long after it occurred is late (nanoseconds: one hour).
pub const LATE_AFTER_NS: i64 = 3_600_000_000_000;

/// One (event, site, currency)'s late figures, minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LateTotals {
    /// Refunds received at or after the event's end.
    pub late_refunded_minor: i128,
    /// Sales received more than an hour after `occurred_at`, or after the event's end.
    pub late_sales_minor: i128,
    /// Every sale folded with these figures (late or not), less the voided ones.
    pub sale_count: u64,
    /// Their value: the denominator of a late share, at the late figures' position.
    pub gross_minor: i128,
    /// Those of the sales with a round amount (`integrity::is_round`), less the voided ones:
    /// `INTEGRITY_RULE_AMOUNT_PATTERN`'s count.
    pub round_count: u64,
}

/// What the book knows of one event: the end its figures were folded against, and the latest
/// receipt folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateWindow {
    /// The `ends_at` the figures were folded against.
    pub ends_at: UnixNanos,
    /// The latest `received_at` folded (`UnixNanos(i64::MIN)` before any).
    pub latest_received: UnixNanos,
}

/// Whether a row is late, and how: `Some(true)` a late refund, `Some(false)` a late sale.
#[must_use]
pub fn lateness(tx: &ValidTransaction, received_at: UnixNanos, ends_at: UnixNanos) -> Option<bool> {
    let after_end = received_at >= ends_at;
    // A void is late as its target was: it carries the target's content and receive time.
    if matches!(tx.kind(), Kind::Refund | Kind::VoidRefund) {
        return after_end.then_some(true);
    }
    let delayed = received_at.0.saturating_sub(tx.occurred_at.0) > LATE_AFTER_NS;
    (after_end || delayed).then_some(false)
}

/// Every (event, site, currency)'s late figures, with what changed since the last take, and
/// each event's window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LateBook {
    figures: HashMap<TotalsKey, (LateTotals, bool)>,
    /// Each event's window, and whether it changed since the last take: a window is stored
    /// whenever it moves (its end, or its latest receipt), so a reload never works from an
    /// older latest receipt than the figures hold.
    windows: HashMap<String, (LateWindow, bool)>,
    /// Events waiting to be counted again from the ledger ([`LateBook::hold_for_recount`]):
    /// their rows are not folded until [`LateBook::replace_event`] replaces their figures.
    recounting: std::collections::HashSet<String>,
}

/// The late changes to write: figures and windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LateChanges {
    /// Changed figures, in key order.
    pub figures: Vec<(TotalsKey, LateTotals)>,
    /// Changed windows, by event.
    pub windows: Vec<(String, LateWindow)>,
}

impl LateChanges {
    /// Whether there is nothing to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.figures.is_empty() && self.windows.is_empty()
    }
}

impl LateBook {
    /// Loads stored figures (not marked changed).
    pub fn load(&mut self, key: TotalsKey, value: LateTotals) {
        self.figures.insert(key, (value, false));
    }

    /// Loads an event's stored window (not marked changed).
    pub fn load_window(&mut self, event_id: &str, window: LateWindow) {
        self.windows.insert(event_id.to_owned(), (window, false));
    }

    /// Whether changes wait to be taken.
    #[must_use]
    pub fn pending(&self) -> bool {
        self.windows.values().any(|(_, changed)| *changed)
            || self.figures.values().any(|(_, changed)| *changed)
    }

    /// Whether the event's end is known (set, or loaded): a row of an event whose end is not
    /// known would be folded as late by its delay alone.
    #[must_use]
    pub fn knows_end(&self, event_id: &str) -> bool {
        self.windows
            .get(event_id)
            .is_some_and(|(w, _)| w.ends_at != UnixNanos(i64::MAX))
    }

    /// The window of an event, as folded so far.
    #[must_use]
    pub fn window(&self, event_id: &str) -> Option<LateWindow> {
        self.windows.get(event_id).map(|(w, _)| *w)
    }

    /// Whether the event's figures must be counted again from the ledger for the end
    /// `ends_at`: they were never folded with a window (a database from before these figures,
    /// when `has_rows`: the ledger may hold rows of the event), or the end moved across a
    /// receipt already folded (an end never set counts as after every receipt). A move past
    /// every receipt folded only updates the window ([`LateBook::set_end`]).
    #[must_use]
    pub fn needs_recount(&self, event_id: &str, ends_at: UnixNanos, has_rows: bool) -> bool {
        match self.windows.get(event_id) {
            None => has_rows,
            Some((w, _)) => w.ends_at != ends_at && w.latest_received >= w.ends_at.min(ends_at),
        }
    }

    /// Sets an event's end, where [`LateBook::needs_recount`] says no recount is needed.
    pub fn set_end(&mut self, event_id: &str, ends_at: UnixNanos) {
        match self.windows.get_mut(event_id) {
            Some((w, changed)) => {
                if w.ends_at != ends_at {
                    w.ends_at = ends_at;
                    *changed = true;
                }
            }
            None => {
                let window = LateWindow {
                    ends_at,
                    latest_received: UnixNanos(i64::MIN),
                };
                self.windows.insert(event_id.to_owned(), (window, true));
            }
        }
    }

    /// Holds an event's figures until they are counted again from the ledger: rows of it are
    /// not folded meanwhile (the count replaces them, and its loaded figures may not hold
    /// what a row takes away: a void of a sale folded before the figures had a denominator).
    pub fn hold_for_recount(&mut self, event_id: &str) {
        self.recounting.insert(event_id.to_owned());
    }

    /// Replaces an event's figures with ones counted from the ledger against `window`: keys
    /// no longer late are written as zero. Ends a hold ([`LateBook::hold_for_recount`]).
    pub fn replace_event(
        &mut self,
        event_id: &str,
        window: LateWindow,
        counted: BTreeMap<(SiteId, Currency), LateTotals>,
    ) {
        self.recounting.remove(event_id);
        for ((event, site, currency), (value, changed)) in &mut self.figures {
            if event == event_id && !counted.contains_key(&(site.clone(), *currency)) {
                *value = LateTotals::default();
                *changed = true;
            }
        }
        for ((site, currency), value) in counted {
            self.figures
                .insert((event_id.to_owned(), site, currency), (value, true));
        }
        self.windows.insert(event_id.to_owned(), (window, true));
    }

    /// Folds one ledger row received at `received_at` (a row of an event without a window
    /// counts as late only by its delay, and gives the event a window without an end, so
    /// [`LateBook::needs_recount`] knows what was folded when the end is set).
    ///
    /// # Errors
    /// When a figure would overflow. The book is then partly updated and must be discarded.
    pub fn apply(
        &mut self,
        event_id: &str,
        site: &SiteId,
        tx: &ValidTransaction,
        received_at: UnixNanos,
    ) -> Result<(), TotalsOverflow> {
        // An event whose end is not known yet (created since the windows were set) is folded
        // against no end, and remembered: its end, once set, counts it again if a receipt
        // folded is at or after that end.
        if !self.recounting.is_empty() && self.recounting.contains(event_id) {
            return Ok(());
        }
        // Looked up with the borrowed id: folding a row allocates nothing for a known event.
        if !self.windows.contains_key(event_id) {
            let window = LateWindow {
                ends_at: UnixNanos(i64::MAX),
                latest_received: UnixNanos(i64::MIN),
            };
            self.windows.insert(event_id.to_owned(), (window, true));
        }
        let Some((w, changed)) = self.windows.get_mut(event_id) else {
            unreachable!("inserted above");
        };
        if received_at > w.latest_received {
            w.latest_received = received_at;
            *changed = true;
        }
        let ends_at = w.ends_at;
        let late = lateness(tx, received_at, ends_at);
        let sale = matches!(tx.kind(), Kind::Sale | Kind::VoidSale);
        if late.is_none() && !sale {
            // A refund before the end: neither a late figure nor a denominator.
            return Ok(());
        }
        let overflow = |what| TotalsOverflow {
            site: site.clone(),
            currency: tx.currency,
            what,
        };
        let key = (event_id.to_owned(), site.clone(), tx.currency);
        let (value, changed) = self.figures.entry(key).or_default();
        // A void takes away what its target added (never below zero: its target was folded).
        let amount = i128::from(tx.amount_minor);
        let void = tx.kind().is_void();
        let step = |figure: i128| {
            if void {
                figure.checked_sub(amount).filter(|v| *v >= 0)
            } else {
                figure.checked_add(amount)
            }
        };
        if sale {
            value.gross_minor = step(value.gross_minor).ok_or_else(|| overflow("gross"))?;
            let count = |n: u64| {
                if void {
                    n.checked_sub(1)
                } else {
                    n.checked_add(1)
                }
            };
            value.sale_count = count(value.sale_count).ok_or_else(|| overflow("sales"))?;
            if crate::integrity::is_round(tx.amount_minor, tx.currency) {
                value.round_count =
                    count(value.round_count).ok_or_else(|| overflow("round sales"))?;
            }
        }
        if let Some(refund) = late {
            let (figure, what) = if refund {
                (&mut value.late_refunded_minor, "late refunded")
            } else {
                (&mut value.late_sales_minor, "late sales")
            };
            *figure = step(*figure).ok_or_else(|| overflow(what))?;
        }
        *changed = true;
        Ok(())
    }

    /// The changes since the last take (figures, and every window whose end or latest receipt
    /// moved), and forgets that they changed.
    pub fn take_changes(&mut self) -> LateChanges {
        LateChanges {
            figures: take_changed(&mut self.figures),
            windows: take_changed(&mut self.windows),
        }
    }

    /// Every figure, in key order (for `verify` and tests).
    #[must_use]
    pub fn figures(&self) -> BTreeMap<TotalsKey, LateTotals> {
        self.figures
            .iter()
            .filter(|(_, (v, _))| *v != LateTotals::default())
            .map(|(k, (v, _))| (k.clone(), *v))
            .collect()
    }
}

/// The entries of `map` marked changed, in key order, unmarked.
fn take_changed<K: Clone + Ord, V: Copy>(map: &mut HashMap<K, (V, bool)>) -> Vec<(K, V)> {
    let mut taken: Vec<(K, V)> = map
        .iter_mut()
        .filter(|(_, (_, changed))| *changed)
        .map(|(k, (v, changed))| {
            *changed = false;
            (k.clone(), *v)
        })
        .collect();
    taken.sort_by(|a, b| a.0.cmp(&b.0));
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Nature, StoreId, TransactionId};

    const HOUR: i64 = LATE_AFTER_NS;

    fn tx(id: &str, refund_of: Option<&str>, amount: i64, occurred: i64) -> ValidTransaction {
        ValidTransaction {
            id: TransactionId::parse(id).expect("id"),
            store_id: StoreId::parse("s").expect("store"),
            nature: match refund_of {
                None => Nature::Sale,
                Some(of) => Nature::Refund {
                    of: TransactionId::parse(of).expect("id"),
                },
            },
            currency: Currency::parse("IDR").expect("IDR"),
            amount_minor: amount,
            occurred_at: UnixNanos(occurred),
            segments: crate::Segments::default(),
        }
    }

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).expect("site")
    }

    #[test]
    fn a_row_is_late_by_its_receipt_against_the_end_or_its_delay() {
        let end = UnixNanos(10 * HOUR);
        let sale = tx("a", None, 100, 5 * HOUR);
        // On time, an hour late to the nanosecond (not late), a nanosecond more (late).
        assert_eq!(lateness(&sale, UnixNanos(5 * HOUR + 1), end), None);
        assert_eq!(lateness(&sale, UnixNanos(6 * HOUR), end), None);
        assert_eq!(lateness(&sale, UnixNanos(6 * HOUR + 1), end), Some(false));
        // Received at the end: late, however recent its occurrence (backdated into the window).
        let recent = tx("b", None, 100, 10 * HOUR - 1);
        assert_eq!(lateness(&recent, end, end), Some(false));
        assert_eq!(lateness(&recent, UnixNanos(10 * HOUR - 1), end), None);
        // A refund: late at or after the end only, never by its delay.
        let refund = tx("r", Some("a"), 50, HOUR);
        assert_eq!(lateness(&refund, UnixNanos(9 * HOUR), end), None);
        assert_eq!(lateness(&refund, end, end), Some(true));
    }

    #[test]
    fn the_fold_counts_late_rows_per_site_and_currency_and_takes_changes_once() {
        let mut book = LateBook::default();
        book.set_end("e", UnixNanos(10 * HOUR));
        let (a, b) = (site("a"), site("b"));
        book.apply("e", &a, &tx("s1", None, 100, HOUR), UnixNanos(HOUR + 5))
            .expect("fold");
        book.apply("e", &a, &tx("s2", None, 70, HOUR), UnixNanos(3 * HOUR))
            .expect("fold");
        book.apply(
            "e",
            &a,
            &tx("r1", Some("s1"), 40, 11 * HOUR),
            UnixNanos(11 * HOUR),
        )
        .expect("fold");
        book.apply("e", &b, &tx("r2", Some("x"), 9, HOUR), UnixNanos(2 * HOUR))
            .expect("fold");
        let changes = book.take_changes();
        let idr = Currency::parse("IDR").expect("IDR");
        assert_eq!(
            changes.figures,
            vec![(
                ("e".to_owned(), a.clone(), idr),
                LateTotals {
                    late_refunded_minor: 40,
                    late_sales_minor: 70,
                    // The denominators: every sale folded, late or not.
                    sale_count: 2,
                    gross_minor: 170,
                    // 100 minor units of IDR, Rp 1, is round; 70 (Rp 0,70) is not.
                    round_count: 1,
                }
            )]
        );
        assert_eq!(
            changes.windows,
            vec![(
                "e".to_owned(),
                LateWindow {
                    ends_at: UnixNanos(10 * HOUR),
                    latest_received: UnixNanos(11 * HOUR)
                }
            )]
        );
        assert!(book.take_changes().is_empty());
        assert_eq!(book.figures().len(), 1);
    }

    #[test]
    fn a_void_is_late_as_its_target_and_takes_its_figure_away() {
        let mut book = LateBook::default();
        book.set_end("e", UnixNanos(10 * HOUR));
        let a = site("a");
        let backdated = tx("s1", None, 100, HOUR);
        let late_refund = tx("r1", Some("s0"), 40, 2 * HOUR);
        book.apply("e", &a, &backdated, UnixNanos(10 * HOUR))
            .expect("fold");
        book.apply("e", &a, &late_refund, UnixNanos(11 * HOUR))
            .expect("fold");
        let void_sale = backdated.voided().expect("void");
        let void_refund = late_refund.voided().expect("void");
        // Received as its target was (storage writes the target's receipt with it).
        assert_eq!(
            lateness(&void_sale, UnixNanos(10 * HOUR), UnixNanos(10 * HOUR)),
            Some(false)
        );
        assert_eq!(
            lateness(&void_refund, UnixNanos(11 * HOUR), UnixNanos(10 * HOUR)),
            Some(true)
        );
        book.apply("e", &a, &void_sale, UnixNanos(10 * HOUR))
            .expect("fold");
        book.apply("e", &a, &void_refund, UnixNanos(11 * HOUR))
            .expect("fold");
        let idr = Currency::parse("IDR").expect("IDR");
        assert_eq!(
            book.figures()
                .get(&("e".to_owned(), a.clone(), idr))
                .copied()
                .unwrap_or_default(),
            LateTotals::default()
        );
        // Never below zero.
        let e = book
            .apply("e", &a, &void_sale, UnixNanos(10 * HOUR))
            .expect_err("nothing left to take away");
        assert_eq!(e.what, "gross");
    }

    #[test]
    fn an_event_held_for_its_recount_folds_nothing_until_replaced() {
        // Loaded from a database from before the denominators: a late sale without its gross.
        let mut book = LateBook::default();
        book.set_end("e", UnixNanos(10 * HOUR));
        let a = site("a");
        let idr = Currency::parse("IDR").expect("IDR");
        let sale = tx("s1", None, 100, HOUR);
        let mut loaded = BTreeMap::new();
        loaded.insert(
            (a.clone(), idr),
            LateTotals {
                late_sales_minor: 100,
                ..LateTotals::default()
            },
        );
        book.replace_event(
            "e",
            LateWindow {
                ends_at: UnixNanos(10 * HOUR),
                latest_received: UnixNanos(11 * HOUR),
            },
            loaded,
        );
        drop(book.take_changes());
        // Its void would take the gross below zero: an error that stops the fold.
        let void = sale.voided().expect("void");
        assert!(
            book.clone()
                .apply("e", &a, &void, UnixNanos(11 * HOUR))
                .is_err()
        );
        // Held for the recount: nothing folded, nothing changed.
        book.hold_for_recount("e");
        book.apply("e", &a, &void, UnixNanos(11 * HOUR))
            .expect("held: not folded");
        assert!(book.take_changes().is_empty());
        // The recount replaces the figures and ends the hold: rows fold again.
        book.replace_event(
            "e",
            LateWindow {
                ends_at: UnixNanos(10 * HOUR),
                latest_received: UnixNanos(11 * HOUR),
            },
            BTreeMap::new(),
        );
        book.apply("e", &a, &sale, UnixNanos(11 * HOUR))
            .expect("fold");
        assert_eq!(
            book.figures()[&("e".to_owned(), a, idr)].sale_count,
            1,
            "folded again"
        );
    }

    #[test]
    fn a_window_is_written_whenever_its_latest_receipt_moves() {
        let mut book = LateBook::default();
        book.set_end("e", UnixNanos(10 * HOUR));
        // A new window is a change of its own.
        assert_eq!(book.take_changes().windows.len(), 1);
        // A refund before the end changes no figure (nor a denominator: it is not a sale) but
        // moves the latest receipt: written.
        book.apply(
            "e",
            &site("a"),
            &tx("s", Some("x"), 1, 8 * HOUR),
            UnixNanos(8 * HOUR),
        )
        .expect("fold");
        let changes = book.take_changes();
        assert!(changes.figures.is_empty());
        assert_eq!(
            changes.windows,
            vec![(
                "e".to_owned(),
                LateWindow {
                    ends_at: UnixNanos(10 * HOUR),
                    latest_received: UnixNanos(8 * HOUR)
                }
            )]
        );
        // An older receipt moves nothing.
        book.apply(
            "e",
            &site("a"),
            &tx("t", Some("x"), 1, 7 * HOUR),
            UnixNanos(7 * HOUR),
        )
        .expect("fold");
        assert!(book.take_changes().is_empty());
        // Reloaded from what was written, a narrowed end across the receipt needs a recount.
        let mut reloaded = LateBook::default();
        reloaded.load_window("e", changes.windows[0].1);
        assert!(reloaded.needs_recount("e", UnixNanos(8 * HOUR), true));
    }

    #[test]
    fn an_end_moved_across_a_folded_receipt_needs_a_recount() {
        let mut book = LateBook::default();
        // A database from before these figures: a recount when the event has rows.
        assert!(book.needs_recount("e", UnixNanos(10 * HOUR), true));
        assert!(!book.needs_recount("e", UnixNanos(10 * HOUR), false));
        book.set_end("e", UnixNanos(10 * HOUR));
        book.apply(
            "e",
            &site("a"),
            &tx("s", None, 1, 8 * HOUR),
            UnixNanos(8 * HOUR),
        )
        .expect("fold");
        // Extended (or narrowed) past every receipt folded: the figures stand.
        assert!(!book.needs_recount("e", UnixNanos(12 * HOUR), true));
        assert!(!book.needs_recount("e", UnixNanos(9 * HOUR), true));
        // Narrowed to before a receipt folded: counted again.
        assert!(book.needs_recount("e", UnixNanos(7 * HOUR), true));
        assert!(book.needs_recount("e", UnixNanos(8 * HOUR), true));
        // Once a receipt after the end is folded, any move of the end needs a recount.
        book.apply(
            "e",
            &site("a"),
            &tx("r", Some("s"), 1, 11 * HOUR),
            UnixNanos(11 * HOUR),
        )
        .expect("fold");
        assert!(book.needs_recount("e", UnixNanos(12 * HOUR), true));
        assert!(!book.needs_recount("e", UnixNanos(10 * HOUR), true));
    }

    #[test]
    fn an_event_folded_before_its_end_is_known_is_counted_again_only_if_needed() {
        let mut book = LateBook::default();
        // Rows of an event whose end is not set yet: late only by their delay.
        book.apply(
            "new",
            &site("a"),
            &tx("r", Some("s"), 5, HOUR),
            UnixNanos(3 * HOUR),
        )
        .expect("fold");
        assert!(book.figures().is_empty());
        // Its end after every receipt folded: set, no recount.
        assert!(!book.needs_recount("new", UnixNanos(4 * HOUR), true));
        // Its end before a receipt folded: the refund was late, counted again.
        assert!(book.needs_recount("new", UnixNanos(2 * HOUR), true));
        book.set_end("new", UnixNanos(4 * HOUR));
        assert_eq!(
            book.window("new"),
            Some(LateWindow {
                ends_at: UnixNanos(4 * HOUR),
                latest_received: UnixNanos(3 * HOUR)
            })
        );
    }

    #[test]
    fn a_recount_replaces_the_event_and_zeroes_keys_no_longer_late() {
        let mut book = LateBook::default();
        book.set_end("e", UnixNanos(10 * HOUR));
        book.set_end("f", UnixNanos(10 * HOUR));
        book.apply(
            "e",
            &site("a"),
            &tx("r", Some("s"), 5, HOUR),
            UnixNanos(11 * HOUR),
        )
        .expect("fold");
        book.apply(
            "f",
            &site("a"),
            &tx("r", Some("s"), 7, HOUR),
            UnixNanos(11 * HOUR),
        )
        .expect("fold");
        drop(book.take_changes());
        let idr = Currency::parse("IDR").expect("IDR");
        let window = LateWindow {
            ends_at: UnixNanos(12 * HOUR),
            latest_received: UnixNanos(11 * HOUR),
        };
        let mut counted = BTreeMap::new();
        counted.insert(
            (site("b"), idr),
            LateTotals {
                late_sales_minor: 3,
                sale_count: 1,
                gross_minor: 3,
                ..LateTotals::default()
            },
        );
        book.replace_event("e", window, counted);
        let changes = book.take_changes();
        assert_eq!(changes.figures.len(), 2, "{changes:?}");
        assert_eq!(
            changes.figures[0].1,
            LateTotals::default(),
            "a: no longer late"
        );
        assert_eq!(changes.figures[1].0.1, site("b"));
        assert_eq!(changes.windows, vec![("e".to_owned(), window)]);
        // The other event is untouched.
        assert!(book.figures().keys().any(|(e, _, _)| e == "f"));
    }
}
