//! Building and running the leaderboard process's two servers: the public one
//! (`--leaderboard-listen`: LeaderboardService, the big screen and its JSON) and the organizer's
//! (`--admin-listen`: AdminService), each with its own listener, connection limits and health,
//! so that nothing done to the public port reaches the organizer's controls.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use saleboard_proto::v1::admin_service_server::AdminServiceServer;
use saleboard_proto::v1::leaderboard_service_server::LeaderboardServiceServer;
use saleboard_runtime::auth::{BearerAuthLayer, FailedAuthLimiter, OrganizerToken, Organizers};
use saleboard_runtime::health::Health;
use saleboard_runtime::rpc::RpcTelemetryLayer;
use saleboard_runtime::serve::{HealthFollows, ServeError, Serving};
use saleboard_runtime::shed::ShedLoadLayer;
use saleboard_storage::Store;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::LeaderboardConfig;
use crate::admin::AdminService;
use crate::board::Board;
use crate::grpc::{Access, LeaderboardService};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The organizer token is too weak.
    #[error(transparent)]
    Token(#[from] crate::config::TokenError),
    /// Binding or serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The first snapshot could not be read.
    #[error("cannot read the figures")]
    Load(#[from] saleboard_storage::StorageError),
}

/// A bound, not yet running, leaderboard server.
pub struct LeaderboardServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    admin_listener: TcpListener,
    admin_addr: SocketAddr,
    config: LeaderboardConfig,
    store: Arc<dyn Store>,
    board: Arc<Board>,
}

