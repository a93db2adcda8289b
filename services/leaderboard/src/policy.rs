//! An event's integrity thresholds between the contract's `IntegrityPolicy` and the domain's
//! [`Policy`]: what an organizer set (each field checked against its range, named when out of
//! it), overlaid on the defaults, and answered with every field filled and the defaulted ones
//! named.

use saleboard_domain::integrity::{Policy, Ratio};
use saleboard_proto::v1::IntegrityPolicy;
use saleboard_runtime::status::invalid_field;
use tonic::Status;

/// Decimals a share may have.
const PLACES: u32 = 9;

/// Largest multiplier, count of places or z-score an organizer may set.
const MAX_FACTOR: u32 = 1_000;

/// Largest sample.
const MAX_SAMPLE: u32 = 10_000;

/// A whole-number field in `lo..=hi`.
fn bounded(field: &str, value: u32, lo: u32, hi: u32) -> Result<u32, Status> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(invalid_field(
            field,
            format!("is {value}; it must be from {lo} to {hi}"),
        ))
    }
}

/// A share field: exact decimal text from 0 to `max`.
fn share(field: &str, text: &str, max: u32) -> Result<Ratio, Status> {
    let ratio = Ratio::parse_decimal(text, PLACES).ok_or_else(|| {
        invalid_field(
            field,
            format!(
                "{:?} is not a decimal like \"0.05\" (digits, a point, at most {PLACES} decimals)",
                saleboard_domain::ids::excerpt(text)
            ),
        )
    })?;
    let above = ratio
        .compare(Ratio::of(max, 1))
        .map_or(true, std::cmp::Ordering::is_gt);
    if above {
        return Err(invalid_field(
            field,
            format!("is {text}; it must be from 0 to {max}"),
        ));
    }
    Ok(ratio)
}

/// The policy `set` describes: the defaults with every field it sets (checked).
///
/// # Errors
/// INVALID_ARGUMENT naming the first field out of its range.
pub fn from_message(set: &IntegrityPolicy) -> Result<Policy, Status> {
    let mut p = Policy::default();
    if let Some(v) = set.min_sales {
        p.min_sales = v;
    }
    if let Some(v) = &set.min_share_decimal {
        p.min_share = share("min_share_decimal", v, 1)?;
    }
    if let Some(v) = set.late_refunds_times {
        p.late_refunds_times = bounded("late_refunds_times", v, 1, MAX_FACTOR)?;
    }
    if let Some(v) = set.late_refunds_points {
        p.late_refunds_points = bounded("late_refunds_points", v, 0, 100)?;
    }
    if let Some(v) = set.refund_rate_times {
        p.refund_rate_times = bounded("refund_rate_times", v, 1, MAX_FACTOR)?;
    }
    if let Some(v) = set.refund_rate_points {
        p.refund_rate_points = bounded("refund_rate_points", v, 0, 100)?;
    }
    if let Some(v) = set.late_sales_times {
        p.late_sales_times = bounded("late_sales_times", v, 1, MAX_FACTOR)?;
    }
    if let Some(v) = &set.late_sales_floor_decimal {
        p.late_sales_floor = share("late_sales_floor_decimal", v, 1)?;
    }
    if let Some(v) = set.rank_top {
        p.rank_top = usize::try_from(bounded("rank_top", v, 1, MAX_FACTOR)?).unwrap_or(usize::MAX);
    }
    if let Some(v) = set.rank_moves {
        p.rank_moves =
            usize::try_from(bounded("rank_moves", v, 1, MAX_FACTOR)?).unwrap_or(usize::MAX);
    }
    if let Some(v) = &set.shape_floor_decimal {
        p.shape_floor = share("shape_floor_decimal", v, 1)?;
    }
    if let Some(v) = &set.shape_over_baseline_decimal {
        p.shape_over_baseline = share("shape_over_baseline_decimal", v, 1)?;
    }
    if let Some(v) = set.burst_times {
        p.burst_times = bounded("burst_times", v, 1, MAX_FACTOR)?;
    }
    if let Some(v) = set.burst_min_sales {
        p.burst_min_sales = v;
    }
    if let Some(v) = set.burst_national_under {
        p.burst_national_under = bounded("burst_national_under", v, 1, MAX_FACTOR)?;
    }
    if let Some(v) = set.round_z {
        p.round_z = bounded("round_z", v, 1, MAX_FACTOR)?;
    }
    if let Some(v) = set.round_times {
        p.round_times = bounded("round_times", v, 1, MAX_FACTOR)?;
    }
    if let Some(v) = &set.repeated_share_decimal {
        p.repeated_share = share("repeated_share_decimal", v, 1)?;
    }
    if let Some(v) = &set.repeated_refunded_decimal {
        p.repeated_refunded = share("repeated_refunded_decimal", v, 1)?;
    }
    if let Some(v) = set.growth_mads {
        p.growth_mads = bounded("growth_mads", v, 1, MAX_FACTOR)?;
    }
    if let Some(v) = &set.growth_floor_decimal {
        p.growth_floor = share("growth_floor_decimal", v, MAX_FACTOR)?;
    }
    if let Some(v) = &set.growth_share_decimal {
        p.growth_share = share("growth_share_decimal", v, 1)?;
    }
    if let Some(v) = set.order_value_times {
        p.order_value_times = bounded("order_value_times", v, 2, MAX_FACTOR)?;
    }
    if let Some(v) = &set.store_share_decimal {
        p.store_share = share("store_share_decimal", v, 1)?;
    }
    if let Some(v) = set.sample_size {
        p.sample_size =
            usize::try_from(bounded("sample_size", v, 1, MAX_SAMPLE)?).unwrap_or(usize::MAX);
    }
    if let Some(v) = set.auto_hold {
        p.auto_hold = v;
    }
    Ok(p)
}

