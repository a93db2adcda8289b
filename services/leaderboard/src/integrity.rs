//! Integrity flags (issue 28), evaluated from the board's own snapshot: never a ledger scan.
//! Every 2 s, when the current event's figures (a new snapshot) or its policy moved, each enabled
//! site's counters (from the totals the snapshot holds, converted into the reporting currency
//! with the event's rates) are held against the nation's without it, with the event's policy;
//! a rule that holds raises a flag (kept with its evaluation: the figures read, the threshold,
//! the ledger position), a holding flag whose rule no longer holds is marked with the position
//! that showed it. Several leaderboard processes may evaluate the same figures: the store keeps
//! one holding flag per (event, site, rule).
//!
//! With the event's policy's automatic hold on, a site with grounds in its holding flags (one
//! high, or two medium of different families: the domain's `auto_hold_grounds`) is held: an
//! action proposed by `policy:auto-hold` and approved at once for the organizer who turned the
//! policy on, both in the audit log, as any hold. A release by organizers stands until a flag
//! raised after it gives new grounds.
//!
//! Rules evaluated so far: `INTEGRITY_RULE_REFUND_RATE` (refunded ÷ gross, from the totals),
//! `INTEGRITY_RULE_LATE_REFUNDS` and `INTEGRITY_RULE_LATE_SALES` (from the late figures the
//! aggregator's fold keeps, `saleboard_domain::late`, read with their breakdown watermark) and
//! `INTEGRITY_RULE_SETTLEMENT_RANK` (the places by gross at the end, stored at the first
//! evaluation after it, against the places by net now) and `INTEGRITY_RULE_GROWTH` (each
//! site's net now against its net in the baseline event at the same elapsed time: the
//! comparison the snapshot already holds, from the hourly totals) and
//! `INTEGRITY_RULE_AMOUNT_PATTERN` (the round amounts' share, counted with the late figures;
//! evidence beside another flag, never raised alone). The hour shape, burst and store rules
//! need counters the aggregator's fold does not keep yet (issue 28 goes on).

use std::sync::Arc;
use std::time::Duration;

use saleboard_domain::action::{AUTO_HOLD, ActionKind, ActionState};
use saleboard_domain::comparison::Baseline;
use saleboard_domain::integrity::{
    AmountCounters, Decision, Evaluation, FlagState, GrowthInput, HoldingFlag, Policy,
    RULES_VERSION, Ratio, Rule, SiteCounters, amount_pattern, auto_hold_grounds, evaluate_rates,
    growth, percentile, settlement_rank,
};
use saleboard_domain::late::LateTotals;
use saleboard_domain::totals::TotalsKey;
use saleboard_domain::{SiteId, UnixNanos};
use saleboard_storage::{
    ActionDecision, ActionRecord, Audit, AuditCall, FlagEvaluation, FlagRecord, StorageError, Store,
};
use tokio::sync::watch;

use crate::board::Board;

/// How often the flags are evaluated, at most.
pub const EVALUATE_EVERY: Duration = Duration::from_secs(2);

/// How long after its close an event is still evaluated (its figures are final once the
/// board has read every row committed by the close: a minute after it at most, plus lag), so
/// its flags are judged once more on its final figures.
pub const AFTER_CLOSE_NS: i64 = 5 * 60 * 1_000_000_000;

/// Decimals of a flag's figure that has no exact decimal (1/3), rounded (the decision is made
/// on the exact fraction).
const PLACES: u32 = 18;

/// The rate rules evaluated now (the settlement rank is evaluated on its own, once the event
/// ended, and the growth rule when the event has a baseline): their counters are the totals
/// and the fold's late figures.
const EVALUATED: [Rule; 3] = [Rule::LateRefunds, Rule::RefundRate, Rule::LateSales];

/// A rule found holding for a site, with every figure its evaluation read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    /// The site.
    pub site: SiteId,
    /// The evaluation.
    pub evaluation: Evaluation,
    /// (name, exact decimal) of every input and threshold used.
    pub inputs: Vec<(String, String)>,
}

/// What one evaluation found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// Every rule that holds.
    pub raised: Vec<Raised>,
    /// (site, rule) decided and not holding.
    pub not_holding: Vec<(SiteId, Rule)>,
    /// Sites below the minimum support.
    pub undecided: u32,
    /// Every decided site's statistic per rule, raised or not (for the settlement rank: the
    /// places moved between the end and now): what a backtest sums up.
    pub statistics: Vec<(Rule, Ratio)>,
}

/// The inputs every rule reports: the site's and the nation's (without it) counters, and the
/// minimum support.
fn support_inputs(
    policy: &Policy,
    site: &SiteCounters,
    nat: &SiteCounters,
) -> Vec<(String, String)> {
    let mut inputs = vec![
        ("site_sales".to_owned(), site.sales.to_string()),
        ("site_gross_minor".to_owned(), site.gross.to_string()),
        ("site_refunded_minor".to_owned(), site.refunded.to_string()),
        ("national_sales".to_owned(), nat.sales.to_string()),
        ("national_gross_minor".to_owned(), nat.gross.to_string()),
        (
            "national_refunded_minor".to_owned(),
            nat.refunded.to_string(),
        ),
    ];
    inputs.push(("min_sales".to_owned(), policy.min_sales.to_string()));
    inputs.push((
        "min_share_decimal".to_owned(),
        policy
            .min_share
            .exact_decimal()
            .unwrap_or_else(|| policy.min_share.to_decimal(9)),
    ));
    inputs
}

/// The inputs and thresholds of one rate rule, beside the support inputs.
fn rule_inputs(
    policy: &Policy,
    rule: Rule,
    site: &SiteCounters,
    nat: &SiteCounters,
) -> Vec<(String, String)> {
    let pair = |name: &str, value: String| (name.to_owned(), value);
    match rule {
        Rule::LateRefunds => vec![
            pair("site_late_refunded_minor", site.late_refunded.to_string()),
            pair("site_late_gross_minor", site.late_gross.to_string()),
            pair("national_late_gross_minor", nat.late_gross.to_string()),
            pair(
                "national_late_refunded_minor",
                nat.late_refunded.to_string(),
            ),
            pair("late_refunds_times", policy.late_refunds_times.to_string()),
            pair(
                "late_refunds_points",
                policy.late_refunds_points.to_string(),
            ),
        ],
        Rule::LateSales => vec![
            pair("site_late_sales_minor", site.late_sales.to_string()),
            pair("site_late_gross_minor", site.late_gross.to_string()),
            pair("national_late_gross_minor", nat.late_gross.to_string()),
            pair("national_late_sales_minor", nat.late_sales.to_string()),
            pair("late_sales_times", policy.late_sales_times.to_string()),
            pair(
                "late_sales_floor_decimal",
                policy
                    .late_sales_floor
                    .exact_decimal()
                    .unwrap_or_else(|| policy.late_sales_floor.to_decimal(9)),
            ),
        ],
        _ => vec![
            pair("refund_rate_times", policy.refund_rate_times.to_string()),
            pair("refund_rate_points", policy.refund_rate_points.to_string()),
        ],
    }
}

