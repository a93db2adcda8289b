//! Page tokens: one format for every paged answer of the leaderboard. A token names the
//! snapshot (or kept site breakdown) generation its pages are cut from, where the next page
//! starts, and, for a breakdown, the dimension it pages: `{generation}.{offset}` or
//! `{generation}.{offset}.{dimension code}`. Only the exact text written here parses ("+7",
//! "07" and the like are someone else's), so a token cannot be forged into another meaning.

use crate::Dimension;

/// Where the next page of an answer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    /// The generation the pages are cut from.
    pub generation: u64,
    /// The first entry of the page.
    pub offset: usize,
    /// The dimension of a breakdown's pages; `None` for the leaderboard's.
    pub dimension: Option<Dimension>,
}

impl PageToken {
    /// The token's text.
    #[must_use]
    pub fn encode(&self) -> String {
        match self.dimension {
            None => format!("{}.{}", self.generation, self.offset),
            Some(d) => format!("{}.{}.{}", self.generation, self.offset, d.code()),
        }
    }

    /// The token a text is, when it is exactly one this module wrote.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let generation = parts.next()?.parse().ok()?;
        let offset = parts.next()?.parse().ok()?;
        let dimension = match parts.next() {
            None => None,
            Some(code) => Some(Dimension::from_code(code.parse().ok()?)?),
        };
        if parts.next().is_some() {
            return None;
        }
        let token = Self {
            generation,
            offset,
            dimension,
        };
        (token.encode() == text).then_some(token)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tokens_are_strict_and_name_their_dimension() {
        let t = |generation, offset, dimension| PageToken {
            generation,
            offset,
            dimension,
        };
        assert_eq!(PageToken::parse("7.10"), Some(t(7, 10, None)));
        assert_eq!(
            PageToken::parse("7.10.2"),
            Some(t(7, 10, Some(Dimension::Category)))
        );
        for bad in [
            "",
            ".",
            "7.",
            ".10",
            "+7.10",
            "07.10",
            "7.-1",
            "7.10.",
            "7.10.0",
            "7.10.4",
            "7.10.02",
            "7.10.2.1",
            "a.b",
            "99999999999999999999999.1",
        ] {
            assert_eq!(PageToken::parse(bad), None, "{bad}");
        }
    }

    fn dimension() -> impl Strategy<Value = Option<Dimension>> {
        prop_oneof![
            Just(None),
            Just(Some(Dimension::Brand)),
            Just(Some(Dimension::Category)),
            Just(Some(Dimension::Origin)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn tokens_round_trip(generation in any::<u64>(), offset in any::<usize>(), dimension in dimension()) {
            let token = PageToken { generation, offset, dimension };
            prop_assert_eq!(PageToken::parse(&token.encode()), Some(token));
        }

        #[test]
        fn any_text_is_a_token_or_refused(text in ".{0,40}|[0-9.]{0,40}") {
            if let Some(token) = PageToken::parse(&text) {
                prop_assert_eq!(token.encode(), text);
            }
        }
    }
}
