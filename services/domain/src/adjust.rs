//! Organizers' adjustments (issue 28: `AdjustTransactions`): which ledger rows an adjustment
//! voids. An adjustment names transactions of one site in one event; once a second organizer
//! approves it, storage appends a void for each (a row of the same content, see
//! [`ValidTransaction::voided`]), never editing or deleting one. A sale is voided with its
//! refunds, so a site's figures stay those of the rows still counted (a net never below zero);
//! a refund may be voided alone. A row is voided at most once.

use std::collections::{HashMap, HashSet};

use crate::{Nature, TransactionId, UnixNanos, ValidTransaction};

/// The most transaction ids one adjustment names.
pub const MAX_TRANSACTION_IDS: usize = 1_000;

/// Why the ids an organizer named cannot make an adjustment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdsError {
    /// None named.
    #[error("names no transaction: name 1 to {MAX_TRANSACTION_IDS} transaction ids")]
    Empty,
    /// Too many named.
    #[error(
        "names {count} transactions, at most {MAX_TRANSACTION_IDS} are allowed: split the adjustment"
    )]
    TooMany {
        /// How many were named.
        count: usize,
    },
    /// One is not a transaction id.
    #[error("{message}")]
    Invalid {
        /// Its index in the request.
        index: usize,
        /// Why.
        message: String,
    },
    /// One is named twice.
    #[error("{id:?} is named twice (also at index {first})")]
    Repeated {
        /// Its second index.
        index: usize,
        /// Its first index.
        first: usize,
        /// The id.
        id: String,
    },
}

impl IdsError {
    /// The index of the id at fault, when one is.
    #[must_use]
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::Invalid { index, .. } | Self::Repeated { index, .. } => Some(*index),
            Self::Empty | Self::TooMany { .. } => None,
        }
    }
}

/// Parses the transaction ids an adjustment names: 1 to [`MAX_TRANSACTION_IDS`], each a
/// retailer's transaction id, none twice.
///
/// # Errors
/// The first fault, naming the index of the id at fault.
pub fn parse_ids<S: AsRef<str>>(ids: &[S]) -> Result<Vec<TransactionId>, IdsError> {
    if ids.is_empty() {
        return Err(IdsError::Empty);
    }
    if ids.len() > MAX_TRANSACTION_IDS {
        return Err(IdsError::TooMany { count: ids.len() });
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    let mut parsed = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        let id = id.as_ref();
        let tx = TransactionId::parse(id).map_err(|e| IdsError::Invalid {
            index,
            message: format!("{:?} {e}", crate::ids::excerpt(id)),
        })?;
        if let Some(first) = seen.insert(id, index) {
            return Err(IdsError::Repeated {
                index,
                first,
                id: id.to_owned(),
            });
        }
        parsed.push(tx);
    }
    Ok(parsed)
}

/// A stored row an adjustment names, or a refund of a sale it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The transaction.
    pub tx: ValidTransaction,
    /// The event it is counted in.
    pub event_id: String,
    /// When the server received it (its void is folded as received then: as late as it was).
    pub received_at: UnixNanos,
    /// Whether it was voided already.
    pub voided: bool,
}

/// Why an adjustment cannot void what it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdjustRefusal {
    /// No such transaction of the site.
    #[error("transaction_ids[{index}] {id:?} names no transaction of site {site:?}")]
    Unknown {
        /// Its index in the request.
        index: usize,
        /// The id.
        id: String,
        /// The site.
        site: String,
    },
    /// The transaction is counted in another event.
    #[error(
        "transaction_ids[{index}] {id:?} is counted in event {counted_in:?}, not {event:?}: adjust it there"
    )]
    OtherEvent {
        /// Its index in the request.
        index: usize,
        /// The id.
        id: String,
        /// The event it is counted in.
        counted_in: String,
        /// The adjustment's event.
        event: String,
    },
    /// The event is closed: its figures are final.
    #[error("event {event:?} closed at {closed_at}: its figures are final and take no adjustment")]
    Closed {
        /// The event.
        event: String,
        /// When it closed (RFC 3339).
        closed_at: String,
    },
    /// The transaction was voided already.
    #[error(
        "transaction_ids[{index}] {id:?} was voided already (a voided row is never voided twice)"
    )]
    Voided {
        /// Its index in the request.
        index: usize,
        /// The id.
        id: String,
    },
}

impl AdjustRefusal {
    /// Whether the refusal is that a named id does not exist (NOT_FOUND, rather than a
    /// precondition).
    #[must_use]
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown { .. })
    }
}

