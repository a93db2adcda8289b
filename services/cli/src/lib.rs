//! The `saleboard` command line.
//!
//! Layout:
//! - [`dev`]: `saleboard dev`, the whole suite in one process on an embedded SQLite file, with a
//!   demo event, demo sites and their keys.
//! - [`migrate`]: `saleboard migrate`, apply the schema to a database.

pub mod dev;
pub mod migrate;
