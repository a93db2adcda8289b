//! What every Saleboard service shares at run time, so each service crate holds only its own
//! logic.
//!
//! Layout:
//! - [`auth`]: the `authorization: Bearer` tower layer, generic over how a secret is checked,
//!   and the organizer-token check.
//! - [`shed`]: a global concurrency limit that sheds load with RESOURCE_EXHAUSTED at once.
//! - [`status`]: gRPC statuses with field details, and storage errors as statuses.
//! - [`shutdown`]: SIGTERM / Ctrl-C as a future, and serving with a shutdown deadline.
//! - [`telemetry`]: logs (human or JSON), OTLP traces and metrics, W3C trace context.
//! - [`rpc`]: the per-request span, duration histogram and debug line of every service.
//! - [`config`]: a service's settings built outside its `main` (with or without the environment).
//! - [`database`]: `--database-url` and opening (and migrating) the store.
//! - [`grpc`]: server settings common to every service (message limits, keep-alive) and the
//!   listener (connection limits in all and per address, handshake deadline).
//! - [`peer`]: the address unit per-address limits count (IPv4, IPv6 /64), the per-address
//!   connection limit, and `CIDR=N` allowances.
//! - [`idle`]: what a connection tells its requests (address, open requests), and closing
//!   idle connections on a public port.
//! - [`health`]: gRPC health of a server's services, following the database.
//! - [`serve`]: one way to bind and serve a service's routes, with health, reflection and
//!   graceful drain.

pub mod admit;
pub mod auth;
pub mod config;
pub mod database;
pub mod grpc;
pub mod health;
pub mod idle;
pub mod peer;
pub mod rpc;
pub mod serve;
pub mod shed;
pub mod shutdown;
pub mod status;
pub mod telemetry;
