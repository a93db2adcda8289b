//! Integrity rules (issue 28), the first of them: a site's figures against the nation's
//! **without that site**, decided exactly. No I/O: the fold keeps the counters
//! ([`SiteCounters`]), this module says whether a rule holds and with which figures.
//!
//! Every statistic is a fraction of two exact integers (minor units of the reporting currency,
//! or counts) and every comparison is made by cross-multiplication in `i128`, never in floating
//! point: a site one minor unit under a threshold is under it. Growth is the exception: ratios
//! of ratios (growth on a baseline, its median absolute deviation over sites) outgrow `i128`
//! cross-products, so they are 28-digit decimals (`rust_decimal`), deterministic everywhere. A figure too large for that
//! arithmetic (beyond about 10^19 minor units on each side) is [`Decision::OutOfRange`], never
//! a wrong answer.
//!
//! Here: minimum support, every rule's decision (`INTEGRITY_RULE_LATE_REFUNDS`,
//! `INTEGRITY_RULE_REFUND_RATE`, `INTEGRITY_RULE_LATE_SALES`, `INTEGRITY_RULE_SETTLEMENT_RANK`,
//! `INTEGRITY_RULE_HOUR_SHAPE`, `INTEGRITY_RULE_BURST`, `INTEGRITY_RULE_AMOUNT_PATTERN`,
//! `INTEGRITY_RULE_GROWTH`, `INTEGRITY_RULE_STORE_CONCENTRATION`), the automatic hold's
//! grounds ([`auto_hold_grounds`]) and the reproducible sample of transaction ids a site is
//! asked to justify. The leaderboard evaluates the rules whose counters the totals hold
//! (refund rate, settlement rank); the others wait for counters in the aggregator's fold.

use std::cmp::Ordering;
use std::fmt;

/// The version of the rules' definitions, kept with every evaluation: a change to a statistic
/// or a trigger raises it, so an old evaluation is read with the rules it was made under.
pub const RULES_VERSION: u32 = 1;

/// A rule (the contract's `IntegrityRule`, less its unspecified value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Refunds received at or after the event's end, against gross.
    LateRefunds,
    /// Refunded against gross.
    RefundRate,
    /// Sales received more than an hour after they occurred, or after the end, against gross.
    LateSales,
    /// The largest share of the site's gross from one store new since the baseline.
    StoreConcentration,
    /// Rank by gross at the end against rank by net at the close.
    SettlementRank,
    /// How far the site's shares of gross per hour are from the nation's.
    HourShape,
    /// The site's busiest second against its median active second, in one hour.
    Burst,
    /// Round amounts far more often than the nation, or one amount dominating and refunded.
    AmountPattern,
    /// Growth on the baseline far above the nation's, or an average order far from it.
    Growth,
}

impl Rule {
    /// The contract's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::LateRefunds => "INTEGRITY_RULE_LATE_REFUNDS",
            Self::RefundRate => "INTEGRITY_RULE_REFUND_RATE",
            Self::LateSales => "INTEGRITY_RULE_LATE_SALES",
            Self::StoreConcentration => "INTEGRITY_RULE_STORE_CONCENTRATION",
            Self::SettlementRank => "INTEGRITY_RULE_SETTLEMENT_RANK",
            Self::HourShape => "INTEGRITY_RULE_HOUR_SHAPE",
            Self::Burst => "INTEGRITY_RULE_BURST",
            Self::AmountPattern => "INTEGRITY_RULE_AMOUNT_PATTERN",
            Self::Growth => "INTEGRITY_RULE_GROWTH",
        }
    }

    /// How serious a raised flag of this rule is.
    #[must_use]
    pub fn severity(self) -> Severity {
        match self {
            Self::LateRefunds | Self::LateSales | Self::SettlementRank => Severity::High,
            Self::RefundRate
            | Self::StoreConcentration
            | Self::HourShape
            | Self::Burst
            | Self::Growth => Severity::Medium,
            Self::AmountPattern => Severity::Low,
        }
    }
}

/// Where a flag is in its review (the contract's `FlagState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagState {
    /// Raised, not reviewed yet.
    Open,
    /// An organizer is looking into it: the site shows "under review" on the public board.
    UnderReview,
    /// Reviewed: the figures are explained.
    Cleared,
    /// Reviewed: the figures are not right.
    Confirmed,
}

impl FlagState {
    /// Its name as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::UnderReview => "under_review",
            Self::Cleared => "cleared",
            Self::Confirmed => "confirmed",
        }
    }

    /// The state stored as `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "under_review" => Some(Self::UnderReview),
            "cleared" => Some(Self::Cleared),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

impl Rule {
    /// Every rule, in the contract's order.
    pub const ALL: [Self; 9] = [
        Self::LateRefunds,
        Self::RefundRate,
        Self::LateSales,
        Self::SettlementRank,
        Self::HourShape,
        Self::Burst,
        Self::Growth,
        Self::StoreConcentration,
        Self::AmountPattern,
    ];

    /// The rule of a contract name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl Severity {
    /// Its name as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// The severity stored as `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }
}

/// A flag's severity (the contract's `Severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Evidence only.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

/// An exact non-negative fraction `num / den` (`den` > 0).
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    num: i128,
    den: i128,
}

/// A figure too large for exact arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a figure is too large to compare exactly")]
pub struct OutOfRange;

impl Ratio {
    /// `num / den`; `None` when `den` is not positive or `num` is negative.
    #[must_use]
    pub fn new(num: i128, den: i128) -> Option<Self> {
        (den > 0 && num >= 0).then_some(Self { num, den })
    }

    /// `points` percentage points (5 points: 5/100).
    #[must_use]
    pub fn points(points: u32) -> Self {
        Self {
            num: i128::from(points),
            den: 100,
        }
    }

    /// `num / den` of whole numbers, as a policy writes thresholds (e.g. 1/1000 for 0.1%).
    #[must_use]
    pub fn of(num: u32, den: u32) -> Self {
        Self {
            num: i128::from(num),
            den: i128::from(den.max(1)),
        }
    }

    /// Its numerator and denominator.
    #[must_use]
    pub fn parts(self) -> (i128, i128) {
        (self.num, self.den)
    }

    /// `self × k`.
    ///
    /// # Errors
    /// [`OutOfRange`] when the product does not fit.
    pub fn times(self, k: u32) -> Result<Self, OutOfRange> {
        Ok(Self {
            num: self.num.checked_mul(i128::from(k)).ok_or(OutOfRange)?,
            den: self.den,
        })
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`OutOfRange`] when a product or the sum does not fit.
    pub fn plus(self, other: Self) -> Result<Self, OutOfRange> {
        let num = self
            .num
            .checked_mul(other.den)
            .zip(other.num.checked_mul(self.den))
            .and_then(|(a, b)| a.checked_add(b))
            .ok_or(OutOfRange)?;
        let den = self.den.checked_mul(other.den).ok_or(OutOfRange)?;
        Ok(Self { num, den })
    }

    /// Compares two fractions exactly.
    ///
    /// # Errors
    /// [`OutOfRange`] when a cross product does not fit.
    pub fn compare(self, other: Self) -> Result<Ordering, OutOfRange> {
        let left = self.num.checked_mul(other.den).ok_or(OutOfRange)?;
        let right = other.num.checked_mul(self.den).ok_or(OutOfRange)?;
        Ok(left.cmp(&right))
    }

    /// The larger of two fractions.
    ///
    /// # Errors
    /// [`OutOfRange`] as [`Ratio::compare`].
    pub fn max(self, other: Self) -> Result<Self, OutOfRange> {
        Ok(match self.compare(other)? {
            Ordering::Less => other,
            Ordering::Equal | Ordering::Greater => self,
        })
    }

    /// The fraction written as `text`: digits, perhaps a point and at most `max_places`
    /// decimals (no sign, no exponent, no spaces), exactly: "0.001" is 1/1000. `None` for any
    /// other text.
    #[must_use]
    pub fn parse_decimal(text: &str, max_places: u32) -> Option<Self> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
            || whole.len() > 18
            || u32::try_from(fraction.len()).ok()? > max_places.min(18)
        {
            return None;
        }
        let den = 10i128.pow(u32::try_from(fraction.len()).ok()?);
        let num =
            whole
                .parse::<i128>()
                .ok()?
                .checked_mul(den)?
                .checked_add(if fraction.is_empty() {
                    0
                } else {
                    fraction.parse::<i128>().ok()?
                })?;
        Self::new(num, den)
    }

    /// The shortest exact decimal text of this fraction ("0.05" for 5/100 or 1/20), when its
    /// denominator divides a power of ten up to 10^18; `None` otherwise (1/3).
    #[must_use]
    pub fn exact_decimal(self) -> Option<String> {
        for places in 0..=18u32 {
            let scale = 10i128.pow(places);
            let scaled = self.num.checked_mul(scale)?;
            if scaled % self.den == 0 {
                let text = self.to_decimal(places);
                return Some(text);
            }
        }
        None
    }

    /// The decimal text with `places` decimals, rounded half away from zero (for people; the
    /// decision is made on the exact fraction).
    #[must_use]
    pub fn to_decimal(self, places: u32) -> String {
        let whole = self.num / self.den;
        // Long division, digit by digit: the remainder stays below the denominator, so only
        // a denominator past i128::MAX / 10 could saturate (the digit is then clamped).
        let mut digits = String::new();
        let mut r = self.num % self.den;
        for _ in 0..places {
            r = r.saturating_mul(10);
            let digit = u8::try_from((r / self.den).min(9)).unwrap_or(9);
            digits.push(char::from(b'0' + digit));
            r %= self.den;
        }
        let round_up = r.saturating_mul(2) >= self.den;
        let mut text = format!("{whole}");
        if places > 0 {
            text.push('.');
            text.push_str(&digits);
        }
        if round_up {
            text = increment_decimal(&text);
        }
        text
    }
}

