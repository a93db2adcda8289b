//! Runs the engine and the status server until stopped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use saleboard_proto::v1::aggregator_service_server::AggregatorServiceServer;
use saleboard_storage::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::AggregatorConfig;
use crate::engine::{Engine, EngineError};
use crate::grpc::AggregatorService;
use crate::monitor::{self, Observation};
use saleboard_runtime::grpc::ConnectionArgs;
use saleboard_runtime::health::Health;
use saleboard_runtime::serve::{HealthFollows, ServeError, Serving};
use tonic::server::NamedService;
use tonic::service::Routes;

/// Why the aggregator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The engine or the status server task panicked: the process must not exit 0.
    #[error("an aggregator task failed: {0}")]
    EngineTask(tokio::task::JoinError),
    /// The engine stopped on a fatal error.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A bound, not yet running, aggregator.
#[derive(Debug)]
pub struct AggregatorServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    stale_after: std::time::Duration,
}

/// Keeps the health status in step with the monitor's observations until shutdown begins.
async fn follow_health(
    mut observed: watch::Receiver<Observation>,
    health: Health,
    mut draining: watch::Receiver<bool>,
) {
    let mut last = None;
    loop {
        let healthy = observed.borrow_and_update().healthy();
        if last != Some(healthy) && !*draining.borrow() {
            health.set(healthy).await;
            last = Some(healthy);
        }
        tokio::select! {
            changed = observed.changed() => if changed.is_err() { return; },
            _ = draining.wait_for(|d| *d) => return,
        }
    }
}

fn instance_id(addr: SocketAddr) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{}", std::process::id(), addr.port())
}

impl AggregatorServer {
    /// Binds the status address. `store` must be migrated.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn build(
        config: AggregatorConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServerError> {
        let (listener, local_addr) = saleboard_runtime::serve::bind(
            config.listen,
            "--aggregator-listen / SALEBOARD_AGGREGATOR_LISTEN",
        )?;
        let stale_after = config.stale_after();
        let engine = Arc::new(Engine::new(store.clone(), config, instance_id(local_addr)));
        Ok(Self {
            listener,
            local_addr,
            store,
            engine,
            stale_after,
        })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs until `shutdown` resolves (finishing the current apply and giving the lease up) or
    /// the engine stops on a fatal error.
    ///
    /// # Errors
    /// On a fatal engine error or a gRPC server failure.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let engine = self.engine.clone();
        let mut engine_task = tokio::spawn({
            let stop_rx = stop_rx.clone();
            async move { engine.run(stop_rx).await }
        });
        let (observed_tx, mut observed) = watch::channel(Observation::default());
        let monitor_task = tokio::spawn(monitor::run(
            self.store.clone(),
            self.stale_after,
            self.engine.status(),
            self.engine.lag_gauge(),
            observed_tx,
            stop_rx,
        ));
        // The first observation (at most a second away) before answering anything.
        drop(tokio::time::timeout(monitor::EVERY * 2, observed.changed()).await);
        let service = AggregatorServiceServer::new(AggregatorService::new(
            self.store,
            observed.clone(),
            self.engine.status(),
            self.engine.instance_id().to_owned(),
        ))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Zstd)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Zstd);
        // SERVING while the database answers and the totals keep up with the ledger.
        let health =
            Health::new(&[<AggregatorServiceServer<AggregatorService> as NamedService>::NAME]);
        let (drain, draining) = watch::channel(false);
        let health_task = tokio::spawn(follow_health(observed, health.clone(), draining));
        let serving = Serving {
            listener: self.listener,
            connections: ConnectionArgs::default(),
            request_timeout: std::time::Duration::from_secs(30),
            health,
            health_follows: HealthFollows::Caller,
            accept_http1: false,
            idle_timeout: None,
        };
        // Every request traced and timed (health probes are not).
        let routes = Routes::new(
            tower::ServiceBuilder::new()
                .layer(saleboard_runtime::rpc::RpcTelemetryLayer::new())
                .service(service),
        );
        let (server_stop_tx, mut server_stop_rx) = watch::channel(false);
        let server = tokio::spawn(async move {
            let stopped = async move {
                drop(server_stop_rx.wait_for(|s| *s).await);
            };
            saleboard_runtime::serve::run(serving, routes, stopped, drain).await
        });
        tracing::info!(addr = %self.local_addr, "aggregator status serving");
        let engine_result = tokio::select! {
            () = shutdown => {
                stop_tx.send_replace(true);
                (&mut engine_task).await
            }
            r = &mut engine_task => r,
        };
        server_stop_tx.send_replace(true);
        stop_tx.send_replace(true);
        let served = server.await;
        health_task.abort();
        drop(monitor_task.await);
        match engine_result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(join) => return Err(ServerError::EngineTask(join)),
        }
        match served {
            Ok(r) => r.map_err(ServerError::from),
            Err(join) => Err(ServerError::EngineTask(join)),
        }
    }
}
