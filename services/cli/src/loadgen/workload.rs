//! The transactions a run sends: a reproducible generator per site (a currency mix, refunds of
//! the stream's earlier sales, resubmissions, segments drawn by a Zipf law over the brands) and
//! the wire message of each.

use std::collections::VecDeque;
use std::sync::Arc;

use saleboard_domain::Dimension;
use saleboard_proto::Timestamp;
use saleboard_proto::v1::{Origin, Transaction, TransactionKind};

use super::LoadgenArgs;

/// A tiny PRNG (SplitMix64): reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

/// (currency, smallest, largest) amounts in minor units.
const MIX: [(&str, u64, i64, i64); 5] = [
    ("IDR", 80, 1_000_000, 500_000_000),
    ("USD", 8, 100, 50_000),
    ("SGD", 5, 100, 60_000),
    ("MYR", 5, 100, 200_000),
    ("JPY", 2, 100, 50_000),
];

/// (brand, category, origin) of a sale: brand and category by number (0: none; the wire
/// names them `brand-N` and `category-N`), so a generated transaction is a small copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Segs {
    pub(super) brand: u32,
    pub(super) category: u32,
    pub(super) origin: Origin,
}

impl Segs {
    /// The key of a dimension by number (the origin by its wire number).
    pub(super) fn key(self, dimension: Dimension) -> u32 {
        match dimension {
            Dimension::Brand => self.brand,
            Dimension::Category => self.category,
            Dimension::Origin => u32::try_from(i32::from(self.origin)).unwrap_or(0),
        }
    }
}

/// The name of key number `n` of a dimension, as a breakdown names it.
pub(super) fn key_name(dimension: Dimension, n: u32) -> String {
    match (dimension, n) {
        (Dimension::Brand | Dimension::Category, 0) => String::new(),
        (Dimension::Brand, n) => format!("brand-{n}"),
        (Dimension::Category, n) => format!("category-{n}"),
        // The wire numbers are the domain's codes.
        (Dimension::Origin, n) => i16::try_from(n)
            .ok()
            .and_then(saleboard_domain::Origin::from_code)
            .map_or("", saleboard_domain::Origin::key)
            .to_owned(),
    }
}

/// A generated transaction, small enough to keep and to copy: its wire message is built from
/// it (again for a resubmission), and the tally counts its answer from it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    pub(super) seq: u64,
    pub(super) nature: SpecNature,
    pub(super) currency: &'static str,
    pub(super) amount: i64,
    pub(super) occurred_at: i64,
    /// The breakdown keys it counts under: a refund's are its sale's.
    pub(super) segs: Segs,
    /// A deliberate resubmission of an earlier transaction (its DUPLICATE is expected).
    pub(super) resubmit: bool,
}

/// A sale, or a refund of one of the stream's sales.
#[derive(Debug, Clone, Copy)]
pub(super) enum SpecNature {
    /// Sold at `store-N`.
    Sale { store: u64 },
    /// Refunds sale `of` (its sequence number), naming no store; `says_segments`: whether it
    /// repeats its sale's segments on the wire (half the refunds leave them to their sale).
    Refund { of: u64, says_segments: bool },
}

struct SaleRef {
    seq: u64,
    currency: &'static str,
    left: i64,
    segments: Segs,
}

/// The brands' Zipf weights, cumulated (for drawing one), and the mix of segments.
#[derive(Debug, Clone)]
pub(super) struct SegmentMix {
    cumulative: Arc<Vec<f64>>,
    categories: u32,
    cross_border: f64,
}

impl SegmentMix {
    pub(super) fn new(args: &LoadgenArgs) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=args.brands)
            .map(|i| {
                total += 1.0 / f64::from(i).powf(args.brand_zipf);
                total
            })
            .collect();
        Self {
            cumulative: Arc::new(cumulative),
            categories: args.categories,
            cross_border: args.cross_border,
        }
    }

    fn draw(&self, rng: &mut Rng) -> Segs {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let brand =
            u32::try_from(self.cumulative.partition_point(|c| *c < x) + 1).unwrap_or(u32::MAX);
        let origin = if rng.chance(self.cross_border) {
            Origin::CrossBorder
        } else {
            Origin::Domestic
        };
        Segs {
            brand: if rng.chance(0.03) { 0 } else { brand },
            category: (brand - 1) % self.categories.max(1) + 1,
            origin,
        }
    }
}

