//! Events: a sale window, a reporting currency, a settlement period after the window, and
//! optionally the event it is compared with. A deployment holds many; their windows never
//! overlap, so a sale belongs to the one event whose window holds it.

use crate::{Currency, UnixNanos};

/// How long after its window an event takes refunds, unless told otherwise: 7 days.
pub const DEFAULT_SETTLEMENT_SECS: i64 = 7 * 86_400;

/// An event.
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
    /// End of the settlement period (at or after `ends_at`): refunds of its sales are taken
    /// until then; from then on the event is final.
    pub closes_at: UnixNanos,
    /// The event it is compared with by default ("" for none).
    pub baseline_event_id: String,
    /// IANA time zone for display, e.g. `Asia/Jakarta` ("" for none).
    pub time_zone: String,
}

/// Where an event is in its life, from the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventState {
    /// Before its window.
    Scheduled,
    /// Inside its window: sales are taken.
    Live,
    /// After its window, before `closes_at`: refunds of its sales are taken.
    Settling,
    /// Final: nothing changes its totals again.
    Closed,
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
    /// The settlement period ends before the window does.
    #[error("closes_at must not be before ends_at")]
    ClosesBeforeEnd,
    /// The baseline is not an event id, or is the event itself.
    #[error("baseline_event_id {0}")]
    Baseline(String),
}

/// Why a change of a stored event was refused: the rules of changing events, decided here
/// against the events as stored (storage stores).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventChangeError {
    /// The new window would overlap another event's.
    #[error(
        "the window of event {event:?} would overlap event {other}; event windows never overlap"
    )]
    Overlaps {
        /// The event changed.
        event: String,
        /// The other event and its window, as people read it.
        other: String,
    },
    /// The baseline names no event.
    #[error("baseline_event_id {0:?} names no event; create it first")]
    UnknownBaseline(String),
    /// A closed event's window, `closes_at` or reporting currency would change.
    #[error(
        "event {event:?} closed at {closed_at}: its window, closes_at and reporting currency are \
         final (only display_name, baseline_event_id and time_zone may change)"
    )]
    Closed {
        /// The event.
        event: String,
        /// When it closed (RFC 3339).
        closed_at: String,
    },
    /// Narrowing the window would leave accepted sales outside it.
    #[error(
        "narrowing event {event:?} to {window} would leave {outside} accepted sales outside its \
         window; a window may only be narrowed while none would be"
    )]
    Strands {
        /// The event.
        event: String,
        /// The new window, as people read it.
        window: String,
        /// Accepted sales that would fall outside it.
        outside: u64,
    },
}

/// What a change of an event needs checked against the ledger, once its rules against the
/// other events have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeCheck {
    /// Nothing: a new event, a wider window, or a closed event's permitted fields.
    Nothing,
    /// The window narrows: count the event's accepted sales outside the new window and pass
    /// the count to [`narrowing`].
    SalesOutside,
}

/// The rules of changing `event` against the stored `events` at `now`.
///
/// # Errors
/// The rule the change breaks.
pub fn check_change(
    events: &Events,
    event: &Event,
    now: UnixNanos,
) -> Result<ChangeCheck, EventChangeError> {
    if let Some(other) = events.overlapping(event) {
        return Err(EventChangeError::Overlaps {
            event: event.event_id.clone(),
            other: other.window_text(),
        });
    }
    if !event.baseline_event_id.is_empty() && events.get(&event.baseline_event_id).is_none() {
        return Err(EventChangeError::UnknownBaseline(
            event.baseline_event_id.clone(),
        ));
    }
    let Some(stored) = events.get(&event.event_id) else {
        return Ok(ChangeCheck::Nothing);
    };
    if stored.state(now) == EventState::Closed {
        let same_figures = stored.starts_at == event.starts_at
            && stored.ends_at == event.ends_at
            && stored.closes_at == event.closes_at
            && stored.reporting_currency == event.reporting_currency;
        if !same_figures {
            return Err(EventChangeError::Closed {
                event: stored.event_id.clone(),
                closed_at: stored.closes_at.to_rfc3339(),
            });
        }
        return Ok(ChangeCheck::Nothing);
    }
    if event.starts_at > stored.starts_at || event.ends_at < stored.ends_at {
        return Ok(ChangeCheck::SalesOutside);
    }
    Ok(ChangeCheck::Nothing)
}

/// Whether a narrowed window may be stored, given the event's accepted sales outside it.
///
/// # Errors
/// [`EventChangeError::Strands`] when any would be left outside.
pub fn narrowing(event: &Event, outside: u64) -> Result<(), EventChangeError> {
    if outside > 0 {
        return Err(EventChangeError::Strands {
            event: event.event_id.clone(),
            window: event.window_text(),
            outside,
        });
    }
    Ok(())
}

