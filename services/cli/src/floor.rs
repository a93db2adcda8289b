//! `saleboard bench-transport`: the floor under ingest's cost per message. `--serve` runs an
//! `IngestService` that does nothing but the transport (the same tonic server settings as the
//! services: HTTP/2, `TCP_NODELAY`, keep-alive): it answers every batch of a
//! `StreamTransactions` call with one ACCEPTED result per transaction, as soon as it is decoded
//! — no authentication, validation, storage or task per stream. The client mode drives it as
//! `loadgen` drives ingest (one connection and one stream per site, `depth` batches in flight per
//! stream, transactions shaped like loadgen's) and prints what it sent. `bench/run` reads the
//! server's CPU around the client's run: CPU per message that no ingest can spend less than on
//! this machine, beside ingest's own at the same streams and batch size.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt as _};
use saleboard_proto::Timestamp;
use saleboard_proto::v1::ingest_service_client::IngestServiceClient;
use saleboard_proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
use saleboard_proto::v1::{
    Origin, Outcome, SubmitTransactionsRequest, SubmitTransactionsResponse, Transaction,
    TransactionKind, TransactionResult, WhoAmIRequest, WhoAmIResponse,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Arguments of `saleboard bench-transport`.
#[derive(Debug, clap::Args)]
pub struct TransportArgs {
    /// Serve the do-nothing ingest on this address (port 0: any) and print the port; runs
    /// until killed.
    #[arg(long)]
    pub serve: Option<SocketAddr>,
    /// The do-nothing ingest to drive (client mode).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub endpoint: String,
    /// Streams (and connections) at once, one per simulated site.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub streams: u32,
    /// Transactions per batch (message).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Batches in flight per stream (loadgen's `--depth`).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub depth: u32,
    /// Transactions to send in all.
    #[arg(long, default_value_t = 200_000)]
    pub count: u64,
    /// Batches per second in all, spread evenly over the streams (0: as fast as answered). The
    /// cost per message depends on the rate: at a high one each wake-up of the server finds
    /// several messages, so compare with ingest at ingest's own rate.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub rate: u64,
}

/// The do-nothing ingest.
#[derive(Debug, Clone, Copy)]
struct Floor;

/// One ACCEPTED result per transaction, as ingest's answer has them (id, outcome, position,
/// event).
fn answer(request: &SubmitTransactionsRequest, next: &AtomicU64) -> SubmitTransactionsResponse {
    let first = next.fetch_add(request.transactions.len() as u64, Ordering::Relaxed);
    SubmitTransactionsResponse {
        results: request
            .transactions
            .iter()
            .zip(first + 1..)
            .map(|(t, position)| TransactionResult {
                transaction_id: t.transaction_id.clone(),
                outcome: Outcome::Accepted.into(),
                position,
                event_id: "floor".to_owned(),
                ..TransactionResult::default()
            })
            .collect(),
    }
}

/// Positions handed out (so answers are as long as ingest's).
static POSITIONS: AtomicU64 = AtomicU64::new(0);

type Answers = Pin<Box<dyn Stream<Item = Result<SubmitTransactionsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IngestService for Floor {
    async fn who_am_i(
        &self,
        _request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        Err(Status::unimplemented(
            "the transport floor of `saleboard bench-transport` has no keys",
        ))
    }

    async fn submit_transactions(
        &self,
        request: Request<SubmitTransactionsRequest>,
    ) -> Result<Response<SubmitTransactionsResponse>, Status> {
        Ok(Response::new(answer(request.get_ref(), &POSITIONS)))
    }

    type StreamTransactionsStream = Answers;

    async fn stream_transactions(
        &self,
        request: Request<Streaming<SubmitTransactionsRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let answers = request
            .into_inner()
            .map(|message| message.map(|m| answer(&m, &POSITIONS)));
        Ok(Response::new(Box::pin(answers)))
    }
}

/// Runs `saleboard bench-transport`.
///
/// # Errors
/// When the address cannot be bound, the server fails, or (client) a stream fails.
pub async fn run(args: &TransportArgs) -> anyhow::Result<()> {
    match args.serve {
        Some(addr) => serve(addr).await,
        None => drive(args).await,
    }
}

async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let (listener, local) = saleboard_runtime::serve::bind(addr, "--serve")?;
    println!("{}", local.port());
    saleboard_runtime::grpc::server_builder(Duration::from_secs(30))
        .add_service(IngestServiceServer::new(Floor).max_decoding_message_size(64 * 1024 * 1024))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}

