//! Organizers' actions on a site's standing in an event (issue 28): proposed by one organizer,
//! applied only once another approves them ("four eyes"), or rejected by another.
//!
//! A hold takes a site off an event's public ranking while its figures stay in every national
//! figure; a release puts it back. At most one action is pending per (event, site), so two
//! organizers cannot race contradictory proposals, and an approval applies exactly what was
//! proposed against the standing it was proposed for.

use std::fmt;

/// Who proposes an automatic hold (the integrity policy's, issue 28). Not an organizer's name:
/// ':' is outside their alphabet, so no organizer can be it, and the organizer who turned the
/// policy on, who approves it, is always another.
pub const AUTO_HOLD: &str = "policy:auto-hold";

/// Longest reason or decision note, in characters.
pub const MAX_REASON: usize = 1_000;

/// What an action does when approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Take the site off the event's public ranking.
    Hold,
    /// Put a held site back.
    Release,
    /// Void transactions of the site (`AdjustTransactions`): voids appended to the ledger.
    Adjust,
}

impl ActionKind {
    /// The kind for `SetSiteHold`'s `held`.
    #[must_use]
    pub fn for_held(held: bool) -> Self {
        if held { Self::Hold } else { Self::Release }
    }

    /// Its name as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Adjust => "adjust",
        }
    }

    /// The kind stored as `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hold" => Some(Self::Hold),
            "release" => Some(Self::Release),
            "adjust" => Some(Self::Adjust),
            _ => None,
        }
    }

    /// Whether the site is held once this kind is applied; `None` for an adjustment, which
    /// leaves the site's standing as it is.
    #[must_use]
    pub fn holds(self) -> Option<bool> {
        match self {
            Self::Hold => Some(true),
            Self::Release => Some(false),
            Self::Adjust => None,
        }
    }
}

/// Where an action is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionState {
    /// Proposed, waiting for a second organizer.
    Pending,
    /// Approved by a second organizer, and done.
    Applied,
    /// Rejected by a second organizer; nothing was done.
    Rejected,
}

impl ActionState {
    /// Its name as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applied => "applied",
            Self::Rejected => "rejected",
        }
    }

    /// The state stored as `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "applied" => Some(Self::Applied),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an action cannot be proposed or decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionRefusal {
    /// The site already stands as the action would leave it.
    #[error("site {site:?} is {} in event {event:?} already", if *.held { "held" } else { "not held" })]
    AlreadySo {
        /// The site.
        site: String,
        /// The event.
        event: String,
        /// Held now.
        held: bool,
    },
    /// Another action on the same site in the same event waits for a decision.
    #[error(
        "action {action_id} on site {site:?} in event {event:?} is pending: approve or reject it first"
    )]
    Pending {
        /// The site.
        site: String,
        /// The event.
        event: String,
        /// The pending action.
        action_id: String,
    },
    /// The action was decided already.
    #[error("action {action_id} is {state} already; a decision is final")]
    Decided {
        /// The action.
        action_id: String,
        /// Its state.
        state: ActionState,
    },
    /// The organizer who proposed an action cannot decide it.
    #[error(
        "{organizer} proposed action {action_id}: another organizer must approve or reject it (four eyes)"
    )]
    OwnAction {
        /// The action.
        action_id: String,
        /// Who proposed it and tried to decide it.
        organizer: String,
    },
}

impl ActionRefusal {
    /// The refusal is about who asks (PERMISSION_DENIED), not the state of things
    /// (FAILED_PRECONDITION).
    #[must_use]
    pub fn is_permission(&self) -> bool {
        matches!(self, Self::OwnAction { .. })
    }
}

