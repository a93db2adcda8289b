//! The public port is not the organizer's weak spot (issue 23), black-box on both databases: a
//! stranger flooding the leaderboard's public port or ingest from one address (127.0.0.2) gets
//! at most `--max-connections-per-address` of them, while from 127.0.0.1 the organizer's
//! AdminService (on a listener of its own), GetLeaderboard, a new screen and another site's push
//! are answered; screens are watchers (429 past the per-peer limit, raised for a network by an
//! allowance); idle connections of the public port are closed, open streams are not.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt as _;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    GetLeaderboardRequest, ListSitesRequest, Outcome, SubmitTransactionsRequest,
    WatchLeaderboardRequest,
};
use saleboard_runtime::grpc::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
use saleboard_tests::app::{admin_client, channel};
use saleboard_tests::data::sale;
use saleboard_tests::http::{Sse, ask_stream, connect_from};
use saleboard_tests::{Backend, TestApp, backend_tests};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::Code;

/// The attacker's address; the organizer and the honest clients act from 127.0.0.1.
const STRANGER: &str = "127.0.0.2";
/// Connections in each flood.
const FLOOD: usize = 5_000;
/// The HTTP/2 client preface and an empty SETTINGS frame: a connection that has done its part
/// of the handshake and then sits there.
const H2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// Every flood socket is held by this process while the server holds its side: the soft
/// open-files limit must allow both floods of the two backends' tests running side by side.
fn enough_files() {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .expect("the open-files limit");
    assert!(
        soft >= 4 * FLOOD as u64,
        "this test holds {FLOOD} sockets per flood on each side; raise `ulimit -n` (it is {soft})"
    );
}

/// Opens `FLOOD` connections from the stranger's address to `addr`, the `i`th sending
/// `request(i)`, and holds them; also returns how many were answered at all (the others were
/// closed by the server without a byte).
async fn flood(
    addr: SocketAddr,
    request: impl Fn(usize) -> &'static [u8],
) -> (Vec<TcpStream>, usize) {
    flood_from(STRANGER, FLOOD, addr, request).await
}

/// [`flood`] of `count` connections from `from`.
async fn flood_from(
    from: &str,
    count: usize,
    addr: SocketAddr,
    request: impl Fn(usize) -> &'static [u8],
) -> (Vec<TcpStream>, usize) {
    let mut held = Vec::with_capacity(count);
    for wave in 0..count.div_ceil(250) {
        let opened = futures::future::join_all((0..250.min(count - wave * 250)).map(|j| {
            let bytes = request(wave * 250 + j);
            async move {
                let mut s = connect_from(ip(from), addr).await.ok()?;
                // Past the limit the server has closed it already: the write may fail.
                drop(s.write_all(bytes).await);
                Some(s)
            }
        }))
        .await;
        held.extend(opened.into_iter().flatten());
    }
    // Answered: some bytes came back within 3 s; refused: end of stream or a reset.
    let answered = futures::future::join_all(held.iter_mut().map(|s| async move {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await,
            Ok(Ok(n)) if n > 0
        )
    }))
    .await
    .into_iter()
    .filter(|a| *a)
    .count();
    (held, answered)
}