/// One transaction shaped like loadgen's (a sale with a store and segments).
fn transaction(stream: u32, seq: i64) -> Transaction {
    Transaction {
        transaction_id: format!("floor-{stream}-{seq}"),
        store_id: format!("store-{}", seq % 20),
        kind: TransactionKind::Sale.into(),
        currency: "IDR".to_owned(),
        amount_minor: 1_000 + (seq * 7_919) % 1_000_000,
        occurred_at: Some(Timestamp {
            seconds: crate::client_now(),
            nanos: 0,
        }),
        refund_of: String::new(),
        brand: format!("brand-{}", 1 + seq % 300),
        category: format!("category-{}", 1 + seq % 12),
        origin: Origin::Domestic.into(),
    }
}

async fn drive(args: &TransportArgs) -> anyhow::Result<()> {
    let budget = Arc::new(AtomicI64::new(i64::try_from(args.count)?));
    let mut channels = Vec::new();
    for _ in 0..args.streams {
        channels.push(crate::client::connect(&args.endpoint, None).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (stream, channel) in (0..args.streams).zip(channels) {
        let (budget, batch, depth) = (budget.clone(), args.batch, args.depth);
        // Each stream's share of the rate, its first tick spread over one period.
        let mut ticker = (args.rate > 0).then(|| {
            let period = Duration::from_secs_f64(f64::from(args.streams) / args.rate as f64);
            let offset = period.mul_f64(f64::from(stream) / f64::from(args.streams));
            tokio::time::interval_at(tokio::time::Instant::now() + offset, period)
        });
        tasks.push(tokio::spawn(async move {
            let (requests, outbound) = tokio::sync::mpsc::channel(depth as usize);
            let mut answers = IngestServiceClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024)
                .stream_transactions(ReceiverStream::new(outbound))
                .await?
                .into_inner();
            let (mut sent, mut answered, mut rows, mut seq) = (0u64, 0u64, 0u64, 0i64);
            let mut open = Some(requests);
            loop {
                // Keep `depth` batches unanswered while the budget lasts.
                while sent - answered < u64::from(depth)
                    && let Some(requests) = open.as_ref()
                {
                    if let Some(t) = ticker.as_mut() {
                        t.tick().await;
                    }
                    let want = i64::from(batch);
                    let got = budget.fetch_sub(want, Ordering::Relaxed);
                    if got <= 0 {
                        open = None;
                        break;
                    }
                    let transactions = (0..got.min(want))
                        .map(|_| {
                            seq += 1;
                            transaction(stream, seq)
                        })
                        .collect();
                    requests
                        .send(SubmitTransactionsRequest { transactions })
                        .await?;
                    sent += 1;
                }
                if sent == answered {
                    break;
                }
                match answers.message().await? {
                    Some(answer) => {
                        answered += 1;
                        rows += answer.results.len() as u64;
                    }
                    None => anyhow::bail!("stream {stream} ended with batches unanswered"),
                }
            }
            Ok::<_, anyhow::Error>((answered, rows))
        }));
    }
    let (mut messages, mut rows) = (0u64, 0u64);
    for task in tasks {
        let (m, r) = task.await??;
        messages += m;
        rows += r;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "streams": args.streams,
            "batch": args.batch,
            "rate": args.rate,
            "messages": messages,
            "rows": rows,
            "seconds": seconds,
            "messages_per_s": messages as f64 / seconds,
        })
    );
    Ok(())
}
