//! Building and running the leaderboard process's gRPC server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use saleboard_proto::v1::admin_service_server::AdminServiceServer;
use saleboard_runtime::auth::{BearerAuthLayer, OrganizerToken};
use saleboard_runtime::shed::ShedLoadLayer;
use saleboard_storage::Store;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;

use crate::LeaderboardConfig;
use crate::admin::AdminService;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The organizer token is empty.
    #[error(
        "the organizer token (--organizer-token or SALEBOARD_ORGANIZER_TOKEN) must not be empty"
    )]
    EmptyToken,
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
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
    /// When the token is empty or the address cannot be bound.
    pub async fn build(
        config: LeaderboardConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServerError> {
        if config.organizer_token.trim().is_empty() {
            return Err(ServerError::EmptyToken);
        }
        let bind = |source| ServerError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        Ok(Self {
            listener,
            local_addr,
            config,
            store,
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
        let admin = AdminServiceServer::new(AdminService::new(self.store))
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd);
        let shed = ShedLoadLayer::new(self.config.concurrency_limit as usize);
        let admin = tower::ServiceBuilder::new()
            // Outermost: an overloaded server refuses before spending anything on the request.
            .layer(shed)
            // Only the organizer manages the event.
            .layer(BearerAuthLayer::new(OrganizerToken::new(
                &self.config.organizer_token,
            )))
            .service(admin);
        tracing::info!(addr = %self.local_addr, "leaderboard (admin) serving");
        let result = saleboard_runtime::grpc::server_builder(self.config.request_timeout())
            .add_service(admin)
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), shutdown)
            .await;
        tracing::info!("leaderboard stopped");
        result.map_err(ServerError::from)
    }
}
