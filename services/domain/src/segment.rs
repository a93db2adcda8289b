//! What a transaction sold, not only where: its brand, category and origin (domestic or
//! cross-border), the dimensions of the breakdowns. Every field is optional; a transaction
//! without one falls under the empty key `""` of that dimension, so the entries of a breakdown
//! always add up to the whole.

use std::fmt;

use crate::{IdError, Reason, Rejection};

/// A dimension of the breakdowns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// The brand sold.
    Brand,
    /// The product category.
    Category,
    /// Domestic or cross-border.
    Origin,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Self; 3] = [Self::Brand, Self::Category, Self::Origin];

    /// Stable small-integer code used by the totals tables (the protobuf numbers).
    #[must_use]
    pub fn code(self) -> i16 {
        match self {
            Self::Brand => 1,
            Self::Category => 2,
            Self::Origin => 3,
        }
    }

    /// The dimension of a stored code.
    #[must_use]
    pub fn from_code(code: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.code() == code)
    }

    /// Lower-case name, as the command line and logs say it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Brand => "brand",
            Self::Category => "category",
            Self::Origin => "origin",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where what was sold comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// Not said.
    #[default]
    Unspecified,
    /// A local product.
    Domestic,
    /// An import.
    CrossBorder,
}

impl Origin {
    /// Stable small-integer code used by the ledger (the protobuf numbers).
    #[must_use]
    pub fn code(self) -> i16 {
        match self {
            Self::Unspecified => 0,
            Self::Domestic => 1,
            Self::CrossBorder => 2,
        }
    }

    /// The origin of a stored code.
    #[must_use]
    pub fn from_code(code: i16) -> Option<Self> {
        [Self::Unspecified, Self::Domestic, Self::CrossBorder]
            .into_iter()
            .find(|o| o.code() == code)
    }

    /// Its key in a breakdown: `"domestic"`, `"cross-border"`, or `""` when not said.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::Domestic => "domestic",
            Self::CrossBorder => "cross-border",
        }
    }

    /// The origin a key names (what push files and the command line accept).
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        [Self::Unspecified, Self::Domestic, Self::CrossBorder]
            .into_iter()
            .find(|o| o.key() == key)
    }
}

/// The origin of a transaction as a client sent it (the gRPC edge maps its enum onto this).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PushedOrigin {
    /// A defined origin (or none).
    #[default]
    Unspecified,
    /// Domestic.
    Domestic,
    /// Cross-border.
    CrossBorder,
    /// A number the contract does not define (shown in the rejection).
    Unknown(i32),
}

/// A brand or category: a lower-case slug of a-z, 0-9 and '-', 1 to 40 characters (the rule
/// of site ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    /// Longest allowed slug.
    pub const MAX_LEN: usize = 40;

    /// Parses a slug.
    ///
    /// # Errors
    /// When the value is empty, too long, or has a character outside `[a-z0-9-]`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        crate::ids::SiteId::parse(value).map(|s| Self(s.as_str().to_owned()))
    }

    /// The slug as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The segment fields of a transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Segments {
    /// The brand, if said.
    pub brand: Option<Slug>,
    /// The category, if said.
    pub category: Option<Slug>,
    /// Domestic, cross-border, or not said.
    pub origin: Origin,
}

impl Segments {
    /// Validates the fields as sent: empty or a slug for brand and category, a defined origin.
    ///
    /// # Errors
    /// The first invalid field, with its reason (`INVALID_BRAND`, `INVALID_CATEGORY`,
    /// `INVALID_ORIGIN`).
    pub fn parse(brand: &str, category: &str, origin: PushedOrigin) -> Result<Self, Rejection> {
        let slug = |value: &str, field: &str, reason: Reason| {
            if value.is_empty() {
                return Ok(None);
            }
            Slug::parse(value).map(Some).map_err(|e| {
                Rejection::new(
                    reason,
                    format!(
                        "{field} {:?} {e}; it must be empty or a slug of 1 to 40 characters of \
                         a-z, 0-9 and '-'",
                        crate::ids::excerpt(value)
                    ),
                )
            })
        };
        let brand = slug(brand, "brand", Reason::InvalidBrand)?;
        let category = slug(category, "category", Reason::InvalidCategory)?;
        let origin = match origin {
            PushedOrigin::Unspecified => Origin::Unspecified,
            PushedOrigin::Domestic => Origin::Domestic,
            PushedOrigin::CrossBorder => Origin::CrossBorder,
            PushedOrigin::Unknown(n) => {
                return Err(Rejection::new(
                    Reason::InvalidOrigin,
                    format!(
                        "origin {n} is not a known Origin; set ORIGIN_DOMESTIC, \
                         ORIGIN_CROSS_BORDER or leave it unset"
                    ),
                ));
            }
        };
        Ok(Self {
            brand,
            category,
            origin,
        })
    }

