//! Server settings every service shares, and the listener every service accepts on: a
//! bounded number of connections in all and per address, each of which must complete its
//! handshake in time (and, on a public port, is closed when idle: [`crate::idle`]).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::Connected as _;

use crate::idle::{Activity, ConnectionInfo, IdleTimer};
use crate::peer::{AddressPermit, PerAddressLimit};

/// Largest gRPC message a service sends: the answer to a full batch, and every other answer,
/// is far smaller.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Bytes a client must send before its handshake deadline: the HTTP/2 preface (24 bytes) and a
/// SETTINGS frame header (9). (An HTTP/1.1 request line is longer than that too.)
const HANDSHAKE_BYTES: usize = 33;

/// File descriptors kept free for the database pool, logs, and the listener itself.
const RESERVED_FILES: u64 = 128;

/// Open connections per process, by default.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;
/// Open connections per address (IPv6: per /64), by default: one address can never take the
/// whole process's share (4,096 / 256 = 16 addresses would be needed).
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: u32 = 256;
/// Time to send the HTTP/2 preface, by default, in milliseconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 5_000;

/// Connection limits of a server.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Open connections at once; a connection past it is closed as soon as it is accepted.
    /// Capped below the process's open-files limit.
    #[arg(long, env = "SALEBOARD_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Open connections from one address at once (an IPv6 /64 counts as one address); one
    /// more is closed as soon as it is accepted, before any byte is read, and the address is
    /// logged once a minute with the count refused. Loopback is not exempt.
    #[arg(long, env = "SALEBOARD_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,

    /// A connection that has not sent its HTTP/2 preface within this many milliseconds is
    /// closed.
    #[arg(long, env = "SALEBOARD_HANDSHAKE_TIMEOUT_MS", default_value_t = DEFAULT_HANDSHAKE_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub handshake_timeout_ms: u64,
}

impl Default for ConnectionArgs {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
        }
    }
}

/// The soft open-files limit of this process, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl ConnectionArgs {
    /// The connection limit in force: the setting, or less when the open-files limit is lower.
    #[must_use]
    pub fn effective_max_connections(&self) -> usize {
        let asked = u64::from(self.max_connections);
        let cap =
            open_files_limit().map_or(asked, |files| files.saturating_sub(RESERVED_FILES).max(1));
        if cap < asked {
            tracing::warn!(
                asked,
                cap,
                "--max-connections is above the open-files limit (ulimit -n) less {RESERVED_FILES}; using {cap}"
            );
        }
        usize::try_from(asked.min(cap)).unwrap_or(usize::MAX)
    }
}

/// How long bytes sent may go unacknowledged before the kernel drops the connection, and when
/// a quiet one is probed: a peer that vanished (a screen unplugged, a NAT that forgot the
/// connection) is found within about a minute, instead of holding its connection and its
/// watcher slot until TCP gives up (some 15 minutes).
const DEAD_PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle time before the first keep-alive probe, the time between probes, and how many.
const KEEPALIVE: (Duration, Duration, u32) = (Duration::from_secs(30), Duration::from_secs(10), 3);

/// Sets keep-alive probes and the unacknowledged-data timeout on an accepted socket.
fn detect_dead_peers(stream: &TcpStream) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    let (time, interval, retries) = KEEPALIVE;
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(time)
            .with_interval(interval)
            .with_retries(retries),
    )?;
    socket.set_tcp_user_timeout(Some(DEAD_PEER_TIMEOUT))
}

/// An accepted connection: holds one of the server's connection permits and one of its
/// address's for as long as it is open, fails its reads when the client has not sent its
/// handshake in time, and ends them (EOF) once it has been idle too long on a port that closes
/// idle connections.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    _address: AddressPermit,
    /// Until the handshake bytes have arrived: the deadline, and how many have.
    handshake: Option<(Pin<Box<tokio::time::Sleep>>, usize)>,
    info: ConnectionInfo,
    idle: Option<IdleTimer>,
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some((deadline, _)) = this.handshake.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not complete the HTTP/2 handshake in time",
            )));
        }
        if let Some(idle) = this.idle.as_mut()
            && idle.poll_expired(cx).is_ready()
        {
            // End of stream: hyper closes an idle connection as if the client had.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let Some((_, seen)) = this.handshake.as_mut() {
            *seen += buf.filled().len() - before;
            if *seen >= HANDSHAKE_BYTES {
                this.handshake = None;
            }
        }
        polled
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Connection {
    /// Turned into tonic's `TcpConnectInfo` by [`crate::idle::ConnectionLayer`].
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

/// A `tonic` server builder with keep-alive and timeouts set.
#[must_use]
pub fn server_builder(request_timeout: Duration) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
}

