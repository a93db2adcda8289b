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

/// How a site inflates its figures (`saleboard loadgen --inflate SITE=PATTERN`): each pattern
/// makes one integrity rule's statistic stand out, so that rule can be shown and tested, while
/// the honest sites of the same run show how often a rule raises a site that did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Pattern {
    /// Refunds 40% of the value it sells, each refund in full (`INTEGRITY_RULE_REFUND_RATE`;
    /// `INTEGRITY_RULE_LATE_REFUNDS` when received after the event's end, as in the run's own
    /// event).
    LateRefunds,
    /// Three sales in ten occurred two hours before they are sent (`INTEGRITY_RULE_LATE_SALES`).
    Backdated,
    /// Half its sales occurred in one second (`INTEGRITY_RULE_BURST`).
    Burst,
    /// Half its sales come from one store, `store-999`, that no run's honest site sells from
    /// (`INTEGRITY_RULE_STORE_CONCENTRATION`).
    NewStore,
    /// Six sales in ten at a round amount: whole major units with one significant digit, as
    /// Rp 2.000.000 (`INTEGRITY_RULE_AMOUNT_PATTERN`, evidence beside another flag).
    RoundAmounts,
    /// Orders five times the size of the others' (`INTEGRITY_RULE_GROWTH`: the average order).
    Growth,
}

/// One `--inflate SITE=PATTERN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inflate {
    /// The site (as the run names them: `PREFIX-001`...).
    pub site: String,
    /// What it does.
    pub pattern: Pattern,
}

impl std::str::FromStr for Inflate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use clap::ValueEnum as _;
        let (site, pattern) = s.split_once('=').ok_or_else(|| {
            format!("{s:?} is not SITE=PATTERN (for example lg-001=late-refunds)")
        })?;
        if site.is_empty() {
            return Err(format!("{s:?} names no site (SITE=PATTERN)"));
        }
        let pattern = Pattern::from_str(pattern, false).map_err(|_| {
            let names: Vec<String> = Pattern::value_variants()
                .iter()
                .filter_map(|p| p.to_possible_value().map(|v| v.get_name().to_owned()))
                .collect();
            format!("unknown pattern {pattern:?}: one of {}", names.join(", "))
        })?;
        Ok(Self {
            site: site.to_owned(),
            pattern,
        })
    }
}

/// The store of a `new-store` site's inflated sales (honest sales come from `store-0` to
/// `store-19`).
const NEW_STORE: u64 = 999;

/// Minor units per major unit of each currency of [`MIX`] (ISO 4217 exponents).
fn minor_per_major(currency: &str) -> i64 {
    if currency == "JPY" { 1 } else { 100 }
}

/// `amount` rounded down to a round amount: whole major units with one significant digit
/// (Rp 2.345.600 to Rp 2.000.000; at least one major unit), as the amount-pattern rule
/// counts them.
fn round_down(amount: i64, currency: &str) -> i64 {
    let unit = minor_per_major(currency);
    let mut major = (amount / unit).max(1);
    let mut scale = 1;
    while major >= 10 {
        major /= 10;
        scale *= 10;
    }
    major * scale * unit
}

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
    /// How this site inflates its figures (none: honestly).
    patterns: Vec<Pattern>,
    /// A `burst` site's one second (its first "now").
    burst_second: Option<i64>,
}