/// The places of `sites` by `figure`, highest first (equal figures by site id), of the sites
/// with any sale.
fn ranking(
    sites: &[(SiteId, SiteCounters)],
    figure: impl Fn(&SiteCounters) -> i128,
) -> Vec<SiteId> {
    let mut ranked: Vec<&(SiteId, SiteCounters)> =
        sites.iter().filter(|(_, c)| c.sales > 0).collect();
    ranked.sort_by(|(a, ca), (b, cb)| figure(cb).cmp(&figure(ca)).then_with(|| a.cmp(b)));
    ranked.into_iter().map(|(s, _)| s.clone()).collect()
}

/// Evaluates every site of `sites` (id and counters) against the nation they add up to; with
/// `end_ranking` (the places by gross at the event's end, once it ended), the settlement rank
/// against the places by net now.
#[must_use]
pub fn evaluate(
    policy: &Policy,
    sites: &[(SiteId, SiteCounters)],
    end_ranking: Option<&[SiteId]>,
) -> Found {
    evaluate_with(policy, sites, end_ranking, None)
}

/// [`evaluate`], and with `baseline` (the event's comparison with its baseline event: each
/// site's net there at the same elapsed time, converted as the comparison converts it) the
/// growth rule over the decided sites.
#[must_use]
pub fn evaluate_with(
    policy: &Policy,
    sites: &[(SiteId, SiteCounters)],
    end_ranking: Option<&[SiteId]>,
    baseline: Option<&Baseline>,
) -> Found {
    let mut found = candidates(policy, sites, end_ranking, baseline);
    evidence_beside(&mut found, |_| false);
    found
}

/// [`evaluate_with`], the amount pattern raised wherever it holds: evidence a caller keeps
/// only beside another flag ([`evidence_beside`]).
fn candidates(
    policy: &Policy,
    sites: &[(SiteId, SiteCounters)],
    end_ranking: Option<&[SiteId]>,
    baseline: Option<&Baseline>,
) -> Found {
    let mut found = Found::default();
    let mut decided: Vec<usize> = Vec::with_capacity(sites.len());
    let Ok(national) = sites
        .iter()
        .try_fold(SiteCounters::default(), |sum, (_, c)| sum.plus(c))
    else {
        tracing::error!("the national counters do not fit; no flag is evaluated");
        return found;
    };
    let by_net = end_ranking.map(|_| ranking(sites, |c| c.gross.saturating_sub(c.refunded)));
    for (index, (site, counters)) in sites.iter().enumerate() {
        let nat = national.excluding(counters).unwrap_or_default();
        let mut undecided = false;
        for (rule, decision) in evaluate_rates(policy, counters, &national) {
            if !EVALUATED.contains(&rule) {
                continue;
            }
            if let Decision::Evaluated(e) = &decision
                && let Some(statistic) = Ratio::new(e.statistic.0, e.statistic.1)
            {
                found.statistics.push((rule, statistic));
            }
            match decision {
                Decision::Undecided => undecided = true,
                // The late figures have not reached the event's rows yet: neither raised nor
                // cleared now.
                Decision::OutOfRange | Decision::Behind => {}
                Decision::Evaluated(e) if e.raised => {
                    let mut inputs = support_inputs(policy, counters, &nat);
                    inputs.extend(rule_inputs(policy, rule, counters, &nat));
                    found.raised.push(Raised {
                        site: site.clone(),
                        evaluation: e,
                        inputs,
                    });
                }
                Decision::Evaluated(_) => found.not_holding.push((site.clone(), rule)),
            }
        }
        if undecided {
            found.undecided += 1;
            continue;
        }
        decided.push(index);
        if let (Some(end), Some(now)) = (end_ranking, &by_net) {
            let moved = settlement_rank(policy, site, end, now);
            // A place past the ranked ones for a site no longer ranked.
            let past = now.len() + 1;
            let (from, to) = (moved.at_end.unwrap_or(past), moved.at_close.unwrap_or(past));
            let whole = |n: usize| i128::try_from(n).unwrap_or(i128::MAX);
            if (moved.at_end.is_some() || moved.at_close.is_some())
                && let Some(places) = Ratio::new(whole(from.abs_diff(to)), 1)
            {
                found.statistics.push((Rule::SettlementRank, places));
            }
            if moved.raised {
                // The condition that held: out of the top places (the place now against the
                // first place outside them), else the places moved within them.
                let (condition, statistic, threshold) = if to > policy.rank_top {
                    (
                        "left the top places",
                        whole(to),
                        whole(policy.rank_top.saturating_add(1)),
                    )
                } else {
                    (
                        "moved within the top places",
                        whole(from.abs_diff(to)),
                        whole(policy.rank_moves),
                    )
                };
                let mut inputs = support_inputs(policy, counters, &nat);
                inputs.extend([
                    ("place_by_gross_at_end".to_owned(), from.to_string()),
                    ("place_by_net_now".to_owned(), to.to_string()),
                    ("rank_top".to_owned(), policy.rank_top.to_string()),
                    ("rank_moves".to_owned(), policy.rank_moves.to_string()),
                    ("condition".to_owned(), condition.to_owned()),
                ]);
                found.raised.push(Raised {
                    site: site.clone(),
                    evaluation: Evaluation {
                        rule: Rule::SettlementRank,
                        statistic: (statistic, 1),
                        national: None,
                        threshold: (threshold, 1),
                        raised: true,
                    },
                    inputs,
                });
            } else {
                found.not_holding.push((site.clone(), Rule::SettlementRank));
            }
        }
    }
    if let Some(baseline) = baseline.filter(|b| b.unconverted.is_empty()) {
        evaluate_growth(policy, sites, &decided, &national, baseline, &mut found);
    }
    evaluate_amounts(policy, sites, &decided, &national, &mut found);
    found
}

