//! Settings of the leaderboard service. Every flag can also be given by its environment
//! variable.

use std::net::SocketAddr;
use std::time::Duration;

use saleboard_runtime::database::DatabaseArgs;

/// Leaderboard (and admin) settings.
#[derive(Clone, clap::Args)]
pub struct LeaderboardConfig {
    /// Address the public gRPC server listens on (port 0 picks a free port): LeaderboardService,
    /// and the big screen and the JSON API over HTTP/1.1. It may face the internet.
    #[arg(
        long = "leaderboard-listen",
        env = "SALEBOARD_LEADERBOARD_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    pub listen: SocketAddr,

    /// Address AdminService (the organizer's controls) listens on, apart from the public port,
    /// so that no load there can lock the organizer out. Keep it off the internet (the default
    /// is loopback; the compose file publishes it on the host's loopback only).
    #[arg(
        long = "admin-listen",
        env = "SALEBOARD_ADMIN_LISTEN",
        default_value = "127.0.0.1:50054"
    )]
    pub admin_listen: SocketAddr,

    /// Also serve AdminService on the public port (as before it had a listener of its own).
    /// Not for production: a flood of the public port then reaches the organizer's controls.
    #[arg(long, env = "SALEBOARD_ADMIN_ON_PUBLIC_PORT")]
    pub admin_on_public_port: bool,

    /// A connection to the public port with no open request (an idle HTTP/1.1 keep-alive
    /// connection, an HTTP/2 connection without a stream) is closed after this many
    /// milliseconds. Open streams (SSE screens, watches) are requests, so never idle.
    #[arg(long, env = "SALEBOARD_HTTP_IDLE_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub http_idle_timeout_ms: u64,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,

    /// Secret that authenticates the organizer on AdminService. Never logged.
    /// At least 16 characters, no spaces.
    #[arg(long, env = "SALEBOARD_ORGANIZER_TOKEN", hide_env_values = true)]
    pub organizer_token: String,

    /// Requests in progress at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long = "leaderboard-concurrency-limit", env = "SALEBOARD_LEADERBOARD_CONCURRENCY_LIMIT", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency_limit: u32,

    /// Time a unary request may take before it is cancelled, in milliseconds.
    #[arg(long = "leaderboard-request-timeout-ms", env = "SALEBOARD_LEADERBOARD_REQUEST_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,

    /// Fewest milliseconds between two refreshes of the figures that the aggregator's applies
    /// ask for: under load it commits many applies a second, and one refresh per commit (a
    /// read of the changed totals and breakdown rows, then ranking every site and breakdown
    /// key) would cost the leaderboard a core; changes within the gap are taken together by
    /// the next refresh. Adds at most this much to freshness. (Admin changes refresh at once.)
    /// (20 against 50, `bench/statements --rate 40000`, alternating: freshness p99 150 and 160
    /// ms against 170 and 178, leaderboard CPU 1.1-1.2 µs per row either way.)
    #[arg(long = "leaderboard-refresh-gap-ms", env = "SALEBOARD_LEADERBOARD_REFRESH_GAP_MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub refresh_gap_ms: u64,

    /// Open watchers at once (WatchLeaderboard streams and the big screen's SSE streams alike);
    /// one more is refused with RESOURCE_EXHAUSTED (429 over HTTP). Watchers never count
    /// against the request limit, so they cannot starve queries.
    #[arg(long, env = "SALEBOARD_MAX_WATCHERS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_watchers: u32,

    /// Open watchers (WatchLeaderboard and SSE) from one peer address (IPv6: one /64) at once.
    #[arg(long, env = "SALEBOARD_MAX_WATCHERS_PER_PEER", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_watchers_per_peer: u32,

    /// A higher per-peer watcher limit for the addresses of a network, as CIDR=N (e.g.
    /// 203.0.113.7/32=400 for a TV wall behind one address); repeatable, or comma-separated in
    /// the variable. The most specific network that holds an address gives its limit.
    #[arg(
        long = "watchers-per-peer-allow",
        env = "SALEBOARD_WATCHERS_PER_PEER_ALLOW",
        value_name = "CIDR=N",
        value_delimiter = ','
    )]
    pub watchers_per_peer_allow: Vec<saleboard_runtime::peer::Allowance>,

    /// AdminService requests in progress at once: the organizer's own budget, apart from the
    /// public one, so no load on the public service can lock the organizer out.
    #[arg(long, env = "SALEBOARD_ADMIN_CONCURRENCY_LIMIT", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub admin_concurrency_limit: u32,

    /// Serve one site's detail (its hourly series) to anyone; by default it needs the
    /// organizer token or an API key of that site.
    #[arg(long, env = "SALEBOARD_PUBLIC_SITE_DETAIL")]
    pub public_site_detail: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub connections: saleboard_runtime::grpc::ConnectionArgs,
}

