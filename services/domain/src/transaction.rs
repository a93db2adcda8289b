//! Validation of one pushed transaction, on its own (the rules that need the ledger are in
//! [`crate::resolve`]). Each rule fails with its own [`Reason`].

use crate::{
    Currency, IdError, PushedOrigin, Reason, Rejection, Segments, StoreId, TransactionId, UnixNanos,
};

/// What a ledger row is: a retailer's sale or refund, or an organizers' void of one (issue 28:
/// `AdjustTransactions`), which takes away exactly what its target added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Money in.
    Sale,
    /// Money back, against an earlier sale.
    Refund,
    /// A sale voided by organizers: no longer counted.
    VoidSale,
    /// A refund voided by organizers (alone, or with its sale): no longer counted. Its amount
    /// still counts against its sale's refundable rest: a void never makes room for a new
    /// refund.
    VoidRefund,
}

impl Kind {
    /// Stable small-integer code used by the ledger tables (a sale and a refund have the
    /// protobuf enum's numbers; a void is never pushed, so it has no number there).
    #[must_use]
    pub fn code(self) -> i16 {
        match self {
            Self::Sale => 1,
            Self::Refund => 2,
            Self::VoidSale => 3,
            Self::VoidRefund => 4,
        }
    }

    /// The kind for a ledger code.
    #[must_use]
    pub fn from_code(code: i16) -> Option<Self> {
        match code {
            1 => Some(Self::Sale),
            2 => Some(Self::Refund),
            3 => Some(Self::VoidSale),
            4 => Some(Self::VoidRefund),
            _ => None,
        }
    }

    /// Whether this is an organizers' void, which takes away its target's figures.
    #[must_use]
    pub fn is_void(self) -> bool {
        matches!(self, Self::VoidSale | Self::VoidRefund)
    }
}

/// A transaction as a client sent it, before any rule is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionInput {
    /// Retailer's id.
    pub transaction_id: String,
    /// Retailer's store, may be empty.
    pub store_id: String,
    /// The kind as sent.
    pub kind: PushedKind,
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units.
    pub amount_minor: i64,
    /// (seconds, nanos) when present.
    pub occurred_at: Option<(i64, i32)>,
    /// Sale refunded, for refunds.
    pub refund_of: String,
    /// Brand sold, may be empty.
    pub brand: String,
    /// Category sold, may be empty.
    pub category: String,
    /// Domestic, cross-border, not set, or a number the contract does not define.
    pub origin: PushedOrigin,
}

/// The kind of a transaction as a client sent it: a kind, nothing, or a value the contract does
/// not define (the gRPC edge maps its enum onto this; the domain knows no wire numbers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PushedKind {
    /// A sale.
    Sale,
    /// A refund.
    Refund,
    /// Not set.
    #[default]
    Unspecified,
    /// A value the contract does not define (shown in the rejection).
    Unknown(i32),
}

/// Limits of the server that validation applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `amount_minor` accepted.
    pub max_amount_minor: i64,
    /// How far ahead of the server's clock `occurred_at` may be, in seconds.
    pub max_future_skew_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // 10^15 minor units: a quadrillion rupiah cents; far above any real basket while
            // leaving 9,000 times headroom below i64::MAX per row.
            max_amount_minor: 1_000_000_000_000_000,
            max_future_skew_secs: 5 * 60,
        }
    }
}

/// A transaction that passed every rule that does not need the ledger. Made only by
/// [`validate`], or read back from the ledger ([`ValidTransaction::from_ledger`]): outside this
/// crate no struct literal can make one (`non_exhaustive`), so nothing reaches the ledger
/// without passing validation (`saleboard dev`'s demo history included).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidTransaction {
    /// Retailer's id.
    pub id: TransactionId,
    /// Retailer's store.
    pub store_id: StoreId,
    /// A sale, or a refund and the sale it refunds.
    pub nature: Nature,
    /// Currency of the amount.
    pub currency: Currency,
    /// Positive minor units, at most the configured maximum.
    pub amount_minor: i64,
    /// When it happened.
    pub occurred_at: UnixNanos,
    /// What was sold: brand, category, origin (a refund's are its sale's, once resolved).
    pub segments: Segments,
}