/// Keeps `INTEGRITY_RULE_AMOUNT_PATTERN` (evidence only) raised for a site only beside another
/// flag: a rule raised in this evaluation, or one `holding_otherwise` says holds and this
/// evaluation does not clear. Never alone: a site it would raise alone is not raised, and an
/// evidence flag it had clears (its companion cleared).
fn evidence_beside(found: &mut Found, holding_otherwise: impl Fn(&SiteId) -> bool) {
    let beside: std::collections::BTreeSet<SiteId> = found
        .raised
        .iter()
        .filter(|r| r.evaluation.rule != Rule::AmountPattern)
        .map(|r| r.site.clone())
        .collect();
    let (kept, alone): (Vec<Raised>, Vec<Raised>) = std::mem::take(&mut found.raised)
        .into_iter()
        .partition(|r| {
            r.evaluation.rule != Rule::AmountPattern
                || beside.contains(&r.site)
                || holding_otherwise(&r.site)
        });
    found.raised = kept;
    found
        .not_holding
        .extend(alone.into_iter().map(|r| (r.site, Rule::AmountPattern)));
}

/// `INTEGRITY_RULE_AMOUNT_PATTERN` over the decided sites, from the counts the fold keeps with
/// the late figures (the sales and those at a round amount, at one position): raised wherever
/// it holds, as a candidate [`evidence_beside`] keeps only beside another flag.
fn evaluate_amounts(
    policy: &Policy,
    sites: &[(SiteId, SiteCounters)],
    decided: &[usize],
    national: &SiteCounters,
    found: &mut Found,
) {
    let amounts = |c: &SiteCounters| AmountCounters {
        sales: c.folded_sales,
        round: c.round_sales,
        // The most repeated amount is not counted by the fold (see the README).
        top_count: 0,
        top_refunded: 0,
    };
    for &index in decided {
        let (site, counters) = &sites[index];
        let Ok(nat) = national.excluding(counters) else {
            continue;
        };
        let Ok(Some(evaluation)) = amount_pattern(policy, &amounts(counters), &amounts(&nat))
        else {
            continue;
        };
        if let Some(share) = Ratio::new(evaluation.statistic.0, evaluation.statistic.1) {
            found.statistics.push((Rule::AmountPattern, share));
        }
        if !evaluation.raised {
            found.not_holding.push((site.clone(), Rule::AmountPattern));
            continue;
        }
        let mut inputs = support_inputs(policy, counters, &nat);
        inputs.extend([
            (
                "site_round_sales".to_owned(),
                counters.round_sales.to_string(),
            ),
            (
                "site_folded_sales".to_owned(),
                counters.folded_sales.to_string(),
            ),
            (
                "national_round_sales".to_owned(),
                nat.round_sales.to_string(),
            ),
            (
                "national_folded_sales".to_owned(),
                nat.folded_sales.to_string(),
            ),
            ("round_z".to_owned(), policy.round_z.to_string()),
            ("round_times".to_owned(), policy.round_times.to_string()),
        ]);
        found.raised.push(Raised {
            site: site.clone(),
            evaluation,
            inputs,
        });
    }
}

/// `INTEGRITY_RULE_GROWTH` over the decided sites (`decided`: their indices in `sites`): each
/// site's net now against its net in the baseline at the same elapsed time, beyond the
/// nation's growth without it, held against max(the floor, `growth_mads` × the median
/// absolute deviation over the sites) for a site in the top places by net or with at least
/// `growth_share` of the national net; and its average order against the nation's.
fn evaluate_growth(
    policy: &Policy,
    sites: &[(SiteId, SiteCounters)],
    decided: &[usize],
    national: &SiteCounters,
    baseline: &Baseline,
    found: &mut Found,
) {
    let net = |c: &SiteCounters| c.gross.saturating_sub(c.refunded);
    let top: Vec<SiteId> = ranking(sites, net)
        .into_iter()
        .take(policy.rank_top)
        .collect();
    let inputs: Vec<GrowthInput> = decided
        .iter()
        .map(|&i| {
            let (site, c) = &sites[i];
            GrowthInput {
                current: net(c),
                baseline: baseline.per_site.get(site).copied().unwrap_or(0),
                gross: c.gross,
                sales: c.sales,
                top: top.contains(site),
            }
        })
        .collect();
    // The nation is the sites evaluated now, in both figures (a site disabled since, or with
    // a currency without a rate, is in neither).
    let nation_baseline = sites
        .iter()
        .filter_map(|(site, _)| baseline.per_site.get(site))
        .try_fold(0i128, |sum, v| sum.checked_add(*v))
        .unwrap_or(baseline.national);
    let nation = GrowthInput {
        current: net(national),
        baseline: nation_baseline,
        gross: national.gross,
        sales: national.sales,
        top: false,
    };
    for ((&i, input), finding) in decided
        .iter()
        .zip(&inputs)
        .zip(growth(policy, &inputs, &nation))
    {
        let (site, counters) = &sites[i];
        if let Some(excess) = finding.excess_ratio() {
            found.statistics.push((Rule::Growth, excess));
        }
        let Some((condition, statistic, threshold)) = finding.raised_by(policy) else {
            found.not_holding.push((site.clone(), Rule::Growth));
            continue;
        };
        let text = |d: Option<String>| d.unwrap_or_default();
        let nat = national.excluding(counters).unwrap_or_default();
        let mut named = support_inputs(policy, counters, &nat);
        named.extend([
            ("site_net_now_minor".to_owned(), input.current.to_string()),
            (
                "site_baseline_net_minor".to_owned(),
                input.baseline.to_string(),
            ),
            (
                "national_net_now_minor".to_owned(),
                nation.current.to_string(),
            ),
            (
                "national_baseline_net_minor".to_owned(),
                nation.baseline.to_string(),
            ),
            (
                "growth_excess_decimal".to_owned(),
                text(finding.excess.map(|d| d.normalize().to_string())),
            ),
            (
                "growth_threshold_decimal".to_owned(),
                finding.threshold.normalize().to_string(),
            ),
            (
                "order_value_ratio_decimal".to_owned(),
                text(finding.order_value_ratio.map(|d| d.normalize().to_string())),
            ),
            ("in_top_places".to_owned(), input.top.to_string()),
            ("growth_mads".to_owned(), policy.growth_mads.to_string()),
            (
                "growth_floor_decimal".to_owned(),
                policy
                    .growth_floor
                    .exact_decimal()
                    .unwrap_or_else(|| policy.growth_floor.to_decimal(9)),
            ),
            (
                "growth_share_decimal".to_owned(),
                policy
                    .growth_share
                    .exact_decimal()
                    .unwrap_or_else(|| policy.growth_share.to_decimal(9)),
            ),
            (
                "order_value_times".to_owned(),
                policy.order_value_times.to_string(),
            ),
            ("condition".to_owned(), condition.to_owned()),
        ]);
        found.raised.push(Raised {
            site: site.clone(),
            evaluation: Evaluation {
                rule: Rule::Growth,
                statistic: statistic.parts(),
                national: None,
                threshold: threshold.parts(),
                raised: true,
            },
            inputs: named,
        });
    }
}

