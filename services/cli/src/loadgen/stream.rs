//! The load itself: one `StreamTransactions` per site, its batch size and pace from the Zipf
//! weights, a sender that makes batches and a receiver that tallies the answers, reopening a
//! failed stream and sending again what was not answered.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use saleboard_proto::v1::ingest_service_client::IngestServiceClient;
use saleboard_proto::v1::{SubmitTransactionsRequest, Transaction};
use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::LoadgenArgs;
use super::tally::Tally;
use super::workload::{Generator, SegmentMix, Spec, wire};
use crate::client;

/// What every site's stream shares: the transaction budget, the deadline, the run id, the
/// weights of the Zipf mix and the tally.
pub(super) struct Plan {
    weights: Vec<f64>,
    total_weight: f64,
    budget: Arc<AtomicI64>,
    deadline: Option<Instant>,
    run_id: String,
    pub(super) tally: Arc<Mutex<Tally>>,
    /// The generator's "now" (seconds) for a run in its own event's past window; `None`: the
    /// real clock.
    pub(super) clock: Option<i64>,
    mix: SegmentMix,
}

/// The two tasks of one site's stream: the sender, and the receiver that tallies answers.
pub(super) type SiteTasks = (
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
);

impl Plan {
    pub(super) fn new(args: &LoadgenArgs, sites: usize) -> Self {
        let weights: Vec<f64> = (1..=sites)
            .map(|i| 1.0 / (i as f64).powf(args.zipf))
            .collect();
        let total_weight: f64 = weights.iter().sum();
        let budget = Arc::new(AtomicI64::new(if args.duration.is_some() {
            i64::MAX
        } else {
            i64::try_from(args.count).unwrap_or(i64::MAX)
        }));
        Self {
            weights,
            total_weight,
            budget,
            deadline: args
                .duration
                .map(|d| Instant::now() + Duration::from_secs(d)),
            run_id: format!(
                "{:x}",
                Instant::now().elapsed().as_nanos()
                    ^ u128::from(std::process::id())
                    ^ u128::from(crate::client_now().unsigned_abs())
            ),
            tally: Arc::new(Mutex::new(Tally::default())),
            clock: None,
            mix: SegmentMix::new(args),
        }
    }

    /// Opens site `index`'s stream and starts its sender and receiver.
    pub(super) async fn start_site(
        &self,
        args: &LoadgenArgs,
        index: usize,
        site: String,
        secret: &str,
    ) -> anyhow::Result<SiteTasks> {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let batch = ((f64::from(args.batch) * self.weights[index] / self.weights[0]).round()
            as usize)
            .max(1);
        let pace = (args.rate > 0).then(|| {
            let site_rate = args.rate as f64 * self.weights[index] / self.total_weight;
            Duration::from_secs_f64(batch as f64 / site_rate.max(1e-6))
        });
        let ingest = IngestServiceClient::new(client::connect(&args.ingest, Some(secret)).await?)
            .max_decoding_message_size(64 * 1024 * 1024);
        // Batches sent and not yet answered, per stream: at most `depth` (the request channel
        // alone would not bound it, since the transport drains it at once).
        let in_flight = Arc::new(tokio::sync::Semaphore::new(args.depth as usize));
        let (batch_tx, batch_rx) = mpsc::channel::<Batch>(args.depth as usize);
        let mut generator = Generator::new(
            args,
            self.run_id.clone(),
            index + 1,
            self.clock,
            self.mix.clone(),
            args.inflate
                .iter()
                .filter(|i| i.site == site)
                .map(|i| i.pattern)
                .collect(),
        );
        let (budget, deadline) = (self.budget.clone(), self.deadline);
        let sender = tokio::spawn(async move {
            let mut ticker = pace.map(tokio::time::interval);
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let want = i64::try_from(batch).unwrap_or(1);
                let got = budget.fetch_sub(want, Ordering::Relaxed);
                if got <= 0 {
                    break;
                }
                let n = usize::try_from(got.min(want)).unwrap_or(0);
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let specs: Vec<Spec> = (0..n).map(|_| generator.next()).collect();
                let txs: Vec<Transaction> = specs.iter().map(|s| generator.wire(s)).collect();
                let Ok(slot) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                if batch_tx.send(Batch { specs, txs, slot }).await.is_err() {
                    break;
                }
            }
        });
        let stream = SiteStream {
            ingest,
            endpoint: args.ingest.clone(),
            run: self.run_id.clone(),
            index: index + 1,
            site,
            depth: args.depth as usize,
            tally: self.tally.clone(),
        };
        let receiver = tokio::spawn(stream.drive(batch_rx));
        Ok((sender, receiver))
    }
}