    /// The key of this transaction in a dimension: the slug, `"domestic"`/`"cross-border"`,
    /// or `""` when the field is not set.
    #[must_use]
    pub fn key(&self, dimension: Dimension) -> &str {
        match dimension {
            Dimension::Brand => self.brand.as_ref().map_or("", Slug::as_str),
            Dimension::Category => self.category.as_ref().map_or("", Slug::as_str),
            Dimension::Origin => self.origin.key(),
        }
    }

    /// Whether no field is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The segments of a refund whose sale has `sale`'s: the sale's, when every field the
    /// refund names equals the sale's.
    ///
    /// # Errors
    /// The fields the refund names differently, as `(field, refund's, sale's)`.
    pub fn inherit(&self, sale: &Self) -> Result<Self, Vec<(&'static str, String, String)>> {
        let mut differ = Vec::new();
        for (dimension, field) in [
            (Dimension::Brand, "brand"),
            (Dimension::Category, "category"),
            (Dimension::Origin, "origin"),
        ] {
            let (mine, theirs) = (self.key(dimension), sale.key(dimension));
            if !mine.is_empty() && mine != theirs {
                differ.push((field, mine.to_owned(), theirs.to_owned()));
            }
        }
        if differ.is_empty() {
            Ok(sale.clone())
        } else {
            Err(differ)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(brand: &str, category: &str, origin: PushedOrigin) -> Result<Segments, Reason> {
        Segments::parse(brand, category, origin).map_err(|r| r.reason)
    }

    #[test]
    fn fields_are_empty_or_slugs() {
        let s = segs("nestle", "food-drink", PushedOrigin::CrossBorder).expect("valid");
        assert_eq!(s.key(Dimension::Brand), "nestle");
        assert_eq!(s.key(Dimension::Category), "food-drink");
        assert_eq!(s.key(Dimension::Origin), "cross-border");
        let none = segs("", "", PushedOrigin::Unspecified).expect("valid");
        assert!(none.is_empty());
        for d in Dimension::ALL {
            assert_eq!(none.key(d), "");
        }
        assert_eq!(
            segs(&"b".repeat(40), "", PushedOrigin::Domestic)
                .expect("40 is allowed")
                .key(Dimension::Origin),
            "domestic"
        );
        assert_eq!(
            segs(&"b".repeat(41), "", PushedOrigin::Unspecified),
            Err(Reason::InvalidBrand)
        );
        assert_eq!(
            segs("Nestle", "", PushedOrigin::Unspecified),
            Err(Reason::InvalidBrand)
        );
        assert_eq!(
            segs("", "food drink", PushedOrigin::Unspecified),
            Err(Reason::InvalidCategory)
        );
        assert_eq!(
            segs("", "", PushedOrigin::Unknown(3)),
            Err(Reason::InvalidOrigin)
        );
        assert_eq!(
            segs("", "", PushedOrigin::Unknown(-1)),
            Err(Reason::InvalidOrigin)
        );
    }

    #[test]
    fn messages_name_the_field_and_cut_long_values() {
        let r = Segments::parse(&"X".repeat(10_000), "", PushedOrigin::Unspecified)
            .expect_err("invalid");
        assert!(r.message.starts_with("brand "), "{}", r.message);
        assert!(r.message.len() < 400, "{}", r.message);
        let r = Segments::parse("", "a_b", PushedOrigin::Unspecified).expect_err("invalid");
        assert!(r.message.starts_with("category "), "{}", r.message);
        let r = Segments::parse("", "", PushedOrigin::Unknown(9)).expect_err("invalid");
        assert!(r.message.contains("origin 9"), "{}", r.message);
    }

    #[test]
    fn a_refund_takes_its_sales_segments() {
        let sale = segs("nestle", "food", PushedOrigin::Domestic).expect("valid");
        let bare = Segments::default();
        assert_eq!(bare.inherit(&sale), Ok(sale.clone()));
        let same_brand = segs("nestle", "", PushedOrigin::Unspecified).expect("valid");
        assert_eq!(same_brand.inherit(&sale), Ok(sale.clone()));
        assert_eq!(sale.inherit(&sale), Ok(sale.clone()));
        let other = segs("unilever", "food", PushedOrigin::CrossBorder).expect("valid");
        assert_eq!(
            other.inherit(&sale),
            Err(vec![
                ("brand", "unilever".into(), "nestle".into()),
                ("origin", "cross-border".into(), "domestic".into())
            ])
        );
        // A sale without a field: a refund naming one differs.
        let named = segs("", "toys", PushedOrigin::Unspecified).expect("valid");
        assert_eq!(
            named.inherit(&bare),
            Err(vec![("category", "toys".into(), String::new())])
        );
    }

    #[test]
    fn codes_round_trip() {
        for d in Dimension::ALL {
            assert_eq!(Dimension::from_code(d.code()), Some(d));
        }
        assert_eq!(Dimension::from_code(0), None);
        for o in [Origin::Unspecified, Origin::Domestic, Origin::CrossBorder] {
            assert_eq!(Origin::from_code(o.code()), Some(o));
            assert_eq!(Origin::from_key(o.key()), Some(o));
        }
        assert_eq!(Origin::from_code(3), None);
        assert_eq!(Origin::from_key("import"), None);
    }
}