/// The fraction's exact decimal when it has one (every fraction of minor units over a power
/// of ten does), else rounded half away from zero to [`PLACES`] decimals.
fn decimal((num, den): (i128, i128)) -> String {
    Ratio::new(num, den).map_or_else(String::new, |r| {
        r.exact_decimal().unwrap_or_else(|| r.to_decimal(PLACES))
    })
}

/// One rule over a past event's sites.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleBacktest {
    /// The rule.
    pub rule: Rule,
    /// Why the rule was not run over the event (`None`: it was).
    pub not_evaluated: Option<&'static str>,
    /// Decided sites, each with a statistic.
    pub sites: u32,
    /// Of them, raised by the thresholds.
    pub raised: u32,
    /// The 99th percentile and the largest value of the statistic (`None` without sites).
    pub p99_max: Option<(Ratio, Ratio)>,
}

/// What a rule's statistic measures, as a backtest states it.
#[must_use]
pub fn statistic_of(rule: Rule) -> &'static str {
    match rule {
        Rule::LateRefunds => "refunds received at or after the end / gross",
        Rule::RefundRate => "refunded / gross",
        Rule::LateSales => "sales received over 1 h late or after the end / gross",
        Rule::SettlementRank => {
            "places moved between the end (by gross) and now (by net); past the last place when no longer ranked"
        }
        Rule::HourShape => "total variation distance of the hourly shares from the nation's",
        Rule::Burst => "busiest second / median active second",
        Rule::Growth => "growth on the baseline beyond the nation's",
        Rule::StoreConcentration => "largest share of gross from one store new since the baseline",
        Rule::AmountPattern => "share of sales at a round amount",
    }
}

/// Every rule over `sites` (an event's, with its `policy` and, once it ended, its places at
/// the end): per rule the decided sites, how many are raised, and the 99th percentile and the
/// largest value of the statistic; and the undecided sites.
#[must_use]
pub fn backtest(
    policy: &Policy,
    sites: &[(SiteId, SiteCounters)],
    end_ranking: Option<&[SiteId]>,
    baseline: Option<&Baseline>,
) -> (Vec<RuleBacktest>, u32) {
    let found = evaluate_with(policy, sites, end_ranking, baseline);
    let rules = Rule::ALL
        .into_iter()
        .map(|rule| {
            let not_evaluated = if EVALUATED.contains(&rule) {
                None
            } else if rule == Rule::AmountPattern {
                // Its statistic is every decided site's; it is raised only beside another.
                None
            } else if rule == Rule::SettlementRank {
                end_ranking.is_none().then_some(
                    "the event's places at its end were not stored (no leaderboard evaluated it after its end)",
                )
            } else if rule == Rule::Growth {
                match baseline {
                    None => Some("the event has no baseline event to grow from"),
                    Some(b) if !b.unconverted.is_empty() => Some(
                        "the baseline has sales in a currency without a rate: no comparison",
                    ),
                    Some(_) => None,
                }
            } else {
                Some("not evaluated yet: its counters are not kept by the aggregator's fold")
            };
            let values: Vec<Ratio> = found
                .statistics
                .iter()
                .filter(|(r, _)| *r == rule)
                .map(|(_, v)| *v)
                .collect();
            let p99_max = percentile(&values, 99).unwrap_or_else(|_| {
                tracing::warn!(
                    rule = rule.name(),
                    "a statistic is too large to compare exactly; no percentile"
                );
                None
            });
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            RuleBacktest {
                rule,
                not_evaluated,
                sites: count(values.len()),
                raised: count(
                    found
                        .raised
                        .iter()
                        .filter(|r| r.evaluation.rule == rule)
                        .count(),
                ),
                p99_max,
            }
        })
        .collect();
    (rules, found.undecided)
}

/// A backtest of the event `event_id` from the figures the board holds of it, with the
/// event's policy: (the figures' watermark, the sites with sales, the rules, the undecided
/// sites). `None` for an unknown event.
///
/// # Errors
/// When storage cannot be read.
pub async fn backtest_event(
    store: &dyn Store,
    board: &Board,
    event_id: &str,
) -> Result<Option<(u64, u32, Vec<RuleBacktest>, u32)>, StorageError> {
    let Some(snapshot) = board.of_event(event_id).await? else {
        return Ok(None);
    };
    let f = &snapshot.figures;
    let Some((_, reporting)) = &f.event else {
        return Ok(None);
    };
    let stored = store.integrity_policy(event_id).await?;
    let policy = policy_of(event_id, stored.as_ref());
    let (_, late) = store.event_late(event_id).await?;
    let (sites, unconverted) = site_counters(f, *reporting, &late);
    let end = store.end_ranking(event_id).await?;
    let (rules, undecided) = backtest(&policy, &sites, end.as_deref(), baseline_of(f));
    let with_sales = sites.iter().filter(|(_, c)| c.sales > 0).count();
    let with_sales = u32::try_from(with_sales)
        .unwrap_or(u32::MAX)
        .saturating_add(unconverted);
    Ok(Some((
        f.watermark,
        with_sales,
        rules,
        undecided.saturating_add(unconverted),
    )))
}

/// The snapshot's comparison with the event's baseline, when it has one that converts.
fn baseline_of(f: &crate::snapshot::Figures) -> Option<&Baseline> {
    f.comparison.as_ref().and_then(|c| c.figure.as_ref().ok())
}

/// The flag record of a raised evaluation.
fn flag(
    event_id: &str,
    watermark: u64,
    now: UnixNanos,
    raised: &Raised,
) -> Result<FlagRecord, String> {
    let e = &raised.evaluation;
    let inputs: Vec<[&str; 2]> = raised
        .inputs
        .iter()
        .map(|(n, v)| [n.as_str(), v.as_str()])
        .collect();
    let seed = saleboard_runtime::auth::random_secret("", 8).map_err(|e| e.to_string())?;
    Ok(FlagRecord {
        sample_seed: u64::from_str_radix(&seed, 16).map_err(|e| e.to_string())?,
        flag_id: saleboard_runtime::auth::random_secret("flg-", 16).map_err(|e| e.to_string())?,
        event_id: event_id.to_owned(),
        site_id: raised.site.clone(),
        rule: e.rule,
        rule_version: RULES_VERSION,
        severity: e.rule.severity(),
        state: FlagState::Open,
        statistic: decimal(e.statistic),
        threshold: decimal(e.threshold),
        national: e.national.map(decimal).unwrap_or_default(),
        inputs_json: serde_json::to_string(&inputs).map_err(|e| e.to_string())?,
        watermark,
        raised_at: now,
        cleared_at_watermark: None,
        reviewed_by: None,
        reviewed_at: None,
        note: String::new(),
    })
}