pub(super) struct Generator {
    rng: Rng,
    run: String,
    site: usize,
    seq: u64,
    sales: VecDeque<SaleRef>,
    sent: VecDeque<Spec>,
    refunds: f64,
    resubmits: f64,
    /// "Now" for the timestamps; `None`: the real clock.
    clock: Option<i64>,
    mix: SegmentMix,
}

impl Generator {
    /// The generator of site number `site` (from 1) in run `run`, seeded by that number.
    pub(super) fn new(
        args: &LoadgenArgs,
        run: String,
        site: usize,
        clock: Option<i64>,
        mix: SegmentMix,
    ) -> Self {
        Self {
            rng: Rng(0x5EED ^ (site as u64).wrapping_mul(0x9E37_79B9)),
            run,
            site,
            seq: 0,
            sales: VecDeque::new(),
            sent: VecDeque::new(),
            refunds: args.refunds,
            resubmits: args.resubmits,
            clock,
            mix,
        }
    }

    /// The next transaction to send (a resubmission repeats an earlier one).
    pub(super) fn next(&mut self) -> Spec {
        let now = self.clock.unwrap_or_else(crate::client_now);
        if !self.sent.is_empty() && self.rng.chance(self.resubmits) {
            let i = usize::try_from(self.rng.below(self.sent.len() as u64)).unwrap_or(0);
            return Spec {
                resubmit: true,
                ..self.sent[i]
            };
        }
        self.seq += 1;
        let spec = if !self.sales.is_empty() && self.rng.chance(self.refunds) {
            let i = usize::try_from(self.rng.below(self.sales.len() as u64)).unwrap_or(0);
            let sale = &mut self.sales[i];
            let amount = 1 + i64::try_from(self.rng.below(u64::try_from(sale.left).unwrap_or(1)))
                .unwrap_or(0);
            sale.left -= amount;
            let spec = Spec {
                seq: self.seq,
                nature: SpecNature::Refund {
                    of: sale.seq,
                    // Half the refunds leave the segments to their sale, half say them again.
                    says_segments: self.rng.chance(0.5),
                },
                currency: sale.currency,
                amount,
                // Now: never before its sale (sales are up to a minute old).
                occurred_at: now,
                segs: sale.segments,
                resubmit: false,
            };
            if sale.left == 0 {
                self.sales.remove(i);
            }
            spec
        } else {
            let occurred_at = now - i64::try_from(self.rng.below(60)).unwrap_or(0);
            let mut pick = self.rng.below(100);
            let (currency, lo, hi) = MIX
                .iter()
                .find(|(_, share, _, _)| {
                    if pick < *share {
                        true
                    } else {
                        pick -= share;
                        false
                    }
                })
                .map_or(("IDR", 1, 2), |(c, _, lo, hi)| (*c, *lo, *hi));
            let amount = lo
                + i64::try_from(self.rng.below(u64::try_from(hi - lo).unwrap_or(1))).unwrap_or(0);
            let segs = self.mix.draw(&mut self.rng);
            self.sales.push_back(SaleRef {
                seq: self.seq,
                currency,
                left: amount,
                segments: segs,
            });
            if self.sales.len() > 1_000 {
                self.sales.pop_front();
            }
            Spec {
                seq: self.seq,
                nature: SpecNature::Sale {
                    store: self.rng.below(20),
                },
                currency,
                amount,
                occurred_at,
                segs,
                resubmit: false,
            }
        };
        self.sent.push_back(spec);
        if self.sent.len() > 1_000 {
            self.sent.pop_front();
        }
        spec
    }