/// A batch made by a site's sender, holding its place among the stream's `depth` in flight.
struct Batch {
    specs: Vec<Spec>,
    txs: Vec<Transaction>,
    slot: tokio::sync::OwnedSemaphorePermit,
}

/// A batch sent and not yet answered.
struct Unanswered {
    sent_at: Instant,
    specs: Vec<Spec>,
    /// Sent again on a new stream after the first failed.
    resent: bool,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// One site's `StreamTransactions`: sends the sender's batches and tallies the answers. When
/// the stream fails with UNAVAILABLE or RESOURCE_EXHAUSTED it opens another (with backoff,
/// [`crate::retry`]) and sends again, in order, what was not answered: a transaction whose
/// first attempt was stored comes back DUPLICATE and is counted as accepted once.
struct SiteStream {
    ingest: IngestServiceClient<client::Authed>,
    endpoint: String,
    run: String,
    /// The site's number in the run's ids.
    index: usize,
    site: String,
    depth: usize,
    tally: Arc<Mutex<Tally>>,
}

impl SiteStream {
    async fn drive(mut self, mut batches: mpsc::Receiver<Batch>) -> anyhow::Result<()> {
        let mut unanswered: VecDeque<Unanswered> = VecDeque::new();
        let mut backoff = crate::retry::Backoff::default();
        let mut input_open = true;
        loop {
            let (requests, req_rx) = mpsc::channel::<SubmitTransactionsRequest>(self.depth.max(1));
            let opened = self
                .ingest
                .stream_transactions(ReceiverStream::new(req_rx))
                .await;
            let mut responses = match opened {
                Ok(r) => r.into_inner(),
                Err(status) => {
                    self.tally.lock().await.reopened += 1;
                    backoff
                        .wait(&self.endpoint, "StreamTransactions", &status)
                        .await?;
                    continue;
                }
            };
            for u in &mut unanswered {
                u.resent = true;
                let transactions = u
                    .specs
                    .iter()
                    .map(|s| wire(&self.run, self.index, s))
                    .collect();
                drop(
                    requests
                        .send(SubmitTransactionsRequest { transactions })
                        .await,
                );
            }
            // Dropped once the sender is done: that ends the request stream.
            let mut requests = input_open.then_some(requests);
            let status = loop {
                if !input_open && unanswered.is_empty() {
                    return Ok(());
                }
                tokio::select! {
                    batch = batches.recv(), if input_open => match batch {
                        Some(Batch { specs, txs, slot }) => {
                            unanswered.push_back(Unanswered {
                                sent_at: Instant::now(),
                                specs,
                                resent: false,
                                _slot: slot,
                            });
                            if let Some(r) = requests.as_ref() {
                                // Failed: the stream's error comes with its answers.
                                drop(r.send(SubmitTransactionsRequest { transactions: txs }).await);
                            }
                        }
                        None => {
                            input_open = false;
                            requests = None;
                        }
                    },
                    answer = responses.message(), if !unanswered.is_empty() => match answer {
                        Ok(Some(r)) => {
                            backoff.reset();
                            let now = Instant::now();
                            if let Some(u) = unanswered.pop_front() {
                                self.tally.lock().await.record(
                                    &self.site, &u.specs, &r.results, u.sent_at, now, u.resent,
                                );
                            }
                        }
                        Ok(None) => {
                            break tonic::Status::unavailable(format!(
                                "the stream closed with {} batches unanswered",
                                unanswered.len()
                            ));
                        }
                        Err(status) => break status,
                    },
                }
            };
            self.tally.lock().await.reopened += 1;
            backoff
                .wait(&self.endpoint, "StreamTransactions", &status)
                .await?;
        }
    }
}