/// The event's policy as stored (the defaults when never set, or when the stored one no
/// longer reads: said in the log).
fn policy_of(event_id: &str, stored: Option<&saleboard_storage::PolicyRecord>) -> Policy {
    let Some(record) = stored else {
        return Policy::default();
    };
    let read = saleboard_proto::json::from_str(&record.overrides_json)
        .map_err(|e| e.to_string())
        .and_then(|set| crate::policy::from_message(&set).map_err(|s| s.message().to_owned()));
    read.unwrap_or_else(|e| {
        tracing::error!(event = event_id, error = %e, "the stored integrity policy does not read; evaluating with the defaults");
        Policy::default()
    })
}

/// Each enabled site's counters in the reporting currency, from the snapshot's totals and
/// rates, and how many sites were left out for sales in a currency without a rate (neither
/// raised nor cleared: counted as undecided).
fn site_counters(
    f: &crate::snapshot::Figures,
    reporting: saleboard_domain::Currency,
    late: &[(TotalsKey, LateTotals)],
) -> (Vec<(SiteId, SiteCounters)>, u32) {
    let mut unconverted = 0u32;
    // The late rows by site, once (a row per site and currency sold in).
    let mut late_of: std::collections::HashMap<
        &SiteId,
        Vec<(saleboard_domain::Currency, &LateTotals)>,
    > = std::collections::HashMap::new();
    for ((_, site, currency), l) in late {
        late_of.entry(site).or_default().push((*currency, l));
    }
    let sites = f
        .sites
        .iter()
        .filter(|s| s.disabled_at.is_none())
        .filter_map(|s| {
            let totals = f.totals.get(&s.site_id)?;
            let of_site = late_of
                .get(&s.site_id)
                .into_iter()
                .flatten()
                .map(|(currency, l)| (*currency, *l));
            let counters = SiteCounters::from_totals(totals, &f.rates, reporting).and_then(
                |(counters, left_out)| {
                    Ok((counters.with_late(of_site, &f.rates, reporting)?, left_out))
                },
            );
            match counters {
                Ok((counters, left_out)) if left_out.is_empty() => {
                    Some((s.site_id.clone(), counters))
                }
                Ok(_) => {
                    unconverted += 1;
                    None
                }
                Err(_) => {
                    tracing::warn!(site = %s.site_id, "a site's figures do not fit the integrity counters; not evaluated");
                    None
                }
            }
        })
        .collect();
    (sites, unconverted)
}

/// What the last evaluation read: the snapshot's generation, the policy as stored, whether
/// the event had ended (its end takes the places at the end), and the late figures with their
/// watermark (a recount moves them without a new snapshot). The same again gives the same
/// flags: nothing is evaluated or written.
pub type Evaluated = (
    u64,
    Option<(String, i64)>,
    bool,
    (u64, Vec<(TotalsKey, LateTotals)>),
);

/// Evaluates the flags of the current event, of every other event still settling, and of
/// those closed less than [`AFTER_CLOSE_NS`] ago (each snapshot built by the board, reused while its figures have not moved), each unless what it
/// read is what `last` holds for it; updates `last`.
///
/// # Errors
/// When storage cannot be read or written (the events evaluated before stay in `last`).
pub async fn evaluate_events(
    store: &dyn Store,
    board: &Board,
    last: &mut std::collections::HashMap<String, Evaluated>,
) -> Result<(), StorageError> {
    let current = board.current();
    let current_id = current.figures.event.as_ref().map(|(id, _)| id.clone());
    let mut snapshots = vec![current];
    // Settling events, and those closed a short while ago: judged once more at their close,
    // on their final figures (rows committed just before the close included).
    let now = UnixNanos::now();
    let events = board.events();
    let settling: Vec<String> = events
        .settling(now)
        .chain(events.closed_within(now, AFTER_CLOSE_NS))
        .map(|e| e.event_id.clone())
        .filter(|id| Some(id) != current_id.as_ref())
        .collect();
    for id in settling {
        if let Some(snapshot) = board.of_event(&id).await? {
            snapshots.push(snapshot);
        }
    }
    for snapshot in snapshots {
        let Some((event_id, _)) = snapshot.figures.event.clone() else {
            continue;
        };
        if let Some(read) = evaluate_snapshot(store, board, &snapshot, last.get(&event_id)).await? {
            last.insert(event_id, read);
        }
    }
    Ok(())
}

