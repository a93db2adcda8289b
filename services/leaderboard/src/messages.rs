//! The domain's values as the contract carries them, for every service of this crate (a leaf
//! module: it imports none of the others, so none of them import each other through it).

use saleboard_domain::{Event, EventState, Events, UnixNanos};
use saleboard_proto::Timestamp;
use saleboard_proto::v1::{Event as EventMsg, EventState as EventStateMsg, ListEventsResponse};

/// A protobuf timestamp of an instant.
#[must_use]
pub fn timestamp(t: UnixNanos) -> Timestamp {
    let (seconds, nanos) = t.to_parts();
    Timestamp { seconds, nanos }
}

/// An event as the contract carries it, with its state at `now`.
#[must_use]
pub fn event_msg(e: &Event, now: UnixNanos) -> EventMsg {
    EventMsg {
        event_id: e.event_id.clone(),
        display_name: e.display_name.clone(),
        starts_at: Some(timestamp(e.starts_at)),
        ends_at: Some(timestamp(e.ends_at)),
        reporting_currency: e.reporting_currency.code().to_owned(),
        baseline_event_id: e.baseline_event_id.clone(),
        closes_at: Some(timestamp(e.closes_at)),
        time_zone: e.time_zone.clone(),
        state: state_msg(e.state(now)).into(),
    }
}

/// Every event, newest first, with its state at `now`.
#[must_use]
pub fn events_msg(events: &Events, now: UnixNanos) -> ListEventsResponse {
    ListEventsResponse {
        events: events
            .newest_first()
            .into_iter()
            .map(|e| event_msg(e, now))
            .collect(),
    }
}

/// An event state as the contract names it.
#[must_use]
pub fn state_msg(state: EventState) -> EventStateMsg {
    match state {
        EventState::Scheduled => EventStateMsg::Scheduled,
        EventState::Live => EventStateMsg::Live,
        EventState::Settling => EventStateMsg::Settling,
        EventState::Closed => EventStateMsg::Closed,
    }
}