/// `text` (digits, perhaps a point) plus one unit in its last place.
fn increment_decimal(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut i = bytes.len();
    loop {
        if i == 0 {
            bytes.insert(0, b'1');
            break;
        }
        i -= 1;
        match bytes[i] {
            b'.' => {}
            b'9' => bytes[i] = b'0',
            d => {
                bytes[i] = d + 1;
                break;
            }
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// What the fold keeps per event and site (and, summed, for the nation) for these rules: exact
/// sums in minor units of the reporting currency, and counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiteCounters {
    /// Sales counted.
    pub sales: u64,
    /// Their value.
    pub gross: i128,
    /// Refunds' value.
    pub refunded: i128,
    /// Refunds received at or after the event's `ends_at`: their value.
    pub late_refunded: i128,
    /// Sales received more than an hour after `occurred_at`, or after `ends_at`: their value.
    pub late_sales: i128,
    /// The gross the late figures were folded with (at their ledger position, which trails
    /// the headline figures' while the ledger is busy): the late shares' denominator.
    pub late_gross: i128,
    /// The sales folded with the late figures (at their position).
    pub folded_sales: u64,
    /// Those of them with a round amount ([`is_round`]).
    pub round_sales: u64,
}

impl SiteCounters {
    /// A site's counters in the reporting currency from its totals per currency (its sales,
    /// gross and refunded; the late figures are not in totals and stay 0), each currency's
    /// figures converted with its rate (half-even to the minor unit), and the currencies left
    /// out for want of a rate.
    ///
    /// # Errors
    /// [`OutOfRange`] when a figure does not convert or the sums do not fit.
    pub fn from_totals(
        totals: &std::collections::BTreeMap<crate::Currency, crate::totals::CurrencyTotals>,
        rates: &std::collections::BTreeMap<crate::Currency, crate::Rate>,
        reporting: crate::Currency,
    ) -> Result<(Self, Vec<crate::Currency>), OutOfRange> {
        let mut counters = Self::default();
        let mut unconverted = Vec::new();
        for (currency, t) in totals {
            let (gross, refunded) = if *currency == reporting {
                (t.gross_minor, t.refunded_minor)
            } else if let Some(rate) = rates.get(currency) {
                let convert =
                    |v| crate::ranking::convert(v, *currency, reporting, rate).ok_or(OutOfRange);
                (convert(t.gross_minor)?, convert(t.refunded_minor)?)
            } else {
                unconverted.push(*currency);
                continue;
            };
            counters.sales = counters.sales.checked_add(t.sale_count).ok_or(OutOfRange)?;
            counters.gross = counters.gross.checked_add(gross).ok_or(OutOfRange)?;
            counters.refunded = counters.refunded.checked_add(refunded).ok_or(OutOfRange)?;
        }
        Ok((counters, unconverted))
    }

    /// These counters with the site's late figures per currency (the fold's
    /// [`crate::late::LateTotals`]), converted like the totals; a currency without a rate is
    /// left out (the totals of that currency leave the site undecided already).
    ///
    /// # Errors
    /// [`OutOfRange`] when a figure does not convert or the sums do not fit.
    pub fn with_late<'a>(
        mut self,
        late: impl IntoIterator<Item = (crate::Currency, &'a crate::late::LateTotals)>,
        rates: &std::collections::BTreeMap<crate::Currency, crate::Rate>,
        reporting: crate::Currency,
    ) -> Result<Self, OutOfRange> {
        for (currency, l) in late {
            let (refunded, sales, gross) = if currency == reporting {
                (l.late_refunded_minor, l.late_sales_minor, l.gross_minor)
            } else if let Some(rate) = rates.get(&currency) {
                let convert =
                    |v| crate::ranking::convert(v, currency, reporting, rate).ok_or(OutOfRange);
                (
                    convert(l.late_refunded_minor)?,
                    convert(l.late_sales_minor)?,
                    convert(l.gross_minor)?,
                )
            } else {
                continue;
            };
            self.late_refunded = self.late_refunded.checked_add(refunded).ok_or(OutOfRange)?;
            self.late_sales = self.late_sales.checked_add(sales).ok_or(OutOfRange)?;
            self.late_gross = self.late_gross.checked_add(gross).ok_or(OutOfRange)?;
            self.folded_sales = self
                .folded_sales
                .checked_add(l.sale_count)
                .ok_or(OutOfRange)?;
            self.round_sales = self
                .round_sales
                .checked_add(l.round_count)
                .ok_or(OutOfRange)?;
        }
        Ok(self)
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`OutOfRange`] when a sum does not fit.
    pub fn plus(&self, other: &Self) -> Result<Self, OutOfRange> {
        let add = |a: i128, b: i128| a.checked_add(b).ok_or(OutOfRange);
        Ok(Self {
            sales: self.sales.checked_add(other.sales).ok_or(OutOfRange)?,
            gross: add(self.gross, other.gross)?,
            refunded: add(self.refunded, other.refunded)?,
            late_refunded: add(self.late_refunded, other.late_refunded)?,
            late_sales: add(self.late_sales, other.late_sales)?,
            late_gross: add(self.late_gross, other.late_gross)?,
            folded_sales: self
                .folded_sales
                .checked_add(other.folded_sales)
                .ok_or(OutOfRange)?,
            round_sales: self
                .round_sales
                .checked_add(other.round_sales)
                .ok_or(OutOfRange)?,
        })
    }

    /// The nation's counters without `site`'s.
    ///
    /// # Errors
    /// [`OutOfRange`] when `site` holds more than `national` (counters out of step: never
    /// compared as if they were right).
    pub fn excluding(&self, site: &Self) -> Result<Self, OutOfRange> {
        let less = |a: i128, b: i128| a.checked_sub(b).filter(|v| *v >= 0).ok_or(OutOfRange);
        Ok(Self {
            sales: self.sales.checked_sub(site.sales).ok_or(OutOfRange)?,
            gross: less(self.gross, site.gross)?,
            refunded: less(self.refunded, site.refunded)?,
            late_refunded: less(self.late_refunded, site.late_refunded)?,
            late_sales: less(self.late_sales, site.late_sales)?,
            late_gross: less(self.late_gross, site.late_gross)?,
            folded_sales: self
                .folded_sales
                .checked_sub(site.folded_sales)
                .ok_or(OutOfRange)?,
            round_sales: self
                .round_sales
                .checked_sub(site.round_sales)
                .ok_or(OutOfRange)?,
        })
    }
}

/// The thresholds of these rules, per event; [`Policy::default`] is the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Fewest sales for a decision.
    pub min_sales: u64,
    /// Smallest share of the national gross for a decision.
    pub min_share: Ratio,
    /// Late refunds: at least `× nat` ...
    pub late_refunds_times: u32,
    /// ... and at least `nat +` these points.
    pub late_refunds_points: u32,
    /// Refund rate: at least `× nat` ...
    pub refund_rate_times: u32,
    /// ... and at least `nat +` these points.
    pub refund_rate_points: u32,
    /// Late sales: at least `× nat` ...
    pub late_sales_times: u32,
    /// ... and at least this share.
    pub late_sales_floor: Ratio,
    /// Store concentration: a new store's share of the site's gross at least this.
    pub store_share: Ratio,
    /// Settlement rank: the top this many places ...
    pub rank_top: usize,
    /// ... and a move of at least this many places within them.
    pub rank_moves: usize,
    /// Hour shape: a distance at least this ...
    pub shape_floor: Ratio,
    /// ... and at least the site's own distance in the baseline plus this.
    pub shape_over_baseline: Ratio,
    /// Burst: the busiest second at least this many times the median active second ...
    pub burst_times: u32,
    /// ... with at least this many sales in it ...
    pub burst_min_sales: u64,
    /// ... while the nation's same ratio stays under this.
    pub burst_national_under: u32,
    /// Amount pattern: the z-score of the site's share of round amounts at least this ...
    pub round_z: u32,
    /// ... and the share at least this many times the nation's.
    pub round_times: u32,
    /// Or one amount at least this share of the site's sales ...
    pub repeated_share: Ratio,
    /// ... with at least this share of those sales refunded.
    pub repeated_refunded: Ratio,
    /// Growth: excess growth at least this many times the median absolute deviation over
    /// sites ...
    pub growth_mads: u32,
    /// ... and at least this (1: 100 points above the nation's growth) ...
    pub growth_floor: Ratio,
    /// ... for a site with at least this share of the national figure (or in the top places).
    pub growth_share: Ratio,
    /// Or an average order at least this many times the nation's, or at most its inverse.
    pub order_value_times: u32,
    /// Transaction ids in a sample a site is asked to justify (59: 95% confidence of catching
    /// 5% invalid).
    pub sample_size: usize,
    /// Hold a site automatically on one high flag, or two medium flags of different families.
    pub auto_hold: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_sales: 500,
            min_share: Ratio::of(1, 1_000),
            late_refunds_times: 3,
            late_refunds_points: 5,
            refund_rate_times: 2,
            refund_rate_points: 10,
            late_sales_times: 3,
            late_sales_floor: Ratio::points(5),
            store_share: Ratio::points(20),
            rank_top: 10,
            rank_moves: 3,
            shape_floor: Ratio::points(35),
            shape_over_baseline: Ratio::points(15),
            burst_times: 20,
            burst_min_sales: 100,
            burst_national_under: 3,
            round_z: 5,
            round_times: 2,
            repeated_share: Ratio::points(10),
            repeated_refunded: Ratio::points(30),
            growth_mads: 4,
            growth_floor: Ratio::of(1, 1),
            growth_share: Ratio::points(1),
            order_value_times: 2,
            sample_size: 59,
            auto_hold: false,
        }
    }
}

/// What a rule found for a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Below the minimum support: no decision (counted as undecided).
    Undecided,
    /// A figure too large for exact arithmetic: no decision, said.
    OutOfRange,
    /// The counters the rule reads (the late figures) do not hold enough of the event yet,
    /// though the headline does: no decision now, nothing raised or cleared, and the site is
    /// not undecided for the other rules.
    Behind,
    /// Decided: the figures and whether the rule holds.
    Evaluated(Evaluation),
}

/// One evaluation of one rule for one site, with every figure it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The rule.
    pub rule: Rule,
    /// The site's statistic.
    pub statistic: (i128, i128),
    /// The nation's (without the site), where the rule compares with it.
    pub national: Option<(i128, i128)>,
    /// The threshold the statistic was held against.
    pub threshold: (i128, i128),
    /// `statistic ≥ threshold`.
    pub raised: bool,
}

impl PartialEq for Ratio {
    fn eq(&self, other: &Self) -> bool {
        self.compare(*other) == Ok(Ordering::Equal)
    }
}

/// Whether `site` has the support a decision needs against `national` (the nation's counters,
/// the site included).
///
/// # Errors
/// [`OutOfRange`] as [`Ratio::compare`].
pub fn supported(
    policy: &Policy,
    site: &SiteCounters,
    national: &SiteCounters,
) -> Result<bool, OutOfRange> {
    if site.sales < policy.min_sales {
        return Ok(false);
    }
    let Some(share) = Ratio::new(site.gross.max(0), national.gross.max(1)) else {
        return Ok(false);
    };
    Ok(share.compare(policy.min_share)? != Ordering::Less)
}

