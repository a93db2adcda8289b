//! `saleboard loadgen`: simulates an event day against a running suite and reports what it saw.
//!
//! One stream per site (130 by default); each site's batch size follows a Zipf law, so in
//! closed loop (every stream as fast as the server answers) site volumes follow it too. A
//! currency mix (mostly IDR, some USD, SGD, MYR, JPY), 3% refunds of the stream's earlier sales
//! (never more than a sale holds), 2% resubmissions of already-sent transactions. Sales carry
//! segments: a brand drawn by a Zipf law over `--brands` (300), its category (one of
//! `--categories`, 12), 20% cross-border; refunds take their sale's (half of them say them
//! again, half leave them empty). Open loop (`--rate`) paces each site's batches to its share
//! of the target rate.
//!
//! It reports accepted per second, ack latency percentiles, freshness (from a batch's ACCEPTED
//! to the leaderboard watermark covering it) and, at the end, reconciles every site's totals,
//! the national totals and (in a run's own event) every national breakdown against what it was
//! told ACCEPTED, to the minor unit.

use anyhow::Context as _;
use foldhash::HashMap;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use saleboard_domain::Dimension;
use saleboard_proto::Timestamp;
use saleboard_proto::v1::admin_service_client::AdminServiceClient;
use saleboard_proto::v1::ingest_service_client::IngestServiceClient;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    BreakdownEntry, CreateApiKeyRequest, CreateSiteRequest, Event, ExchangeRate,
    GetBreakdownRequest, GetEventRequest, GetNationalTotalsRequest, GetSiteTotalsRequest,
    ListEventsRequest, ListExchangeRatesRequest, Origin, Outcome, RevokeApiKeyRequest,
    SetExchangeRatesRequest, SetSiteEnabledRequest, SubmitTransactionsRequest, Transaction,
    TransactionKind, TransactionResult, WatchLeaderboardRequest,
};
use serde_json::json;
use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{self, Output};

/// Arguments of `saleboard loadgen`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// Ingest service endpoint.
    #[arg(
        long,
        env = "SALEBOARD_INGEST_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub ingest: String,
    /// Leaderboard service endpoint (the public port: figures and watches).
    #[arg(
        long,
        env = "SALEBOARD_ENDPOINT",
        default_value = "http://127.0.0.1:50052"
    )]
    pub endpoint: String,
    /// AdminService endpoint (the leaderboard's admin listener), to set up the event, sites and
    /// keys.
    #[arg(
        long,
        env = "SALEBOARD_ADMIN_ENDPOINT",
        default_value = "http://127.0.0.1:50054"
    )]
    pub admin_endpoint: String,
    /// Organizer token, to set up sites and keys.
    #[arg(long, env = "SALEBOARD_ORGANIZER_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Number of sites.
    #[arg(long, env = "SALEBOARD_LOADGEN_SITES", default_value_t = 130, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sites: u32,
    /// Zipf exponent of site volumes.
    #[arg(long, env = "SALEBOARD_LOADGEN_ZIPF", default_value_t = 1.0)]
    pub zipf: f64,
    /// Transactions to send (closed or open loop); ignored when --duration is set.
    #[arg(long, env = "SALEBOARD_LOADGEN_COUNT", default_value_t = 200_000)]
    pub count: u64,
    /// Seconds to run instead of a count.
    #[arg(long, env = "SALEBOARD_LOADGEN_DURATION")]
    pub duration: Option<u64>,
    /// Target transactions per second (open loop); 0 runs closed loop, as fast as acknowledged.
    #[arg(long, env = "SALEBOARD_LOADGEN_RATE", default_value_t = 0)]
    pub rate: u64,
    /// Batch size of the largest site (smaller sites send smaller batches, by the Zipf law).
    #[arg(long, env = "SALEBOARD_LOADGEN_BATCH", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub batch: u32,
    /// Batches in flight per stream.
    #[arg(long, env = "SALEBOARD_LOADGEN_DEPTH", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub depth: u32,
    /// Share of refunds of earlier sales.
    #[arg(long, env = "SALEBOARD_LOADGEN_REFUNDS", default_value_t = 0.03)]
    pub refunds: f64,
    /// Share of resubmissions of already-sent transactions.
    #[arg(long, env = "SALEBOARD_LOADGEN_RESUBMITS", default_value_t = 0.02)]
    pub resubmits: f64,
    /// Brands sold, with Zipf volumes (`brand-1` the biggest); each belongs to one category.
    #[arg(long, env = "SALEBOARD_LOADGEN_BRANDS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub brands: u32,
    /// Zipf exponent of brand volumes (0: every brand alike, to fill a breakdown's
    /// cardinality).
    #[arg(long, env = "SALEBOARD_LOADGEN_BRAND_ZIPF", default_value_t = 1.0)]
    pub brand_zipf: f64,
    /// Product categories.
    #[arg(long, env = "SALEBOARD_LOADGEN_CATEGORIES", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub categories: u32,
    /// Share of cross-border sales (the rest are domestic; 3% of sales say no brand).
    #[arg(long, env = "SALEBOARD_LOADGEN_CROSS_BORDER", default_value_t = 0.2)]
    pub cross_border: f64,
    /// Prefix of the site ids (`PREFIX-001`...).
    #[arg(long, env = "SALEBOARD_LOADGEN_SITE_PREFIX", default_value = "lg")]
    pub site_prefix: String,
    /// The event to load (it must be live). Default: an event of the run's own, in a free
    /// one-day window before now, closed after the run, so a real event is never touched.
    #[arg(long, env = "SALEBOARD_LOADGEN_EVENT", default_value = "")]
    pub event: String,
    /// Leave the load sites on the leaderboard and their keys active. By default loadgen cleans
    /// up after itself: at the end it revokes the keys it issued and disables its sites, so
    /// they leave the board (their ledger rows stay; the next run enables them again).
    #[arg(long, env = "SALEBOARD_LOADGEN_KEEP_SITES")]
    pub keep_sites: bool,
    /// Report format.
    #[arg(long, env = "SALEBOARD_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// How much one (site, currency) total moved, or was told ACCEPTED.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Movement {
    /// Sales.
    pub sales: i64,
    /// Sum of sales, minor units.
    pub gross: i64,
    /// Refunds.
    pub refunds: i64,
    /// Sum of refunds, minor units.
    pub refunded: i64,
}