async fn a_flood_from_one_address_locks_nobody_out(backend: Backend) {
    enough_files();
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let (_, honest) = app.site_with_key("toko-jujur").await;
    // The organizer's pool and code paths are warm, as in a running event: the timed call
    // below still connects anew during the flood.
    admin_client(app.admin_addr, Some(&app.token))
        .await
        .list_sites(ListSitesRequest {})
        .await
        .expect("ListSites");

    // Arrange: half the flood asks for screens, half for JSON on keep-alive connections.
    let (held, answered) = flood(app.leaderboard_addr, |i| {
        if i % 2 == 0 {
            b"GET /events/leaderboard HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        } else {
            b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n"
        }
    })
    .await;
    let limit = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS as usize;
    assert!(
        answered <= limit && answered >= limit / 2,
        "the stranger's address was served on {answered} of {} connections (limit {limit})",
        held.len()
    );

    // Act and assert, while the flood is held: the organizer on its own listener within 1 s.
    let asked = tokio::time::Instant::now();
    let organizer = tokio::time::timeout(Duration::from_secs(1), async {
        admin_client(app.admin_addr, Some(&app.token))
            .await
            .list_sites(ListSitesRequest {})
            .await
    })
    .await
    .expect("AdminService answers within 1 s during the flood")
    .expect("ListSites");
    assert_eq!(organizer.into_inner().sites.len(), 1);
    eprintln!(
        "{backend:?}: the public port served {answered} of {} connections from {STRANGER}; \
         AdminService answered in {:?}",
        held.len(),
        asked.elapsed()
    );
    // A reader and a new screen on the flooded public port.
    let board = tokio::time::timeout(Duration::from_secs(5), async {
        app.leaderboard()
            .await
            .get_leaderboard(GetLeaderboardRequest::default())
            .await
    })
    .await
    .expect("GetLeaderboard answers during the flood")
    .expect("GetLeaderboard");
    assert!(board.into_inner().watermark <= app.store.ledger_head().await.expect("head"));
    let mut screen = tokio::time::timeout(
        Duration::from_secs(5),
        Sse::open(app.leaderboard_addr, "/events/leaderboard"),
    )
    .await
    .expect("a new screen is answered during the flood");
    assert!(
        screen.next_within(Duration::from_secs(5)).await.is_some(),
        "the new screen gets its first message"
    );
    drop(held);

    // The same flood against ingest: HTTP/2 connections that say hello and then sit.
    let (held, answered) = flood(app.ingest_addr, |_| H2_HELLO).await;
    eprintln!(
        "{backend:?}: ingest served {answered} of {} connections from {STRANGER}",
        held.len()
    );
    assert!(
        answered <= limit && answered >= limit / 2,
        "ingest served the stranger's address on {answered} connections (limit {limit})"
    );
    let pushed = tokio::time::timeout(Duration::from_secs(5), async {
        app.ingest(&honest)
            .await
            .submit_transactions(SubmitTransactionsRequest {
                transactions: vec![sale("HONEST-1", "IDR", 10_000)],
            })
            .await
    })
    .await
    .expect("another site's push is answered during the flood")
    .expect("push")
    .into_inner();
    assert_eq!(pushed.results[0].outcome, i32::from(Outcome::Accepted));
    drop(held);
    app.stop().await;
}

/// Asks for a screen from `from` and lets it go: the status, `Retry-After`, and the body of a
/// refusal.
async fn screen_from(from: &str, addr: SocketAddr) -> (u16, Option<String>, String) {
    let stream = connect_from(ip(from), addr).await.expect("connect");
    let (status, headers, mut reader) = ask_stream(stream, "/events/leaderboard", "").await;
    let mut body = String::new();
    if status != 200
        && let Some(len) = headers
            .get("content-length")
            .and_then(|l| l.parse::<usize>().ok())
    {
        let mut bytes = vec![0; len];
        reader.read_exact(&mut bytes).await.expect("body");
        body = String::from_utf8(bytes).expect("utf-8");
    }
    (status, headers.get("retry-after").cloned(), body)
}

async fn screens_are_watchers_limited_per_address(backend: Backend) {
    let Some(app) = TestApp::spawn_configured(
        backend,
        |_| {},
        |b| {
            b.max_watchers_per_peer = 2;
            b.watchers_per_peer_allow = vec!["127.0.0.3/32=3".parse().expect("allowance")];
        },
    )
    .await
    else {
        return;
    };
    app.set_event().await;
    let addr = app.leaderboard_addr;
    let open = |from: &'static str| async move {
        let stream = connect_from(ip(from), addr).await.expect("connect");
        Sse::on(stream, "/events/leaderboard", "").await
    };

    // Two screens from one address: the per-peer limit.
    let first = open(STRANGER).await;
    let _second = open(STRANGER).await;
    let (status, retry_after, body) = screen_from(STRANGER, addr).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("10"));
    assert!(
        body.contains("too many screens from this address"),
        "{body}"
    );
    // A gRPC watch from the same address counts against the same limit.
    let stranger = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .local_address(Some(ip(STRANGER)))
        .connect()
        .await
        .expect("connect");
    let refused = LeaderboardServiceClient::new(stranger.clone())
        .watch_leaderboard(WatchLeaderboardRequest::default())
        .await
        .expect_err("a third watcher from the address");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    // Another address is not affected.
    let mut mine = Sse::open(addr, "/events/leaderboard").await;
    assert!(mine.next_within(Duration::from_secs(5)).await.is_some());

    // A screen that goes away gives its slot back.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, ..) = screen_from(STRANGER, addr).await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot of a closed screen never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The allowance raises the limit for its network only.
    let mut wall = Vec::new();
    for _ in 0..3 {
        wall.push(open("127.0.0.3").await);
    }
    let (status, ..) = screen_from("127.0.0.3", addr).await;
    assert_eq!(status, 429, "a fourth screen behind the allowed address");
    drop(wall);
    app.stop().await;
}

