//! The answers of every stream, counted: outcomes, ack latency, the positions acknowledged (for
//! freshness), and what was ACCEPTED per (site, currency) and per breakdown key, to reconcile.

use std::collections::BTreeMap;
use std::time::Instant;

use foldhash::HashMap;
use saleboard_domain::Dimension;
use saleboard_proto::v1::{Outcome, TransactionResult};

use super::report::{Figures, Movement, SegmentFigures};
use super::workload::{Spec, SpecNature, key_name};

#[derive(Default)]
pub(super) struct Tally {
    /// Told ACCEPTED, or stored by an attempt whose answer was lost (see `recovered`).
    pub(super) accepted: u64,
    /// New transactions of a resent batch told DUPLICATE: stored by the first attempt (also
    /// counted in `accepted`).
    pub(super) recovered: u64,
    /// Streams opened again after UNAVAILABLE or RESOURCE_EXHAUSTED.
    pub(super) reopened: u64,
    pub(super) duplicate: u64,
    pub(super) rejected: BTreeMap<String, u64>,
    pub(super) ack_us: Vec<u64>,
    /// (highest accepted position of a batch, when it was acknowledged)
    pub(super) acks: Vec<(u64, Instant)>,
    /// Per site and currency: what was ACCEPTED.
    pub(super) expected: HashMap<String, HashMap<&'static str, Movement>>,
    /// Per dimension ([`Dimension::ALL`]'s order), key number and currency: what was ACCEPTED.
    /// (It runs for every acknowledged row, on the machine it measures: nothing is allocated
    /// for a row whose keys were counted before, and names are made once, at the end.)
    pub(super) expected_segments: [HashMap<(u32, &'static str), Movement>; 3],
    pub(super) last_ack: Option<Instant>,
}

impl Tally {
    /// Counts the answer to one batch of `site`, sent at `sent_at` and answered at `now`;
    /// `resent`: the batch was sent again on a new stream after its first one failed.
    pub(super) fn record(
        &mut self,
        site: &str,
        sent: &[Spec],
        results: &[TransactionResult],
        sent_at: Instant,
        now: Instant,
        resent: bool,
    ) {
        #[allow(clippy::cast_possible_truncation)]
        self.ack_us
            .push(now.duration_since(sent_at).as_micros() as u64);
        if !self.expected.contains_key(site) {
            self.expected.insert(site.to_owned(), HashMap::default());
        }
        let by_currency = self.expected.get_mut(site).expect("inserted above");
        let mut top = 0;
        for (spec, result) in sent.iter().zip(results) {
            let stored_now = match result.outcome() {
                Outcome::Accepted => true,
                // A new transaction of a resent batch told DUPLICATE: its first attempt was
                // stored and its answer lost with the stream. It was accepted, once.
                Outcome::Duplicate if resent && !spec.resubmit => {
                    self.recovered += 1;
                    true
                }
                Outcome::Duplicate => {
                    self.duplicate += 1;
                    false
                }
                _ => {
                    *self.rejected.entry(result.reason.clone()).or_default() += 1;
                    false
                }
            };
            if stored_now {
                self.accepted += 1;
                top = top.max(result.position);
                let moved = match spec.nature {
                    SpecNature::Sale { .. } => Movement {
                        sales: 1,
                        gross: spec.amount,
                        ..Movement::default()
                    },
                    SpecNature::Refund { .. } => Movement {
                        refunds: 1,
                        refunded: spec.amount,
                        ..Movement::default()
                    },
                };
                by_currency.entry(spec.currency).or_default().add(moved);
                for (figures, dimension) in self.expected_segments.iter_mut().zip(Dimension::ALL) {
                    figures
                        .entry((spec.segs.key(dimension), spec.currency))
                        .or_default()
                        .add(moved);
                }
            }
        }
        if top > 0 {
            self.acks.push((top, now));
        }
        self.last_ack = Some(now);
    }

    /// What was accepted, per (site, currency).
    pub(super) fn expected(&self) -> Figures {
        self.expected
            .iter()
            .flat_map(|(site, by_currency)| {
                by_currency
                    .iter()
                    .map(move |(currency, m)| ((site.clone(), (*currency).to_owned()), *m))
            })
            .collect()
    }

    /// What was accepted, per (dimension, key, currency).
    pub(super) fn expected_segments(&self) -> SegmentFigures {
        let mut out = SegmentFigures::new();
        for (figures, dimension) in self.expected_segments.iter().zip(Dimension::ALL) {
            for ((n, currency), m) in figures {
                // Distinct numbers can share a name (an origin outside the domain's codes).
                out.entry((dimension, key_name(dimension, *n), (*currency).to_owned()))
                    .or_default()
                    .add(*m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use saleboard_proto::v1::Origin;

    use super::*;
    use crate::loadgen::workload::Segs;

    #[test]
    fn a_resent_batch_counts_its_new_transactions_told_duplicate_as_accepted_once() {
        // Arrange: a sale, and a deliberate resubmission of an earlier one, both sent again
        // after their stream failed; the first attempt had stored the sale.
        let sale = Spec {
            seq: 1,
            nature: SpecNature::Sale { store: 1 },
            currency: "IDR",
            amount: 1_000,
            occurred_at: 0,
            segs: Segs {
                brand: 7,
                category: 2,
                origin: Origin::CrossBorder,
            },
            resubmit: false,
        };
        let again = Spec {
            resubmit: true,
            ..sale
        };
        let duplicate = |position| TransactionResult {
            outcome: Outcome::Duplicate.into(),
            position,
            ..TransactionResult::default()
        };
        let mut t = Tally::default();
        let now = Instant::now();

        // Act
        t.record(
            "s1",
            &[sale, again],
            &[duplicate(5), duplicate(5)],
            now,
            now,
            true,
        );
        // The same answers on a batch sent once are deliberate duplicates only.
        let mut once = Tally::default();
        once.record("s1", &[sale], &[duplicate(5)], now, now, false);

        // Assert
        assert_eq!((t.accepted, t.recovered, t.duplicate), (1, 1, 1));
        assert_eq!(t.acks.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [5]);
        assert_eq!(
            t.expected(),
            Figures::from([(
                ("s1".to_owned(), "IDR".to_owned()),
                Movement {
                    sales: 1,
                    gross: 1_000,
                    ..Movement::default()
                }
            )])
        );
        assert_eq!((once.accepted, once.recovered, once.duplicate), (0, 0, 1));
    }

    #[test]
    fn tally_counts_accepted_rows_under_their_keys_and_names_them_at_the_end() {
        let sale = Spec {
            seq: 1,
            nature: SpecNature::Sale { store: 3 },
            currency: "IDR",
            amount: 1_000,
            occurred_at: 0,
            segs: Segs {
                brand: 7,
                category: 2,
                origin: Origin::CrossBorder,
            },
            resubmit: false,
        };
        let refund = Spec {
            seq: 2,
            nature: SpecNature::Refund {
                of: 1,
                says_segments: false,
            },
            amount: 400,
            ..sale
        };
        let unbranded = Spec {
            seq: 3,
            segs: Segs {
                brand: 0,
                ..sale.segs
            },
            currency: "USD",
            ..sale
        };
        let answer = |outcome: Outcome, position| TransactionResult {
            outcome: outcome.into(),
            position,
            ..TransactionResult::default()
        };
        let mut t = Tally::default();
        let now = Instant::now();
        t.record(
            "s1",
            &[sale, refund, sale, unbranded],
            &[
                answer(Outcome::Accepted, 10),
                answer(Outcome::Accepted, 11),
                answer(Outcome::Duplicate, 0),
                answer(Outcome::Rejected, 0),
            ],
            now,
            now,
            false,
        );
        assert_eq!((t.accepted, t.duplicate), (2, 1));
        assert_eq!(t.acks.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [11]);
        let both = Movement {
            sales: 1,
            gross: 1_000,
            refunds: 1,
            refunded: 400,
        };
        assert_eq!(
            t.expected(),
            Figures::from([(("s1".to_owned(), "IDR".to_owned()), both)])
        );
        let key = |d, k: &str| (d, k.to_owned(), "IDR".to_owned());
        assert_eq!(
            t.expected_segments(),
            SegmentFigures::from([
                (key(Dimension::Brand, "brand-7"), both),
                (key(Dimension::Category, "category-2"), both),
                (key(Dimension::Origin, "cross-border"), both),
            ])
        );
    }
}