/// Whether `kind` may be proposed for `site` in `event`, given whether the site is held now and
/// the action pending on it, if any (one pending action per site and event, of any kind; an
/// adjustment leaves the standing as it is, so it may be proposed held or not).
///
/// # Errors
/// [`ActionRefusal::Pending`] or [`ActionRefusal::AlreadySo`].
pub fn check_proposal(
    kind: ActionKind,
    site: &str,
    event: &str,
    held_now: bool,
    pending: Option<&str>,
) -> Result<(), ActionRefusal> {
    if let Some(action_id) = pending {
        return Err(ActionRefusal::Pending {
            site: site.to_owned(),
            event: event.to_owned(),
            action_id: action_id.to_owned(),
        });
    }
    if kind.holds() == Some(held_now) {
        return Err(ActionRefusal::AlreadySo {
            site: site.to_owned(),
            event: event.to_owned(),
            held: held_now,
        });
    }
    Ok(())
}

/// Whether `organizer` may decide (approve or reject) the action `action_id`, in `state`,
/// proposed by `proposed_by`.
///
/// # Errors
/// [`ActionRefusal::Decided`] (checked first: a decided action is final whoever asks) or
/// [`ActionRefusal::OwnAction`].
pub fn check_decision(
    action_id: &str,
    state: ActionState,
    proposed_by: &str,
    organizer: &str,
) -> Result<(), ActionRefusal> {
    if state != ActionState::Pending {
        return Err(ActionRefusal::Decided {
            action_id: action_id.to_owned(),
            state,
        });
    }
    if proposed_by == organizer {
        return Err(ActionRefusal::OwnAction {
            action_id: action_id.to_owned(),
            organizer: organizer.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in [ActionKind::Hold, ActionKind::Release, ActionKind::Adjust] {
            assert_eq!(ActionKind::parse(kind.as_str()), Some(kind));
        }
        for state in [
            ActionState::Pending,
            ActionState::Applied,
            ActionState::Rejected,
        ] {
            assert_eq!(ActionState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ActionKind::parse("HOLD"), None);
        assert_eq!(ActionState::parse(""), None);
        assert_eq!(ActionKind::for_held(true), ActionKind::Hold);
        assert_eq!(ActionKind::for_held(false), ActionKind::Release);
    }

    #[test]
    fn a_proposal_must_change_the_standing_and_wait_for_none() {
        assert_eq!(
            check_proposal(ActionKind::Hold, "s", "e", false, None),
            Ok(())
        );
        assert_eq!(
            check_proposal(ActionKind::Release, "s", "e", true, None),
            Ok(())
        );
        let held = check_proposal(ActionKind::Hold, "s", "e", true, None).expect_err("refused");
        assert_eq!(
            held.to_string(),
            "site \"s\" is held in event \"e\" already"
        );
        let free = check_proposal(ActionKind::Release, "s", "e", false, None).expect_err("refused");
        assert_eq!(
            free.to_string(),
            "site \"s\" is not held in event \"e\" already"
        );
        // An adjustment, held or not.
        for held in [false, true] {
            assert_eq!(
                check_proposal(ActionKind::Adjust, "s", "e", held, None),
                Ok(())
            );
        }
        // A pending action blocks any other, of any kind, and is named.
        for (kind, held) in [
            (ActionKind::Hold, false),
            (ActionKind::Release, true),
            (ActionKind::Adjust, false),
        ] {
            let e = check_proposal(kind, "s", "e", held, Some("act-1")).expect_err("refused");
            assert!(
                matches!(e, ActionRefusal::Pending { ref action_id, .. } if action_id == "act-1")
            );
            assert!(!e.is_permission());
        }
    }

    #[test]
    fn only_another_organizer_decides_and_only_once() {
        assert_eq!(
            check_decision("a", ActionState::Pending, "ana", "budi"),
            Ok(())
        );
        let own = check_decision("a", ActionState::Pending, "ana", "ana").expect_err("refused");
        assert!(own.is_permission());
        assert!(own.to_string().contains("another organizer"));
        for state in [ActionState::Applied, ActionState::Rejected] {
            // Final whoever asks, the proposer included.
            for who in ["ana", "budi"] {
                let e = check_decision("a", state, "ana", who).expect_err("refused");
                assert_eq!(
                    e,
                    ActionRefusal::Decided {
                        action_id: "a".into(),
                        state
                    }
                );
                assert!(!e.is_permission());
            }
        }
    }
}