impl Movement {
    /// `self - earlier`, figure by figure.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            sales: self.sales - earlier.sales,
            gross: self.gross - earlier.gross,
            refunds: self.refunds - earlier.refunds,
            refunded: self.refunded - earlier.refunded,
        }
    }

    /// Adds `other`, figure by figure.
    pub fn add(&mut self, other: Self) {
        self.sales += other.sales;
        self.gross += other.gross;
        self.refunds += other.refunds;
        self.refunded += other.refunded;
    }
}

impl std::fmt::Display for Movement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sales, gross {}, {} refunds, refunded {}",
            self.sales, self.gross, self.refunds, self.refunded
        )
    }
}

/// Per (site, currency): how the totals moved.
pub type Figures = BTreeMap<(String, String), Movement>;

/// Per (dimension, key, currency): what was ACCEPTED.
pub type SegmentFigures = BTreeMap<(Dimension, String, String), Movement>;

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Transactions sent.
    pub sent: u64,
    /// Told ACCEPTED, or stored by an attempt whose answer was lost (`recovered`).
    pub accepted: u64,
    /// New transactions told DUPLICATE when resent after their stream failed: their first
    /// attempt was stored (counted in `accepted`, once).
    pub recovered: u64,
    /// Told DUPLICATE (deliberate resubmissions).
    pub duplicate: u64,
    /// Streams opened again after UNAVAILABLE or RESOURCE_EXHAUSTED (or failing to open).
    pub reopened: u64,
    /// Told REJECTED, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
    /// Ack latency of batches, sorted, microseconds.
    pub ack_us: Vec<u64>,
    /// Freshness of batches, sorted, microseconds.
    pub fresh_us: Vec<u64>,
    /// Differences found by reconciliation (empty: passed).
    pub mismatches: Vec<String>,
    /// The event the run pushed into (its own, unless --event).
    pub event_id: String,
    /// The big screen's address for that event.
    pub page: String,
}

