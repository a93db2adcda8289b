//! Identifiers with rules. Parsing is the only way to make one, so a value of these types is
//! always valid.

use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The value is empty but must not be.
    #[error("must not be empty")]
    Empty,
    /// The value is longer than allowed.
    #[error("is {len} characters long, at most {max} are allowed")]
    TooLong {
        /// Length seen, in characters.
        len: usize,
        /// Maximum length.
        max: usize,
    },
    /// The value contains a character outside its charset.
    #[error("contains {found:?}, only {allowed} are allowed")]
    BadChar {
        /// The first offending character.
        found: char,
        /// The allowed charset, in words.
        allowed: &'static str,
    },
}

/// Most characters of a refused value that answers and logs repeat.
pub const ECHO_CHARS: usize = 64;

/// At most the first [`ECHO_CHARS`] characters of a value a client sent, marked when cut: what
/// answers repeat of an invalid id, so 64 KiB ids do not become a 32 MB answer.
#[must_use]
pub fn excerpt(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}...", &value[..cut]),
    }
}

fn check(
    value: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some(found) = value.chars().find(|c| !ok(*c)) {
        return Err(IdError::BadChar { found, allowed });
    }
    // Every allowed character is ASCII, so bytes are characters here.
    if value.len() > max {
        return Err(IdError::TooLong {
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn is_txid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

const TXID_CHARSET: &str = "A-Z, a-z, 0-9, '.', '_', ':' and '-'";

/// A participating site: a lower-case slug of a-z, 0-9 and '-', 1 to 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(String);

impl SiteId {
    /// Longest allowed site id.
    pub const MAX_LEN: usize = 40;

    /// Parses a site id.
    ///
    /// # Errors
    /// When the value is empty, too long, or has a character outside `[a-z0-9-]`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        check(value, Self::MAX_LEN, "a-z, 0-9 and '-'", |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        })?;
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A retailer's transaction id: 1 to 64 characters of `[A-Za-z0-9._:-]`, unique per site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(String);

impl TransactionId {
    /// Longest allowed transaction id.
    pub const MAX_LEN: usize = 64;

    /// Parses a transaction id.
    ///
    /// # Errors
    /// When the value is empty, longer than 64 characters, or outside the charset.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        check(value, Self::MAX_LEN, TXID_CHARSET, is_txid_char)?;
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the organizers' void of `target`: `void/` and the target's id. `/` is outside
    /// a retailer's charset, so no pushed id is ever a void's, and a target has one void id.
    #[must_use]
    pub fn void_of(target: &Self) -> Self {
        Self(format!("{VOID_PREFIX}{}", target.0))
    }

    /// Whether this is a void's id ([`TransactionId::void_of`]).
    #[must_use]
    pub fn is_void(&self) -> bool {
        self.0.starts_with(VOID_PREFIX)
    }
}

/// What a void's id starts with.
const VOID_PREFIX: &str = "void/";

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A retailer's store or channel: empty, or the transaction id charset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct StoreId(String);

impl StoreId {
    /// Parses a store id; the empty string is allowed and means "not given".
    ///
    /// # Errors
    /// When the value is longer than 64 characters or outside the charset.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.is_empty() {
            return Ok(Self::default());
        }
        check(value, TransactionId::MAX_LEN, TXID_CHARSET, is_txid_char)?;
        Ok(Self(value.to_owned()))
    }

    /// The id as text (empty when not given).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_id_accepts_slugs() {
        for ok in ["a", "tokopedia", "blibli-com", "site-42", &"a".repeat(40)] {
            assert_eq!(SiteId::parse(ok).map(|s| s.0), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn site_id_refuses_the_rest() {
        assert_eq!(SiteId::parse(""), Err(IdError::Empty));
        assert_eq!(
            SiteId::parse(&"a".repeat(41)),
            Err(IdError::TooLong { len: 41, max: 40 })
        );
        for (bad, c) in [
            ("Toko", 'T'),
            ("a_b", '_'),
            ("a b", ' '),
            ("é", 'é'),
            ("a.b", '.'),
        ] {
            assert!(
                matches!(SiteId::parse(bad), Err(IdError::BadChar { found, .. }) if found == c),
                "{bad}"
            );
        }
    }

    #[test]
    fn transaction_id_charset_and_length() {
        for ok in ["T-1", "a.b_c:d-e", "ABCxyz09", &"x".repeat(64)] {
            assert!(TransactionId::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(TransactionId::parse(""), Err(IdError::Empty));
        assert_eq!(
            TransactionId::parse(&"x".repeat(65)),
            Err(IdError::TooLong { len: 65, max: 64 })
        );
        for bad in ["a b", "a/b", "a#", "ü", "a\n"] {
            assert!(
                matches!(TransactionId::parse(bad), Err(IdError::BadChar { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_void_id_is_never_a_pushed_one() {
        let target = TransactionId::parse(&"x".repeat(64)).expect("id");
        let void = TransactionId::void_of(&target);
        assert_eq!(void.as_str(), format!("void/{}", "x".repeat(64)));
        assert!(void.is_void());
        assert!(!target.is_void());
        // A retailer cannot push it, nor anything that looks like it.
        assert!(TransactionId::parse(void.as_str()).is_err());
        assert!(TransactionId::parse("void:x").is_ok_and(|id| !id.is_void()));
    }

    #[test]
    fn store_id_may_be_empty() {
        assert_eq!(StoreId::parse("").map(|s| s.0), Ok(String::new()));
        assert!(StoreId::parse("jakarta-01").is_ok());
        assert!(matches!(
            StoreId::parse("a b"),
            Err(IdError::BadChar { .. })
        ));
        assert!(matches!(
            StoreId::parse(&"s".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "x".repeat(65_536);
        let e = excerpt(&long);
        assert_eq!(e, format!("{}...", "x".repeat(ECHO_CHARS)));
        let exact = "é".repeat(ECHO_CHARS);
        assert_eq!(excerpt(&exact), exact, "counts characters, not bytes");
    }
}
