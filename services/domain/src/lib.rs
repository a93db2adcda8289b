//! Saleboard's domain: the rules a transaction must follow, as plain code with no I/O and no
//! async, so they can be tested exhaustively and shared by every service.
//!
//! Layout:
//! - [`action`]: organizers' holds, releases and adjustments, and the four-eyes rule that decides them.
//! - [`adjust`]: which ledger rows an adjustment voids.
//! - [`audit`]: organizers' names and the audit log's hash chain (canonical bytes, verification).
//! - [`ids`]: `SiteId`, `TransactionId`, `StoreId` and their parsing rules.
//! - [`currency`]: ISO 4217 currencies with a defined minor-unit exponent.
//! - [`time`]: nanoseconds since the Unix epoch, the one time representation of the ledger.
//! - [`transaction`]: validation of one pushed transaction into a [`transaction::ValidTransaction`].
//! - [`resolve`]: how a batch meets the ledger: duplicates, id conflicts and refunds.
//! - [`reason`]: the stable reason codes of rejected transactions.
//! - [`event`]: the event window and reporting currency.
//! - [`rate`]: exact exchange rates.
//! - [`totals`]: totals per site and currency (and hour), with checked sums.
//! - [`ranking`]: conversion into the reporting currency and the national ranking.

pub mod action;
pub mod adjust;
pub mod audit;
pub mod comparison;
pub mod currency;
pub mod curve;
pub mod event;
pub mod ids;
pub mod integrity;
pub mod late;
pub mod page;
pub mod ranking;
pub mod rate;
pub mod reason;
pub mod report;
pub mod resolve;
pub mod segment;
pub mod time;
pub mod totals;
pub mod transaction;

pub use currency::{Currency, MajorAmountError};
pub use event::{Event, EventState, Events};
pub use ids::{IdError, SiteId, StoreId, TransactionId};
pub use rate::Rate;
pub use reason::{Reason, Rejection};
pub use segment::{Dimension, Origin, PushedOrigin, Segments, Slug};
pub use time::UnixNanos;
pub use transaction::{Kind, Limits, Nature, PushedKind, TransactionInput, ValidTransaction};
