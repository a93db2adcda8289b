//! Stable reason codes of REJECTED transactions. The strings are part of the public contract:
//! clients match on them, so they never change once released.

use std::fmt;

/// Why one transaction was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// `transaction_id` empty, longer than 64, or outside `[A-Za-z0-9._:-]`.
    InvalidTransactionId,
    /// `store_id` longer than 64 or outside `[A-Za-z0-9._:-]`.
    InvalidStoreId,
    /// `kind` is UNSPECIFIED or not a known kind.
    InvalidKind,
    /// `currency` is not an active ISO 4217 code with a minor unit.
    InvalidCurrency,
    /// `amount_minor` is zero or negative.
    AmountNotPositive,
    /// `amount_minor` is above the configured maximum.
    AmountTooLarge,
    /// `occurred_at` is not set.
    MissingOccurredAt,
    /// `occurred_at` is not a valid timestamp (nanos out of range, or beyond year 2262).
    InvalidOccurredAt,
    /// `occurred_at` is outside the event window.
    OutsideEventWindow,
    /// `occurred_at` is more than 5 minutes ahead of the server's clock.
    OccurredInFuture,
    /// A REFUND without `refund_of`.
    MissingRefundOf,
    /// `refund_of` outside the transaction id rules.
    InvalidRefundOf,
    /// A SALE with `refund_of` set.
    SaleWithRefundOf,
    /// `refund_of` names no transaction of this site.
    UnknownSale,
    /// `refund_of` names a transaction that is not a SALE.
    RefundOfNonSale,
    /// The refund's currency differs from the sale's.
    RefundCurrencyMismatch,
    /// The refunds of the sale would add up to more than the sale.
    RefundExceedsSale,
    /// The transaction id was already used by this site for different content.
    IdConflict,
    /// The event the transaction belongs to is closed (past its `closes_at`): final.
    EventClosed,
    /// A refund's `occurred_at` is before its sale's.
    RefundBeforeSale,
    /// `brand` is not empty and not a slug of 1 to 40 characters of `a-z`, `0-9` and `-`.
    InvalidBrand,
    /// `category` is not empty and not a slug of 1 to 40 characters of `a-z`, `0-9` and `-`.
    InvalidCategory,
    /// `origin` is a number the contract does not define.
    InvalidOrigin,
    /// A refund names a segment field (brand, category, origin) that differs from its sale's.
    RefundSegmentMismatch,
    /// A refund names a sale the organizers voided (`AdjustTransactions`): it counts no more
    /// and takes no refund.
    SaleVoided,
}

impl Reason {
    /// Every reason, for documentation and exhaustive tests.
    pub const ALL: [Self; 25] = [
        Self::InvalidTransactionId,
        Self::InvalidStoreId,
        Self::InvalidKind,
        Self::InvalidCurrency,
        Self::AmountNotPositive,
        Self::AmountTooLarge,
        Self::MissingOccurredAt,
        Self::InvalidOccurredAt,
        Self::OutsideEventWindow,
        Self::OccurredInFuture,
        Self::MissingRefundOf,
        Self::InvalidRefundOf,
        Self::SaleWithRefundOf,
        Self::UnknownSale,
        Self::RefundOfNonSale,
        Self::RefundCurrencyMismatch,
        Self::RefundExceedsSale,
        Self::IdConflict,
        Self::EventClosed,
        Self::RefundBeforeSale,
        Self::InvalidBrand,
        Self::InvalidCategory,
        Self::InvalidOrigin,
        Self::RefundSegmentMismatch,
        Self::SaleVoided,
    ];

    /// The stable upper-snake code sent to clients.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidTransactionId => "INVALID_TRANSACTION_ID",
            Self::InvalidStoreId => "INVALID_STORE_ID",
            Self::InvalidKind => "INVALID_KIND",
            Self::InvalidCurrency => "INVALID_CURRENCY",
            Self::AmountNotPositive => "AMOUNT_NOT_POSITIVE",
            Self::AmountTooLarge => "AMOUNT_TOO_LARGE",
            Self::MissingOccurredAt => "MISSING_OCCURRED_AT",
            Self::InvalidOccurredAt => "INVALID_OCCURRED_AT",
            Self::OutsideEventWindow => "OUTSIDE_EVENT_WINDOW",
            Self::OccurredInFuture => "OCCURRED_IN_FUTURE",
            Self::MissingRefundOf => "MISSING_REFUND_OF",
            Self::InvalidRefundOf => "INVALID_REFUND_OF",
            Self::SaleWithRefundOf => "SALE_WITH_REFUND_OF",
            Self::UnknownSale => "UNKNOWN_SALE",
            Self::RefundOfNonSale => "REFUND_OF_NON_SALE",
            Self::RefundCurrencyMismatch => "REFUND_CURRENCY_MISMATCH",
            Self::RefundExceedsSale => "REFUND_EXCEEDS_SALE",
            Self::IdConflict => "ID_CONFLICT",
            Self::EventClosed => "EVENT_CLOSED",
            Self::RefundBeforeSale => "REFUND_BEFORE_SALE",
            Self::InvalidBrand => "INVALID_BRAND",
            Self::InvalidCategory => "INVALID_CATEGORY",
            Self::InvalidOrigin => "INVALID_ORIGIN",
            Self::RefundSegmentMismatch => "REFUND_SEGMENT_MISMATCH",
            Self::SaleVoided => "SALE_VOIDED",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejection: the code for programs and a sentence naming the field for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable code.
    pub reason: Reason,
    /// What is wrong, naming the field.
    pub message: String,
}

impl Rejection {
    /// A rejection with its message.
    #[must_use]
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_upper_snake() {
        let codes: HashSet<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Reason::ALL.len());
        for code in codes {
            assert!(
                code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{code}"
            );
        }
    }
}
