//! Transactions and events for tests.

use saleboard_proto::Timestamp;
use saleboard_proto::v1::{Event, Transaction, TransactionKind};

/// Seconds since the Unix epoch now.
#[must_use]
pub fn now_secs() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_secs()).expect("seconds fit i64")
}

/// The test event: from a day ago to three days ahead, reporting in IDR.
#[must_use]
pub fn event() -> Event {
    let now = now_secs();
    Event {
        event_id: "harbolnas-test".into(),
        display_name: "Harbolnas test".into(),
        starts_at: Some(Timestamp {
            seconds: now - 86_400,
            nanos: 0,
        }),
        ends_at: Some(Timestamp {
            seconds: now + 3 * 86_400,
            nanos: 0,
        }),
        reporting_currency: "IDR".into(),
        ..Event::default()
    }
}

/// One instant per test process, a minute before its first use: every transaction built here
/// with the same id and amount has the same content, however long apart two calls are (a
/// resend must be a DUPLICATE, not an ID_CONFLICT because a second ticked in between).
fn occurred() -> i64 {
    static ANCHOR: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *ANCHOR.get_or_init(|| now_secs() - 60)
}

/// A sale a minute before the process's first transaction.
#[must_use]
pub fn sale(id: &str, currency: &str, amount_minor: i64) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        store_id: "store-1".into(),
        kind: TransactionKind::Sale.into(),
        currency: currency.into(),
        amount_minor,
        occurred_at: Some(Timestamp {
            seconds: occurred(),
            nanos: 0,
        }),
        refund_of: String::new(),
        ..Transaction::default()
    }
}

/// A refund of `sale_id`, at the same instant as [`sale`].
#[must_use]
pub fn refund(id: &str, sale_id: &str, currency: &str, amount_minor: i64) -> Transaction {
    Transaction {
        kind: TransactionKind::Refund.into(),
        refund_of: sale_id.into(),
        ..sale(id, currency, amount_minor)
    }
}
