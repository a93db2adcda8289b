//! Settings of the ingest service. Every flag can also be given by its environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use saleboard_domain::Limits;
use saleboard_runtime::database::DatabaseArgs;

/// Ingest settings.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestConfig {
    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(
        long = "ingest-listen",
        env = "SALEBOARD_INGEST_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,

    /// Most transactions in one request (at most 10,000: a request with more is refused on the
    /// wire, before it is decoded).
    #[arg(long, env = "SALEBOARD_MAX_BATCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH_CEILING))]
    pub max_batch: u32,

    /// Largest amount_minor accepted for one transaction.
    #[arg(long, env = "SALEBOARD_MAX_AMOUNT_MINOR", default_value_t = Limits::default().max_amount_minor,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub max_amount_minor: i64,

    /// Requests per second each site may make (token bucket refill rate); 0 turns the limit off.
    #[arg(long, env = "SALEBOARD_SITE_RATE_LIMIT", default_value_t = 500)]
    pub site_rate_limit: u32,

    /// Requests a site may make in a burst above its rate.
    #[arg(long, env = "SALEBOARD_SITE_RATE_BURST", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub site_rate_burst: u32,

    /// Requests in progress at once, over all sites; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SALEBOARD_CONCURRENCY_LIMIT", default_value_t = 2048,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency_limit: u32,

    /// Time a unary request may take before it is cancelled, in milliseconds.
    #[arg(long, env = "SALEBOARD_REQUEST_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,

    /// How often API keys and the event are reloaded from the database, in milliseconds. A
    /// revoked key stops working within about this long.
    #[arg(long, env = "SALEBOARD_KEY_REFRESH_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=1_000))]
    pub key_refresh_ms: u64,

    /// Largest gRPC request accepted, in bytes (default: what --max-batch transactions of the
    /// largest valid size take, 384 bytes each, plus 4 KiB; 388,096 at the default batch).
    #[arg(long, env = "SALEBOARD_MAX_MESSAGE_BYTES",
          value_parser = clap::builder::TypedValueParser::map(
              clap::value_parser!(u64).range(4096..=1_073_741_824),
              |v| usize::try_from(v).unwrap_or(usize::MAX)))]
    pub max_message_bytes: Option<usize>,

    /// Open StreamTransactions calls one site may have at once; one more is refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "SALEBOARD_SITE_MAX_STREAMS", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub site_max_streams: u32,

    /// A StreamTransactions call that sends no message for this long is ended
    /// (DEADLINE_EXCEEDED), in milliseconds.
    #[arg(long, env = "SALEBOARD_STREAM_IDLE_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub stream_idle_timeout_ms: u64,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub connections: saleboard_runtime::grpc::ConnectionArgs,

    /// Most rows the writer puts in one database transaction (group commit).
    #[arg(long, env = "SALEBOARD_COMMIT_MAX_ROWS", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub commit_max_rows: u32,

    /// Batches waiting for the writer before new unary requests are refused and streams wait.
    #[arg(long, env = "SALEBOARD_WRITER_QUEUE", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub writer_queue: u32,
}

/// Highest `--max-batch`: the count the codec checks on the wire before decoding.
#[allow(clippy::cast_possible_wrap)] // 10,000: a const context has no try_from.
const MAX_BATCH_CEILING: i64 = saleboard_proto::codec::MAX_TRANSACTIONS_PER_REQUEST as i64;

impl IngestConfig {
    /// The largest request accepted: `--max-message-bytes`, or what `--max-batch`
    /// transactions of the largest valid size take.
    #[must_use]
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes.unwrap_or_else(|| {
            (self.max_batch as usize)
                .saturating_mul(saleboard_proto::codec::MAX_TRANSACTION_WIRE_BYTES)
                .saturating_add(4096)
        })
    }

    /// The stream idle timeout as a duration.
    #[must_use]
    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.stream_idle_timeout_ms)
    }

    /// The validation limits these settings give.
    #[must_use]
    pub fn limits(&self) -> Limits {
        Limits {
            max_amount_minor: self.max_amount_minor,
            ..Limits::default()
        }
    }

    /// The request timeout as a duration.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The key refresh interval as a duration.
    #[must_use]
    pub fn key_refresh(&self) -> Duration {
        Duration::from_millis(self.key_refresh_ms)
    }
}

/// Parses [`IngestConfig`] alone, for [`IngestConfig::defaults`].
#[derive(clap::Parser)]
struct Standalone {
    #[command(flatten)]
    config: IngestConfig,
}

impl IngestConfig {
    /// The settings a bare `saleboard-ingest` would run with (defaults and `SALEBOARD_*`
    /// environment variables), for embedding the service in another program.
    ///
    /// # Errors
    /// When an environment variable holds an invalid value.
    pub fn defaults() -> Result<Self, clap::Error> {
        saleboard_runtime::config::parse::<Standalone>(["saleboard-ingest"], true).map(|s| s.config)
    }

    /// The built-in defaults alone, whatever the environment says (for tests).
    ///
    /// # Panics
    /// Never: the defaults are valid (every black-box test starts from them).
    #[must_use]
    pub fn built_in() -> Self {
        #[allow(clippy::expect_used)]
        saleboard_runtime::config::parse::<Standalone>(["saleboard-ingest"], false)
            .map(|s| s.config)
            .expect("the built-in defaults are valid")
    }
}
