//! Helpers of Saleboard's black-box tests.
//!
//! Layout:
//! - [`pg`]: one throw-away PostgreSQL cluster per test process (or `DATABASE_URL`), a fresh
//!   database per test.
//! - [`db`]: a fresh database of either backend.
//! - [`docker`]: a Docker engine, the stand-in images, and one compose project of `deploy/`.
//! - [`app`]: the services in-process on port 0, with clients that carry a bearer secret.
//! - [`proc`]: the services as real processes (for kill and restart tests).
//! - [`data`]: transactions and event windows for tests.
//! - [`http`]: HTTP/1.1 and Server-Sent Events over plain sockets, from any local address.
//! - [`load`]: deterministic transaction streams for concurrency and crash tests.
//! - [`otlp`]: an OTLP/gRPC receiver that services export traces and metrics to.
//! - [`report`]: the official report's files, checked as a reader would (pdftotext,
//!   pdftoppm, `sha256sum -c`, the CSV sums).
//! - [`fault`]: storage faults (a tmpfs that fills and grows), a load of retrying clients,
//!   and the checks every fault test ends with.

pub mod app;
pub mod data;
pub mod db;
pub mod docker;
pub mod fault;
pub mod http;
pub mod load;
pub mod otlp;
pub mod pg;
pub mod proc;
pub mod raw;
pub mod report;

pub use app::TestApp;
pub use db::{Backend, TestDb};

/// Generates one `#[tokio::test]` per backend for each named async fn taking a [`Backend`].
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}
