//! The event: one sale window and one reporting currency per deployment.

use crate::{Currency, UnixNanos};

/// The configured event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Organizer's id for the event, e.g. `harbolnas-2026`.
    pub event_id: String,
    /// Shown on screens.
    pub display_name: String,
    /// First instant a transaction may have occurred at (inclusive).
    pub starts_at: UnixNanos,
    /// End of the window (exclusive).
    pub ends_at: UnixNanos,
    /// What the national leaderboard ranks in.
    pub reporting_currency: Currency,
}

/// Why an event definition was refused: names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// `event_id` is empty or not a slug-like id.
    #[error("event_id {0}")]
    EventId(crate::IdError),
    /// The window is empty or reversed.
    #[error("ends_at must be after starts_at")]
    EmptyWindow,
    /// The reporting currency is not usable money.
    #[error("reporting_currency: {0}")]
    ReportingCurrency(crate::currency::CurrencyError),
}

impl EventError {
    /// The request field the problem is about.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::EventId(_) => "event_id",
            Self::EmptyWindow => "ends_at",
            Self::ReportingCurrency(_) => "reporting_currency",
        }
    }
}

impl Event {
    /// Builds an event, checking its rules.
    ///
    /// # Errors
    /// When the id is not a transaction-id-like token, the window is empty, or the currency is
    /// not usable money.
    pub fn new(
        event_id: &str,
        display_name: &str,
        starts_at: UnixNanos,
        ends_at: UnixNanos,
        reporting_currency: &str,
    ) -> Result<Self, EventError> {
        crate::TransactionId::parse(event_id).map_err(EventError::EventId)?;
        if ends_at <= starts_at {
            return Err(EventError::EmptyWindow);
        }
        let reporting_currency =
            Currency::parse(reporting_currency).map_err(EventError::ReportingCurrency)?;
        Ok(Self {
            event_id: event_id.to_owned(),
            display_name: display_name.to_owned(),
            starts_at,
            ends_at,
            reporting_currency,
        })
    }

    /// Whether an instant is inside `[starts_at, ends_at)`.
    #[must_use]
    pub fn contains(&self, t: UnixNanos) -> bool {
        self.starts_at <= t && t < self.ends_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open() {
        let e = Event::new("e1", "E", UnixNanos(10), UnixNanos(20), "IDR").expect("valid");
        assert!(!e.contains(UnixNanos(9)));
        assert!(e.contains(UnixNanos(10)));
        assert!(e.contains(UnixNanos(19)));
        assert!(!e.contains(UnixNanos(20)));
    }

    #[test]
    fn refuses_bad_definitions_naming_the_field() {
        let err = Event::new("", "E", UnixNanos(1), UnixNanos(2), "IDR").expect_err("empty id");
        assert_eq!(err.field(), "event_id");
        let err = Event::new("e", "E", UnixNanos(2), UnixNanos(2), "IDR").expect_err("empty");
        assert_eq!(err, EventError::EmptyWindow);
        assert_eq!(err.field(), "ends_at");
        let err = Event::new("e", "E", UnixNanos(1), UnixNanos(2), "XXX").expect_err("no unit");
        assert_eq!(err.field(), "reporting_currency");
    }
}