async fn admin_service_has_a_listener_of_its_own(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // The public port does not serve AdminService; its own listener does, and only it.
    let err = admin_client(app.leaderboard_addr, Some(&app.token))
        .await
        .list_sites(ListSitesRequest {})
        .await
        .expect_err("AdminService on the public port");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    admin_client(app.admin_addr, Some(&app.token))
        .await
        .list_sites(ListSitesRequest {})
        .await
        .expect("AdminService on its listener");
    let err = LeaderboardServiceClient::new(channel(app.admin_addr).await)
        .get_leaderboard(GetLeaderboardRequest::default())
        .await
        .expect_err("the admin listener serves only AdminService");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    app.stop().await;

    // --admin-on-public-port serves it on both.
    let Some(app) =
        TestApp::spawn_configured(backend, |_| {}, |b| b.admin_on_public_port = true).await
    else {
        return;
    };
    for addr in [app.leaderboard_addr, app.admin_addr] {
        admin_client(addr, Some(&app.token))
            .await
            .list_sites(ListSitesRequest {})
            .await
            .expect("AdminService");
    }
    app.stop().await;
}

async fn idle_connections_of_the_public_port_are_closed_streams_are_not(backend: Backend) {
    let Some(app) =
        TestApp::spawn_configured(backend, |_| {}, |b| b.http_idle_timeout_ms = 400).await
    else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("toko").await;
    let addr = app.leaderboard_addr;
    // Streams that watch: a screen and a gRPC watch, both open past the timeout.
    let mut screen = Sse::open(addr, "/events/leaderboard").await;
    assert!(screen.next_within(Duration::from_secs(5)).await.is_some());
    let mut watch = app
        .leaderboard()
        .await
        .watch_leaderboard(WatchLeaderboardRequest::default())
        .await
        .expect("watch")
        .into_inner();
    watch.next().await.expect("first").expect("snapshot");

    // An HTTP/1.1 keep-alive connection after its answer, and an HTTP/2 one without a stream.
    let idle_closes = |name: &'static str, hello: &'static [u8]| async move {
        let started = tokio::time::Instant::now();
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        socket.write_all(hello).await.expect("send");
        let mut buf = vec![0u8; 64 * 1024];
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            let mut got = 0;
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got += n,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the idle {name} connection was not closed"));
        assert!(answered > 0, "{name}: it was answered before being closed");
        assert!(
            started.elapsed() >= Duration::from_millis(350),
            "{name}: closed only once idle, not after {:?}",
            started.elapsed()
        );
    };
    tokio::join!(
        idle_closes(
            "HTTP/1.1",
            b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        idle_closes("HTTP/2", H2_HELLO),
    );

    // The watchers outlived it and still move.
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.ingest(&secret)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![sale("IDLE-1", "IDR", 500)],
        })
        .await
        .expect("push");
    let head = app.store.ledger_head().await.expect("head");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let message = screen
            .next_within(Duration::from_secs(5))
            .await
            .expect("the screen is still open");
        if message["watermark"].as_str() == Some(&head.to_string()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the screen never moved"
        );
    }
    loop {
        let board = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("the watch is still open")
            .expect("a snapshot")
            .expect("ok");
        if board.watermark >= head {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch never moved"
        );
    }
    app.stop().await;
}

/// Strangers on several addresses fill the public port's whole connection cap: the organizer's
/// controls, on their own listener, still answer at once.
async fn a_full_public_port_leaves_the_organizer_in(backend: Backend) {
    let Some(app) =
        TestApp::spawn_configured(backend, |_| {}, |b| b.connections.max_connections = 300).await
    else {
        return;
    };
    let mut held = Vec::new();
    let mut answered = 0;
    for from in ["127.0.0.2", "127.0.0.3"] {
        let (sockets, served) = flood_from(from, 256, app.leaderboard_addr, |_| {
            b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n"
        })
        .await;
        held.extend(sockets);
        answered += served;
    }
    assert!(
        (200..=300).contains(&answered),
        "the public port held {answered} of its 300"
    );
    let sites = tokio::time::timeout(Duration::from_secs(2), async {
        admin_client(app.admin_addr, Some(&app.token))
            .await
            .list_sites(ListSitesRequest {})
            .await
    })
    .await
    .expect("AdminService answers while the public port is full")
    .expect("ListSites");
    assert!(sites.into_inner().sites.is_empty());
    drop(held);
    app.stop().await;
}

backend_tests!(
    a_flood_from_one_address_locks_nobody_out,
    a_full_public_port_leaves_the_organizer_in,
    screens_are_watchers_limited_per_address,
    admin_service_has_a_listener_of_its_own,
    idle_connections_of_the_public_port_are_closed_streams_are_not,
);