/// The fields `set` leaves at their default, by name.
fn defaulted(set: &IntegrityPolicy) -> Vec<String> {
    let fields: [(&str, bool); 26] = [
        ("min_sales", set.min_sales.is_some()),
        ("min_share_decimal", set.min_share_decimal.is_some()),
        ("late_refunds_times", set.late_refunds_times.is_some()),
        ("late_refunds_points", set.late_refunds_points.is_some()),
        ("refund_rate_times", set.refund_rate_times.is_some()),
        ("refund_rate_points", set.refund_rate_points.is_some()),
        ("late_sales_times", set.late_sales_times.is_some()),
        (
            "late_sales_floor_decimal",
            set.late_sales_floor_decimal.is_some(),
        ),
        ("rank_top", set.rank_top.is_some()),
        ("rank_moves", set.rank_moves.is_some()),
        ("shape_floor_decimal", set.shape_floor_decimal.is_some()),
        (
            "shape_over_baseline_decimal",
            set.shape_over_baseline_decimal.is_some(),
        ),
        ("burst_times", set.burst_times.is_some()),
        ("burst_min_sales", set.burst_min_sales.is_some()),
        ("burst_national_under", set.burst_national_under.is_some()),
        ("round_z", set.round_z.is_some()),
        ("round_times", set.round_times.is_some()),
        (
            "repeated_share_decimal",
            set.repeated_share_decimal.is_some(),
        ),
        (
            "repeated_refunded_decimal",
            set.repeated_refunded_decimal.is_some(),
        ),
        ("growth_mads", set.growth_mads.is_some()),
        ("growth_floor_decimal", set.growth_floor_decimal.is_some()),
        ("growth_share_decimal", set.growth_share_decimal.is_some()),
        ("order_value_times", set.order_value_times.is_some()),
        ("store_share_decimal", set.store_share_decimal.is_some()),
        ("sample_size", set.sample_size.is_some()),
        ("auto_hold", set.auto_hold.is_some()),
    ];
    fields
        .iter()
        .filter(|(_, is_set)| !is_set)
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

/// A share as the contract writes it (every policy share is a decimal fraction).
fn decimal(r: Ratio) -> String {
    r.exact_decimal().unwrap_or_else(|| r.to_decimal(PLACES))
}

/// What an organizer set, as stored: only the fields set, for `event_id`, without the answer's
/// own fields.
#[must_use]
pub fn overrides(set: &IntegrityPolicy, event_id: &str) -> IntegrityPolicy {
    IntegrityPolicy {
        event_id: event_id.to_owned(),
        defaulted: Vec::new(),
        updated_at: None,
        updated_by: String::new(),
        ..set.clone()
    }
}

/// The policy in force for `event_id` as the contract answers it: `policy` (from `set`, the
/// stored overrides) with every field filled and the defaulted ones named.
#[must_use]
pub fn to_message(event_id: &str, set: &IntegrityPolicy, policy: &Policy) -> IntegrityPolicy {
    let whole = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    IntegrityPolicy {
        event_id: event_id.to_owned(),
        min_sales: Some(policy.min_sales),
        min_share_decimal: Some(decimal(policy.min_share)),
        late_refunds_times: Some(policy.late_refunds_times),
        late_refunds_points: Some(policy.late_refunds_points),
        refund_rate_times: Some(policy.refund_rate_times),
        refund_rate_points: Some(policy.refund_rate_points),
        late_sales_times: Some(policy.late_sales_times),
        late_sales_floor_decimal: Some(decimal(policy.late_sales_floor)),
        rank_top: Some(whole(policy.rank_top)),
        rank_moves: Some(whole(policy.rank_moves)),
        shape_floor_decimal: Some(decimal(policy.shape_floor)),
        shape_over_baseline_decimal: Some(decimal(policy.shape_over_baseline)),
        burst_times: Some(policy.burst_times),
        burst_min_sales: Some(policy.burst_min_sales),
        burst_national_under: Some(policy.burst_national_under),
        round_z: Some(policy.round_z),
        round_times: Some(policy.round_times),
        repeated_share_decimal: Some(decimal(policy.repeated_share)),
        repeated_refunded_decimal: Some(decimal(policy.repeated_refunded)),
        growth_mads: Some(policy.growth_mads),
        growth_floor_decimal: Some(decimal(policy.growth_floor)),
        growth_share_decimal: Some(decimal(policy.growth_share)),
        order_value_times: Some(policy.order_value_times),
        store_share_decimal: Some(decimal(policy.store_share)),
        sample_size: Some(whole(policy.sample_size)),
        auto_hold: Some(policy.auto_hold),
        defaulted: defaulted(set),
        updated_at: set.updated_at,
        updated_by: set.updated_by.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_issues_and_every_field_is_named() {
        let answer = to_message("e", &IntegrityPolicy::default(), &Policy::default());
        assert_eq!(answer.min_sales, Some(500));
        assert_eq!(answer.min_share_decimal.as_deref(), Some("0.001"));
        assert_eq!(answer.late_sales_floor_decimal.as_deref(), Some("0.05"));
        assert_eq!(answer.shape_floor_decimal.as_deref(), Some("0.35"));
        assert_eq!(answer.growth_floor_decimal.as_deref(), Some("1"));
        assert_eq!(answer.sample_size, Some(59));
        assert_eq!(answer.auto_hold, Some(false));
        assert_eq!(answer.defaulted.len(), 26);
        // What the answer says is what it reads back as: every field set, the same policy.
        let again = from_message(&answer).expect("the answer is a valid policy");
        let read_back = to_message("e", &answer, &again);
        assert!(read_back.defaulted.is_empty(), "{read_back:?}");
        assert_eq!(
            IntegrityPolicy {
                defaulted: Vec::new(),
                ..answer
            },
            read_back,
            "the defaults round-trip"
        );
    }

    #[test]
    fn a_set_field_replaces_its_default_and_is_checked() {
        let set = IntegrityPolicy {
            min_sales: Some(50),
            late_sales_floor_decimal: Some("0.075".into()),
            auto_hold: Some(true),
            ..IntegrityPolicy::default()
        };
        let p = from_message(&set).expect("valid");
        assert_eq!(p.min_sales, 50);
        assert!(p.auto_hold);
        let answer = to_message("e", &set, &p);
        assert_eq!(answer.late_sales_floor_decimal.as_deref(), Some("0.075"));
        assert!(!answer.defaulted.contains(&"min_sales".to_owned()));
        assert!(answer.defaulted.contains(&"rank_top".to_owned()));
        for (bad, field) in [
            (
                IntegrityPolicy {
                    min_share_decimal: Some("1.5".into()),
                    ..IntegrityPolicy::default()
                },
                "min_share_decimal",
            ),
            (
                IntegrityPolicy {
                    store_share_decimal: Some("20%".into()),
                    ..IntegrityPolicy::default()
                },
                "store_share_decimal",
            ),
            (
                IntegrityPolicy {
                    sample_size: Some(0),
                    ..IntegrityPolicy::default()
                },
                "sample_size",
            ),
            (
                IntegrityPolicy {
                    order_value_times: Some(1),
                    ..IntegrityPolicy::default()
                },
                "order_value_times",
            ),
            (
                IntegrityPolicy {
                    late_refunds_points: Some(101),
                    ..IntegrityPolicy::default()
                },
                "late_refunds_points",
            ),
        ] {
            let e = from_message(&bad).expect_err(field);
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().contains(field), "{field}: {e:?}");
        }
    }
}