/// The accepted connections of `listener`, with `TCP_NODELAY` set (without it small responses
/// wait for delayed ACKs, some 40 ms each), at most `limits.max_connections` open at once and
/// `limits.max_connections_per_address` from one address (one more is closed at once, before
/// any byte is read, so neither a flood of idle sockets nor one client can take every file
/// descriptor), each closed unless it sends its handshake within `limits.handshake_timeout_ms`,
/// and, with `idle_timeout`, once it has had no open request that long.
pub fn incoming(
    listener: TcpListener,
    limits: &ConnectionArgs,
    idle_timeout: Option<Duration>,
) -> impl futures::Stream<Item = io::Result<Connection>> + Send + 'static {
    let permits = Arc::new(Semaphore::new(limits.effective_max_connections()));
    let per_address = PerAddressLimit::new(limits.max_connections_per_address);
    let handshake = Duration::from_millis(limits.handshake_timeout_ms);
    let state = (listener, permits, per_address);
    futures::stream::unfold(state, move |(listener, permits, per_address)| async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // moment instead of spinning, and keep serving.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "connection limit reached; closing a new connection");
                drop(stream);
                continue;
            };
            let Some(address) = per_address.try_acquire(peer.ip()) else {
                drop(stream);
                continue;
            };
            per_address.log_due(std::time::Instant::now());
            drop(stream.set_nodelay(true));
            if let Err(e) = detect_dead_peers(&stream) {
                tracing::debug!(error = %e, %peer, "cannot set keep-alive on a connection");
            }
            let activity = idle_timeout.map(|_| Activity::new());
            let info = ConnectionInfo {
                tcp: stream.connect_info(),
                activity: activity.clone(),
            };
            let connection = Connection {
                stream,
                _permit: permit,
                _address: address,
                handshake: Some((Box::pin(tokio::time::sleep(handshake)), 0)),
                info,
                idle: activity
                    .zip(idle_timeout)
                    .map(|(activity, timeout)| IdleTimer::new(activity, timeout)),
            };
            return Some((Ok(connection), (listener, permits, per_address)));
        }
    })
}

/// Adds `grpc.health.v1.Health` (statuses from `reporter`) and server reflection, v1 and
/// v1alpha, describing the whole `saleboard.v1` contract, so generic clients (grpcurl, health
/// probes) work without the .proto files. These sit outside every auth layer.
///
/// # Errors
/// When the embedded descriptor sets cannot be decoded (a build defect).
pub fn add_standard_services<L>(
    router: tonic::transport::server::Router<L>,
    reporter: &tonic_health::server::HealthReporter,
) -> Result<tonic::transport::server::Router<L>, tonic_reflection::server::Error> {
    let health = tonic_health::pb::health_server::HealthServer::new(
        tonic_health::server::HealthService::from_health_reporter(reporter.clone()),
    );
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(saleboard_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok(router
        .add_service(health)
        .add_service(builder().build_v1()?)
        .add_service(builder().build_v1alpha()?))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_find_a_vanished_peer_within_a_minute() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut accepted = Box::pin(incoming(listener, &ConnectionArgs::default(), None));
        let _client = TcpStream::connect(addr).await.expect("connect");
        let connection = accepted.next().await.expect("one").expect("accepted");
        let socket = socket2::SockRef::from(&connection.stream);
        assert!(socket.keepalive().expect("keepalive"));
        assert_eq!(
            socket.tcp_user_timeout().expect("user timeout"),
            Some(DEAD_PEER_TIMEOUT)
        );
        assert_eq!(
            socket.tcp_keepalive_time().expect("keepalive time"),
            KEEPALIVE.0
        );
    }
}
