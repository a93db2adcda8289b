//! The `saleboard` command line.
//!
//! Layout:
//! - [`dev`]: `saleboard dev`, the whole suite in one process on an embedded SQLite file, with a
//!   demo event, demo sites and their keys.
//! - [`migrate`]: `saleboard migrate`, apply the schema to a database.
//! - [`verify`]: `saleboard verify`, recompute every total from the ledger and compare.

pub mod dev;
pub mod migrate;
pub mod verify;