impl EventError {
    /// The request field the problem is about.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::EventId(_) => "event_id",
            Self::EmptyWindow => "ends_at",
            Self::ReportingCurrency(_) => "reporting_currency",
            Self::ClosesBeforeEnd => "closes_at",
            Self::Baseline(_) => "baseline_event_id",
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
            closes_at: ends_at.saturating_add_secs(DEFAULT_SETTLEMENT_SECS),
            baseline_event_id: String::new(),
            time_zone: String::new(),
        })
    }

    /// The same event with its settlement period ending at `closes_at`.
    ///
    /// # Errors
    /// When `closes_at` is before `ends_at`.
    pub fn closing_at(mut self, closes_at: UnixNanos) -> Result<Self, EventError> {
        if closes_at < self.ends_at {
            return Err(EventError::ClosesBeforeEnd);
        }
        self.closes_at = closes_at;
        Ok(self)
    }

    /// The same event compared by default with `baseline` ("" for none).
    ///
    /// # Errors
    /// When `baseline` is not an event id or is this event.
    pub fn compared_with(mut self, baseline: &str) -> Result<Self, EventError> {
        if !baseline.is_empty() {
            crate::TransactionId::parse(baseline)
                .map_err(|e| EventError::Baseline(e.to_string()))?;
            if baseline == self.event_id {
                return Err(EventError::Baseline(
                    "is the event itself; name another event".to_owned(),
                ));
            }
        }
        baseline.clone_into(&mut self.baseline_event_id);
        Ok(self)
    }

    /// The same event shown in `time_zone` (an IANA name, checked by the caller, which can
    /// read the time zone database; "" for none).
    #[must_use]
    pub fn shown_in(mut self, time_zone: &str) -> Self {
        time_zone.clone_into(&mut self.time_zone);
        self
    }

    /// Whether an instant is inside `[starts_at, ends_at)`.
    #[must_use]
    pub fn contains(&self, t: UnixNanos) -> bool {
        self.starts_at <= t && t < self.ends_at
    }

    /// Whether the two windows share an instant.
    #[must_use]
    pub fn overlaps(&self, other: &Event) -> bool {
        self.starts_at < other.ends_at && other.starts_at < self.ends_at
    }

    /// Where the event is at `now`.
    #[must_use]
    pub fn state(&self, now: UnixNanos) -> EventState {
        if now < self.starts_at {
            EventState::Scheduled
        } else if now < self.ends_at {
            EventState::Live
        } else if now < self.closes_at {
            EventState::Settling
        } else {
            EventState::Closed
        }
    }

    /// The window as people read it, for messages: `"harbolnas-2026" (from ... to ..., UTC,
    /// end excluded)`.
    #[must_use]
    pub fn window_text(&self) -> String {
        format!(
            "{:?} (from {} to {}, UTC, end excluded)",
            self.event_id,
            self.starts_at.to_rfc3339(),
            self.ends_at.to_rfc3339()
        )
    }
}

/// Every event of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Events(Vec<Event>);