/// Evaluates the refunds and time rules for `site` against `national` (the nation's counters,
/// the site included: the nation without the site is taken here).
#[must_use]
pub fn evaluate_rates(
    policy: &Policy,
    site: &SiteCounters,
    national: &SiteCounters,
) -> Vec<(Rule, Decision)> {
    let rules = [Rule::LateRefunds, Rule::RefundRate, Rule::LateSales];
    match supported(policy, site, national) {
        Ok(true) => {}
        Ok(false) => return rules.map(|r| (r, Decision::Undecided)).to_vec(),
        Err(OutOfRange) => return rules.map(|r| (r, Decision::OutOfRange)).to_vec(),
    }
    let Ok(nat) = national.excluding(site) else {
        return rules.map(|r| (r, Decision::OutOfRange)).to_vec();
    };
    // The late rules read the late figures, at their own position (behind the headline while
    // the ledger is busy): decided only with the support there too, and against a nation that
    // has gross there whenever it has any (else an early position, where the site's rows were
    // folded and the others' not yet, would compare the site with nobody).
    let at_late = |c: &SiteCounters| SiteCounters {
        sales: c.folded_sales,
        gross: c.late_gross,
        ..SiteCounters::default()
    };
    let late_decided = match supported(policy, &at_late(site), &at_late(national)) {
        Ok(supported) => Ok(supported && (nat.late_gross > 0 || nat.gross == 0)),
        Err(e) => Err(e),
    };
    let decided = [
        rate_rule(
            Rule::LateRefunds,
            site,
            &nat,
            (|c| c.late_refunded, |c| c.late_gross),
            |nat| {
                nat.times(policy.late_refunds_times)?
                    .max(nat.plus(Ratio::points(policy.late_refunds_points))?)
            },
        ),
        rate_rule(
            Rule::RefundRate,
            site,
            &nat,
            (|c| c.refunded, |c| c.gross),
            |nat| {
                nat.times(policy.refund_rate_times)?
                    .max(nat.plus(Ratio::points(policy.refund_rate_points))?)
            },
        ),
        rate_rule(
            Rule::LateSales,
            site,
            &nat,
            (|c| c.late_sales, |c| c.late_gross),
            |nat| {
                nat.times(policy.late_sales_times)?
                    .max(policy.late_sales_floor)
            },
        ),
    ];
    rules
        .into_iter()
        .zip(decided)
        .map(|(rule, found)| {
            let late = matches!(rule, Rule::LateRefunds | Rule::LateSales);
            let decision = match (late, late_decided) {
                (true, Err(OutOfRange)) => Decision::OutOfRange,
                (true, Ok(false)) => Decision::Behind,
                _ => found.map_or(Decision::OutOfRange, Decision::Evaluated),
            };
            (rule, decision)
        })
        .collect()
}

/// One of a site's counters.
type Figure = fn(&SiteCounters) -> i128;

/// One rate rule decided: `part` of `whole` (the gross at the part's ledger position) for the
/// site against `threshold` (a function of the nation's same rate, the site excluded).
fn rate_rule(
    rule: Rule,
    site: &SiteCounters,
    nat: &SiteCounters,
    (part, whole): (Figure, Figure),
    threshold: impl FnOnce(Ratio) -> Result<Ratio, OutOfRange>,
) -> Result<Evaluation, OutOfRange> {
    // A nation without gross (the site is the only one selling) compares with 0.
    let ratio = |c: &SiteCounters| Ratio::new(part(c).max(0), whole(c).max(1)).ok_or(OutOfRange);
    let statistic = ratio(site)?;
    let national = ratio(nat)?;
    let threshold = threshold(national)?;
    Ok(Evaluation {
        rule,
        statistic: statistic.parts(),
        national: Some(national.parts()),
        threshold: threshold.parts(),
        // A site with nothing of the kind is never raised, whatever the threshold (a policy
        // with a threshold of 0 against a nation at 0 would raise every site).
        raised: part(site) > 0 && statistic.compare(threshold)? != Ordering::Less,
    })
}

/// `INTEGRITY_RULE_STORE_CONCENTRATION`: the largest share of the site's gross from one store
/// that had no sales in the baseline event. `stores`: (store id, its gross this event, whether
/// it sold in the baseline). `None` (no decision) when the site has no gross.
#[must_use]
pub fn store_concentration<'a>(
    policy: &Policy,
    site_gross: i128,
    stores: impl IntoIterator<Item = (&'a str, i128, bool)>,
) -> Option<(Option<&'a str>, Evaluation)> {
    if site_gross <= 0 {
        return None;
    }
    let (store, largest) = stores
        .into_iter()
        .filter(|(_, gross, in_baseline)| !in_baseline && *gross > 0)
        .fold((None, 0_i128), |(best, most), (id, gross, _)| {
            // Ties go to the smaller id, so the evidence does not depend on the input order.
            if gross > most || (gross == most && best.is_some_and(|b: &str| id < b)) {
                (Some(id), gross)
            } else {
                (best, most)
            }
        });
    let statistic = Ratio::new(largest.min(site_gross), site_gross)?;
    let raised = statistic.compare(policy.store_share).ok()? != Ordering::Less;
    Some((
        store,
        Evaluation {
            rule: Rule::StoreConcentration,
            statistic: statistic.parts(),
            national: None,
            threshold: policy.store_share.parts(),
            raised,
        },
    ))
}

/// How a site moved between the ranking by gross at `ends_at` and the ranking by net at
/// `closes_at` (or now, while settling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankMove {
    /// 1-based place by gross at the end (`None`: not ranked then).
    pub at_end: Option<usize>,
    /// 1-based place by net at the close.
    pub at_close: Option<usize>,
    /// `INTEGRITY_RULE_SETTLEMENT_RANK` holds: the site was in the top places at the end and
    /// left them by the close, or moved at least `rank_moves` places within them.
    pub raised: bool,
}

/// `INTEGRITY_RULE_SETTLEMENT_RANK` for `site`, from the two rankings (site ids, first place
/// first).
#[must_use]
pub fn settlement_rank<S: PartialEq>(
    policy: &Policy,
    site: &S,
    by_gross_at_end: &[S],
    by_net_at_close: &[S],
) -> RankMove {
    let place = |ranking: &[S]| ranking.iter().position(|s| s == site).map(|i| i + 1);
    let at_end = place(by_gross_at_end);
    let at_close = place(by_net_at_close);
    let top = |p: Option<usize>| p.is_some_and(|p| p <= policy.rank_top);
    let raised = match (top(at_end), top(at_close)) {
        // In the top at the end, out of it at the close.
        (true, false) => true,
        (true, true) => at_end
            .zip(at_close)
            .is_some_and(|(end, close)| end.abs_diff(close) >= policy.rank_moves),
        _ => false,
    };
    RankMove {
        at_end,
        at_close,
        raised,
    }
}

/// The total variation distance between two distributions of gross over the same hours
/// (`site[h]` and `nation[h]`, minor units, each hour once): `½ Σ |s_h/S − n_h/N|`, exactly,
/// as `Σ |s_h·N − n_h·S| / (2·S·N)`. `None` when either has no gross or a figure is negative.
///
/// # Errors
/// [`OutOfRange`] when a product does not fit.
pub fn hour_distance(site: &[i128], nation: &[i128]) -> Result<Option<Ratio>, OutOfRange> {
    if site.len() != nation.len() || site.iter().chain(nation).any(|v| *v < 0) {
        return Ok(None);
    }
    let total = |v: &[i128]| {
        v.iter()
            .try_fold(0_i128, |sum, x| sum.checked_add(*x))
            .ok_or(OutOfRange)
    };
    let (s, n) = (total(site)?, total(nation)?);
    if s == 0 || n == 0 {
        return Ok(None);
    }
    let mut sum = 0_i128;
    for (sh, nh) in site.iter().zip(nation) {
        let a = sh.checked_mul(n).ok_or(OutOfRange)?;
        let b = nh.checked_mul(s).ok_or(OutOfRange)?;
        sum = sum
            .checked_add(a.abs_diff(b).try_into().map_err(|_| OutOfRange)?)
            .ok_or(OutOfRange)?;
    }
    let den = s
        .checked_mul(n)
        .and_then(|d| d.checked_mul(2))
        .ok_or(OutOfRange)?;
    Ok(Ratio::new(sum, den))
}

/// `INTEGRITY_RULE_HOUR_SHAPE`: the site's shares of gross per event hour against the nation's
/// (the site excluded), held against max(floor, the site's own distance in the baseline + the
/// margin). `None` (no decision) when either side sold nothing.
///
/// # Errors
/// [`OutOfRange`] as [`hour_distance`].
pub fn hour_shape(
    policy: &Policy,
    site: &[i128],
    nation_without_site: &[i128],
    baseline_distance: Option<Ratio>,
) -> Result<Option<Evaluation>, OutOfRange> {
    let Some(distance) = hour_distance(site, nation_without_site)? else {
        return Ok(None);
    };
    let threshold = match baseline_distance {
        Some(own) => policy
            .shape_floor
            .max(own.plus(policy.shape_over_baseline)?)?,
        None => policy.shape_floor,
    };
    Ok(Some(Evaluation {
        rule: Rule::HourShape,
        statistic: distance.parts(),
        national: baseline_distance.map(Ratio::parts),
        threshold: threshold.parts(),
        raised: distance.compare(threshold)? != Ordering::Less,
    }))
}

/// The busiest second's sales against the median of the active seconds (those with a sale),
/// exactly (the median of an even count is the mean of the two middle ones). `None` without
/// an active second.
#[must_use]
pub fn burst_ratio(sales_per_second: &[u64]) -> Option<(u64, Ratio)> {
    let mut active: Vec<u64> = sales_per_second
        .iter()
        .copied()
        .filter(|n| *n > 0)
        .collect();
    if active.is_empty() {
        return None;
    }
    active.sort_unstable();
    let busiest = *active.last()?;
    let mid = active.len() / 2;
    // median = m / 2 (so that an even count's mean of two stays whole).
    let twice_median = if active.len() % 2 == 1 {
        u128::from(active[mid]) * 2
    } else {
        u128::from(active[mid - 1]) + u128::from(active[mid])
    };
    let ratio = Ratio::new(i128::from(busiest) * 2, i128::try_from(twice_median).ok()?)?;
    Some((busiest, ratio))
}

/// `INTEGRITY_RULE_BURST` for one hour: the site's sales per second and the nation's (the site
/// excluded) in that hour. `None` when the site sold nothing in it.
///
/// # Errors
/// [`OutOfRange`] as [`Ratio::compare`].
pub fn burst(
    policy: &Policy,
    site_per_second: &[u64],
    nation_per_second: &[u64],
) -> Result<Option<Evaluation>, OutOfRange> {
    let Some((busiest, ratio)) = burst_ratio(site_per_second) else {
        return Ok(None);
    };
    let national = burst_ratio(nation_per_second).map(|(_, r)| r);
    let threshold = Ratio::of(policy.burst_times, 1);
    let nation_calm = match national {
        Some(r) => r.compare(Ratio::of(policy.burst_national_under, 1))? == Ordering::Less,
        None => true,
    };
    let raised = busiest >= policy.burst_min_sales
        && nation_calm
        && ratio.compare(threshold)? != Ordering::Less;
    Ok(Some(Evaluation {
        rule: Rule::Burst,
        statistic: ratio.parts(),
        national: national.map(Ratio::parts),
        threshold: threshold.parts(),
        raised,
    }))
}