impl Generator {
    /// The generator of site number `site` (from 1) in run `run`, seeded by that number.
    pub(super) fn new(
        args: &LoadgenArgs,
        run: String,
        site: usize,
        clock: Option<i64>,
        mix: SegmentMix,
        patterns: Vec<Pattern>,
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
            patterns,
            burst_second: None,
        }
    }

    /// Whether this site follows `pattern`.
    fn has(&self, pattern: Pattern) -> bool {
        self.patterns.contains(&pattern)
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
        // A late-refunds site refunds 40% of what it sells: 2 refunds for 5 sales, each in full.
        let (refunds, in_full) = if self.has(Pattern::LateRefunds) {
            (2.0 / 7.0, true)
        } else {
            (self.refunds, false)
        };
        let spec = if !self.sales.is_empty() && self.rng.chance(refunds) {
            let i = usize::try_from(self.rng.below(self.sales.len() as u64)).unwrap_or(0);
            let sale = &mut self.sales[i];
            let amount = if in_full {
                sale.left
            } else {
                1 + i64::try_from(self.rng.below(u64::try_from(sale.left).unwrap_or(1)))
                    .unwrap_or(0)
            };
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
            let ago = i64::try_from(self.rng.below(60)).unwrap_or(0);
            let occurred_at = if self.has(Pattern::Backdated) && self.rng.chance(0.3) {
                now - 2 * 3_600 - ago
            } else if self.has(Pattern::Burst) && self.rng.chance(0.5) {
                *self.burst_second.get_or_insert(now)
            } else {
                now - ago
            };
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
            let mut amount = lo
                + i64::try_from(self.rng.below(u64::try_from(hi - lo).unwrap_or(1))).unwrap_or(0);
            if self.has(Pattern::Growth) {
                amount *= 5;
            }
            if self.has(Pattern::RoundAmounts) && self.rng.chance(0.6) {
                amount = round_down(amount, currency);
            }
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
                    store: if self.has(Pattern::NewStore) && self.rng.chance(0.5) {
                        NEW_STORE
                    } else {
                        self.rng.below(20)
                    },
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
            patterns: Vec::new(),
            burst_second: None,
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

    fn patterned(pattern: Option<Pattern>) -> Generator {
        Generator {
            rng: Rng(11),
            run: "r".into(),
            site: 1,
            seq: 0,
            sales: VecDeque::new(),
            sent: VecDeque::new(),
            refunds: 0.03,
            resubmits: 0.0,
            clock: Some(1_765_497_600),
            mix: SegmentMix {
                cumulative: Arc::new(vec![1.0, 1.5, 1.8]),
                categories: 2,
                cross_border: 0.2,
            },
            patterns: pattern.into_iter().collect(),
            burst_second: None,
        }
    }

    /// What 20,000 transactions of a generator add up to: (sales, gross, refunded, sales
    /// occurred over an hour before now, the busiest second's sales, sales from `store-999`,
    /// sales at a round amount, as the amount-pattern rule counts them).
    fn figures(mut g: Generator) -> [i64; 7] {
        let now = g.clock.unwrap_or_default();
        let mut f = [0_i64; 7];
        let mut seconds: BTreeMap<i64, i64> = BTreeMap::new();
        for _ in 0..20_000 {
            let spec = g.next();
            let t = g.wire(&spec);
            if t.kind() == TransactionKind::Refund {
                f[2] += t.amount_minor;
                continue;
            }
            f[0] += 1;
            f[1] += t.amount_minor;
            let at = t.occurred_at.map_or(0, |o| o.seconds);
            f[3] += i64::from(now - at > 3_600);
            *seconds.entry(at).or_default() += 1;
            f[5] += i64::from(t.store_id == "store-999");
            let currency = saleboard_domain::Currency::parse(&t.currency).expect("currency");
            f[6] += i64::from(saleboard_domain::integrity::is_round(
                t.amount_minor,
                currency,
            ));
        }
        f[4] = seconds.values().copied().max().unwrap_or(0);
        f
    }

    #[test]
    fn each_pattern_makes_its_statistic_stand_out_and_honest_sites_do_not() {
        let honest = figures(patterned(None));
        let share = |num: i64, den: i64| num as f64 / den as f64;
        // An honest site: about 1.5% refunded (3% refunds of part of a sale), nothing backdated,
        // every second alike, twenty stores, hardly a round amount.
        assert!(share(honest[2], honest[1]) < 0.03, "{honest:?}");
        assert_eq!(honest[3], 0);
        assert!(share(honest[4], honest[0]) < 0.03, "{honest:?}");
        assert_eq!(honest[5], 0);
        assert!(share(honest[6], honest[0]) < 0.02, "{honest:?}");

        let late = figures(patterned(Some(Pattern::LateRefunds)));
        assert!((0.35..0.45).contains(&share(late[2], late[1])), "{late:?}");
        let backdated = figures(patterned(Some(Pattern::Backdated)));
        assert!(
            (0.27..0.33).contains(&share(backdated[3], backdated[0])),
            "{backdated:?}"
        );
        let burst = figures(patterned(Some(Pattern::Burst)));
        assert!(
            (0.47..0.53).contains(&share(burst[4], burst[0])),
            "{burst:?}"
        );
        let store = figures(patterned(Some(Pattern::NewStore)));
        assert!(
            (0.47..0.53).contains(&share(store[5], store[0])),
            "{store:?}"
        );
        let round = figures(patterned(Some(Pattern::RoundAmounts)));
        assert!(
            (0.57..0.63).contains(&share(round[6], round[0])),
            "{round:?}"
        );
        let growth = figures(patterned(Some(Pattern::Growth)));
        let order = |f: [i64; 7]| share(f[1], f[0]);
        assert!(
            (4.5..5.5).contains(&(order(growth) / order(honest))),
            "{growth:?} {honest:?}"
        );
    }

    #[test]
    fn inflate_is_site_equals_pattern() {
        let i: Inflate = "lg-001=late-refunds".parse().expect("parses");
        assert_eq!(
            i,
            Inflate {
                site: "lg-001".into(),
                pattern: Pattern::LateRefunds
            }
        );
        assert_eq!(
            "lg-002=new-store".parse::<Inflate>().map(|i| i.pattern),
            Ok(Pattern::NewStore)
        );
        let unknown = "lg-001=brushing".parse::<Inflate>().expect_err("refused");
        assert!(
            unknown.contains("\"brushing\"")
                && unknown
                    .contains("late-refunds, backdated, burst, new-store, round-amounts, growth"),
            "{unknown}"
        );
        assert!(
            "lg-001"
                .parse::<Inflate>()
                .expect_err("refused")
                .contains("SITE=PATTERN")
        );
        assert!(
            "=burst"
                .parse::<Inflate>()
                .expect_err("refused")
                .contains("names no site")
        );
    }
}