/// The `q` quantile of sorted samples.
#[must_use]
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl Report {
    /// Accepted transactions per second.
    #[must_use]
    pub fn accepted_per_sec(&self) -> f64 {
        let n = self.accepted as f64;
        n / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// As JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        json!({
            "sent": self.sent,
            "accepted": self.accepted,
            "recovered": self.recovered,
            "reopened": self.reopened,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "accepted_per_s": self.accepted_per_sec(),
            "ack_ms": {"p50": quantile(&self.ack_us, 0.5) as f64 / 1e3, "p99": quantile(&self.ack_us, 0.99) as f64 / 1e3, "p999": quantile(&self.ack_us, 0.999) as f64 / 1e3},
            "freshness_ms": {"p50": quantile(&self.fresh_us, 0.5) as f64 / 1e3, "p99": quantile(&self.fresh_us, 0.99) as f64 / 1e3},
            "reconciled": self.mismatches.is_empty(),
            "mismatches": self.mismatches,
            "event_id": self.event_id,
            "page": self.page,
        })
    }

    /// As a table.
    #[must_use]
    pub fn table(&self) -> String {
        let ms = |v: &[u64], q| quantile(v, q) as f64 / 1e3;
        let mut out = format!(
            "event {} (on the big screen: {})\nsent {} in {:.2} s\n  accepted   {:>10}  ({:.0}/s)\n  duplicate  {:>10}\n  rejected   {:>10}  {}\n  ack        p50 {:.1} ms  p99 {:.1} ms  p999 {:.1} ms\n  freshness  p50 {:.1} ms  p99 {:.1} ms\n",
            self.event_id,
            self.page,
            self.sent,
            self.elapsed.as_secs_f64(),
            self.accepted,
            self.accepted_per_sec(),
            self.duplicate,
            self.rejected.values().sum::<u64>(),
            self.rejected
                .iter()
                .map(|(reason, n)| format!("{reason}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            ms(&self.ack_us, 0.5),
            ms(&self.ack_us, 0.99),
            ms(&self.ack_us, 0.999),
            ms(&self.fresh_us, 0.5),
            ms(&self.fresh_us, 0.99),
        );
        if self.reopened > 0 {
            out.push_str(&format!(
                "  reopened   {:>10}  streams (after UNAVAILABLE or RESOURCE_EXHAUSTED; what was unanswered was sent again)\n",
                self.reopened
            ));
        }
        if self.recovered > 0 {
            out.push_str(&format!(
                "  recovered  {:>10}  (accepted by an attempt whose answer was lost: DUPLICATE when resent after UNAVAILABLE or RESOURCE_EXHAUSTED)\n",
                self.recovered
            ));
        }
        if self.mismatches.is_empty() {
            out.push_str("  reconciliation PASS: every site's totals, the national totals (and, in the run's own event, every breakdown) equal what was ACCEPTED, to the minor unit\n");
        } else {
            out.push_str(&format!(
                "  reconciliation FAIL: {} difference(s)\n",
                self.mismatches.len()
            ));
            for m in &self.mismatches {
                out.push_str(&format!("    {m}\n"));
            }
        }
        out
    }
}

/// Compares totals after the run, minus before, with what was ACCEPTED. Returns each difference
/// as a sentence; empty means the figures reconcile to the minor unit.
#[must_use]
pub fn reconcile(expected: &Figures, before: &Figures, after: &Figures) -> Vec<String> {
    let mut out = Vec::new();
    let mut keys: Vec<_> = expected.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut national_expected: BTreeMap<&str, Movement> = BTreeMap::new();
    let mut national_got: BTreeMap<&str, Movement> = BTreeMap::new();
    for key in keys {
        let e = expected.get(key).copied().unwrap_or_default();
        let b = before.get(key).copied().unwrap_or_default();
        let a = after.get(key).copied().unwrap_or_default();
        let got = a.since(b);
        if got != e {
            out.push(format!(
                "{} {}: totals moved by {got} but {e} was ACCEPTED",
                key.0, key.1
            ));
        }
        for (acc, v) in [(&mut national_expected, e), (&mut national_got, got)] {
            acc.entry(key.1.as_str()).or_default().add(v);
        }
    }
    if national_expected != national_got {
        out.push(format!(
            "national: totals moved by {} but {} was ACCEPTED",
            describe(&national_got),
            describe(&national_expected)
        ));
    }
    out
}

/// Movements per currency, as a sentence.
fn describe(by_currency: &BTreeMap<&str, Movement>) -> String {
    by_currency
        .iter()
        .map(|(currency, m)| format!("{currency}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

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
struct Segs {
    brand: u32,
    category: u32,
    origin: Origin,
}

impl Segs {
    /// The key of a dimension by number (the origin by its wire number).
    fn key(self, dimension: Dimension) -> u32 {
        match dimension {
            Dimension::Brand => self.brand,
            Dimension::Category => self.category,
            Dimension::Origin => u32::try_from(i32::from(self.origin)).unwrap_or(0),
        }
    }
}

/// The name of key number `n` of a dimension, as a breakdown names it.
fn key_name(dimension: Dimension, n: u32) -> String {
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
struct Spec {
    seq: u64,
    nature: SpecNature,
    currency: &'static str,
    amount: i64,
    occurred_at: i64,
    /// The breakdown keys it counts under: a refund's are its sale's.
    segs: Segs,
    /// A deliberate resubmission of an earlier transaction (its DUPLICATE is expected).
    resubmit: bool,
}

/// A sale, or a refund of one of the stream's sales.
#[derive(Debug, Clone, Copy)]
enum SpecNature {
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
struct SegmentMix {
    cumulative: Arc<Vec<f64>>,
    categories: u32,
    cross_border: f64,
}

impl SegmentMix {
    fn new(args: &LoadgenArgs) -> Self {
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

struct Generator {
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
    /// The next transaction to send (a resubmission repeats an earlier one).
    fn next(&mut self) -> Spec {
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
    fn wire(&self, spec: &Spec) -> Transaction {
        wire(&self.run, self.site, spec)
    }
}

/// The id of transaction `seq` of site `site`'s stream in run `run`.
fn id_of(run: &str, site: usize, seq: u64) -> String {
    format!("{run}-{site}-{seq}")
}

/// The wire message of `spec` in site `site`'s stream of run `run` (built again when a batch
/// is resent on a new stream).
fn wire(run: &str, site: usize, spec: &Spec) -> Transaction {
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

#[derive(Default)]
struct Tally {
    /// Told ACCEPTED, or stored by an attempt whose answer was lost (see `recovered`).
    accepted: u64,
    /// New transactions of a resent batch told DUPLICATE: stored by the first attempt (also
    /// counted in `accepted`).
    recovered: u64,
    /// Streams opened again after UNAVAILABLE or RESOURCE_EXHAUSTED.
    reopened: u64,
    duplicate: u64,
    rejected: BTreeMap<String, u64>,
    ack_us: Vec<u64>,
    /// (highest accepted position of a batch, when it was acknowledged)
    acks: Vec<(u64, Instant)>,
    /// Per site and currency: what was ACCEPTED.
    expected: HashMap<String, HashMap<&'static str, Movement>>,
    /// Per dimension ([`Dimension::ALL`]'s order), key number and currency: what was ACCEPTED.
    /// (It runs for every acknowledged row, on the machine it measures: nothing is allocated
    /// for a row whose keys were counted before, and names are made once, at the end.)
    expected_segments: [HashMap<(u32, &'static str), Movement>; 3],
    last_ack: Option<Instant>,
}

impl Tally {
    /// Counts the answer to one batch of `site`, sent at `sent_at` and answered at `now`;
    /// `resent`: the batch was sent again on a new stream after its first one failed.
    fn record(
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
    fn expected(&self) -> Figures {
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
    fn expected_segments(&self) -> SegmentFigures {
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

async fn site_totals(
    client: &mut LeaderboardServiceClient<client::Authed>,
    endpoint: &str,
    sites: &[String],
    event: &str,
) -> anyhow::Result<Figures> {
    let mut out = Figures::new();
    for site in sites {
        let t = client
            .get_site_totals(GetSiteTotalsRequest {
                site_id: site.clone(),
                include_hourly: false,
                event_id: event.to_owned(),
            })
            .await
            .map_err(|s| client::explain(endpoint, "GetSiteTotals", &s))?
            .into_inner();
        for c in t.totals {
            out.insert(
                (site.clone(), c.currency),
                Movement {
                    sales: i64::try_from(c.sale_count)?,
                    gross: c.gross_minor,
                    refunds: i64::try_from(c.refund_count)?,
                    refunded: c.refunded_minor,
                },
            );
        }
    }
    Ok(out)
}

/// A load site and the key issued for this run: (site id, key id, secret).
type LoadSite = (String, String, String);

async fn setup(args: &LoadgenArgs) -> anyhow::Result<(Vec<LoadSite>, RunEvent)> {
    let mut admin =
        AdminServiceClient::new(client::connect(&args.admin_endpoint, Some(&args.token)).await?);
    let explain = |what: &str, s: tonic::Status| client::explain(&args.admin_endpoint, what, &s);
    let now = crate::client_now();
    let run_event = if args.event.is_empty() {
        own_event(&mut admin, &args.admin_endpoint, now).await?
    } else {
        let e = admin
            .get_event(GetEventRequest {
                event_id: args.event.clone(),
            })
            .await
            .map_err(|s| explain("GetEvent", s))?
            .into_inner();
        let (start, end) = (
            e.starts_at.map_or(0, |t| t.seconds),
            e.ends_at.map_or(0, |t| t.seconds),
        );
        if now >= end || now < start {
            anyhow::bail!(
                "the event {:?} is not live; loadgen pushes transactions of now into it (leave out --event to run in an event of the run's own)",
                e.event_id
            );
        }
        if now < start + 60 {
            // Its transactions are of the last minute: they must all fall inside the window.
            anyhow::bail!(
                "the event {:?} started {} s ago; loadgen pushes transactions of the last minute, \
                 so it needs the event live for 60 s: retry in {} s (at {})",
                e.event_id,
                now - start,
                start + 60 - now,
                time::OffsetDateTime::from_unix_timestamp(start + 60)
                    .ok()
                    .and_then(|t| t
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok())
                    .unwrap_or_default()
            );
        }
        RunEvent {
            event_id: e.event_id,
            clock: None,
            own: false,
        }
    };
    let have = admin
        .list_exchange_rates(ListExchangeRatesRequest {
            event_id: run_event.event_id.clone(),
        })
        .await
        .map_err(|s| explain("ListExchangeRates", s))?
        .into_inner()
        .rates;
    let missing: Vec<_> = [
        ("USD", "15850.25"),
        ("SGD", "11790"),
        ("MYR", "3560.5"),
        ("JPY", "105.75"),
    ]
    .into_iter()
    .filter(|(c, _)| !have.iter().any(|r| r.currency == *c))
    .map(|(c, r)| ExchangeRate {
        currency: c.into(),
        rate: r.into(),
    })
    .collect();
    if !missing.is_empty() {
        admin
            .set_exchange_rates(SetExchangeRatesRequest {
                rates: missing,
                event_id: run_event.event_id.clone(),
            })
            .await
            .map_err(|s| explain("SetExchangeRates", s))?;
    }
    let mut sites = Vec::new();
    for i in 1..=args.sites {
        let site = format!("{}-{i:03}", args.site_prefix);
        match admin
            .create_site(CreateSiteRequest {
                site_id: site.clone(),
                display_name: format!("Load site {i}"),
            })
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                // Disabled by the previous run's clean-up.
                admin
                    .set_site_enabled(SetSiteEnabledRequest {
                        site_id: site.clone(),
                        enabled: true,
                    })
                    .await
                    .map_err(|s| explain("SetSiteEnabled", s))?;
            }
            Err(s) => return Err(explain("CreateSite", s)),
        }
        let key = admin
            .create_api_key(CreateApiKeyRequest {
                site_id: site.clone(),
            })
            .await
            .map_err(|s| explain("CreateApiKey", s))?
            .into_inner();
        sites.push((site, key.key_id, key.secret));
    }
    Ok((sites, run_event))
}

/// The event a run loads, and the clock its transactions are stamped with.
#[derive(Debug, Clone)]
struct RunEvent {
    event_id: String,
    /// Seconds the generator takes as "now": inside the run's own event's window; `None` for a
    /// live event (the real clock).
    clock: Option<i64>,
    /// Created for this run (closed after it).
    own: bool,
}

/// Creates the run's own event: the first free day from 2000-01-01 (UTC), far from any real
/// event's time, open for refunds until the run closes it.
async fn own_event(
    admin: &mut AdminServiceClient<client::Authed>,
    endpoint: &str,
    now: i64,
) -> anyhow::Result<RunEvent> {
    const DAY: i64 = 86_400;
    const Y2K: i64 = 946_684_800;
    let events = admin
        .list_events(ListEventsRequest {})
        .await
        .map_err(|s| client::explain(endpoint, "ListEvents", &s))?
        .into_inner()
        .events;
    let window = |e: &Event| {
        (
            e.starts_at.map_or(0, |t| t.seconds),
            e.ends_at.map_or(0, |t| t.seconds),
        )
    };
    let mut start = Y2K;
    for _ in 0..=events.len() {
        let end = start + DAY;
        let Some(last_clash) = events
            .iter()
            .map(window)
            .filter(|(s, e)| *s < end && start < *e)
            .map(|(_, e)| e)
            .max()
        else {
            break;
        };
        start = last_clash;
    }
    let end = start + DAY;
    let event_id = format!("loadgen-{now}");
    admin
        .set_event(Event {
            event_id: event_id.clone(),
            display_name: "Load generator run".into(),
            starts_at: Some(Timestamp {
                seconds: end - DAY,
                nanos: 0,
            }),
            ends_at: Some(Timestamp {
                seconds: end,
                nanos: 0,
            }),
            closes_at: Some(Timestamp {
                seconds: now + DAY,
                nanos: 0,
            }),
            reporting_currency: "IDR".into(),
            ..Event::default()
        })
        .await
        .map_err(|s| client::explain(endpoint, "SetEvent", &s))?;
    Ok(RunEvent {
        event_id,
        // Sales up to a minute before it, refunds at it: all inside the window.
        clock: Some(end - 60),
        own: true,
    })
}

/// Closes the run's own event (its figures are final).
async fn close_own_event(args: &LoadgenArgs, run: &RunEvent) -> anyhow::Result<()> {
    let mut admin =
        AdminServiceClient::new(client::connect(&args.admin_endpoint, Some(&args.token)).await?);
    let mut event = admin
        .get_event(GetEventRequest {
            event_id: run.event_id.clone(),
        })
        .await
        .map_err(|s| client::explain(&args.admin_endpoint, "GetEvent", &s))?
        .into_inner();
    event.closes_at = event.ends_at;
    admin
        .set_event(event)
        .await
        .map_err(|s| client::explain(&args.admin_endpoint, "SetEvent", &s))?;
    Ok(())
}

/// Revokes the keys this run issued and disables its sites: they leave the leaderboard.
async fn clean_up(args: &LoadgenArgs, sites: &[LoadSite]) -> anyhow::Result<()> {
    let mut admin =
        AdminServiceClient::new(client::connect(&args.admin_endpoint, Some(&args.token)).await?);
    for (site, key_id, _) in sites {
        admin
            .revoke_api_key(RevokeApiKeyRequest {
                key_id: key_id.clone(),
            })
            .await
            .map_err(|s| client::explain(&args.admin_endpoint, "RevokeApiKey", &s))?;
        admin
            .set_site_enabled(SetSiteEnabledRequest {
                site_id: site.clone(),
                enabled: false,
            })
            .await
            .map_err(|s| client::explain(&args.admin_endpoint, "SetSiteEnabled", &s))?;
    }
    Ok(())
}

/// Runs the load and reconciles.
///
/// # Errors
/// When the services cannot be reached or refuse the setup or a stream.
pub async fn run(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let (sites, run_event) = setup(args).await?;
    let report = drive(args, &sites, &run_event).await;
    if run_event.own {
        close_own_event(args, &run_event)
            .await
            .context("closing the run's own event")?;
    }
    if !args.keep_sites {
        clean_up(args, &sites)
            .await
            .context("cleaning up the load sites (--keep-sites skips this)")?;
    }
    report
}

/// The load itself, then the reconciliation.
async fn drive(args: &LoadgenArgs, sites: &[LoadSite], run: &RunEvent) -> anyhow::Result<Report> {
    let names: Vec<String> = sites.iter().map(|(s, _, _)| s.clone()).collect();
    let mut board = LeaderboardServiceClient::new(client::connect(&args.endpoint, None).await?);
    let event = run.event_id.as_str();
    let before = site_totals(&mut board, &args.endpoint, &names, event).await?;
    let (watermarks, watcher) = watch_watermarks(&mut board, &args.endpoint, event).await?;

    let mut plan = Plan::new(args, sites.len());
    plan.clock = run.clock;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, (site, _, secret)) in sites.iter().enumerate() {
        tasks.push(plan.start_site(args, index, site.clone(), secret).await?);
    }
    for (sender, receiver) in tasks {
        sender.await?;
        receiver.await??;
    }
    let mut t = std::mem::take(&mut *plan.tally.lock().await);
    let elapsed = t
        .last_ack
        .map_or(Duration::ZERO, |l| l.duration_since(started));

    // Wait for the leaderboard to cover everything that was accepted, then reconcile.
    let top = t.acks.iter().map(|(p, _)| *p).max().unwrap_or(0);
    wait_for_watermark(&mut board, &args.endpoint, top, event).await?;
    // Let the watcher see the final watermark too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    watcher.abort();
    let after = site_totals(&mut board, &args.endpoint, &names, event).await?;
    let mut mismatches = reconcile(&t.expected(), &before, &after);
    if run.own {
        // The run's own event holds nothing else: every breakdown is exactly what it sent.
        mismatches
            .extend(reconcile_breakdowns(args, &mut board, event, &t.expected_segments()).await?);
    }
    let fresh_us = freshness(&t.acks, &watermarks.lock().await);
    t.ack_us.sort_unstable();
    Ok(Report {
        sent: t.accepted + t.duplicate + t.rejected.values().sum::<u64>(),
        accepted: t.accepted,
        recovered: t.recovered,
        duplicate: t.duplicate,
        reopened: t.reopened,
        rejected: t.rejected,
        elapsed,
        ack_us: t.ack_us,
        fresh_us,
        mismatches,
        event_id: run.event_id.clone(),
        page: screen_page(&args.endpoint, &run.event_id),
    })
}

/// The big screen's address for `event` on the leaderboard at `endpoint` (its public port).
fn screen_page(endpoint: &str, event: &str) -> String {
    let base = if endpoint.contains("://") {
        endpoint.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", endpoint.trim_end_matches('/'))
    };
    format!("{base}/?event={event}")
}

/// Every entry of a national breakdown (all pages).
async fn breakdown(
    board: &mut LeaderboardServiceClient<client::Authed>,
    endpoint: &str,
    event: &str,
    dimension: Dimension,
) -> anyhow::Result<(String, Vec<BreakdownEntry>, i64)> {
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let b = board
            .get_breakdown(GetBreakdownRequest {
                event_id: event.to_owned(),
                dimension: crate::query::dimension_msg(dimension).into(),
                site_id: String::new(),
                limit: 1_000,
                page_token,
            })
            .await
            .map_err(|s| client::explain(endpoint, "GetBreakdown", &s))?
            .into_inner();
        entries.extend(b.entries);
        if b.next_page_token.is_empty() {
            return Ok((b.reporting_currency, entries, b.total_net_reporting_minor));
        }
        page_token = b.next_page_token;
    }
}

/// Compares every national breakdown of the run's own event with what was ACCEPTED: counts per
/// key, and each key's net converted as the server must (half-even once per (key, currency),
/// with the event's rates).
async fn reconcile_breakdowns(
    args: &LoadgenArgs,
    board: &mut LeaderboardServiceClient<client::Authed>,
    event: &str,
    expected: &SegmentFigures,
) -> anyhow::Result<Vec<String>> {
    let mut admin =
        AdminServiceClient::new(client::connect(&args.admin_endpoint, Some(&args.token)).await?);
    let rates: BTreeMap<saleboard_domain::Currency, saleboard_domain::Rate> = admin
        .list_exchange_rates(ListExchangeRatesRequest {
            event_id: event.to_owned(),
        })
        .await
        .map_err(|s| client::explain(&args.admin_endpoint, "ListExchangeRates", &s))?
        .into_inner()
        .rates
        .iter()
        .map(|r| {
            Ok((
                saleboard_domain::Currency::parse(&r.currency)?,
                saleboard_domain::Rate::parse(&r.rate)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut out = Vec::new();
    for dimension in Dimension::ALL {
        let (reporting, got, total) = breakdown(board, &args.endpoint, event, dimension).await?;
        let reporting = saleboard_domain::Currency::parse(&reporting)?;
        // key -> (sales, refunds, net in the reporting currency)
        let mut want: BTreeMap<&str, (i64, i64, i128)> = BTreeMap::new();
        for ((d, key, currency), m) in expected {
            if *d != dimension {
                continue;
            }
            let w = want.entry(key.as_str()).or_default();
            w.0 += m.sales;
            w.1 += m.refunds;
            let currency = saleboard_domain::Currency::parse(currency)?;
            let net = i128::from(m.gross - m.refunded);
            if let Some(rate) = rates.get(&currency) {
                w.2 += saleboard_domain::ranking::convert(net, currency, reporting, rate)
                    .unwrap_or_default();
            } else if currency == reporting {
                w.2 += net;
            }
        }
        let seen: BTreeMap<&str, &BreakdownEntry> =
            got.iter().map(|e| (e.key.as_str(), e)).collect();
        for (key, (sales, refunds, net)) in &want {
            let shown = seen.get(key).map_or((0, 0, 0), |e| {
                (
                    i64::try_from(e.sale_count).unwrap_or(i64::MAX),
                    i64::try_from(e.refund_count).unwrap_or(i64::MAX),
                    i128::from(e.net_reporting_minor),
                )
            });
            if shown != (*sales, *refunds, *net) {
                out.push(format!(
                    "{dimension} {key:?}: the breakdown says {} sales, {} refunds, net {} but {sales} sales, {refunds} refunds, net {net} was ACCEPTED",
                    shown.0, shown.1, shown.2
                ));
            }
        }
        for e in &got {
            if !want.contains_key(e.key.as_str()) {
                out.push(format!(
                    "{dimension} {:?}: in the breakdown, but nothing was ACCEPTED for it",
                    e.key
                ));
            }
        }
        let sum: i128 = got.iter().map(|e| i128::from(e.net_reporting_minor)).sum();
        if sum != i128::from(total) {
            out.push(format!(
                "{dimension}: the entries add up to {sum}, the breakdown's total says {total}"
            ));
        }
    }
    Ok(out)
}

/// Every watermark the leaderboard publishes, and when it was seen (for freshness).
type Watermarks = Arc<Mutex<Vec<(u64, Instant)>>>;

/// Starts recording the leaderboard's watermarks; abort the task to stop.
async fn watch_watermarks(
    board: &mut LeaderboardServiceClient<client::Authed>,
    endpoint: &str,
    event: &str,
) -> anyhow::Result<(Watermarks, tokio::task::JoinHandle<()>)> {
    let watermarks: Watermarks = Arc::default();
    let mut watch = board
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 1,
            min_interval_ms: 50,
            event_id: event.to_owned(),
            baseline_event_id: String::new(),
        })
        .await
        .map_err(|s| client::explain(endpoint, "WatchLeaderboard", &s))?
        .into_inner();
    let seen = watermarks.clone();
    let watcher = tokio::spawn(async move {
        while let Ok(Some(m)) = watch.message().await {
            seen.lock().await.push((m.watermark, Instant::now()));
        }
    });
    Ok((watermarks, watcher))
}

/// Polls until the leaderboard's watermark reaches `top` (at most two minutes).
async fn wait_for_watermark(
    board: &mut LeaderboardServiceClient<client::Authed>,
    endpoint: &str,
    top: u64,
    event: &str,
) -> anyhow::Result<()> {
    let wait_until = Instant::now() + Duration::from_secs(120);
    loop {
        let n = board
            .get_national_totals(GetNationalTotalsRequest {
                event_id: event.to_owned(),
                baseline_event_id: String::new(),
            })
            .await
            .map_err(|s| client::explain(endpoint, "GetNationalTotals", &s))?
            .into_inner();
        if n.watermark >= top {
            return Ok(());
        }
        if Instant::now() > wait_until {
            anyhow::bail!(
                "the leaderboard watermark stayed at {} below {top} for 2 minutes; is the aggregator running?",
                n.watermark
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// For each acknowledged batch, how long until a published watermark covered it, sorted (µs).
fn freshness(acks: &[(u64, Instant)], marks: &[(u64, Instant)]) -> Vec<u64> {
    let mut fresh_us: Vec<u64> = acks
        .iter()
        .filter_map(|(position, acked)| {
            let i = marks.partition_point(|(w, _)| *w < *position);
            #[allow(clippy::cast_possible_truncation)]
            marks
                .get(i)
                .map(|(_, seen)| seen.saturating_duration_since(*acked).as_micros() as u64)
        })
        .collect();
    fresh_us.sort_unstable();
    fresh_us
}

/// What every site's stream shares: the transaction budget, the deadline, the run id, the
/// weights of the Zipf mix and the tally.
struct Plan {
    weights: Vec<f64>,
    total_weight: f64,
    budget: Arc<AtomicI64>,
    deadline: Option<Instant>,
    run_id: String,
    tally: Arc<Mutex<Tally>>,
    /// The generator's "now" (seconds) for a run in its own event's past window; `None`: the
    /// real clock.
    clock: Option<i64>,
    mix: SegmentMix,
}

/// The two tasks of one site's stream: the sender, and the receiver that tallies answers.
type SiteTasks = (
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
);

impl Plan {
    fn new(args: &LoadgenArgs, sites: usize) -> Self {
        let weights: Vec<f64> = (1..=sites)
            .map(|i| 1.0 / (i as f64).powf(args.zipf))
            .collect();
        let total_weight: f64 = weights.iter().sum();
        let budget = Arc::new(AtomicI64::new(if args.duration.is_some() {
            i64::MAX
        } else {
            i64::try_from(args.count).unwrap_or(i64::MAX)
        }));
        Self {
            weights,
            total_weight,
            budget,
            deadline: args
                .duration
                .map(|d| Instant::now() + Duration::from_secs(d)),
            run_id: format!(
                "{:x}",
                Instant::now().elapsed().as_nanos()
                    ^ u128::from(std::process::id())
                    ^ u128::from(crate::client_now().unsigned_abs())
            ),
            tally: Arc::new(Mutex::new(Tally::default())),
            clock: None,
            mix: SegmentMix::new(args),
        }
    }

    /// Opens site `index`'s stream and starts its sender and receiver.
    async fn start_site(
        &self,
        args: &LoadgenArgs,
        index: usize,
        site: String,
        secret: &str,
    ) -> anyhow::Result<SiteTasks> {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let batch = ((f64::from(args.batch) * self.weights[index] / self.weights[0]).round()
            as usize)
            .max(1);
        let pace = (args.rate > 0).then(|| {
            let site_rate = args.rate as f64 * self.weights[index] / self.total_weight;
            Duration::from_secs_f64(batch as f64 / site_rate.max(1e-6))
        });
        let ingest = IngestServiceClient::new(client::connect(&args.ingest, Some(secret)).await?)
            .max_decoding_message_size(64 * 1024 * 1024);
        // Batches sent and not yet answered, per stream: at most `depth` (the request channel
        // alone would not bound it, since the transport drains it at once).
        let in_flight = Arc::new(tokio::sync::Semaphore::new(args.depth as usize));
        let (batch_tx, batch_rx) = mpsc::channel::<Batch>(args.depth as usize);
        let mut generator = Generator {
            rng: Rng(0x5EED ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9)),
            run: self.run_id.clone(),
            site: index + 1,
            seq: 0,
            sales: VecDeque::new(),
            sent: VecDeque::new(),
            refunds: args.refunds,
            resubmits: args.resubmits,
            clock: self.clock,
            mix: self.mix.clone(),
        };
        let (budget, deadline) = (self.budget.clone(), self.deadline);
        let sender = tokio::spawn(async move {
            let mut ticker = pace.map(tokio::time::interval);
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let want = i64::try_from(batch).unwrap_or(1);
                let got = budget.fetch_sub(want, Ordering::Relaxed);
                if got <= 0 {
                    break;
                }
                let n = usize::try_from(got.min(want)).unwrap_or(0);
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let specs: Vec<Spec> = (0..n).map(|_| generator.next()).collect();
                let txs: Vec<Transaction> = specs.iter().map(|s| generator.wire(s)).collect();
                let Ok(slot) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                if batch_tx.send(Batch { specs, txs, slot }).await.is_err() {
                    break;
                }
            }
        });
        let stream = SiteStream {
            ingest,
            endpoint: args.ingest.clone(),
            run: self.run_id.clone(),
            index: index + 1,
            site,
            depth: args.depth as usize,
            tally: self.tally.clone(),
        };
        let receiver = tokio::spawn(stream.drive(batch_rx));
        Ok((sender, receiver))
    }
}

/// A batch made by a site's sender, holding its place among the stream's `depth` in flight.
struct Batch {
    specs: Vec<Spec>,
    txs: Vec<Transaction>,
    slot: tokio::sync::OwnedSemaphorePermit,
}

/// A batch sent and not yet answered.
struct Unanswered {
    sent_at: Instant,
    specs: Vec<Spec>,
    /// Sent again on a new stream after the first failed.
    resent: bool,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// One site's `StreamTransactions`: sends the sender's batches and tallies the answers. When
/// the stream fails with UNAVAILABLE or RESOURCE_EXHAUSTED it opens another (with backoff,
/// [`crate::retry`]) and sends again, in order, what was not answered: a transaction whose
/// first attempt was stored comes back DUPLICATE and is counted as accepted once.
struct SiteStream {
    ingest: IngestServiceClient<client::Authed>,
    endpoint: String,
    run: String,
    /// The site's number in the run's ids.
    index: usize,
    site: String,
    depth: usize,
    tally: Arc<Mutex<Tally>>,
}

impl SiteStream {
    async fn drive(mut self, mut batches: mpsc::Receiver<Batch>) -> anyhow::Result<()> {
        let mut unanswered: VecDeque<Unanswered> = VecDeque::new();
        let mut backoff = crate::retry::Backoff::default();
        let mut input_open = true;
        loop {
            let (requests, req_rx) = mpsc::channel::<SubmitTransactionsRequest>(self.depth.max(1));
            let opened = self
                .ingest
                .stream_transactions(ReceiverStream::new(req_rx))
                .await;
            let mut responses = match opened {
                Ok(r) => r.into_inner(),
                Err(status) => {
                    self.tally.lock().await.reopened += 1;
                    backoff
                        .wait(&self.endpoint, "StreamTransactions", &status)
                        .await?;
                    continue;
                }
            };
            for u in &mut unanswered {
                u.resent = true;
                let transactions = u
                    .specs
                    .iter()
                    .map(|s| wire(&self.run, self.index, s))
                    .collect();
                drop(
                    requests
                        .send(SubmitTransactionsRequest { transactions })
                        .await,
                );
            }
            // Dropped once the sender is done: that ends the request stream.
            let mut requests = input_open.then_some(requests);
            let status = loop {
                if !input_open && unanswered.is_empty() {
                    return Ok(());
                }
                tokio::select! {
                    batch = batches.recv(), if input_open => match batch {
                        Some(Batch { specs, txs, slot }) => {
                            unanswered.push_back(Unanswered {
                                sent_at: Instant::now(),
                                specs,
                                resent: false,
                                _slot: slot,
                            });
                            if let Some(r) = requests.as_ref() {
                                // Failed: the stream's error comes with its answers.
                                drop(r.send(SubmitTransactionsRequest { transactions: txs }).await);
                            }
                        }
                        None => {
                            input_open = false;
                            requests = None;
                        }
                    },
                    answer = responses.message(), if !unanswered.is_empty() => match answer {
                        Ok(Some(r)) => {
                            backoff.reset();
                            let now = Instant::now();
                            if let Some(u) = unanswered.pop_front() {
                                self.tally.lock().await.record(
                                    &self.site, &u.specs, &r.results, u.sent_at, now, u.resent,
                                );
                            }
                        }
                        Ok(None) => {
                            break tonic::Status::unavailable(format!(
                                "the stream closed with {} batches unanswered",
                                unanswered.len()
                            ));
                        }
                        Err(status) => break status,
                    },
                }
            };
            self.tally.lock().await.reopened += 1;
            backoff
                .wait(&self.endpoint, "StreamTransactions", &status)
                .await?;
        }
    }
}

/// Runs the command: prints the report; exit 1 when reconciliation fails.
///
/// # Errors
/// When the run cannot start or a stream fails.
pub async fn command(args: &LoadgenArgs) -> anyhow::Result<u8> {
    let report = run(args).await?;
    match args.output {
        Output::Table => print!("{}", report.table()),
        Output::Json => println!("{}", report.json()),
    }
    Ok(u8::from(!report.mismatches.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rows: &[(&str, &str, [i64; 4])]) -> Figures {
        rows.iter()
            .map(|(s, c, [sales, gross, refunds, refunded])| {
                (
                    ((*s).to_owned(), (*c).to_owned()),
                    Movement {
                        sales: *sales,
                        gross: *gross,
                        refunds: *refunds,
                        refunded: *refunded,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn reconciliation_passes_on_exact_deltas() {
        let before = figures(&[("a", "IDR", [1, 100, 0, 0])]);
        let after = figures(&[("a", "IDR", [3, 350, 1, 50]), ("b", "USD", [1, 9, 0, 0])]);
        let expected = figures(&[("a", "IDR", [2, 250, 1, 50]), ("b", "USD", [1, 9, 0, 0])]);
        assert!(reconcile(&expected, &before, &after).is_empty());
    }

    #[test]
    fn reconciliation_fails_when_totals_are_off_by_one_minor_unit() {
        let after = figures(&[("a", "IDR", [2, 251, 1, 50])]);
        let expected = figures(&[("a", "IDR", [2, 250, 1, 50])]);
        let diffs = reconcile(&expected, &Figures::new(), &after);
        assert_eq!(diffs.len(), 2, "the site and the national line: {diffs:?}");
        assert!(diffs[0].starts_with("a IDR"));
        // Totals that moved for a site nothing was accepted for are caught too.
        let diffs = reconcile(
            &Figures::new(),
            &Figures::new(),
            &figures(&[("z", "JPY", [1, 1, 0, 0])]),
        );
        assert!(!diffs.is_empty());
    }

    #[test]
    fn quantiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 501);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&[], 0.5), 0);
    }

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