    /// The wire message of `spec`.
    pub(super) fn wire(&self, spec: &Spec) -> Transaction {
        wire(&self.run, self.site, spec)
    }
}

/// The id of transaction `seq` of site `site`'s stream in run `run`.
fn id_of(run: &str, site: usize, seq: u64) -> String {
    format!("{run}-{site}-{seq}")
}

/// The wire message of `spec` in site `site`'s stream of run `run` (built again when a batch
/// is resent on a new stream).
pub(super) fn wire(run: &str, site: usize, spec: &Spec) -> Transaction {
    let (kind, store_id, refund_of, says_segments) = match spec.nature {
        SpecNature::Sale { store } => (
            TransactionKind::Sale,
            format!("store-{store}"),
            String::new(),
            true,
        ),
        SpecNature::Refund { of, says_segments } => (
            TransactionKind::Refund,
            String::new(),
            id_of(run, site, of),
            says_segments,
        ),
    };
    let (brand, category, origin) = if says_segments {
        (
            key_name(Dimension::Brand, spec.segs.brand),
            key_name(Dimension::Category, spec.segs.category),
            spec.segs.origin,
        )
    } else {
        (String::new(), String::new(), Origin::default())
    };
    Transaction {
        transaction_id: id_of(run, site, spec.seq),
        store_id,
        kind: kind.into(),
        currency: spec.currency.to_owned(),
        amount_minor: spec.amount,
        occurred_at: Some(Timestamp {
            seconds: spec.occurred_at,
            nanos: 0,
        }),
        refund_of,
        brand,
        category,
        origin: origin.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn generated_refunds_never_exceed_their_sale() {
        let mut g = Generator {
            rng: Rng(7),
            run: "r".into(),
            site: 1,
            seq: 0,
            sales: VecDeque::new(),
            sent: VecDeque::new(),
            refunds: 0.3,
            resubmits: 0.1,
            clock: Some(1_765_497_600),
            mix: SegmentMix {
                cumulative: Arc::new(vec![1.0, 1.5, 1.8]),
                categories: 2,
                cross_border: 0.2,
            },
        };
        let mut held: BTreeMap<String, i64> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut sale_segments: BTreeMap<String, (String, String, i32)> = BTreeMap::new();
        let (mut refunds, mut resubmits, mut unsaid) = (0, 0, 0);
        for _ in 0..5_000 {
            let spec = g.next();
            let t = g.wire(&spec);
            if !seen.insert(t.transaction_id.clone()) {
                resubmits += 1;
                continue;
            }
            let segments = (t.brand.clone(), t.category.clone(), t.origin);
            if t.refund_of.is_empty() {
                assert_eq!(t.kind(), TransactionKind::Sale);
                assert!(t.store_id.starts_with("store-"), "{t:?}");
                assert!(t.category.starts_with("category-"), "{t:?}");
                held.insert(t.transaction_id.clone(), t.amount_minor);
                sale_segments.insert(t.transaction_id.clone(), segments);
            } else {
                refunds += 1;
                assert_eq!(t.kind(), TransactionKind::Refund);
                let left = held
                    .get_mut(&t.refund_of)
                    .expect("refunds name an earlier sale");
                *left -= t.amount_minor;
                assert!(*left >= 0);
                // The tally counts a refund under its sale's segments, which it says again
                // or leaves empty.
                let sale = &sale_segments[&t.refund_of];
                let counted = (
                    key_name(Dimension::Brand, spec.segs.brand),
                    key_name(Dimension::Category, spec.segs.category),
                    i32::from(spec.segs.origin),
                );
                assert_eq!(&counted, sale);
                if t.brand.is_empty() && t.category.is_empty() {
                    unsaid += 1;
                } else {
                    assert_eq!(&segments, sale);
                }
            }
        }
        assert!(
            refunds > 1_000 && resubmits > 200 && unsaid > 300,
            "{refunds} {resubmits} {unsaid}"
        );
    }
}
