//! Building and running the ingest server: the tower stack, the writer task, the directory's
//! refresh task, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use saleboard_proto::v1::ingest_service_server::IngestServiceServer;
use saleboard_runtime::auth::BearerAuthLayer;
use saleboard_runtime::health::Health;
use saleboard_runtime::rpc::RpcTelemetryLayer;
use saleboard_runtime::serve::{HealthFollows, ServeError, Serving};
use saleboard_runtime::shed::ShedLoadLayer;
use saleboard_storage::Store;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;

use crate::IngestConfig;
use crate::directory::Directory;
use crate::grpc::{IngestService, KeyAuth, StreamLimits};
use crate::metrics::IngestMetrics;
use crate::rate_limit::site_rate_limit;
use crate::writer::Writer;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The initial load of keys and event failed.
    #[error("cannot load API keys and the event")]
    Load(#[from] saleboard_storage::StorageError),
}

/// A bound, not yet running, ingest server.
pub struct IngestServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: IngestConfig,
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
}

impl std::fmt::Debug for IngestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestServer")
            .field("addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl IngestServer {
    /// Binds the listen address and loads keys and event. `store` must be migrated.
    ///
    /// # Errors
    /// When the address cannot be bound or storage cannot be read.
    pub async fn build(config: IngestConfig, store: Arc<dyn Store>) -> Result<Self, ServerError> {
        let (listener, local_addr) = saleboard_runtime::serve::bind(
            config.listen,
            "--ingest-listen / SALEBOARD_INGEST_LISTEN",
        )?;
        let directory = Arc::new(Directory::new(store.clone()));
        directory.refresh().await?;
        Ok(Self {
            listener,
            local_addr,
            config,
            store,
            directory,
        })
    }

    /// The bound address (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish,
    /// and drains the writer so every batch it took is committed and answered.
    ///
    /// # Errors
    /// When the gRPC server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Self {
            listener,
            local_addr,
            config,
            store,
            directory,
        } = self;
        let metrics = IngestMetrics::new();
        let store_for_health = store.clone();
        let (writer, writer_task) = Writer::new(
            store,
            config.writer_queue as usize,
            config.commit_max_rows as usize,
            metrics.clone(),
        );
        let (drain, draining) = tokio::sync::watch::channel(false);
        let writer_task = tokio::spawn(writer_task);
        let refresh = tokio::spawn(directory.clone().refresh_every(config.key_refresh()));

        let json_draining = draining.clone();
        let service = IngestService::new(
            writer,
            directory.clone(),
            config.limits(),
            config.max_batch as usize,
            metrics,
            draining,
            StreamLimits {
                per_site: config.site_max_streams,
                idle_timeout: config.stream_idle_timeout(),
            },
        )
        .reporting_site_rate_limit(config.site_rate_limit);
        let json_api = crate::http::JsonApi::new(
            service.clone(),
            crate::http::max_body_bytes(config.max_batch as usize),
            json_draining,
        );
        let api = IngestServiceServer::new(service)
            // A request is refused before it is read whole when it is larger than a full
            // batch of the widest valid transactions (the codec then counts the
            // transactions on the wire before decoding them).
            .max_decoding_message_size(config.max_message_bytes())
            .max_encoding_message_size(saleboard_runtime::grpc::DEFAULT_MAX_MESSAGE_BYTES)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd);
        // One of each budget for gRPC and JSON alike: load shedding, failed authentications
        // per address, each site's rate.
        let shed = ShedLoadLayer::new(config.concurrency_limit as usize);
        let auth = BearerAuthLayer::new(KeyAuth(directory));
        let rate = site_rate_limit(config.site_rate_limit, config.site_rate_burst);
        let stack = tower::ServiceBuilder::new()
            // Outermost: every request is traced (continuing the caller's trace) and timed,
            // refused or not.
            .layer(RpcTelemetryLayer::new())
            // An overloaded server refuses before spending anything on the request.
            .layer(shed.clone())
            // Who is calling: the site every later layer and the handler work for. Failed
            // attempts are limited per peer address before any lookup.
            .layer(auth.clone())
            // The site's own budget; needs the authenticated site.
            .layer(rate.clone())
            .service(api);
        // JSON over HTTP (issue 31): the same layers around handlers that call the gRPC
        // service's own; a layer's refusal is answered as an HTTP status.
        let json = tower::ServiceBuilder::new()
            .layer(crate::http::JsonStatusLayer)
            .layer(RpcTelemetryLayer::new())
            .layer(shed)
            .layer(auth)
            .layer(rate)
            .map_response(|r: axum::response::Response| r.map(tonic::body::Body::new))
            .service(crate::http::router(json_api));
        let routes = Routes::from(
            Routes::new(stack)
                .into_axum_router()
                .route_service(crate::http::TRANSACTIONS_PATH, json.clone())
                .route_service(crate::http::WHOAMI_PATH, json)
                .route(
                    saleboard_proto::openapi::OPENAPI_ROUTE.path,
                    axum::routing::get(crate::http::openapi_route),
                )
                .fallback(crate::http::unknown_path),
        );

        tracing::info!(addr = %local_addr, "ingest serving");
        let serving = Serving {
            listener,
            connections: config.connections.clone(),
            request_timeout: config.request_timeout(),
            health: Health::new(&[
                <IngestServiceServer<IngestService> as tonic::server::NamedService>::NAME,
            ]),
            health_follows: HealthFollows::Database(store_for_health),
            // JSON over HTTP/1.1 too (curl, a shop's backend).
            accept_http1: true,
            idle_timeout: None,
        };
        // At shutdown open streams stop taking messages, answer what they took, and end
        // UNAVAILABLE; the server stops accepting and waits for in-flight requests.
        let result = saleboard_runtime::serve::run(serving, routes, shutdown, drain)
            .await
            .map_err(ServerError::from);
        // The router (and with it every Writer handle) is dropped: the writer drains its queue
        // and stops.
        refresh.abort();
        if let Err(e) = writer_task.await {
            tracing::error!(error = %e, "ingest writer task failed");
        }
        tracing::info!("ingest stopped");
        result
    }
}