/// Evaluates the flags of the event of `snapshot` once, unless the snapshot, the policy and
/// whether the event ended are what `last` read; returns what it read.
async fn evaluate_snapshot(
    store: &dyn Store,
    board: &Board,
    snapshot: &crate::snapshot::Snapshot,
    last: Option<&Evaluated>,
) -> Result<Option<Evaluated>, StorageError> {
    if snapshot.stale {
        return Ok(None);
    }
    let f = &snapshot.figures;
    let Some((event_id, reporting)) = &f.event else {
        return Ok(None);
    };
    let stored = store.integrity_policy(event_id).await?;
    let now = UnixNanos::now();
    let ended = board
        .events()
        .get(event_id)
        .is_some_and(|e| now >= e.ends_at);
    // The late figures, at the breakdown watermark (written with the breakdowns).
    let late_read = store.event_late(event_id).await?;
    let read: Evaluated = (
        snapshot.generation,
        stored
            .as_ref()
            .map(|p| (p.overrides_json.clone(), p.updated_at.0)),
        ended,
        late_read,
    );
    if last == Some(&read) {
        return Ok(Some(read));
    }
    let policy = policy_of(event_id, stored.as_ref());
    let late_watermark = read.3.0;
    let (sites, unconverted) = site_counters(f, *reporting, &read.3.1);
    // Once the event ended: the places by gross at the end, taken at the first evaluation
    // after it whose figures hold every row committed by then (the ledger's head read now,
    // after the end: one row, no scan). The first one stored stands, whichever process took it.
    let mut read = read;
    let end_ranking = if ended {
        match store.end_ranking(event_id).await? {
            Some(stored) => Some(stored),
            None if f.watermark >= store.ledger_head().await? => {
                let at_end = ranking(&sites, |c| c.gross);
                store
                    .record_end_ranking(event_id, &at_end, f.watermark)
                    .await?;
                store.end_ranking(event_id).await?
            }
            None => {
                // The figures do not hold the end yet: evaluated again at the next tick.
                read.2 = false;
                None
            }
        }
    } else {
        None
    };
    let mut found = candidates(&policy, &sites, end_ranking.as_deref(), baseline_of(f));
    found.undecided = found.undecided.saturating_add(unconverted);
    // The late figures go with the breakdowns, behind the headline figures while the ledger is
    // busy. Their shares are exact at their own position (the late figures over the gross
    // folded with them, never the headline's gross), so they may raise a flag then; a flag is
    // cleared only once they are at the headline's position, the one its clearing records.
    if late_watermark != f.watermark {
        found
            .not_holding
            .retain(|(_, rule)| !matches!(rule, Rule::LateRefunds | Rule::LateSales));
    }
    // The amount pattern stays beside another flag: one raised now, or one holding that this
    // evaluation does not clear (a late flag kept while the late figures lag); alone, it
    // clears, whatever the watermarks (its counts are exact at their own position).
    let holding = store.holding_flags(event_id).await?;
    let kept: Vec<&SiteId> = holding
        .iter()
        .filter(|h| {
            h.rule != Rule::AmountPattern && !found_clears(&found.not_holding, &h.site_id, h.rule)
        })
        .map(|h| &h.site_id)
        .collect();
    evidence_beside(&mut found, |site| kept.contains(&site));
    // The position the late figures were read at.
    for r in &mut found.raised {
        if matches!(
            r.evaluation.rule,
            Rule::LateRefunds | Rule::LateSales | Rule::AmountPattern
        ) {
            r.inputs.push((
                "late_figures_watermark".to_owned(),
                late_watermark.to_string(),
            ));
        }
    }
    let raised = found
        .raised
        .iter()
        .map(|r| flag(event_id, f.watermark, now, r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StorageError::Database(Box::new(std::io::Error::other(e))))?;
    let cleared: Vec<String> = holding
        .iter()
        .filter(|h| {
            found
                .not_holding
                .iter()
                .any(|(site, rule)| *site == h.site_id && *rule == h.rule)
        })
        .map(|h| h.flag_id.clone())
        .collect();
    for r in &raised {
        if !holding
            .iter()
            .any(|h| h.site_id == r.site_id && h.rule == r.rule)
        {
            tracing::warn!(site = %r.site_id, rule = r.rule.name(), statistic = %r.statistic, threshold = %r.threshold, "integrity flag raised");
        }
    }
    store
        .record_flags(&FlagEvaluation {
            event_id,
            watermark: f.watermark,
            at: now,
            raised: &raised,
            cleared: &cleared,
            undecided_sites: found.undecided,
        })
        .await?;
    if let Some(set) = stored.as_ref().filter(|_| policy.auto_hold)
        && auto_hold(store, event_id, set).await? > 0
    {
        board.invalidate();
    }
    Ok(Some(read))
}

/// Whether `not_holding` clears `site`'s flag of `rule`.
fn found_clears(not_holding: &[(SiteId, Rule)], site: &SiteId, rule: Rule) -> bool {
    not_holding.iter().any(|(s, r)| s == site && *r == rule)
}

/// The automatic hold, with the event's policy on: holds every site of the event that is not
/// held, has no action pending, and has grounds ([`auto_hold_grounds`]) in its holding flags.
/// Each hold is an action proposed by [`AUTO_HOLD`] and approved at once by the organizer who
/// last set the policy (their standing approval), both in the audit log. Returns the sites held.
///
/// # Errors
/// When storage cannot be read or written. A proposal refused because another process (or an
/// organizer) acted on the site meanwhile is not an error: the site is left as it stands.
async fn auto_hold(
    store: &dyn Store,
    event_id: &str,
    policy: &saleboard_storage::PolicyRecord,
) -> Result<usize, StorageError> {
    let flags = store.holding_flags(event_id).await?;
    if flags.is_empty() {
        return Ok(0);
    }
    // The standing approval is the organizer's who set the policy: it lapses with them. A
    // revoked organizer approves nothing, automatically or not; another organizer sets the
    // policy again to give it back.
    if policy.updated_by != saleboard_domain::audit::BOOTSTRAP {
        let active = store
            .list_organizers()
            .await?
            .iter()
            .any(|o| o.name == policy.updated_by && o.revoked_at.is_none());
        if !active {
            tracing::warn!(
                event = event_id,
                organizer = %policy.updated_by,
                "the automatic hold is on, but the organizer who set it was revoked: no site is held automatically until an organizer sets the event's integrity policy again"
            );
            return Ok(0);
        }
    }
    let held = store.held_sites(event_id).await?;
    let actions = store.list_actions(Some(event_id), None).await?;
    let mut by_site: std::collections::BTreeMap<&SiteId, Vec<&FlagRecord>> =
        std::collections::BTreeMap::new();
    for flag in &flags {
        by_site.entry(&flag.site_id).or_default().push(flag);
    }
    let mut holds = 0;
    for (site, flags) in by_site {
        let of_site = || actions.iter().filter(|a| a.site_id == *site);
        if held.contains(site) {
            continue;
        }
        let released_at = of_site()
            .filter(|a| a.state == ActionState::Applied && a.kind == ActionKind::Release)
            .filter_map(|a| a.decided_at)
            .max();
        let weighed: Vec<HoldingFlag> = flags
            .iter()
            .map(|f| HoldingFlag {
                rule: f.rule,
                state: f.state,
                raised_at: f.raised_at,
            })
            .collect();
        let Some(grounds) = auto_hold_grounds(&weighed, released_at) else {
            continue;
        };
        if let Some(pending) = of_site().find(|a| a.state == ActionState::Pending) {
            // An automatic hold proposed but not approved (the approval's write failed, or
            // this process stopped between the two): approved now, the grounds holding still.
            // An organizer's pending action is theirs to decide.
            if pending.proposed_by == AUTO_HOLD && pending.kind == ActionKind::Hold {
                match approve(store, &pending.action_id, policy).await {
                    Ok(_) => holds += 1,
                    Err(StorageError::Action(refusal)) => {
                        tracing::info!(site = %site, event = event_id, %refusal, "automatic hold not applied: the site was acted on meanwhile");
                    }
                    Err(e) => return Err(e),
                }
            }
            continue;
        }
        let grounds: Vec<&FlagRecord> = grounds.into_iter().map(|i| flags[i]).collect();
        match hold_on(store, event_id, site, &grounds, policy).await {
            Ok(action) => {
                holds += 1;
                tracing::warn!(site = %site, event = event_id, action = %action.action_id, approved_by = %policy.updated_by, "site held by the automatic-hold policy");
            }
            Err(StorageError::Action(refusal)) => {
                tracing::info!(site = %site, event = event_id, %refusal, "automatic hold not applied: the site was acted on meanwhile");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(holds)
}

/// Proposes the automatic hold of `site` on `grounds`, and approves it.
async fn hold_on(
    store: &dyn Store,
    event_id: &str,
    site: &SiteId,
    grounds: &[&FlagRecord],
    policy: &saleboard_storage::PolicyRecord,
) -> Result<saleboard_storage::ActionRecord, StorageError> {
    let fault = |e: String| StorageError::Database(Box::new(std::io::Error::other(e)));
    let named: Vec<String> = grounds
        .iter()
        .map(|f| {
            format!(
                "{} flag {} ({})",
                f.rule.name(),
                f.flag_id,
                f.rule.severity().as_str()
            )
        })
        .collect();
    let flag_ids: Vec<&str> = grounds.iter().map(|f| f.flag_id.as_str()).collect();
    let request_json = serde_json::json!({
        "event_id": event_id,
        "site_id": site.as_str(),
        "held": true,
        "flag_ids": flag_ids,
        "policy_set_by": policy.updated_by,
        "policy_set_at_ns": policy.updated_at.0.to_string(),
    })
    .to_string();
    let now = UnixNanos::now();
    let proposal_call = AuditCall {
        at: now,
        organizer: AUTO_HOLD.to_owned(),
        rpc: "SetSiteHold".to_owned(),
        request_json: request_json.clone(),
    };
    let proposal = ActionRecord {
        action_id: saleboard_runtime::auth::new_action_id().map_err(|e| fault(e.to_string()))?,
        kind: ActionKind::Hold,
        state: ActionState::Pending,
        event_id: event_id.to_owned(),
        site_id: site.clone(),
        reason: format!(
            "automatic hold by the event's integrity policy: {}",
            named.join(", ")
        ),
        proposed_by: AUTO_HOLD.to_owned(),
        proposed_at: now,
        decided_by: None,
        decided_at: None,
        decision_note: String::new(),
        adjustment: saleboard_storage::Adjustment::default(),
    };
    let proposed = store
        .propose_action(&proposal, Audit::new(&proposal_call, &action_outcome))
        .await?;
    approve(store, &proposed.action_id, policy).await
}

/// The audit outcome of an action call: `OK` and the action as the contract states it.
fn action_outcome(r: &ActionRecord) -> String {
    crate::admin::ok_outcome(&crate::admin::action_msg(r.clone()))
}

/// Approves the automatic hold `action_id` for the organizer who last set `policy`.
async fn approve(
    store: &dyn Store,
    action_id: &str,
    policy: &saleboard_storage::PolicyRecord,
) -> Result<ActionRecord, StorageError> {
    let approval_call = AuditCall {
        at: UnixNanos::now(),
        organizer: AUTO_HOLD.to_owned(),
        rpc: "ApproveAction".to_owned(),
        request_json: serde_json::json!({
            "action_id": action_id,
            "approved_for": policy.updated_by,
        })
        .to_string(),
    };
    let note = format!(
        "approved by the automatic-hold policy that {} turned on for this event",
        policy.updated_by
    );
    store
        .decide_action(
            &ActionDecision {
                action_id,
                approve: true,
                organizer: &policy.updated_by,
                note: &note,
                at: approval_call.at,
            },
            Audit::new(&approval_call, &action_outcome),
        )
        .await
}

/// `fut` run to its end, with the CPU time it took: the polling thread's CPU clock read around
/// each poll, so the time spent waiting (for the database, for a timer) is not in it, nor is
/// the database's own work or the runtime's I/O driver.
pub async fn cpu_timed<F: std::future::Future>(fut: F) -> (F::Output, Duration) {
    let mut fut = std::pin::pin!(fut);
    let mut spent = Duration::ZERO;
    let out = std::future::poll_fn(|cx| {
        let start = cpu_time::ThreadTime::try_now().ok();
        let polled = fut.as_mut().poll(cx);
        if let Some(start) = start {
            spent += start.try_elapsed().unwrap_or_default();
        }
        polled
    })
    .await;
    (out, spent)
}

/// Evaluates the flags of the current event and of the settling ones every
/// [`EVALUATE_EVERY`] while the figures or the policy may have moved, until `stop`. The CPU
/// the evaluations take is counted (`saleboard.integrity.evaluation.cpu`) and logged when it
/// stops (`bench/run` reports it per second of the run).
pub async fn run(store: Arc<dyn Store>, board: Arc<Board>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(EVALUATE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut last = std::collections::HashMap::new();
    let cpu_counter = saleboard_runtime::telemetry::meter()
        .f64_counter("saleboard.integrity.evaluation.cpu")
        .with_unit("s")
        .with_description("CPU time the integrity flags' evaluations took")
        .build();
    let started = std::time::Instant::now();
    let (mut cpu, mut evaluations) = (Duration::ZERO, 0_u64);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = every.tick() => {}
        }
        if *stop.borrow() {
            break;
        }
        let (evaluated, spent) =
            cpu_timed(evaluate_events(store.as_ref(), &board, &mut last)).await;
        cpu += spent;
        evaluations += 1;
        cpu_counter.add(spent.as_secs_f64(), &[]);
        match evaluated {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot evaluate the integrity flags now; trying again");
            }
            Err(_) => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        evaluations,
        cpu_ms = cpu.as_secs_f64() * 1e3,
        seconds,
        cpu_ms_per_second = cpu.as_secs_f64() * 1e3 / seconds.max(1e-9),
        "integrity flags' evaluation: CPU over the process's life"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_amount_pattern_stays_only_beside_another_flag() {
        let raised = |s: &str, rule: Rule| Raised {
            site: site(s),
            evaluation: Evaluation {
                rule,
                statistic: (1, 2),
                national: None,
                threshold: (1, 4),
                raised: true,
            },
            inputs: Vec::new(),
        };
        // a: the pattern beside a flag raised now; b: alone, but a late flag of b holds (kept
        // while the late figures lag); c: alone.
        let mut found = Found {
            raised: vec![
                raised("a", Rule::AmountPattern),
                raised("a", Rule::RefundRate),
                raised("b", Rule::AmountPattern),
                raised("c", Rule::AmountPattern),
            ],
            ..Found::default()
        };
        evidence_beside(&mut found, |s| *s == site("b"));
        let kept: Vec<(&str, Rule)> = found
            .raised
            .iter()
            .map(|r| (r.site.as_str(), r.evaluation.rule))
            .collect();
        assert_eq!(
            kept,
            [
                ("a", Rule::AmountPattern),
                ("a", Rule::RefundRate),
                ("b", Rule::AmountPattern)
            ]
        );
        // c's evidence is not raised, and clears if it was.
        assert_eq!(found.not_holding, [(site("c"), Rule::AmountPattern)]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn cpu_timed_counts_the_polls_and_not_the_waits() {
        // 30 ms of CPU burnt in a poll, then 300 ms asleep: the CPU is the first, not the second.
        let burn = Duration::from_millis(30);
        let ((), spent) = cpu_timed(async {
            let start = cpu_time::ThreadTime::now();
            while start.elapsed() < burn {
                std::hint::black_box(0_u64);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        })
        .await;
        assert!(spent >= burn, "{spent:?}");
        assert!(spent < Duration::from_millis(200), "{spent:?}");
    }

    fn counters(sales: u64, gross: i128, refunded: i128) -> SiteCounters {
        SiteCounters {
            sales,
            gross,
            refunded,
            late_gross: gross,
            folded_sales: sales,
            ..SiteCounters::default()
        }
    }

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).expect("site")
    }

    #[test]
    fn the_site_refunding_far_more_than_the_nation_is_raised_alone() {
        // Thirteen sites: twelve refund 3%, one 40% (the organizer's trial).
        let mut sites: Vec<(SiteId, SiteCounters)> = (0..12)
            .map(|i| {
                (
                    site(&format!("honest-{i:02}")),
                    counters(1_000, 1_000_000, 30_000),
                )
            })
            .collect();
        sites.push((site("cheat"), counters(1_000, 1_000_000, 400_000)));
        let found = evaluate(&Policy::default(), &sites, None);
        assert_eq!(found.raised.len(), 1, "{found:?}");
        let (who, e) = (&found.raised[0].site, &found.raised[0].evaluation);
        assert_eq!(who.as_str(), "cheat");
        assert_eq!(e.rule, Rule::RefundRate);
        // 40% against max(2 × 3%, 3% + 10 points) = 13%.
        assert_eq!(decimal(e.statistic), "0.4");
        assert_eq!(decimal(e.threshold), "0.13");
        assert_eq!(decimal((1, 3)), "0.333333333333333333");
        let not_holding = |rule: Rule| found.not_holding.iter().filter(|(_, r)| *r == rule).count();
        assert_eq!(not_holding(Rule::RefundRate), 12);
        // Nobody's refunds or sales came late: decided, and holding for no site.
        assert_eq!(not_holding(Rule::LateRefunds), 13);
        assert_eq!(not_holding(Rule::LateSales), 13);
        assert_eq!(found.undecided, 0);
    }

    #[test]
    fn a_site_falling_from_the_top_places_by_the_close_is_raised() {
        let policy = Policy {
            min_sales: 1,
            min_share: Ratio::of(0, 1),
            ..Policy::default()
        };
        // At the end: a, b, c, d by gross. Then a refunds most of its sales: fourth by net.
        let sites = vec![
            (site("a"), counters(10, 1_000, 900)),
            (site("b"), counters(10, 900, 0)),
            (site("c"), counters(10, 800, 0)),
            (site("d"), counters(10, 700, 0)),
        ];
        let end: Vec<SiteId> = ["a", "b", "c", "d"].map(site).to_vec();
        let found = evaluate(&policy, &sites, Some(&end));
        let rank: Vec<&Raised> = found
            .raised
            .iter()
            .filter(|r| r.evaluation.rule == Rule::SettlementRank)
            .collect();
        assert_eq!(rank.len(), 1, "{found:?}");
        assert_eq!(rank[0].site.as_str(), "a");
        assert_eq!(decimal(rank[0].evaluation.statistic), "3");
        assert!(rank[0].inputs.contains(&(
            "condition".to_owned(),
            "moved within the top places".to_owned()
        )));
        assert!(
            rank[0]
                .inputs
                .contains(&("place_by_net_now".to_owned(), "4".to_owned()))
        );
        // b, c, d moved one place up each: under the 3 places of the default.
        assert_eq!(
            found
                .not_holding
                .iter()
                .filter(|(_, r)| *r == Rule::SettlementRank)
                .count(),
            3
        );
        // Before the end, the rule is not evaluated.
        let before = evaluate(&policy, &sites, None);
        assert!(
            before
                .raised
                .iter()
                .all(|r| r.evaluation.rule != Rule::SettlementRank)
        );
    }

    #[test]
    fn late_refunds_and_late_sales_are_raised_from_the_late_figures() {
        // Twelve sites: nothing late. One refunds 30% after the end; one received 20% of its
        // sales over an hour late.
        let mut sites: Vec<(SiteId, SiteCounters)> = (0..12)
            .map(|i| {
                (
                    site(&format!("honest-{i:02}")),
                    counters(1_000, 1_000_000, 30_000),
                )
            })
            .collect();
        sites.push((
            site("refunder"),
            SiteCounters {
                late_refunded: 300_000,
                ..counters(1_000, 1_000_000, 300_000)
            },
        ));
        sites.push((
            site("backdater"),
            SiteCounters {
                late_sales: 200_000,
                ..counters(1_000, 1_000_000, 30_000)
            },
        ));
        let found = evaluate(&Policy::default(), &sites, None);
        let raised: Vec<(&str, Rule)> = found
            .raised
            .iter()
            .map(|r| (r.site.as_str(), r.evaluation.rule))
            .collect();
        assert!(
            raised.contains(&("refunder", Rule::LateRefunds)),
            "{raised:?}"
        );
        assert!(
            raised.contains(&("backdater", Rule::LateSales)),
            "{raised:?}"
        );
        assert!(
            raised
                .iter()
                .all(|(s, _)| *s == "refunder" || *s == "backdater"),
            "{raised:?}"
        );
        let late = found
            .raised
            .iter()
            .find(|r| r.evaluation.rule == Rule::LateRefunds)
            .expect("late refunds");
        // 30% against max(3 × 0, 0 + 5 points).
        assert_eq!(decimal(late.evaluation.statistic), "0.3");
        assert_eq!(decimal(late.evaluation.threshold), "0.05");
        assert!(
            late.inputs
                .contains(&("site_late_refunded_minor".to_owned(), "300000".to_owned()))
        );
        let sales = found
            .raised
            .iter()
            .find(|r| r.evaluation.rule == Rule::LateSales)
            .expect("late sales");
        // 20% against max(3 × 0, 5%).
        assert_eq!(decimal(sales.evaluation.statistic), "0.2");
        assert_eq!(decimal(sales.evaluation.threshold), "0.05");
    }

    #[test]
    fn below_the_minimum_support_a_site_is_undecided() {
        let sites = vec![
            (site("tiny"), counters(10, 1_000, 900)),
            (site("big"), counters(1_000, 10_000_000, 0)),
        ];
        let found = evaluate(&Policy::default(), &sites, None);
        assert!(found.raised.is_empty(), "{found:?}");
        assert_eq!(found.undecided, 1);
        let lowered = Policy {
            min_sales: 1,
            min_share: Ratio::of(0, 1),
            ..Policy::default()
        };
        let found = evaluate(&lowered, &sites, None);
        assert_eq!(found.raised.len(), 1);
        assert_eq!(found.raised[0].site.as_str(), "tiny");
    }
}