/// Shortest organizer token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the organizer token is not acceptable (the message never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting --organizer-token / SALEBOARD_ORGANIZER_TOKEN: {0}")]
pub struct TokenError(String);

/// Checks an organizer token without ever echoing it.
///
/// # Errors
/// When it is shorter than [`MIN_TOKEN_LEN`] or has spaces or control characters.
pub fn check_token(value: &str) -> Result<(), TokenError> {
    let len = value.chars().count();
    if len < MIN_TOKEN_LEN {
        return Err(TokenError(format!(
            "must have at least {MIN_TOKEN_LEN} characters (it has {len})"
        )));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError(
            "must not contain spaces or control characters".into(),
        ));
    }
    Ok(())
}

impl std::fmt::Debug for LeaderboardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderboardConfig")
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("admin_on_public_port", &self.admin_on_public_port)
            .field("http_idle_timeout_ms", &self.http_idle_timeout_ms)
            .field("watchers_per_peer_allow", &self.watchers_per_peer_allow)
            .field("database", &saleboard_storage::redact(&self.database.url))
            .field("organizer_token", &"<redacted>")
            .field("concurrency_limit", &self.concurrency_limit)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("refresh_gap_ms", &self.refresh_gap_ms)
            .field("max_watchers", &self.max_watchers)
            .field("max_watchers_per_peer", &self.max_watchers_per_peer)
            .field("admin_concurrency_limit", &self.admin_concurrency_limit)
            .field("public_site_detail", &self.public_site_detail)
            .field("connections", &self.connections)
            .finish()
    }
}

impl LeaderboardConfig {
    /// The request timeout as a duration.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The fewest time between two refreshes the applied feed asks for.
    #[must_use]
    pub fn refresh_gap(&self) -> Duration {
        Duration::from_millis(self.refresh_gap_ms)
    }

    /// The public port's idle timeout as a duration.
    #[must_use]
    pub fn http_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.http_idle_timeout_ms)
    }
}

/// Parses [`LeaderboardConfig`] alone, for [`LeaderboardConfig::with_token`].
#[derive(clap::Parser)]
struct Standalone {
    #[command(flatten)]
    config: LeaderboardConfig,
}

impl LeaderboardConfig {
    /// The settings a bare `saleboard-leaderboard --organizer-token TOKEN` would run with
    /// (defaults and `SALEBOARD_*` environment variables), for embedding the service in another
    /// program or a test.
    ///
    /// # Errors
    /// When an environment variable holds an invalid value.
    pub fn with_token(token: &str) -> Result<Self, clap::Error> {
        Self::parse_with(token, true)
    }

    /// The built-in defaults with `token`, whatever the environment says (for tests).
    ///
    /// # Errors
    /// When `token` cannot be given as a flag value.
    pub fn built_in(token: &str) -> Result<Self, clap::Error> {
        Self::parse_with(token, false)
    }

    fn parse_with(token: &str, environment: bool) -> Result<Self, clap::Error> {
        saleboard_runtime::config::parse::<Standalone>(
            ["saleboard-leaderboard", "--organizer-token", token],
            environment,
        )
        .map(|s| s.config)
    }
}