impl Events {
    /// Every event, in the order given to [`Events::new`].
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.0.iter()
    }

    /// The events, in any order.
    #[must_use]
    pub fn new(events: Vec<Event>) -> Self {
        Self(events)
    }

    /// The event whose window holds `occurred_at` (windows never overlap).
    #[must_use]
    pub fn for_sale(&self, occurred_at: UnixNanos) -> Option<&Event> {
        self.0.iter().find(|e| e.contains(occurred_at))
    }

    /// The event with this id.
    #[must_use]
    pub fn get(&self, event_id: &str) -> Option<&Event> {
        self.0.iter().find(|e| e.event_id == event_id)
    }

    /// The events settling at `now` (ended, not closed: refunds still come), by id.
    pub fn settling(&self, now: UnixNanos) -> impl Iterator<Item = &Event> {
        let mut settling: Vec<&Event> = self
            .0
            .iter()
            .filter(move |e| e.state(now) == EventState::Settling)
            .collect();
        settling.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        settling.into_iter()
    }

    /// The events closed at or before `now` and less than `within_ns` before it, by id: those
    /// whose final figures a watcher judges once more after the close.
    pub fn closed_within(&self, now: UnixNanos, within_ns: i64) -> impl Iterator<Item = &Event> {
        let mut closed: Vec<&Event> = self
            .0
            .iter()
            .filter(move |e| e.closes_at <= now && now.0.saturating_sub(e.closes_at.0) < within_ns)
            .collect();
        closed.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        closed.into_iter()
    }

    /// The current event at `now`: the live one, else the most recently ended, else the next
    /// scheduled.
    #[must_use]
    pub fn current(&self, now: UnixNanos) -> Option<&Event> {
        let live = self.0.iter().find(|e| e.contains(now));
        let ended = || {
            self.0
                .iter()
                .filter(|e| e.ends_at <= now)
                .max_by_key(|e| e.ends_at)
        };
        let next = || {
            self.0
                .iter()
                .filter(|e| now < e.starts_at)
                .min_by_key(|e| e.starts_at)
        };
        live.or_else(ended).or_else(next)
    }

    /// The other event whose window `event` would overlap, if any.
    #[must_use]
    pub fn overlapping(&self, event: &Event) -> Option<&Event> {
        self.0
            .iter()
            .find(|e| e.event_id != event.event_id && e.overlaps(event))
    }

    /// Newest first (by start).
    #[must_use]
    pub fn newest_first(&self) -> Vec<&Event> {
        let mut all: Vec<&Event> = self.0.iter().collect();
        all.sort_by(|a, b| {
            b.starts_at
                .cmp(&a.starts_at)
                .then(a.event_id.cmp(&b.event_id))
        });
        all
    }

    /// Whether there is no event at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The events as a slice.
    #[must_use]
    pub fn as_slice(&self) -> &[Event] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_decided_here_with_typed_reasons() {
        let at = |s: i64| UnixNanos(s * 1_000_000_000);
        let live = Event::new("live", "Live", at(100), at(200), "IDR").expect("event");
        let old = Event::new("old", "Old", at(-3_000_000), at(-2_900_000), "IDR").expect("event");
        let events = Events::new(vec![live.clone(), old.clone()]);
        let now = at(150);
        let overlapping = Event::new("x", "X", at(150), at(300), "IDR").expect("event");
        assert!(matches!(
            check_change(&events, &overlapping, now),
            Err(EventChangeError::Overlaps { event, .. }) if event == "x"
        ));
        let mut orphan = Event::new("y", "Y", at(300), at(400), "IDR").expect("event");
        orphan.baseline_event_id = "nope".into();
        assert_eq!(
            check_change(&events, &orphan, now),
            Err(EventChangeError::UnknownBaseline("nope".into()))
        );
        let moved = Event::new("old", "Old", at(-3_000_000), at(-2_800_000), "IDR").expect("event");
        assert!(matches!(
            check_change(&events, &moved, now),
            Err(EventChangeError::Closed { .. })
        ));
        let mut renamed = old.clone();
        renamed.display_name = "Renamed".into();
        assert_eq!(
            check_change(&events, &renamed, now),
            Ok(ChangeCheck::Nothing)
        );
        let narrowed = Event::new("live", "Live", at(120), at(200), "IDR").expect("event");
        assert_eq!(
            check_change(&events, &narrowed, now),
            Ok(ChangeCheck::SalesOutside)
        );
        assert_eq!(narrowing(&narrowed, 0), Ok(()));
        assert!(matches!(
            narrowing(&narrowed, 3),
            Err(EventChangeError::Strands { outside: 3, .. })
        ));
        let widened = Event::new("live", "Live", at(90), at(250), "IDR").expect("event");
        assert_eq!(
            check_change(&events, &widened, now),
            Ok(ChangeCheck::Nothing)
        );
    }

    #[test]
    fn window_is_half_open() {
        let e = Event::new("e1", "E", UnixNanos(10), UnixNanos(20), "IDR").expect("valid");
        assert!(!e.contains(UnixNanos(9)));
        assert!(e.contains(UnixNanos(10)));
        assert!(e.contains(UnixNanos(19)));
        assert!(!e.contains(UnixNanos(20)));
    }

    fn event(id: &str, starts: i64, ends: i64) -> Event {
        Event::new(id, id, UnixNanos(starts), UnixNanos(ends), "IDR").expect("valid")
    }

    #[test]
    fn settling_events_are_the_ended_ones_not_closed() {
        let closing = |id: &str, starts, ends, closes| {
            event(id, starts, ends)
                .closing_at(UnixNanos(closes))
                .expect("closes after its window")
        };
        let events = Events::new(vec![
            closing("live", 40, 50, 60),
            closing("b-settling", 20, 30, 45),
            closing("closed", 0, 10, 15),
            closing("a-settling", 31, 35, 70),
            closing("next", 60, 70, 80),
        ]);
        let ids: Vec<&str> = events
            .settling(UnixNanos(42))
            .map(|e| e.event_id.as_str())
            .collect();
        assert_eq!(ids, ["a-settling", "b-settling"]);
        assert_eq!(events.settling(UnixNanos(100)).count(), 0);
    }

    #[test]
    fn events_closed_within_a_span_are_the_recently_closed_ones() {
        let closing = |id: &str, ends, closes| {
            event(id, 0, ends)
                .closing_at(UnixNanos(closes))
                .expect("closes after its window")
        };
        let events = Events::new(vec![
            closing("settling", 10, 50),
            closing("b-just-closed", 10, 42),
            closing("a-closed-a-while", 10, 33),
            closing("long-closed", 10, 32),
        ]);
        let ids = |now, within| -> Vec<String> {
            events
                .closed_within(UnixNanos(now), within)
                .map(|e| e.event_id.clone())
                .collect()
        };
        // At 42, within 10: closed at 42 (that instant) and at 33; not at 32, not settling.
        assert_eq!(ids(42, 10), ["a-closed-a-while", "b-just-closed"]);
        // At 41, within 9: closed 8 ago, not 9 ago; the one closing at 42 is not closed yet.
        assert_eq!(ids(41, 9), ["a-closed-a-while"]);
        assert!(ids(100, 10).is_empty());
    }

    #[test]
    fn states_follow_the_clock() {
        let e = event("e", 10, 20)
            .closing_at(UnixNanos(30))
            .expect("closes after its window");
        assert_eq!(e.state(UnixNanos(9)), EventState::Scheduled);
        assert_eq!(e.state(UnixNanos(10)), EventState::Live);
        assert_eq!(e.state(UnixNanos(19)), EventState::Live);
        assert_eq!(e.state(UnixNanos(20)), EventState::Settling);
        assert_eq!(e.state(UnixNanos(29)), EventState::Settling);
        assert_eq!(e.state(UnixNanos(30)), EventState::Closed);
        assert_eq!(
            event("d", 10, 20).closes_at,
            UnixNanos(20).saturating_add_secs(DEFAULT_SETTLEMENT_SECS),
            "seven days of settlement by default"
        );
        assert_eq!(
            event("e", 10, 20).closing_at(UnixNanos(19)),
            Err(EventError::ClosesBeforeEnd)
        );
        assert!(event("e", 10, 20).compared_with("e").is_err(), "not itself");
        assert!(event("e", 10, 20).compared_with("a b").is_err());
        assert_eq!(
            event("e", 10, 20)
                .compared_with("d")
                .expect("another event")
                .baseline_event_id,
            "d"
        );
    }

    #[test]
    fn a_sale_belongs_to_the_window_that_holds_it() {
        let events = Events::new(vec![
            event("a", 10, 20),
            event("b", 20, 30),
            event("c", 50, 60),
        ]);
        assert_eq!(
            events.for_sale(UnixNanos(19)).map(|e| e.event_id.as_str()),
            Some("a")
        );
        assert_eq!(
            events.for_sale(UnixNanos(20)).map(|e| e.event_id.as_str()),
            Some("b")
        );
        assert_eq!(events.for_sale(UnixNanos(40)), None);
        assert_eq!(events.for_sale(UnixNanos(9)), None);
        // Windows that touch do not overlap; windows that share an instant do.
        assert!(events.overlapping(&event("d", 30, 50)).is_none());
        assert_eq!(
            events
                .overlapping(&event("d", 29, 50))
                .map(|e| e.event_id.as_str()),
            Some("b")
        );
        assert!(
            events
                .overlapping(&event("b", 15, 30))
                .map(|e| e.event_id.as_str())
                == Some("a")
        );
        assert!(
            events.overlapping(&event("b", 20, 45)).is_none(),
            "itself does not count"
        );
    }

    #[test]
    fn the_current_event_is_live_else_last_ended_else_next() {
        let events = Events::new(vec![
            event("a", 10, 20),
            event("b", 30, 40),
            event("c", 50, 60),
        ]);
        let current = |now| events.current(UnixNanos(now)).map(|e| e.event_id.as_str());
        assert_eq!(current(5), Some("a"), "nothing ended yet: the next");
        assert_eq!(current(15), Some("a"));
        assert_eq!(current(25), Some("a"), "the most recently ended");
        assert_eq!(current(35), Some("b"));
        assert_eq!(current(45), Some("b"));
        assert_eq!(current(99), Some("c"));
        assert_eq!(Events::default().current(UnixNanos(1)), None);
        let order: Vec<&str> = events
            .newest_first()
            .iter()
            .map(|e| e.event_id.as_str())
            .collect();
        assert_eq!(order, ["c", "b", "a"]);
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