impl std::fmt::Debug for LeaderboardServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderboardServer")
            .field("addr", &self.local_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl LeaderboardServer {
    /// Binds the public and the admin listen addresses. `store` must be migrated.
    ///
    /// # Errors
    /// When the token is too weak or an address cannot be bound.
    pub async fn build(
        config: LeaderboardConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServerError> {
        crate::config::check_token(&config.organizer_token)?;
        let (listener, local_addr) = saleboard_runtime::serve::bind(
            config.listen,
            "--leaderboard-listen / SALEBOARD_LEADERBOARD_LISTEN",
        )?;
        let (admin_listener, admin_addr) = saleboard_runtime::serve::bind(
            config.admin_listen,
            "--admin-listen / SALEBOARD_ADMIN_LISTEN",
        )?;
        let board = Board::new(store.clone()).await?;
        Ok(Self {
            listener,
            local_addr,
            admin_listener,
            admin_addr,
            config,
            store,
            board,
        })
    }

    /// The bound public address (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound AdminService address.
    #[must_use]
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
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
        // Draining stops the board, whose watch streams then end, which lets the graceful
        // shutdown finish.
        let (drain, draining) = tokio::sync::watch::channel(false);
        let flags_task = tokio::spawn(crate::integrity::run(
            self.store.clone(),
            self.board.clone(),
            draining.clone(),
        ));
        let board_task = tokio::spawn(self.board.clone().run(draining, self.config.refresh_gap()));
        let service = LeaderboardService::new(
            self.board.clone(),
            self.store.clone(),
            Access {
                organizers: Organizers::new(
                    OrganizerToken::new(&self.config.organizer_token),
                    self.store.clone(),
                ),
                public_site_detail: self.config.public_site_detail,
                max_watchers: self.config.max_watchers,
                max_watchers_per_peer: self.config.max_watchers_per_peer,
                watchers_per_peer_allow: self.config.watchers_per_peer_allow.clone().into(),
                failures: failures.clone(),
            },
        );
        // The screen and the JSON API: HTTP/1.1 routes beside gRPC, outside its shed and auth
        // layers (they call the service itself, which applies its own rules).
        let reports = crate::report::Reports::new(self.store.clone(), self.board.clone());
        let web = crate::web::router(service.clone(), self.board.clone(), reports.clone());
        let leaderboard = LeaderboardServiceServer::new(service)
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
        let organizers = Organizers::new(
            OrganizerToken::new(&self.config.organizer_token),
            self.store.clone(),
        );
        let admin = AdminServiceServer::new(AdminService::new(
            self.store,
            self.board.clone(),
            reports,
            // Answer before the server's timeout cuts the call: the report goes on.
            self.config
                .request_timeout()
                .saturating_sub(std::time::Duration::from_secs(2))
                .max(std::time::Duration::from_millis(500)),
        ))
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
            // Only organizers manage the event (the token from configuration, or a named
            // organizer's own secret, looked up on every call so a revocation holds at once);
            // guesses are limited per peer.
            .layer(BearerAuthLayer::with_limiter(organizers, failures))
            .service(admin);
        let admin_name = <AdminServiceServer<AdminService> as NamedService>::NAME;
        let board_name = <LeaderboardServiceServer<LeaderboardService> as NamedService>::NAME;
        let on_public = self.config.admin_on_public_port;
        if on_public {
            tracing::warn!(
                "AdminService is also served on the public port (--admin-on-public-port): not for \
                 production, a flood of that port reaches the organizer's controls"
            );
        }
        let public_services: Vec<&'static str> = if on_public {
            vec![board_name, admin_name]
        } else {
            vec![board_name]
        };
        tracing::info!(addr = %self.local_addr, admin = %self.admin_addr, "leaderboard serving");
        let public_serving = Serving {
            listener: self.listener,
            connections: self.config.connections.clone(),
            request_timeout: self.config.request_timeout(),
            health: Health::new(&public_services),
            health_follows: HealthFollows::Database(health_store.clone()),
            accept_http1: true,
            idle_timeout: Some(self.config.http_idle_timeout()),
        };
        let admin_serving = Serving {
            listener: self.admin_listener,
            connections: self.config.connections.clone(),
            request_timeout: self.config.request_timeout(),
            health: Health::new(&[admin_name]),
            health_follows: HealthFollows::Database(health_store),
            accept_http1: false,
            idle_timeout: None,
        };
        let public_routes = Routes::new(leaderboard);
        let public_routes = if on_public {
            public_routes.add_service(admin.clone())
        } else {
            public_routes
        };
        let public_routes = Routes::from(
            public_routes
                .into_axum_router()
                .merge(web)
                // Unknown paths: UNIMPLEMENTED for gRPC clients, 404 for browsers.
                .fallback(crate::web::unknown_path),
        );
        // Both servers stop together: the admin one when the public one starts draining (the
        // outside shutdown) or ends; the public one also when the admin one ends (a failure
        // there must not leave the organizer without controls while the public port serves).
        let (either_ended, ended) = tokio::sync::watch::channel(false);
        let mut public_stop = ended.clone();
        let public_shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                _ = public_stop.wait_for(|e| *e) => {}
            }
        };
        let mut admin_stop = drain.subscribe();
        let mut admin_ended = ended;
        let admin_shutdown = async move {
            tokio::select! {
                _ = admin_stop.wait_for(|d| *d) => {}
                _ = admin_ended.wait_for(|e| *e) => {}
            }
        };
        let (admin_drain, _) = tokio::sync::watch::channel(false);
        let ended_here = |result| {
            either_ended.send_replace(true);
            result
        };
        let (public, organizer) = tokio::join!(
            async {
                ended_here(
                    saleboard_runtime::serve::run(
                        public_serving,
                        public_routes,
                        public_shutdown,
                        drain,
                    )
                    .await,
                )
            },
            async {
                ended_here(
                    saleboard_runtime::serve::run(
                        admin_serving,
                        Routes::new(admin),
                        admin_shutdown,
                        admin_drain,
                    )
                    .await,
                )
            },
        );
        if let Err(e) = board_task.await {
            tracing::error!(error = %e, "leaderboard board task failed");
        }
        if let Err(e) = flags_task.await {
            tracing::error!(error = %e, "integrity flags task failed");
        }
        tracing::info!("leaderboard stopped");
        public.and(organizer).map_err(ServerError::from)
    }
}