impl ValidTransaction {
    /// A transaction the ledger holds, read back. It passed [`validate`] when it was appended,
    /// under that day's limits, so it is not validated again (a limit lowered since must not
    /// make stored rows unreadable); the caller parses each field with the domain's parsers.
    #[must_use]
    pub fn from_ledger(
        id: TransactionId,
        store_id: StoreId,
        nature: Nature,
        currency: Currency,
        amount_minor: i64,
        occurred_at: UnixNanos,
        segments: Segments,
    ) -> Self {
        Self {
            id,
            store_id,
            nature,
            currency,
            amount_minor,
            occurred_at,
            segments,
        }
    }
}

/// What a valid transaction does: a refund always names its sale, a sale never names one, a
/// void names the row it voids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Nature {
    /// A sale.
    Sale,
    /// A refund of the sale `of` (same site).
    Refund {
        /// The sale refunded.
        of: TransactionId,
    },
    /// Organizers voided the sale `of` (same site).
    VoidSale {
        /// The sale voided.
        of: TransactionId,
    },
    /// Organizers voided the refund `of` (same site), alone or with its sale.
    VoidRefund {
        /// The refund voided.
        of: TransactionId,
    },
}

impl Nature {
    /// The kind, without the row it names.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Self::Sale => Kind::Sale,
            Self::Refund { .. } => Kind::Refund,
            Self::VoidSale { .. } => Kind::VoidSale,
            Self::VoidRefund { .. } => Kind::VoidRefund,
        }
    }

    /// The sale refunded, for a refund.
    #[must_use]
    pub fn refund_of(&self) -> Option<&TransactionId> {
        match self {
            Self::Refund { of } => Some(of),
            Self::Sale | Self::VoidSale { .. } | Self::VoidRefund { .. } => None,
        }
    }

    /// The row this one names, as the ledger's `refund_of` column stores it: a refund's sale,
    /// a void's target; `None` for a sale.
    #[must_use]
    pub fn names(&self) -> Option<&TransactionId> {
        match self {
            Self::Sale => None,
            Self::Refund { of } | Self::VoidSale { of } | Self::VoidRefund { of } => Some(of),
        }
    }

    /// The nature of the row `kind` naming `of` (`None` for a sale), as read back from the
    /// ledger; `None` when the two do not go together.
    #[must_use]
    pub fn from_parts(kind: Kind, of: Option<TransactionId>) -> Option<Self> {
        match (kind, of) {
            (Kind::Sale, None) => Some(Self::Sale),
            (Kind::Refund, Some(of)) => Some(Self::Refund { of }),
            (Kind::VoidSale, Some(of)) => Some(Self::VoidSale { of }),
            (Kind::VoidRefund, Some(of)) => Some(Self::VoidRefund { of }),
            _ => None,
        }
    }
}

impl ValidTransaction {
    /// Sale or refund.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.nature.kind()
    }

    /// The sale refunded, for a refund.
    #[must_use]
    pub fn refund_of(&self) -> Option<&TransactionId> {
        self.nature.refund_of()
    }

    /// The organizers' void of this sale or refund: a row with the same content (store,
    /// currency, amount, time, segments), so every figure takes away exactly what this row
    /// added, under the id [`TransactionId::void_of`] (outside a retailer's charset: never
    /// theirs). `None` for a void.
    #[must_use]
    pub fn voided(&self) -> Option<Self> {
        let nature = match self.nature {
            Nature::Sale => Nature::VoidSale {
                of: self.id.clone(),
            },
            Nature::Refund { .. } => Nature::VoidRefund {
                of: self.id.clone(),
            },
            Nature::VoidSale { .. } | Nature::VoidRefund { .. } => return None,
        };
        Some(Self {
            id: TransactionId::void_of(&self.id),
            nature,
            ..self.clone()
        })
    }
}

fn id_message(field: &str, value: &str, err: &IdError) -> String {
    format!("{field} {:?} {err}", crate::ids::excerpt(value))
}

