//! The audit log's rules: who an organizer is ([`OrganizerName`]), and the hash chain that seals
//! every entry ([`Entry::seal`], [`ChainCheck`]). Storage keeps the entries; this module says
//! what their bytes are and whether a sequence of them is intact, with no I/O.
//!
//! An entry's `sha256` is the SHA-256 of its canonical bytes: the tag `saleboard-audit-v1`,
//! then each of position, at (Unix nanoseconds), organizer, rpc, request_json, outcome and
//! prev_sha256 as its UTF-8 text (integers in decimal) preceded by its length in bytes, 8 bytes
//! big endian. Length prefixes make the bytes unambiguous (no field can pass for the start of
//! the next); `prev_sha256` chains each entry to every one before it.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ids::IdError;
use crate::time::UnixNanos;

/// The organizer whose secret is the organizer token from configuration.
pub const BOOTSTRAP: &str = "bootstrap";

/// The `prev_sha256` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the canonical bytes start with (the format's version).
const TAG: &[u8] = b"saleboard-audit-v1";

/// An organizer's name: a lower-case slug of a-z, 0-9 and '-', 1 to 40 characters (as site
/// ids), so it reads the same in a log line, a table and a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganizerName(String);

impl OrganizerName {
    /// Longest allowed name.
    pub const MAX_LEN: usize = 40;

    /// Parses a name.
    ///
    /// # Errors
    /// When the value is empty, too long, or has a character outside `[a-z0-9-]`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        // The same rule as a site id.
        crate::SiteId::parse(value)?;
        Ok(Self(value.to_owned()))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the organizer of the token from configuration.
    #[must_use]
    pub fn is_bootstrap(&self) -> bool {
        self.0 == BOOTSTRAP
    }
}

impl fmt::Display for OrganizerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry of the audit log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1, 2, 3, ... without gaps.
    pub position: u64,
    /// When the call was recorded.
    pub at: UnixNanos,
    /// Who made the call.
    pub organizer: String,
    /// The method, e.g. `CreateSite`.
    pub rpc: String,
    /// The request in the proto3 JSON mapping, secrets removed.
    pub request_json: String,
    /// The status code's name and the resource produced (or the refusal's message).
    pub outcome: String,
    /// The previous entry's `sha256` ([`GENESIS`] for the first).
    pub prev_sha256: String,
    /// SHA-256 of the canonical bytes, hex.
    pub sha256: String,
}

impl Entry {
    /// The canonical bytes the entry's `sha256` is computed over.
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let position = self.position.to_string();
        let at = self.at.0.to_string();
        let fields: [&[u8]; 7] = [
            position.as_bytes(),
            at.as_bytes(),
            self.organizer.as_bytes(),
            self.rpc.as_bytes(),
            self.request_json.as_bytes(),
            self.outcome.as_bytes(),
            self.prev_sha256.as_bytes(),
        ];
        let size = TAG.len() + fields.iter().map(|f| f.len() + 8).sum::<usize>();
        let mut bytes = Vec::with_capacity(size);
        bytes.extend_from_slice(TAG);
        for field in fields {
            // A length always fits: no platform Rust supports has a usize wider than 64 bits.
            let len = u64::try_from(field.len()).unwrap_or(u64::MAX);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(field);
        }
        bytes
    }

    /// The `sha256` this entry's fields call for.
    #[must_use]
    pub fn computed_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }

    /// The entry with its `sha256` computed from its fields.
    #[must_use]
    pub fn seal(mut self) -> Self {
        self.sha256 = self.computed_sha256();
        self
    }
}

/// Why the chain breaks at an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// A position is missing (or repeated, or out of order).
    #[error("expected position {expected}, found {found}")]
    Gap {
        /// The position that should come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The entry's `prev_sha256` is not the previous entry's `sha256`.
    #[error("its prev_sha256 is not the sha256 of the entry before it")]
    Unlinked,
    /// The entry's fields do not hash to its `sha256`: it was changed after it was written.
    #[error("its fields do not hash to its sha256 (the entry was altered)")]
    Altered,
}

/// Checks a chain entry by entry, in position order, from the first.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    next: u64,
    prev: String,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self {
            next: 1,
            prev: GENESIS.to_owned(),
        }
    }
}

impl ChainCheck {
    /// Checks the next entry.
    ///
    /// # Errors
    /// How the chain breaks at `entry`.
    pub fn check(&mut self, entry: &Entry) -> Result<(), ChainBreak> {
        if entry.position != self.next {
            return Err(ChainBreak::Gap {
                expected: self.next,
                found: entry.position,
            });
        }
        if entry.computed_sha256() != entry.sha256 {
            return Err(ChainBreak::Altered);
        }
        if entry.prev_sha256 != self.prev {
            return Err(ChainBreak::Unlinked);
        }
        self.next = self.next.saturating_add(1);
        self.prev.clone_from(&entry.sha256);
        Ok(())
    }

    /// How many entries have been checked.
    #[must_use]
    pub fn checked(&self) -> u64 {
        self.next - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(position: u64, prev: &str) -> Entry {
        Entry {
            position,
            at: UnixNanos(1_700_000_000_000_000_000),
            organizer: "alice".into(),
            rpc: "CreateSite".into(),
            request_json: r#"{"site_id":"a","display_name":""}"#.into(),
            outcome: "OK".into(),
            prev_sha256: prev.into(),
            sha256: String::new(),
        }
        .seal()
    }

    #[test]
    fn a_chain_verifies_and_names_the_entry_that_breaks_it() {
        let first = entry(1, GENESIS);
        let second = entry(2, &first.sha256);
        let third = entry(3, &second.sha256);
        let mut check = ChainCheck::default();
        for e in [&first, &second, &third] {
            check.check(e).expect("intact");
        }
        assert_eq!(check.checked(), 3);

        let mut altered = second.clone();
        altered.organizer = "mallory".into();
        let mut check = ChainCheck::default();
        check.check(&first).expect("first");
        assert_eq!(check.check(&altered), Err(ChainBreak::Altered));

        // Resealed after the change: the next entry no longer links to it.
        let resealed = altered.seal();
        let mut check = ChainCheck::default();
        check.check(&first).expect("first");
        check.check(&resealed).expect("resealed on its own");
        assert_eq!(check.check(&third), Err(ChainBreak::Unlinked));

        let mut check = ChainCheck::default();
        check.check(&first).expect("first");
        assert_eq!(
            check.check(&third),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn fields_cannot_pass_for_their_neighbours() {
        let a = entry(1, GENESIS);
        let mut b = a.clone();
        b.organizer = "alic".into();
        b.rpc = "eCreateSite".into();
        assert_ne!(a.seal().sha256, b.seal().sha256);
    }

    #[test]
    fn names_follow_the_slug_rule() {
        assert!(OrganizerName::parse("budi-santoso").is_ok());
        assert!(
            OrganizerName::parse("bootstrap")
                .expect("valid")
                .is_bootstrap()
        );
        for bad in ["", "Alice", "a b", &"x".repeat(41)] {
            assert!(OrganizerName::parse(bad).is_err(), "{bad}");
        }
    }
}