/// The rows an adjustment of `site` in `event_id` voids, in the order named, each once: each
/// named row, and after a sale its refunds not voided yet (`refunds`: each sale's refund ids in
/// ledger order). `rows` holds every named row that exists and every refund of a named sale.
///
/// # Errors
/// The first named id that does not exist, is counted in another event, or was voided.
pub fn plan<'a>(
    site: &str,
    event_id: &str,
    named: &[TransactionId],
    rows: &'a HashMap<TransactionId, Row>,
    refunds: &HashMap<TransactionId, Vec<TransactionId>>,
) -> Result<Vec<&'a Row>, AdjustRefusal> {
    let mut voids: Vec<&Row> = Vec::new();
    let mut taken: HashSet<&TransactionId> = HashSet::new();
    for (index, id) in named.iter().enumerate() {
        let Some(row) = rows.get(id) else {
            return Err(AdjustRefusal::Unknown {
                index,
                id: id.to_string(),
                site: site.to_owned(),
            });
        };
        if row.event_id != event_id {
            return Err(AdjustRefusal::OtherEvent {
                index,
                id: id.to_string(),
                counted_in: row.event_id.clone(),
                event: event_id.to_owned(),
            });
        }
        if row.voided {
            return Err(AdjustRefusal::Voided {
                index,
                id: id.to_string(),
            });
        }
        if taken.insert(&row.tx.id) {
            voids.push(row);
        }
        if row.tx.nature == Nature::Sale {
            for refund in refunds.get(id).into_iter().flatten() {
                if let Some(r) = rows.get(refund)
                    && !r.voided
                    && taken.insert(&r.tx.id)
                {
                    voids.push(r);
                }
            }
        }
    }
    Ok(voids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, Segments, StoreId};

    fn id(s: &str) -> TransactionId {
        TransactionId::parse(s).expect("id")
    }

    fn row(
        tx_id: &str,
        refund_of: Option<&str>,
        event: &str,
        voided: bool,
    ) -> (TransactionId, Row) {
        let tx = ValidTransaction::from_ledger(
            id(tx_id),
            StoreId::default(),
            match refund_of {
                None => Nature::Sale,
                Some(of) => Nature::Refund { of: id(of) },
            },
            Currency::parse("IDR").expect("IDR"),
            10,
            UnixNanos(1),
            Segments::default(),
        );
        (
            id(tx_id),
            Row {
                tx,
                event_id: event.to_owned(),
                received_at: UnixNanos(2),
                voided,
            },
        )
    }

    #[test]
    fn ids_are_one_to_a_thousand_valid_and_distinct() {
        assert_eq!(parse_ids::<&str>(&[]), Err(IdsError::Empty));
        let many: Vec<String> = (0..=MAX_TRANSACTION_IDS).map(|i| format!("t{i}")).collect();
        assert_eq!(
            parse_ids(&many),
            Err(IdsError::TooMany {
                count: MAX_TRANSACTION_IDS + 1
            })
        );
        assert_eq!(
            parse_ids(&many[..MAX_TRANSACTION_IDS]).map(|v| v.len()),
            Ok(MAX_TRANSACTION_IDS)
        );
        let bad = parse_ids(&["a", "b c"]).expect_err("invalid");
        assert_eq!(bad.index(), Some(1));
        assert!(bad.to_string().contains("\"b c\""), "{bad}");
        // A void's id is not a transaction a retailer pushed: refused like any other bad id.
        assert_eq!(
            parse_ids(&["void/a"]).expect_err("invalid").index(),
            Some(0)
        );
        let twice = parse_ids(&["a", "b", "a"]).expect_err("repeated");
        assert_eq!(
            twice,
            IdsError::Repeated {
                index: 2,
                first: 0,
                id: "a".into()
            }
        );
        assert_eq!(twice.to_string(), "\"a\" is named twice (also at index 0)");
        assert_eq!(parse_ids(&["a", "b"]), Ok(vec![id("a"), id("b")]));
    }

    #[test]
    fn a_sale_is_voided_with_its_refunds_and_each_row_once() {
        let rows: HashMap<_, _> = [
            row("s1", None, "e", false),
            row("r1", Some("s1"), "e", false),
            row("r2", Some("s1"), "e", true),
            row("r3", Some("s1"), "e", false),
            row("s2", None, "e", false),
        ]
        .into_iter()
        .collect();
        let refunds: HashMap<_, _> = [(id("s1"), vec![id("r1"), id("r2"), id("r3")])]
            .into_iter()
            .collect();
        let ids = |planned: Vec<&Row>| -> Vec<String> {
            planned.iter().map(|r| r.tx.id.to_string()).collect()
        };
        // The sale, then its refunds not voided yet (r2 was), in ledger order.
        let planned = plan("a", "e", &[id("s1")], &rows, &refunds).expect("plan");
        assert_eq!(ids(planned), ["s1", "r1", "r3"]);
        // A refund named after its sale is voided once; a refund alone is voided alone.
        let planned =
            plan("a", "e", &[id("s1"), id("r1"), id("s2")], &rows, &refunds).expect("plan");
        assert_eq!(ids(planned), ["s1", "r1", "r3", "s2"]);
        let planned = plan("a", "e", &[id("r3"), id("s1")], &rows, &refunds).expect("plan");
        assert_eq!(ids(planned), ["r3", "s1", "r1"]);
    }

    #[test]
    fn unknown_voided_and_other_event_rows_are_refused_naming_them() {
        let rows: HashMap<_, _> = [
            row("s1", None, "e", false),
            row("s2", None, "e", true),
            row("s3", None, "old", false),
        ]
        .into_iter()
        .collect();
        let none = HashMap::new();
        let unknown = plan("a", "e", &[id("s1"), id("zz")], &rows, &none).expect_err("unknown");
        assert!(unknown.is_unknown());
        assert_eq!(
            unknown.to_string(),
            "transaction_ids[1] \"zz\" names no transaction of site \"a\""
        );
        let voided = plan("a", "e", &[id("s2")], &rows, &none).expect_err("voided");
        assert_eq!(
            voided,
            AdjustRefusal::Voided {
                index: 0,
                id: "s2".into()
            }
        );
        assert!(!voided.is_unknown());
        let other = plan("a", "e", &[id("s3")], &rows, &none).expect_err("other event");
        assert!(
            other.to_string().contains("counted in event \"old\""),
            "{other}"
        );
    }
}
