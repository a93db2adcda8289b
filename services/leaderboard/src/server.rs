//! Building and running the leaderboard process's gRPC server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use saleboard_proto::v1::admin_service_server::AdminServiceServer;
use saleboard_proto::v1::leaderboard_service_server::LeaderboardServiceServer;
use saleboard_runtime::auth::{BearerAuthLayer, FailedAuthLimiter, OrganizerToken};
use saleboard_runtime::rpc::RpcTelemetryLayer;
use saleboard_runtime::shed::ShedLoadLayer;
use saleboard_storage::Store;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use crate::LeaderboardConfig;
use crate::admin::AdminService;
use crate::board::Board;
use crate::grpc::{Access, LeaderboardService};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The organizer token is empty.
    #[error(transparent)]
    Token(#[from] crate::config::TokenError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The first snapshot could not be read.
    #[error("cannot read the figures: {0}")]
    Load(#[from] saleboard_storage::StorageError),
    /// The reflection service could not be built.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A bound, not yet running, leaderboard server.
pub struct LeaderboardServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: LeaderboardConfig,
    store: Arc<dyn Store>,
    board: Arc<Board>,
}

impl std::fmt::Debug for LeaderboardServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderboardServer")
            .field("addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl LeaderboardServer {
    /// Binds the listen address. `store` must be migrated.
    ///
    /// # Errors
    /// When the token is too weak or the address cannot be bound.
    pub async fn build(
        config: LeaderboardConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServerError> {
        crate::config::check_token(&config.organizer_token)?;
        let bind = |source| ServerError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        let board = Board::new(store.clone()).await?;
        Ok(Self {
            listener,
            local_addr,
            config,
            store,
            board,
        })
    }

    /// The bound address (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    ///
    /// # Errors
    /// When the gRPC server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let shed = ShedLoadLayer::new(self.config.concurrency_limit as usize);
        let health_store = self.store.clone();
        let failures = std::sync::Arc::new(FailedAuthLimiter::default());
        let board = self.board.clone();
        // Kept for the life of the server: the callback runs at every metric export.
        let _snapshot_age = saleboard_runtime::telemetry::meter()
            .f64_observable_gauge("saleboard.leaderboard.snapshot.age")
            .with_unit("s")
            .with_description("Time since the served figures were last read from storage")
            .with_callback(move |gauge| gauge.observe(board.age().as_secs_f64(), &[]))
            .build();
        let (stop_board, board_stopped) = tokio::sync::watch::channel(false);
        let board_task = tokio::spawn(self.board.clone().run(board_stopped));
        let leaderboard = LeaderboardServiceServer::new(LeaderboardService::new(
            self.board.clone(),
            self.store.clone(),
            Access {
                organizer: OrganizerToken::new(&self.config.organizer_token),
                public_site_detail: self.config.public_site_detail,
                max_watchers: self.config.max_watchers,
                max_watchers_per_peer: self.config.max_watchers_per_peer,
                failures: failures.clone(),
            },
        ))
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd);
        let rpc = RpcTelemetryLayer::new();
        let leaderboard = tower::ServiceBuilder::new()
            // Outermost: every request is traced and timed, shed or not.
            .layer(rpc.clone())
            // Read-only and unauthenticated, but still shed under overload (watch streams hold
            // no permit once open: they have their own limits).
            .layer(shed)
            .service(leaderboard);
        let admin = AdminServiceServer::new(AdminService::new(self.store, self.board.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd);
        let admin = tower::ServiceBuilder::new()
            // Outermost: every request is traced and timed, refused or not.
            .layer(rpc)
            // The organizer's own budget: public load never takes it.
            .layer(ShedLoadLayer::new(
                self.config.admin_concurrency_limit as usize,
            ))
            // Only the organizer manages the event; guesses are limited per peer.
            .layer(BearerAuthLayer::with_limiter(
                OrganizerToken::new(&self.config.organizer_token),
                failures,
            ))
            .service(admin);
        tracing::info!(addr = %self.local_addr, "leaderboard serving");
        // Watch streams end when the board closes, which lets the graceful shutdown finish.
        // Migrations ran before the server was built: SERVING from the start, NOT_SERVING once
        // shutdown begins.
        let reporter = tonic_health::server::HealthReporter::new();
        reporter
            .set_serving::<LeaderboardServiceServer<LeaderboardService>>()
            .await;
        reporter
            .set_serving::<AdminServiceServer<AdminService>>()
            .await;
        let (drain, draining_rx) = tokio::sync::watch::channel(false);
        let health = tokio::spawn(saleboard_runtime::health::follow_database(
            health_store,
            reporter.clone(),
            vec![
                <LeaderboardServiceServer<LeaderboardService> as tonic::server::NamedService>::NAME,
                <AdminServiceServer<AdminService> as tonic::server::NamedService>::NAME,
            ],
            draining_rx,
        ));
        let draining = reporter.clone();
        let shutdown = async move {
            shutdown.await;
            drain.send_replace(true);
            draining
                .set_not_serving::<LeaderboardServiceServer<LeaderboardService>>()
                .await;
            draining
                .set_not_serving::<AdminServiceServer<AdminService>>()
                .await;
            draining
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            stop_board.send_replace(true);
        };
        let router = saleboard_runtime::grpc::server_builder(self.config.request_timeout())
            .add_service(leaderboard)
            .add_service(admin);
        let result = match saleboard_runtime::grpc::add_standard_services(router, &reporter) {
            Ok(router) => router
                .serve_with_incoming_shutdown(
                    saleboard_runtime::grpc::incoming(self.listener, &self.config.connections),
                    shutdown,
                )
                .await
                .map_err(ServerError::from),
            Err(e) => Err(ServerError::Reflection(e)),
        };
        health.abort();
        if let Err(e) = board_task.await {
            tracing::error!(error = %e, "leaderboard board task failed");
        }
        tracing::info!("leaderboard stopped");
        result
    }
}