/// Whether an amount is round, for `INTEGRITY_RULE_AMOUNT_PATTERN`: a whole number of major
/// units with one significant digit (Rp 100.000, Rp 2.000.000, USD 50, JPY 3,000; not
/// Rp 149.000, USD 12.50), whatever the currency. Made-up orders tend to such amounts; real
/// prices much less so (and the rule compares a site with the nation, not with zero).
#[must_use]
pub fn is_round(amount_minor: i64, currency: crate::Currency) -> bool {
    let unit = 10_u64.pow(u32::from(currency.exponent()));
    let amount = amount_minor.unsigned_abs();
    if amount == 0 || !amount.is_multiple_of(unit) {
        return false;
    }
    let mut major = amount / unit;
    while major.is_multiple_of(10) {
        major /= 10;
    }
    major < 10
}

/// What the fold keeps for `INTEGRITY_RULE_AMOUNT_PATTERN`: of `sales` sales, `round` had a
/// round amount (the rule of roundness is the fold's: a whole multiple of a unit that depends on
/// the currency), and the most repeated amount had `top_count` sales, `top_refunded` of them
/// refunded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AmountCounters {
    /// Sales.
    pub sales: u64,
    /// Sales with a round amount.
    pub round: u64,
    /// Sales of the most repeated amount.
    pub top_count: u64,
    /// Those of them refunded.
    pub top_refunded: u64,
}

/// `INTEGRITY_RULE_AMOUNT_PATTERN` (evidence only, never raised alone: the caller shows it beside
/// a raised flag): the site's share of round amounts `x / n` against the nation's `p` (the site
/// excluded), raised when the binomial z-score `(x − n·p) / √(n·p·(1 − p))` is at least
/// `round_z` and the share at least `round_times × p` — decided exactly, as
/// `(x − n·p)² ≥ z²·n·p·(1 − p)` with `x ≥ n·p`; or when one amount is at least
/// `repeated_share` of the sales with at least `repeated_refunded` of them refunded.
///
/// # Errors
/// [`OutOfRange`] when a product does not fit (counts beyond about 10^9 sales on each side).
pub fn amount_pattern(
    policy: &Policy,
    site: &AmountCounters,
    nation: &AmountCounters,
) -> Result<Option<Evaluation>, OutOfRange> {
    if site.sales == 0
        || nation.sales == 0
        || site.round > site.sales
        || nation.round > nation.sales
    {
        return Ok(None);
    }
    let wide = |v: u64| i128::from(v);
    let (x, n) = (wide(site.round), wide(site.sales));
    let (big_x, big_n) = (wide(nation.round), wide(nation.sales));
    // p = X / N. x − n·p = (x·N − n·X) / N; n·p·(1 − p) = n·X·(N − X) / N².
    let excess = x
        .checked_mul(big_n)
        .zip(n.checked_mul(big_x))
        .map(|(a, b)| a - b)
        .ok_or(OutOfRange)?;
    let z = wide(u64::from(policy.round_z));
    // Strictly above what the nation's share predicts: a site with no round amount is never
    // raised, even where the nation has none (a zero variance). And only where the normal
    // approximation of the binomial holds (the textbook rule: n·p ≥ 5 and n·(1 − p) ≥ 5): a
    // site is never raised against a share the nation's counts cannot estimate (3 round sales
    // of 5,000 against a nation with none is not a z of infinity).
    let five = |v: i128| v.checked_mul(5).ok_or(OutOfRange);
    let approximated = n.checked_mul(big_x).ok_or(OutOfRange)? >= five(big_n)?
        && n.checked_mul(big_n - big_x).ok_or(OutOfRange)? >= five(big_n)?;
    let z_holds = excess > 0 && approximated && {
        // excess² / N² ≥ z² · n·X·(N − X) / N²  ⇔  excess² ≥ z²·n·X·(N − X)
        let left = excess.checked_mul(excess).ok_or(OutOfRange)?;
        let right = z
            .checked_mul(z)
            .and_then(|zz| zz.checked_mul(n))
            .and_then(|v| v.checked_mul(big_x))
            .and_then(|v| v.checked_mul(big_n - big_x))
            .ok_or(OutOfRange)?;
        left >= right
    };
    let share = Ratio::new(x, n).ok_or(OutOfRange)?;
    let national = Ratio::new(big_x, big_n).ok_or(OutOfRange)?;
    let threshold = national.times(policy.round_times)?;
    let round_holds = z_holds && share.compare(threshold)? != Ordering::Less;
    let repeated_holds = site.top_count <= site.sales
        && site.top_refunded <= site.top_count
        && Ratio::new(wide(site.top_count), n)
            .ok_or(OutOfRange)?
            .compare(policy.repeated_share)?
            != Ordering::Less
        && site.top_count > 0
        && Ratio::new(wide(site.top_refunded), wide(site.top_count))
            .ok_or(OutOfRange)?
            .compare(policy.repeated_refunded)?
            != Ordering::Less;
    Ok(Some(Evaluation {
        rule: Rule::AmountPattern,
        statistic: share.parts(),
        national: Some(national.parts()),
        threshold: threshold.parts(),
        raised: round_holds || repeated_holds,
    }))
}

/// One site's figures for `INTEGRITY_RULE_GROWTH`, in the reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowthInput {
    /// Its figure now (at the elapsed time compared).
    pub current: i128,
    /// Its figure in the baseline at the same elapsed time (0: it did not take part).
    pub baseline: i128,
    /// Its gross now, and its sales: the average order.
    pub gross: i128,
    /// Sales now.
    pub sales: u64,
    /// In the top places now.
    pub top: bool,
}

/// What `INTEGRITY_RULE_GROWTH` found for a site: its growth above the nation's and its
/// average order against the nation's, as decimals (28 significant digits: growth over a
/// baseline is a statistic, not money; the inputs stay exact in the evaluation record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowthFinding {
    /// Growth minus the nation's (`None`: no baseline figure to grow from).
    pub excess: Option<rust_decimal::Decimal>,
    /// The threshold the excess was held against: max(floor, mads × MAD over sites).
    pub threshold: rust_decimal::Decimal,
    /// The site's average order ÷ the nation's (`None` without sales).
    pub order_value_ratio: Option<rust_decimal::Decimal>,
    /// Raised by growth (an eligible site) or by the average order.
    pub raised: bool,
    /// Raised by growth: an eligible site whose excess reaches the threshold.
    pub by_growth: bool,
    /// Raised by the average order: at least `order_value_times` the nation's, or at most
    /// its inverse.
    pub by_order: bool,
}

impl GrowthFinding {
    /// The excess as a fraction (rounded to [`GROWTH_PLACES`] decimals: see
    /// [`decimal_ratio`]); 0 for a site that grew less than the nation (a statistic of how far
    /// above the nation a site grew).
    #[must_use]
    pub fn excess_ratio(&self) -> Option<Ratio> {
        self.excess
            .map(|e| e.max(rust_decimal::Decimal::ZERO))
            .and_then(decimal_ratio)
    }

    /// What raised it, as its evaluation records it: the condition, the statistic and the
    /// threshold as exact fractions. By growth: the excess against the threshold; else by the
    /// average order: its ratio against `order_value_times` (or, for orders far smaller than
    /// the nation's, against its inverse). `None` when not raised.
    #[must_use]
    pub fn raised_by(&self, policy: &Policy) -> Option<(&'static str, Ratio, Ratio)> {
        if self.by_growth {
            return Some((
                "grew beyond the nation",
                self.excess_ratio()?,
                decimal_ratio(self.threshold)?,
            ));
        }
        if !self.by_order {
            return None;
        }
        let ratio = decimal_ratio(self.order_value_ratio?)?;
        let times = i128::from(policy.order_value_times);
        let larger = ratio.compare(Ratio::new(times, 1)?).ok()?.is_ge();
        let threshold = if larger {
            Ratio::new(times, 1)?
        } else {
            Ratio::new(1, times)?
        };
        Some(("average order against the nation's", ratio, threshold))
    }
}

/// Decimals a growth statistic keeps in its record (the decision is made on the 28 digits
/// the rule computes): a fraction over 10^12 is compared exactly with another by
/// cross-multiplication for any growth below a million times.
pub const GROWTH_PLACES: u32 = 12;

/// A non-negative decimal as a fraction, rounded half away from zero to [`GROWTH_PLACES`].
fn decimal_ratio(d: rust_decimal::Decimal) -> Option<Ratio> {
    let d = d.round_dp_with_strategy(
        GROWTH_PLACES,
        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
    );
    Ratio::new(d.mantissa(), 10i128.checked_pow(d.scale())?)
}

/// `INTEGRITY_RULE_GROWTH` for every site at once (the median absolute deviation is over the
/// sites): `nation` is the national figures (every site), each site compared with the nation
/// without itself.
#[must_use]
pub fn growth(policy: &Policy, sites: &[GrowthInput], nation: &GrowthInput) -> Vec<GrowthFinding> {
    use rust_decimal::Decimal;
    let decimal = |v: i128| Decimal::try_from_i128_with_scale(v, 0).ok();
    let rate = |num: i128, den: i128| -> Option<Decimal> {
        if den <= 0 {
            return None;
        }
        decimal(num)?.checked_div(decimal(den)?)
    };
    let growth_of = |current: i128, baseline: i128| rate(current.checked_sub(baseline)?, baseline);
    let excess: Vec<Option<Decimal>> = sites
        .iter()
        .map(|s| {
            let own = growth_of(s.current, s.baseline)?;
            let others = growth_of(
                nation.current.checked_sub(s.current)?,
                nation.baseline.checked_sub(s.baseline)?,
            )
            .unwrap_or(Decimal::ZERO);
            own.checked_sub(others)
        })
        .collect();
    let known: Vec<Decimal> = excess.iter().flatten().copied().collect();
    let mad = median(&known).and_then(|m| {
        // A deviation past Decimal's range: no spread to scale (the floor decides).
        let deviations: Option<Vec<Decimal>> = known
            .iter()
            .map(|x| x.checked_sub(m).map(|d| d.abs()))
            .collect();
        median(&deviations?)
    });
    let ratio = |r: Ratio| rate(r.num, r.den).unwrap_or(Decimal::ONE);
    let floor = ratio(policy.growth_floor);
    let threshold = mad
        .and_then(|m| m.checked_mul(Decimal::from(policy.growth_mads)))
        .map_or(floor, |spread| spread.max(floor));
    let times = Decimal::from(policy.order_value_times);
    sites
        .iter()
        .zip(excess)
        .map(|(s, excess)| {
            let share = rate(s.current.max(0), nation.current);
            let eligible = s.top || share.is_some_and(|v| v >= ratio(policy.growth_share));
            let order_value_ratio = (|| {
                let own = rate(s.gross, i128::from(s.sales))?;
                let others = rate(
                    nation.gross.checked_sub(s.gross)?,
                    i128::from(nation.sales.checked_sub(s.sales)?),
                )?;
                own.checked_div(others)
            })();
            let by_growth = eligible && excess.is_some_and(|e| e >= threshold);
            let by_order = order_value_ratio.is_some_and(|r| {
                r >= times || r.checked_mul(times).is_some_and(|v| v <= Decimal::ONE)
            });
            GrowthFinding {
                excess,
                threshold,
                order_value_ratio,
                raised: by_growth || by_order,
                by_growth,
                by_order,
            }
        })
        .collect()
}

