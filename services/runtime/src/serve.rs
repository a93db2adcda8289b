//! One way to serve, for every service (mini-redis's `server::run`, with gRPC's extras): bind,
//! then run the service's routes beside gRPC health and reflection, on the bounded listener
//! ([`crate::grpc::incoming`]: connections in all and per address, handshake deadline, idle
//! timeout), with keep-alive and the request timeout, until shutdown; at
//! shutdown, `draining` turns true (streams end), health says NOT_SERVING, the server stops
//! accepting and waits for in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use saleboard_storage::Store;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::grpc::ConnectionArgs;
use crate::health::Health;

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {error}; is another instance running? Choose a free address with {setting}"
    )]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// The flag and variable that set it.
        setting: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// The reflection service could not be built (a build defect).
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(tonic::transport::Error),
}

/// Connections the kernel may hold completed before the server accepts them (it caps this at
/// `net.core.somaxconn`, 4096 by default). With tokio's 1,024, a burst of connects (clients
/// reconnecting together, or a flood of silent sockets) filled the queue whenever the accept
/// loop fell behind: the kernel then dropped SYNs, and each client so dropped retried only a
/// second later.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr`, set by `setting` (its flag and variable, for the error); returns the listener
/// and the address it got (port 0 picks one). Call it inside the tokio runtime that will serve:
/// the listener registers with its reactor.
///
/// # Errors
/// When the address cannot be bound.
pub fn bind(
    addr: SocketAddr,
    setting: &'static str,
) -> Result<(TcpListener, SocketAddr), ServeError> {
    let bind = |error| ServeError::Bind {
        addr,
        setting,
        error,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind)?;
    // As `TcpListener::bind` does: a restarted server binds while old connections linger.
    socket.set_reuseaddr(true).map_err(bind)?;
    socket.bind(addr).map_err(bind)?;
    let listener = socket.listen(LISTEN_BACKLOG).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    Ok((listener, local))
}

/// What a server runs on.
#[derive(Debug)]
pub struct Serving {
    /// The bound listener.
    pub listener: TcpListener,
    /// Connection limits.
    pub connections: ConnectionArgs,
    /// Time a unary request may take.
    pub request_timeout: Duration,
    /// The service's health (NOT_SERVING once draining begins, whatever drives it before).
    pub health: Health,
    /// What drives the health while serving.
    pub health_follows: HealthFollows,
    /// Also answer HTTP/1.1 (the leaderboard's web screen and JSON API on its gRPC port);
    /// otherwise HTTP/2 only.
    pub accept_http1: bool,
    /// Close a connection once it has had no open request this long (a public port: an idle
    /// HTTP/1.1 keep-alive connection, an HTTP/2 connection without a stream); `None` keeps
    /// idle connections (a retailer's channel between bursts).
    pub idle_timeout: Option<Duration>,
}

/// What a server's health follows while it serves.
#[derive(Debug)]
pub enum HealthFollows {
    /// SERVING from the start (migrations ran before the server was built), NOT_SERVING while
    /// this database does not answer.
    Database(Arc<dyn Store>),
    /// The caller sets it (the aggregator: also whether the totals keep up).
    Caller,
}

/// Serves `routes` until `shutdown` resolves, then drains (see the module comment).
///
/// # Errors
/// When reflection cannot be built or the server fails.
pub async fn run(
    serving: Serving,
    routes: tonic::service::Routes,
    shutdown: impl Future<Output = ()> + Send + 'static,
    draining: watch::Sender<bool>,
) -> Result<(), ServeError> {
    let Serving {
        listener,
        connections,
        request_timeout,
        health,
        health_follows,
        accept_http1,
        idle_timeout,
    } = serving;
    let follower = match health_follows {
        HealthFollows::Database(store) => {
            health.set(true).await;
            Some(tokio::spawn(
                health.clone().follow_database(store, draining.subscribe()),
            ))
        }
        HealthFollows::Caller => None,
    };
    let router = crate::grpc::add_standard_services(
        crate::grpc::server_builder(request_timeout)
            .accept_http1(accept_http1)
            // Outermost: the connection's address for every limit and log below, and its open
            // requests for the idle timeout.
            .layer(crate::idle::ConnectionLayer)
            .add_routes(routes),
        health.reporter(),
    )
    .map_err(ServeError::Reflection)?;
    let shutdown = async move {
        shutdown.await;
        draining.send_replace(true);
        health.set(false).await;
    };
    let served = router
        .serve_with_incoming_shutdown(
            crate::grpc::incoming(listener, &connections, idle_timeout),
            shutdown,
        )
        .await
        .map_err(ServeError::Serve);
    if let Some(follower) = follower {
        follower.abort();
    }
    served
}