/// Checks every rule that needs only the transaction and the clock. (Which event it belongs
/// to, and whether that event still takes it, needs the committed events:
/// [`crate::resolve::LedgerState`] decides that under the writer lock.)
///
/// # Errors
/// The first broken rule, in field order, as a [`Rejection`].
pub fn validate(
    input: &TransactionInput,
    now: UnixNanos,
    limits: &Limits,
) -> Result<ValidTransaction, Rejection> {
    let id = TransactionId::parse(&input.transaction_id).map_err(|e| {
        Rejection::new(
            Reason::InvalidTransactionId,
            id_message("transaction_id", &input.transaction_id, &e),
        )
    })?;
    let store_id = StoreId::parse(&input.store_id).map_err(|e| {
        Rejection::new(
            Reason::InvalidStoreId,
            id_message("store_id", &input.store_id, &e),
        )
    })?;
    // A retailer pushes a sale or a refund (a void is the organizers', never pushed).
    let refund = match input.kind {
        PushedKind::Sale => false,
        PushedKind::Refund => true,
        PushedKind::Unspecified => {
            return Err(Rejection::new(
                Reason::InvalidKind,
                "kind is TRANSACTION_KIND_UNSPECIFIED; set SALE or REFUND",
            ));
        }
        PushedKind::Unknown(other) => {
            return Err(Rejection::new(
                Reason::InvalidKind,
                format!("kind {other} is not a known TransactionKind; set SALE or REFUND"),
            ));
        }
    };
    let currency = Currency::parse(&input.currency)
        .map_err(|e| Rejection::new(Reason::InvalidCurrency, format!("currency: {e}")))?;
    if input.amount_minor < 1 {
        return Err(Rejection::new(
            Reason::AmountNotPositive,
            format!(
                "amount_minor is {}; it must be at least 1 (refunds are positive too)",
                input.amount_minor
            ),
        ));
    }
    if input.amount_minor > limits.max_amount_minor {
        return Err(Rejection::new(
            Reason::AmountTooLarge,
            format!(
                "amount_minor {} is above this server's maximum of {}",
                input.amount_minor, limits.max_amount_minor
            ),
        ));
    }
    let Some((secs, nanos)) = input.occurred_at else {
        return Err(Rejection::new(
            Reason::MissingOccurredAt,
            "occurred_at is missing; set when the transaction happened",
        ));
    };
    let occurred_at = UnixNanos::from_parts(secs, nanos).ok_or_else(|| {
        Rejection::new(
            Reason::InvalidOccurredAt,
            format!("occurred_at ({secs} s, {nanos} ns) is not a valid timestamp"),
        )
    })?;
    if occurred_at > now.saturating_add_secs(limits.max_future_skew_secs) {
        return Err(Rejection::new(
            Reason::OccurredInFuture,
            format!(
                "occurred_at is more than {} seconds ahead of the server's clock",
                limits.max_future_skew_secs
            ),
        ));
    }
    let nature = match (refund, input.refund_of.as_str()) {
        (false, "") => Nature::Sale,
        (false, _) => {
            return Err(Rejection::new(
                Reason::SaleWithRefundOf,
                "refund_of is set on a SALE; only a REFUND names the sale it refunds",
            ));
        }
        (true, "") => {
            return Err(Rejection::new(
                Reason::MissingRefundOf,
                "refund_of is empty; a REFUND must name the transaction_id of its SALE",
            ));
        }
        (true, value) => Nature::Refund {
            of: TransactionId::parse(value).map_err(|e| {
                Rejection::new(Reason::InvalidRefundOf, id_message("refund_of", value, &e))
            })?,
        },
    };
    let segments = Segments::parse(&input.brand, &input.category, input.origin)?;
    Ok(ValidTransaction {
        id,
        store_id,
        nature,
        currency,
        amount_minor: input.amount_minor,
        occurred_at,
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600;
    const START: i64 = 1_765_497_600; // 2025-12-12T00:00:00Z

    fn now() -> UnixNanos {
        UnixNanos::from_parts(START + HOUR, 0).expect("valid")
    }

    fn sale() -> TransactionInput {
        TransactionInput {
            transaction_id: "T-1".into(),
            store_id: "jkt-1".into(),
            kind: PushedKind::Sale,
            currency: "IDR".into(),
            amount_minor: 150_000,
            occurred_at: Some((START + 60, 0)),
            refund_of: String::new(),
            ..TransactionInput::default()
        }
    }

    fn reason_of(input: &TransactionInput) -> Reason {
        validate(input, now(), &Limits::default())
            .expect_err("must be rejected")
            .reason
    }

    #[test]
    fn a_good_sale_and_refund_pass() {
        let v = validate(&sale(), now(), &Limits::default()).expect("valid");
        assert_eq!(v.kind(), Kind::Sale);
        assert_eq!(v.amount_minor, 150_000);
        assert_eq!(v.refund_of(), None);
        let refund = TransactionInput {
            transaction_id: "R-1".into(),
            kind: PushedKind::Refund,
            refund_of: "T-1".into(),
            ..sale()
        };
        let v = validate(&refund, now(), &Limits::default()).expect("valid");
        assert_eq!(v.kind(), Kind::Refund);
        assert_eq!(v.refund_of().map(TransactionId::as_str), Some("T-1"));
    }

    #[test]
    fn every_rule_has_its_reason() {
        let cases: Vec<(TransactionInput, Reason)> = vec![
            (
                TransactionInput {
                    transaction_id: String::new(),
                    ..sale()
                },
                Reason::InvalidTransactionId,
            ),
            (
                TransactionInput {
                    transaction_id: "x".repeat(65),
                    ..sale()
                },
                Reason::InvalidTransactionId,
            ),
            (
                TransactionInput {
                    transaction_id: "a b".into(),
                    ..sale()
                },
                Reason::InvalidTransactionId,
            ),
            (
                TransactionInput {
                    store_id: "a/b".into(),
                    ..sale()
                },
                Reason::InvalidStoreId,
            ),
            (
                TransactionInput {
                    kind: PushedKind::Unspecified,
                    ..sale()
                },
                Reason::InvalidKind,
            ),
            (
                TransactionInput {
                    kind: PushedKind::Unknown(7),
                    ..sale()
                },
                Reason::InvalidKind,
            ),
            (
                TransactionInput {
                    currency: "ABC".into(),
                    ..sale()
                },
                Reason::InvalidCurrency,
            ),
            (
                TransactionInput {
                    currency: "XAU".into(),
                    ..sale()
                },
                Reason::InvalidCurrency,
            ),
            (
                TransactionInput {
                    amount_minor: 0,
                    ..sale()
                },
                Reason::AmountNotPositive,
            ),
            (
                TransactionInput {
                    amount_minor: -5,
                    ..sale()
                },
                Reason::AmountNotPositive,
            ),
            (
                TransactionInput {
                    amount_minor: Limits::default().max_amount_minor + 1,
                    ..sale()
                },
                Reason::AmountTooLarge,
            ),
            (
                TransactionInput {
                    occurred_at: None,
                    ..sale()
                },
                Reason::MissingOccurredAt,
            ),
            (
                TransactionInput {
                    occurred_at: Some((START, -1)),
                    ..sale()
                },
                Reason::InvalidOccurredAt,
            ),
            (
                TransactionInput {
                    occurred_at: Some((i64::MAX, 0)),
                    ..sale()
                },
                Reason::InvalidOccurredAt,
            ),
            (
                TransactionInput {
                    occurred_at: Some((START + HOUR + 301, 0)),
                    ..sale()
                },
                Reason::OccurredInFuture,
            ),
            (
                TransactionInput {
                    refund_of: "T-0".into(),
                    ..sale()
                },
                Reason::SaleWithRefundOf,
            ),
            (
                TransactionInput {
                    kind: PushedKind::Refund,
                    ..sale()
                },
                Reason::MissingRefundOf,
            ),
            (
                TransactionInput {
                    kind: PushedKind::Refund,
                    refund_of: "bad id".into(),
                    ..sale()
                },
                Reason::InvalidRefundOf,
            ),
            (
                TransactionInput {
                    brand: "Nestle".into(),
                    ..sale()
                },
                Reason::InvalidBrand,
            ),
            (
                TransactionInput {
                    category: "x".repeat(41),
                    ..sale()
                },
                Reason::InvalidCategory,
            ),
            (
                TransactionInput {
                    origin: PushedOrigin::Unknown(3),
                    ..sale()
                },
                Reason::InvalidOrigin,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(reason_of(&input), want, "{input:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let at_max = TransactionInput {
            amount_minor: Limits::default().max_amount_minor,
            ..sale()
        };
        assert!(validate(&at_max, now(), &Limits::default()).is_ok());
        let one = TransactionInput {
            amount_minor: 1,
            ..sale()
        };
        assert!(validate(&one, now(), &Limits::default()).is_ok());
        let five_minutes_ahead = TransactionInput {
            occurred_at: Some((START + HOUR + 300, 0)),
            ..sale()
        };
        assert!(validate(&five_minutes_ahead, now(), &Limits::default()).is_ok());
        let custom = Limits {
            max_amount_minor: 10,
            ..Limits::default()
        };
        assert_eq!(
            validate(&sale(), now(), &custom)
                .expect_err("over custom max")
                .reason,
            Reason::AmountTooLarge
        );
    }

    #[test]
    fn future_rule_applies_even_inside_the_window() {
        // The window runs 72 h; now is 1 h in. 2 h in is inside the window but in the future.
        let later = TransactionInput {
            occurred_at: Some((START + 2 * HOUR, 0)),
            ..sale()
        };
        assert_eq!(reason_of(&later), Reason::OccurredInFuture);
    }

    #[test]
    fn messages_name_the_field() {
        let r = validate(
            &TransactionInput {
                currency: "usd".into(),
                ..sale()
            },
            now(),
            &Limits::default(),
        )
        .expect_err("lower case");
        assert!(r.message.starts_with("currency"), "{}", r.message);
        let r = validate(
            &TransactionInput {
                transaction_id: "a b".into(),
                ..sale()
            },
            now(),
            &Limits::default(),
        )
        .expect_err("bad id");
        assert!(r.message.starts_with("transaction_id"), "{}", r.message);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_input() -> impl Strategy<Value = TransactionInput> {
        (
            ".{0,80}",
            ".{0,80}",
            prop_oneof![
                Just(PushedKind::Sale),
                Just(PushedKind::Refund),
                Just(PushedKind::Unspecified),
                any::<i32>().prop_map(PushedKind::Unknown),
            ],
            "[A-Z]{0,4}|.{0,8}",
            any::<i64>(),
            proptest::option::of((any::<i64>(), any::<i32>())),
            ".{0,80}",
            (
                "[a-z-]{0,42}|.{0,50}",
                "[a-z0-9]{0,42}|.{0,50}",
                prop_oneof![
                    Just(PushedOrigin::Unspecified),
                    Just(PushedOrigin::Domestic),
                    Just(PushedOrigin::CrossBorder),
                    any::<i32>().prop_map(PushedOrigin::Unknown),
                ],
            ),
        )
            .prop_map(
                |(
                    transaction_id,
                    store_id,
                    kind,
                    currency,
                    amount_minor,
                    occurred_at,
                    refund_of,
                    (brand, category, origin),
                )| {
                    TransactionInput {
                        transaction_id,
                        store_id,
                        kind,
                        currency,
                        amount_minor,
                        occurred_at,
                        refund_of,
                        brand,
                        category,
                        origin,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever a client sends, validation answers (never panics), and what it accepts
        /// keeps every rule: a positive amount within the limit, a valid time, a refund names a
        /// sale.
        #[test]
        fn validation_never_panics_and_accepts_only_valid(input in any_input()) {
            let limits = Limits::default();
            let now = UnixNanos(i64::MAX / 4);
            match validate(&input, now, &limits) {
                Ok(tx) => {
                    prop_assert!(tx.amount_minor > 0 && tx.amount_minor <= limits.max_amount_minor);
                    prop_assert!(tx.occurred_at.0 >= 0);
                    prop_assert_eq!(tx.kind() == Kind::Refund, tx.refund_of().is_some());
                    for d in crate::Dimension::ALL {
                        let key = tx.segments.key(d);
                        prop_assert!(key.len() <= 40);
                        prop_assert!(key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                    }
                }
                Err(rejection) => {
                    prop_assert!(!rejection.message.is_empty());
                    // At most 64 characters of a field are echoed; escaped, each is at most 10.
                    prop_assert!(rejection.message.chars().count() < 1024, "{}", rejection.message);
                }
            }
        }
    }
}