/// The median (the mean of the middle two for an even count); `None` for none.
fn median(values: &[rust_decimal::Decimal]) -> Option<rust_decimal::Decimal> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => sorted[mid - 1]
            .checked_add(sorted[mid])
            .map(|sum| sum / rust_decimal::Decimal::TWO),
    }
}

/// The `size` transaction ids a site is asked to justify, drawn from `ids` by `seed`: the ids
/// with the smallest SHA-256 of (seed, id), in that order. The same seed and ids give the same
/// sample whatever order the ids come in, on any machine and release, so a sample can be drawn
/// again from its stored seed; a different seed gives an independent one.
#[must_use]
pub fn sample<'a>(seed: u64, ids: impl IntoIterator<Item = &'a str>, size: usize) -> Vec<&'a str> {
    use sha2::{Digest as _, Sha256};
    let mut keyed: Vec<([u8; 32], &str)> = ids
        .into_iter()
        .map(|id| {
            let mut h = Sha256::new();
            h.update(seed.to_be_bytes());
            h.update(id.as_bytes());
            (h.finalize().into(), id)
        })
        .collect();
    keyed.sort_unstable();
    keyed.dedup_by(|a, b| a.1 == b.1);
    keyed.into_iter().take(size).map(|(_, id)| id).collect()
}

/// The `per_cent` percentile of `values` by nearest rank (the smallest value with at least
/// `per_cent`% of them at or below it: of 13 values, the 99th is the largest), compared
/// exactly, and the largest; `None` for no values. How a backtest sums up a rule's statistic
/// over last year's sites.
///
/// # Errors
/// [`OutOfRange`] when two values cannot be compared exactly.
pub fn percentile(values: &[Ratio], per_cent: u32) -> Result<Option<(Ratio, Ratio)>, OutOfRange> {
    // Every cross product of parts within i64 fits i128: then every comparison is exact and
    // the sort's order total (a comparator failing midway could not give one).
    let bound = i128::from(i64::MAX);
    if values.iter().any(|r| r.num > bound || r.den > bound) {
        return Err(OutOfRange);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.compare(*b).unwrap_or(Ordering::Equal));
    let (Some(_), Some(largest)) = (sorted.first(), sorted.last()) else {
        return Ok(None);
    };
    // rank = ceil(per_cent × n / 100), at least 1.
    let n = sorted.len();
    let per_cent = usize::try_from(per_cent.min(100)).unwrap_or(100);
    let rank = n.saturating_mul(per_cent).div_ceil(100).max(1);
    Ok(Some((sorted[rank - 1], *largest)))
}

/// A family of rules. The automatic hold takes two medium flags only from different
/// families: the same kind of evidence seen twice (a high refund rate and, say, a refund-heavy
/// repeated amount) is one finding, not two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// When money came and went: refunds, late sales, the ranking's move in settlement.
    RefundsAndTime,
    /// How the sales are spread over the event: its hours, its seconds, its growth.
    Shape,
    /// What the sales are made of: stores and amounts.
    Mix,
}

impl Rule {
    /// The rule's family (see [`Family`]).
    #[must_use]
    pub fn family(self) -> Family {
        match self {
            Self::LateRefunds | Self::RefundRate | Self::LateSales | Self::SettlementRank => {
                Family::RefundsAndTime
            }
            Self::HourShape | Self::Burst | Self::Growth => Family::Shape,
            Self::StoreConcentration | Self::AmountPattern => Family::Mix,
        }
    }
}

/// A flag still holding, as the automatic hold weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldingFlag {
    /// Its rule (and so its severity and family).
    pub rule: Rule,
    /// Its review state: a flag an organizer cleared (the figures are explained) never counts.
    pub state: FlagState,
    /// When it was raised.
    pub raised_at: crate::UnixNanos,
}

/// The flags on which the automatic-hold policy holds a site, or `None`: one high flag, else
/// two medium flags of different families (indices into `flags`, the first found of each).
/// Low flags are evidence only and never count; neither does a flag an organizer reviewed as
/// cleared, nor one raised before `released_at` (when organizers last released the site in
/// this event: their release stands against the evidence they had, until a new flag comes).
#[must_use]
pub fn auto_hold_grounds(
    flags: &[HoldingFlag],
    released_at: Option<crate::UnixNanos>,
) -> Option<Vec<usize>> {
    let counted = || {
        flags.iter().enumerate().filter(|(_, f)| {
            f.state != FlagState::Cleared && released_at.is_none_or(|r| f.raised_at > r)
        })
    };
    if let Some((i, _)) = counted().find(|(_, f)| f.rule.severity() == Severity::High) {
        return Some(vec![i]);
    }
    let mut medium = counted().filter(|(_, f)| f.rule.severity() == Severity::Medium);
    let (first, a) = medium.next()?;
    let (second, _) = medium.find(|(_, b)| b.rule.family() != a.rule.family())?;
    Some(vec![first, second])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_from_totals_convert_each_currency() {
        use crate::totals::CurrencyTotals;
        use std::collections::BTreeMap;
        let idr = crate::Currency::parse("IDR").expect("IDR");
        let usd = crate::Currency::parse("USD").expect("USD");
        let sgd = crate::Currency::parse("SGD").expect("SGD");
        let t = |sales, gross, refunded| CurrencyTotals {
            sale_count: sales,
            gross_minor: gross,
            refund_count: 1,
            refunded_minor: refunded,
        };
        let totals = BTreeMap::from([
            (idr, t(3, 30_000, 3_000)),
            (usd, t(2, 1_000, 100)),
            (sgd, t(1, 500, 0)),
        ]);
        // 10.00 USD at 15,000 IDR: 150,000 IDR, in IDR's minor units (2 decimals each).
        let rates = BTreeMap::from([(usd, crate::Rate::parse("15000").expect("rate"))]);
        let (c, unconverted) = SiteCounters::from_totals(&totals, &rates, idr).expect("fits");
        assert_eq!(c.sales, 5);
        assert_eq!(c.gross, 30_000 + 15_000_000);
        assert_eq!(c.refunded, 3_000 + 1_500_000);
        assert_eq!((c.late_refunded, c.late_sales), (0, 0));
        assert_eq!(unconverted, [sgd]);
        let both = c.plus(&c).expect("fits");
        assert_eq!(both.excluding(&c).expect("a part"), c);
    }

    #[test]
    fn names_round_trip() {
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.name()), Some(rule));
        }
        assert_eq!(Rule::parse("INTEGRITY_RULE_UNSPECIFIED"), None);
        for state in [
            FlagState::Open,
            FlagState::UnderReview,
            FlagState::Cleared,
            FlagState::Confirmed,
        ] {
            assert_eq!(FlagState::parse(state.as_str()), Some(state));
        }
        for severity in [Severity::Low, Severity::Medium, Severity::High] {
            assert_eq!(Severity::parse(severity.as_str()), Some(severity));
        }
    }

    #[test]
    fn decimals_are_read_and_written_exactly() {
        let r = |t: &str| Ratio::parse_decimal(t, 9).map(Ratio::parts);
        assert_eq!(r("0.001"), Some((1, 1_000)));
        assert_eq!(r("1"), Some((1, 1)));
        assert_eq!(r("12.50"), Some((1_250, 100)));
        assert_eq!(r("0.123456789"), Some((123_456_789, 1_000_000_000)));
        for bad in [
            "",
            ".5",
            "5.",
            "-0.1",
            "+1",
            "1e3",
            " 1",
            "0.1234567891",
            "1.2.3",
            "0,1",
            "NaN",
        ] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
        let d = |n, den| Ratio::new(n, den).and_then(Ratio::exact_decimal);
        assert_eq!(d(1, 1_000), Some("0.001".to_owned()));
        assert_eq!(d(5, 100), Some("0.05".to_owned()));
        assert_eq!(d(1, 20), Some("0.05".to_owned()));
        assert_eq!(d(35, 100), Some("0.35".to_owned()));
        assert_eq!(d(3, 1), Some("3".to_owned()));
        assert_eq!(d(0, 7), Some("0".to_owned()));
        assert_eq!(d(1, 3), None);
        assert_eq!(
            Ratio::parse_decimal("0.10", 9).and_then(Ratio::exact_decimal),
            Some("0.1".to_owned())
        );
    }

    fn counters(sales: u64, gross: i128, refunded: i128, late_refunded: i128) -> SiteCounters {
        SiteCounters {
            sales,
            gross,
            refunded,
            late_refunded,
            late_sales: 0,
            late_gross: gross,
            folded_sales: sales,
            ..SiteCounters::default()
        }
    }

    #[test]
    fn a_round_amount_is_whole_major_units_with_one_significant_digit() {
        let c = |code| crate::Currency::parse(code).expect("currency");
        let (idr, usd, jpy, kwd) = (c("IDR"), c("USD"), c("JPY"), c("KWD"));
        // Rp 100.000, Rp 2.000.000, Rp 5: round (IDR has two decimals in ISO 4217).
        for amount in [10_000_000, 200_000_000, 500] {
            assert!(is_round(amount, idr), "{amount}");
        }
        // Rp 149.000, Rp 1.500.000, Rp 100.000,50, nothing: not round.
        for amount in [14_900_000, 150_000_000, 10_000_050, 0] {
            assert!(!is_round(amount, idr), "{amount}");
        }
        assert!(is_round(5_000, usd), "USD 50");
        assert!(!is_round(1_250, usd), "USD 12.50");
        assert!(!is_round(50, usd), "USD 0.50: not whole");
        assert!(is_round(3_000, jpy) && is_round(7, jpy) && !is_round(3_500, jpy));
        assert!(
            is_round(20_000, kwd) && !is_round(20_500, kwd),
            "KWD 20, 20.5"
        );
        // Any i64, negative too (never an amount, but never a panic).
        assert!(!is_round(i64::MIN, jpy));
        assert!(!is_round(i64::MAX, idr));
    }

    fn decision(found: &[(Rule, Decision)], rule: Rule) -> &Decision {
        &found.iter().find(|(r, _)| *r == rule).expect("the rule").1
    }

    fn raised(found: &[(Rule, Decision)], rule: Rule) -> bool {
        matches!(decision(found, rule), Decision::Evaluated(e) if e.raised)
    }

    #[test]
    fn fractions_compare_exactly() {
        let third = Ratio::new(1, 3).expect("ratio");
        let close = Ratio::new(333_333_333_333, 1_000_000_000_000).expect("ratio");
        assert_eq!(third.compare(close), Ok(Ordering::Greater));
        assert_eq!(
            Ratio::new(2, 6).expect("ratio").compare(third),
            Ok(Ordering::Equal)
        );
        assert_eq!(
            Ratio::points(5).plus(Ratio::of(1, 10)).map(Ratio::parts),
            Ok((150, 1_000))
        );
        assert_eq!(
            Ratio::new(i128::MAX, 1)
                .expect("ratio")
                .compare(Ratio::new(1, i128::MAX).expect("ratio")),
            Err(OutOfRange)
        );
        assert!(Ratio::new(1, 0).is_none() && Ratio::new(-1, 2).is_none());
    }

    #[test]
    fn decimals_round_half_away_from_zero() {
        let r = |n, d| Ratio::new(n, d).expect("ratio");
        assert_eq!(r(1, 3).to_decimal(4), "0.3333");
        assert_eq!(r(2, 3).to_decimal(4), "0.6667");
        assert_eq!(r(1, 8).to_decimal(2), "0.13");
        assert_eq!(r(999, 1000).to_decimal(2), "1.00");
        assert_eq!(r(19_999, 2).to_decimal(0), "10000");
        assert_eq!(r(7, 2).to_decimal(1), "3.5");
    }

    #[test]
    fn a_site_below_the_support_is_undecided() {
        let policy = Policy::default();
        let national = counters(100_000, 1_000_000_000, 10_000_000, 0);
        // 499 sales: undecided, whatever its refunds.
        let few = counters(499, 100_000_000, 90_000_000, 90_000_000);
        assert!(
            evaluate_rates(&policy, &few, &national)
                .iter()
                .all(|(_, d)| *d == Decision::Undecided)
        );
        // 500 sales but under 0.1% of the national gross (999,999 of 1,000,000,000).
        let small = counters(500, 999_999, 900_000, 900_000);
        assert!(!supported(&policy, &small, &national).expect("in range"));
        let just = counters(500, 1_000_000, 0, 0);
        assert!(supported(&policy, &just, &national).expect("in range"));
    }

    #[test]
    fn late_refunds_are_raised_against_the_nation_without_the_site() {
        let policy = Policy::default();
        // The others: 3% of their gross refunded late (nat = 0.03): the threshold is
        // max(0.09, 0.08) = 0.09.
        let others = counters(20_000, 1_000_000_000, 30_000_000, 30_000_000);
        let site_at = |late: i128| counters(1_000, 100_000_000, late, late);
        let national = |site: &SiteCounters| SiteCounters {
            sales: others.sales + site.sales,
            gross: others.gross + site.gross,
            refunded: others.refunded + site.refunded,
            late_refunded: others.late_refunded + site.late_refunded,
            late_sales: 0,
            late_gross: others.late_gross + site.late_gross,
            folded_sales: others.folded_sales + site.folded_sales,
            ..SiteCounters::default()
        };
        // 9,000,000 of 100,000,000 is exactly 0.09: raised; one minor unit less is not.
        let at = site_at(9_000_000);
        let found = evaluate_rates(&policy, &at, &national(&at));
        assert!(raised(&found, Rule::LateRefunds), "{found:?}");
        let Decision::Evaluated(e) = decision(&found, Rule::LateRefunds) else {
            panic!("decided");
        };
        assert_eq!(Ratio::new(e.threshold.0, e.threshold.1), Ratio::new(9, 100));
        assert_eq!(
            e.national.and_then(|(n, d)| Ratio::new(n, d)),
            Ratio::new(3, 100)
        );
        let under = site_at(8_999_999);
        assert!(!raised(
            &evaluate_rates(&policy, &under, &national(&under)),
            Rule::LateRefunds
        ));
        // The refund rate's threshold is max(0.06, 0.13) = 0.13: not raised at 0.09.
        assert!(!raised(&found, Rule::RefundRate));
    }

    #[test]
    fn points_win_when_the_nation_refunds_little() {
        // nat = 0.5%: 3 × nat = 1.5% but nat + 5 points = 5.5% is the threshold.
        let policy = Policy::default();
        let others = counters(20_000, 1_000_000_000, 5_000_000, 5_000_000);
        let site = counters(1_000, 100_000_000, 5_400_000, 5_400_000);
        let national = SiteCounters {
            sales: 21_000,
            gross: 1_100_000_000,
            refunded: 10_400_000,
            late_refunded: 10_400_000,
            late_sales: 0,
            late_gross: 1_100_000_000,
            folded_sales: 21_000,
            ..SiteCounters::default()
        };
        assert_eq!(national.excluding(&site), Ok(others));
        let found = evaluate_rates(&policy, &site, &national);
        assert!(!raised(&found, Rule::LateRefunds), "{found:?}");
        let site = counters(1_000, 100_000_000, 5_500_000, 5_500_000);
        let national = SiteCounters {
            refunded: 10_500_000,
            late_refunded: 10_500_000,
            ..national
        };
        assert!(raised(
            &evaluate_rates(&policy, &site, &national),
            Rule::LateRefunds
        ));
    }

    #[test]
    fn a_late_share_is_taken_of_the_gross_at_the_late_figures_position() {
        // The late figures trail the headline while the ledger is busy: the site's late sales
        // were folded with 400,000 of gross, the headline holds 1,000,000 already. Its late
        // share is 0.5 (not 0.2, the late figures of one position over the gross of another),
        // and likewise the nation's.
        let policy = Policy::default();
        let site = SiteCounters {
            late_sales: 200_000,
            late_gross: 400_000,
            ..counters(1_000, 1_000_000, 0, 0)
        };
        let national = SiteCounters {
            sales: 21_000,
            gross: 21_000_000,
            late_sales: 200_000 + 1_000_000,
            late_gross: 400_000 + 5_000_000,
            folded_sales: 1_000 + 20_000,
            ..SiteCounters::default()
        };
        let found = evaluate_rates(&policy, &site, &national);
        let Decision::Evaluated(e) = decision(&found, Rule::LateSales) else {
            panic!("decided: {found:?}");
        };
        assert_eq!(Ratio::new(e.statistic.0, e.statistic.1), Ratio::new(1, 2));
        // The nation without the site: 1,000,000 of 5,000,000 late, 0.2; the threshold 0.6.
        assert_eq!(
            e.national.and_then(|(n, d)| Ratio::new(n, d)),
            Ratio::new(1, 5)
        );
        assert_eq!(Ratio::new(e.threshold.0, e.threshold.1), Ratio::new(3, 5));
        assert!(!e.raised);
    }

    #[test]
    fn late_rules_wait_while_the_late_figures_hold_the_site_alone() {
        // An early late-figures position: the site's rows folded (all late), the others' not
        // yet, though the headline holds them. No comparison with an empty nation: Behind, for
        // the late rules alone; the refund rate is decided from the headline.
        let policy = Policy::default();
        let site = SiteCounters {
            late_sales: 1_000_000,
            late_gross: 1_000_000,
            ..counters(1_000, 1_000_000, 0, 0)
        };
        let national = SiteCounters {
            sales: 21_000,
            gross: 21_000_000,
            ..site
        };
        let found = evaluate_rates(&policy, &site, &national);
        assert_eq!(decision(&found, Rule::LateSales), &Decision::Behind);
        assert_eq!(decision(&found, Rule::LateRefunds), &Decision::Behind);
        assert!(matches!(
            decision(&found, Rule::RefundRate),
            Decision::Evaluated(_)
        ));
        // Nor with too few of the site's sales folded there (under the support).
        let early = SiteCounters {
            folded_sales: 499,
            ..site
        };
        let national = SiteCounters {
            late_gross: 2_000_000,
            folded_sales: 1_499,
            ..national
        };
        let found = evaluate_rates(&policy, &early, &national);
        assert_eq!(decision(&found, Rule::LateSales), &Decision::Behind);
        // With the nation's rows there too, decided (and raised: 100% against 0%).
        let found = evaluate_rates(
            &policy,
            &site,
            &SiteCounters {
                folded_sales: 2_000,
                ..national
            },
        );
        assert!(raised(&found, Rule::LateSales), "{found:?}");
    }

    #[test]
    fn late_sales_have_a_floor_of_five_percent() {
        let policy = Policy::default();
        let site = SiteCounters {
            late_sales: 5_000_000,
            ..counters(1_000, 100_000_000, 0, 0)
        };
        // The others sell nothing late: 3 × 0 = 0, the floor 5% decides; exactly 5% raises.
        let national = SiteCounters {
            sales: 21_000,
            gross: 1_100_000_000,
            late_sales: 5_000_000,
            late_gross: 1_100_000_000,
            folded_sales: 21_000,
            ..SiteCounters::default()
        };
        assert!(raised(
            &evaluate_rates(&policy, &site, &national),
            Rule::LateSales
        ));
        let less = SiteCounters {
            late_sales: 4_999_999,
            ..site
        };
        let national = SiteCounters {
            late_sales: 4_999_999,
            ..national
        };
        assert!(!raised(
            &evaluate_rates(&policy, &less, &national),
            Rule::LateSales
        ));
    }

    #[test]
    fn counters_out_of_step_or_too_large_decide_nothing() {
        let policy = Policy::default();
        let site = counters(1_000, 100_000_000, 0, 0);
        // A national figure below the site's own: never compared as if right.
        let behind = counters(1_000, 50_000_000, 0, 0);
        assert!(
            evaluate_rates(&policy, &site, &behind)
                .iter()
                .all(|(_, d)| *d == Decision::OutOfRange || *d == Decision::Undecided)
        );
        let huge = counters(1_000, i128::MAX / 2, i128::MAX / 4, i128::MAX / 4);
        let national = counters(2_000, i128::MAX / 2 + 10, i128::MAX / 4, i128::MAX / 4);
        assert!(
            evaluate_rates(&policy, &huge, &national)
                .iter()
                .any(|(_, d)| *d == Decision::OutOfRange)
        );
    }

    #[test]
    fn one_new_store_selling_a_fifth_is_raised() {
        let policy = Policy::default();
        let stores = [
            ("jkt", 600, true),
            ("new-1", 200, false),
            ("new-2", 199, false),
        ];
        let (store, e) = store_concentration(&policy, 1_000, stores).expect("decided");
        assert_eq!(store, Some("new-1"));
        assert!(e.raised, "{e:?}");
        assert_eq!(e.statistic, (200, 1_000));
        // The biggest store sold in the baseline: it does not count, whatever its share.
        let (_, e) = store_concentration(&policy, 1_000, [("jkt", 1_000, true)]).expect("decided");
        assert!(!e.raised);
        assert_eq!(store_concentration(&policy, 0, []), None);
        // Ties go to the smaller id, in any order.
        let (a, _) =
            store_concentration(&policy, 10, [("b", 5, false), ("a", 5, false)]).expect("decided");
        assert_eq!(a, Some("a"));
    }

    #[test]
    fn leaving_the_top_or_moving_three_places_is_raised() {
        let policy = Policy::default();
        let names: Vec<String> = (1..=15).map(|i| format!("s{i}")).collect();
        let end = names.clone();
        // s2 falls from 2nd to 12th: out of the top 10.
        let mut close = names.clone();
        let fallen = close.remove(1);
        close.insert(11, fallen);
        let m = settlement_rank(&policy, &"s2".to_owned(), &end, &close);
        assert_eq!((m.at_end, m.at_close, m.raised), (Some(2), Some(12), true));
        // s3 moves from 3rd to 2nd: one place, not raised; s1 from 1st to 1st.
        assert!(!settlement_rank(&policy, &"s3".to_owned(), &end, &close).raised);
        assert!(!settlement_rank(&policy, &"s1".to_owned(), &end, &close).raised);
        // Three places within the top (4th to 7th) is raised; two is not.
        let mut close = names.clone();
        let s4 = close.remove(3);
        close.insert(6, s4);
        assert!(settlement_rank(&policy, &"s4".to_owned(), &end, &close).raised);
        let mut close = names.clone();
        let s4 = close.remove(3);
        close.insert(5, s4);
        assert!(!settlement_rank(&policy, &"s4".to_owned(), &end, &close).raised);
        // Climbing into the top from outside it is not this rule's business.
        let mut close = names.clone();
        let s15 = close.remove(14);
        close.insert(0, s15);
        assert!(!settlement_rank(&policy, &"s15".to_owned(), &end, &close).raised);
    }

    #[test]
    fn hour_distance_is_exact() {
        let r = |n, d| Ratio::new(n, d).expect("ratio");
        // The same shape at another scale: distance 0.
        assert_eq!(hour_distance(&[1, 2, 3], &[10, 20, 30]), Ok(Some(r(0, 1))));
        // All in one hour against all in another: 1.
        assert_eq!(hour_distance(&[5, 0], &[0, 7]), Ok(Some(r(1, 1))));
        // Half and half against all in the first hour: ½ (|½ − 1| + |½ − 0|) = ½.
        assert_eq!(hour_distance(&[1, 1], &[3, 0]), Ok(Some(r(1, 2))));
        assert_eq!(hour_distance(&[0, 0], &[1, 1]), Ok(None));
        assert_eq!(hour_distance(&[1], &[1, 1]), Ok(None));
        assert_eq!(hour_distance(&[-1, 2], &[1, 1]), Ok(None));
        assert_eq!(
            hour_distance(&[i128::MAX / 2, 1], &[i128::MAX / 2, 1]),
            Err(OutOfRange)
        );
    }

    #[test]
    fn hour_shape_takes_the_baseline_into_account() {
        let policy = Policy::default();
        // Everything sold in the last hour, against a nation spread over four: distance 3/4.
        let site = [0, 0, 0, 100];
        let nation = [25, 25, 25, 25];
        let e = hour_shape(&policy, &site, &nation, None)
            .expect("in range")
            .expect("decided");
        assert!(e.raised);
        assert_eq!(Ratio::new(e.statistic.0, e.statistic.1), Ratio::new(3, 4));
        // A site that always sells at night (0.65 last year): threshold 0.80, not raised.
        let own = Ratio::new(65, 100);
        let e = hour_shape(&policy, &site, &nation, own)
            .expect("in range")
            .expect("decided");
        assert!(!e.raised);
        assert_eq!(
            Ratio::new(e.threshold.0, e.threshold.1),
            Ratio::new(80, 100)
        );
        assert_eq!(hour_shape(&policy, &[0; 4], &nation, None), Ok(None));
    }

    #[test]
    fn a_sample_is_reproducible_and_independent_of_order() {
        let ids: Vec<String> = (0..1_000).map(|i| format!("T{i}")).collect();
        let one = sample(42, ids.iter().map(String::as_str), 59);
        assert_eq!(one.len(), 59);
        let reversed = sample(42, ids.iter().rev().map(String::as_str), 59);
        assert_eq!(one, reversed);
        let other = sample(43, ids.iter().map(String::as_str), 59);
        assert_ne!(one, other);
        // No id twice, even when the input repeats one; fewer ids than asked: all of them.
        let few = sample(7, ["a", "b", "a"], 59);
        assert_eq!(few.len(), 2);
        // Pinned (computed apart, with Python's hashlib): a stored seed draws the same ids in
        // any later release.
        assert_eq!(sample(1, ["x", "y", "z"], 3), ["x", "z", "y"]);
        assert_eq!(one[..3], ["T53", "T118", "T517"]);
    }

    #[test]
    fn a_burst_needs_a_calm_nation_and_a_hundred_sales() {
        let policy = Policy::default();
        // 59 quiet seconds of 5 sales and one of 100: 100 / 5 = 20.
        let mut site = vec![5_u64; 59];
        site.push(100);
        let calm = vec![50_u64; 60];
        let e = burst(&policy, &site, &calm)
            .expect("in range")
            .expect("decided");
        assert!(e.raised, "{e:?}");
        assert_eq!(Ratio::new(e.statistic.0, e.statistic.1), Ratio::new(20, 1));
        // 99 in the busiest second: under the minimum.
        let mut fewer = vec![4_u64; 59];
        fewer.push(99);
        assert!(
            !burst(&policy, &fewer, &calm)
                .expect("in range")
                .expect("decided")
                .raised
        );
        // The whole nation bursts too (a flash sale's first second): not the site's doing.
        let mut rush = vec![10_u64; 59];
        rush.push(40);
        assert!(
            !burst(&policy, &site, &rush)
                .expect("in range")
                .expect("decided")
                .raised
        );
        // An even count of active seconds: the median is the mean of the middle two.
        assert_eq!(
            burst_ratio(&[0, 2, 4, 0, 6, 8]).map(|(b, r)| (b, r.parts())),
            Some((8, (16, 10)))
        );
        assert_eq!(burst(&policy, &[0, 0], &calm), Ok(None));
    }

    #[test]
    fn round_amounts_are_judged_by_an_exact_z_score() {
        let policy = Policy::default();
        let nation = AmountCounters {
            sales: 100_000,
            round: 10_000,
            ..AmountCounters::default()
        };
        // p = 0.1, n = 1,000: n·p = 100, √(n·p·(1−p)) = √90 ≈ 9.487; z ≥ 5 needs x ≥ 147.4,
        // and 2 × p needs x ≥ 200: 200 raises, 199 does not.
        let site = |round| AmountCounters {
            sales: 1_000,
            round,
            ..AmountCounters::default()
        };
        let raised = |round| {
            amount_pattern(&policy, &site(round), &nation)
                .expect("in range")
                .expect("decided")
                .raised
        };
        assert!(raised(200));
        assert!(!raised(199));
        // With z alone at the edge: p = 0.1, twice-p floor lowered to 1×: 148 raises (z ≈
        // 5.06), 147 does not (z ≈ 4.95).
        let loose = Policy {
            round_times: 1,
            ..Policy::default()
        };
        let z_only = |round| {
            amount_pattern(&loose, &site(round), &nation)
                .expect("in range")
                .expect("decided")
                .raised
        };
        assert!(z_only(148));
        assert!(!z_only(147));
        // One amount on 10% of the sales with 30% of them refunded.
        let repeated = AmountCounters {
            sales: 1_000,
            round: 0,
            top_count: 100,
            top_refunded: 30,
        };
        assert!(
            amount_pattern(&policy, &repeated, &nation)
                .expect("in range")
                .expect("decided")
                .raised
        );
        let kept = AmountCounters {
            top_refunded: 29,
            ..repeated
        };
        assert!(
            !amount_pattern(&policy, &kept, &nation)
                .expect("in range")
                .expect("decided")
                .raised
        );
        assert_eq!(
            amount_pattern(&policy, &AmountCounters::default(), &nation),
            Ok(None)
        );
        // A nation without round amounts (no variance): a site without any is not raised.
        let none = AmountCounters {
            sales: 100_000,
            ..AmountCounters::default()
        };
        assert!(
            !amount_pattern(&policy, &site(0), &none)
                .expect("in range")
                .expect("decided")
                .raised
        );
        // Nor is a site with round amounts: the nation's share cannot be estimated (n·p = 0);
        // nor 3 round sales of 5,000 against 1 of 100,000 (n·p = 0.15, under 5), though its
        // z would pass 7.
        let few = |sales, round| AmountCounters {
            sales,
            round,
            ..AmountCounters::default()
        };
        for (site_counts, nation_counts) in
            [(few(1_000, 600), none), (few(5_000, 3), few(100_000, 1))]
        {
            assert!(
                !amount_pattern(&policy, &site_counts, &nation_counts)
                    .expect("in range")
                    .expect("decided")
                    .raised,
                "{site_counts:?} against {nation_counts:?}"
            );
        }
        // At the edge of the approximation: n·p = 5 exactly (n = 1,000, p = 0.005) decides.
        let edge = few(200_000, 1_000);
        assert!(
            amount_pattern(&policy, &few(1_000, 600), &edge)
                .expect("in range")
                .expect("decided")
                .raised
        );
        assert!(
            !amount_pattern(&policy, &few(999, 600), &edge)
                .expect("in range")
                .expect("decided")
                .raised
        );
    }

    #[test]
    fn growth_far_above_the_nations_is_raised_for_a_big_site() {
        use rust_decimal::Decimal;
        let policy = Policy::default();
        // Ten sites growing 10% (100 → 110), one growing 400% (100 → 500), one small site
        // growing 400% too but with 0.1% of the figure.
        let mut sites: Vec<GrowthInput> = (0..10)
            .map(|_| GrowthInput {
                current: 1_100,
                baseline: 1_000,
                gross: 1_100,
                sales: 11,
                top: false,
            })
            .collect();
        sites.push(GrowthInput {
            current: 5_000,
            baseline: 1_000,
            gross: 5_000,
            sales: 50,
            top: true,
        });
        sites.push(GrowthInput {
            current: 20,
            baseline: 4,
            gross: 20,
            sales: 1,
            top: false,
        });
        let nation = GrowthInput {
            current: sites.iter().map(|s| s.current).sum(),
            baseline: sites.iter().map(|s| s.baseline).sum(),
            gross: sites.iter().map(|s| s.gross).sum(),
            sales: sites.iter().map(|s| s.sales).sum(),
            top: false,
        };
        let found = growth(&policy, &sites, &nation);
        // The big one: +400% against the others' ~+9.8%: raised; the MAD is tiny, so the
        // floor (1.0) is the threshold.
        assert!(found[10].raised, "{:?}", found[10]);
        assert!(found[10].by_growth && !found[10].by_order);
        assert_eq!(found[10].threshold, Decimal::ONE);
        // The small one grows as much but holds under 1% of the figure: not raised by growth.
        // Its average order (20) is 0.2 of the others' (100): raised by that instead.
        assert!(found[11].excess.is_some_and(|e| e > Decimal::ONE));
        assert_eq!(found[11].order_value_ratio, Some(Decimal::new(2, 1)));
        assert!(found[11].raised && found[11].by_order && !found[11].by_growth);
        let (condition, statistic, threshold) = found[11].raised_by(&policy).expect("raised");
        assert_eq!(condition, "average order against the nation's");
        assert_eq!(statistic.compare(Ratio::of(1, 5)), Ok(Ordering::Equal));
        assert_eq!(threshold.compare(Ratio::of(1, 2)), Ok(Ordering::Equal));
        let (condition, statistic, threshold) = found[10].raised_by(&policy).expect("raised");
        assert_eq!(condition, "grew beyond the nation");
        assert_eq!(threshold.compare(Ratio::of(1, 1)), Ok(Ordering::Equal));
        assert_eq!(Some(statistic), found[10].excess_ratio());
        assert_eq!(found[0].raised_by(&policy), None);
        let growth_only = Policy {
            order_value_times: 1_000,
            ..Policy::default()
        };
        let found_by_growth = growth(&growth_only, &sites, &nation);
        assert!(!found_by_growth[11].raised && found_by_growth[10].raised);
        // The steady sites are not raised.
        assert!(found[..10].iter().all(|f| !f.raised), "{found:?}");
        // A site without a baseline figure has no growth to judge.
        let newcomer = GrowthInput {
            current: 100,
            baseline: 0,
            gross: 100,
            sales: 1,
            top: true,
        };
        let found = growth(&policy, &[newcomer], &newcomer);
        assert_eq!(found[0].excess, None);
        assert!(!found[0].raised);
    }

    #[test]
    fn an_average_order_twice_the_nations_is_raised() {
        let policy = Policy::default();
        let steady = GrowthInput {
            current: 1_000,
            baseline: 1_000,
            gross: 1_000,
            sales: 10,
            top: false,
        };
        // 100 per order elsewhere; 200 here: raised; 199.99...: not.
        let big_orders = GrowthInput {
            current: 2_000,
            baseline: 2_000,
            gross: 2_000,
            sales: 10,
            top: false,
        };
        let nearly = GrowthInput {
            current: 1_999,
            baseline: 1_999,
            gross: 1_999,
            sales: 10,
            top: false,
        };
        for (site, want) in [(big_orders, true), (nearly, false)] {
            let sites = [steady, steady, site];
            let nation = GrowthInput {
                current: sites.iter().map(|s| s.current).sum(),
                baseline: sites.iter().map(|s| s.baseline).sum(),
                gross: sites.iter().map(|s| s.gross).sum(),
                sales: 30,
                top: false,
            };
            assert_eq!(growth(&policy, &sites, &nation)[2].raised, want);
        }
    }

    #[test]
    fn rules_have_their_contract_names_and_severities() {
        assert_eq!(Rule::LateRefunds.name(), "INTEGRITY_RULE_LATE_REFUNDS");
        assert_eq!(Rule::LateSales.severity(), Severity::High);
        assert_eq!(Rule::RefundRate.severity(), Severity::Medium);
        assert_eq!(
            Rule::StoreConcentration.name(),
            "INTEGRITY_RULE_STORE_CONCENTRATION"
        );
    }

    #[test]
    fn a_site_with_nothing_late_is_never_raised_by_a_zero_threshold() {
        let policy = Policy {
            min_sales: 1,
            min_share: Ratio::of(0, 1),
            late_refunds_points: 0,
            refund_rate_points: 0,
            late_sales_floor: Ratio::of(0, 1),
            ..Policy::default()
        };
        let site = counters(10, 1_000, 0, 0);
        let national = counters(20, 2_000, 0, 0);
        let found = evaluate_rates(&policy, &site, &national);
        for rule in [Rule::LateRefunds, Rule::RefundRate, Rule::LateSales] {
            assert!(!raised(&found, rule), "{rule:?}: {found:?}");
        }
    }

    #[test]
    fn the_percentile_is_by_nearest_rank_and_exact() {
        let r = |n: i128, d: i128| Ratio::new(n, d).expect("ratio");
        assert_eq!(percentile(&[], 99), Ok(None));
        // 13 values: the 99th percentile is the largest (rank ceil(12.87) = 13).
        let mut thirteen: Vec<Ratio> = (0..12).map(|_| r(3, 100)).collect();
        thirteen.push(r(2, 5));
        assert_eq!(percentile(&thirteen, 99), Ok(Some((r(2, 5), r(2, 5)))));
        // 200 values 1/200 .. 200/200, shuffled: the 99th is 198/200, the 50th 100/200.
        let mut many: Vec<Ratio> = (1..=200).map(|i| r(i, 200)).collect();
        many.reverse();
        many.swap(3, 150);
        assert_eq!(percentile(&many, 99), Ok(Some((r(198, 200), r(1, 1)))));
        assert_eq!(percentile(&many, 50), Ok(Some((r(1, 2), r(1, 1)))));
        // Equal fractions written differently compare equal; 0% is the smallest.
        assert_eq!(
            percentile(&[r(2, 4), r(1, 3), r(1, 2)], 0),
            Ok(Some((r(1, 3), r(1, 2))))
        );
        // Too large to cross-multiply: refused, never a guess.
        assert_eq!(
            percentile(&[r(i128::MAX, 1), r(i128::MAX, 3)], 99),
            Err(OutOfRange)
        );
    }

    fn holding(rule: Rule, state: FlagState, raised_at: i64) -> HoldingFlag {
        HoldingFlag {
            rule,
            state,
            raised_at: crate::UnixNanos(raised_at),
        }
    }

    #[test]
    fn one_high_flag_or_two_medium_of_different_families_hold_a_site() {
        use FlagState::{Cleared, Confirmed, Open, UnderReview};
        // One high flag, whatever its review state but cleared.
        for state in [Open, UnderReview, Confirmed] {
            let flags = [
                holding(Rule::RefundRate, Open, 1),
                holding(Rule::SettlementRank, state, 2),
            ];
            assert_eq!(auto_hold_grounds(&flags, None), Some(vec![1]));
        }
        assert_eq!(
            auto_hold_grounds(&[holding(Rule::LateSales, Cleared, 1)], None),
            None
        );
        // One medium flag alone, or two of one family: not enough.
        assert_eq!(
            auto_hold_grounds(&[holding(Rule::RefundRate, Open, 1)], None),
            None
        );
        let same_family = [
            holding(Rule::HourShape, Open, 1),
            holding(Rule::Burst, Open, 2),
            holding(Rule::Growth, Open, 3),
        ];
        assert_eq!(auto_hold_grounds(&same_family, None), None);
        // Two medium flags of different families: both named, the first of each.
        let mixed = [
            holding(Rule::HourShape, Open, 1),
            holding(Rule::Burst, Open, 2),
            holding(Rule::StoreConcentration, UnderReview, 3),
        ];
        assert_eq!(auto_hold_grounds(&mixed, None), Some(vec![0, 2]));
        // A low flag never counts, even beside a medium one of another family.
        let low = [
            holding(Rule::AmountPattern, Open, 1),
            holding(Rule::RefundRate, Open, 2),
        ];
        assert_eq!(auto_hold_grounds(&low, None), None);
        // A cleared medium flag does not make the pair.
        let cleared = [
            holding(Rule::RefundRate, Cleared, 1),
            holding(Rule::HourShape, Open, 2),
        ];
        assert_eq!(auto_hold_grounds(&cleared, None), None);
        assert_eq!(auto_hold_grounds(&[], None), None);
    }

    #[test]
    fn a_release_stands_until_a_flag_raised_after_it() {
        let flags = [
            holding(Rule::SettlementRank, FlagState::Open, 10),
            holding(Rule::RefundRate, FlagState::Open, 30),
        ];
        // Released at 20: the high flag of 10 was seen; the medium one of 30 alone is not enough.
        assert_eq!(auto_hold_grounds(&flags, Some(crate::UnixNanos(20))), None);
        // Released at 5: the high flag came after.
        assert_eq!(
            auto_hold_grounds(&flags, Some(crate::UnixNanos(5))),
            Some(vec![0])
        );
        // Raised at the very nanosecond of the release: seen by it.
        assert_eq!(auto_hold_grounds(&flags, Some(crate::UnixNanos(10))), None);
        // A new medium flag of another family after the release, with the one of 30: held.
        let more = [
            flags[0],
            flags[1],
            holding(Rule::StoreConcentration, FlagState::Open, 40),
        ];
        assert_eq!(
            auto_hold_grounds(&more, Some(crate::UnixNanos(20))),
            Some(vec![1, 2])
        );
    }

    #[test]
    fn every_rule_has_a_family_and_every_family_a_medium_rule() {
        for family in [Family::RefundsAndTime, Family::Shape, Family::Mix] {
            assert!(
                Rule::ALL
                    .iter()
                    .any(|r| r.family() == family && r.severity() == Severity::Medium),
                "{family:?}"
            );
        }
    }

    proptest::proptest! {
        /// The exact decision agrees with the same comparison made on wide integers directly:
        /// statistic ≥ threshold, for any figures in range.
        #[test]
        fn refund_rate_decision_is_exact(
            others_gross in 1_i128..1_000_000_000_000,
            others_refunded_per_mille in 0_i128..1_000,
            site_gross in 1_i128..1_000_000_000_000,
            site_refunded_per_mille in 0_i128..1_000,
        ) {
            let policy = Policy { min_sales: 0, min_share: Ratio::of(0, 1), ..Policy::default() };
            let others_refunded = others_gross * others_refunded_per_mille / 1_000;
            let site_refunded = site_gross * site_refunded_per_mille / 1_000;
            let site = counters(1, site_gross, site_refunded, 0);
            let national = counters(2, others_gross + site_gross, others_refunded + site_refunded, 0);
            let found = evaluate_rates(&policy, &site, &national);
            // s/g ≥ max(2 n/G, n/G + 1/10)  ⇔  s·G ≥ 2 n·g  and  10 s·G ≥ (10 n + G)·g
            let s = site_refunded; let g = site_gross; let n = others_refunded; let big_g = others_gross;
            let expected = s * big_g >= 2 * n * g && 10 * s * big_g >= (10 * n + big_g) * g;
            proptest::prop_assert_eq!(raised(&found, Rule::RefundRate), expected);
        }
    }
}
