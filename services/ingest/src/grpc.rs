//! `saleboard.v1.IngestService`: turns requests into validated candidates, hands them to the
//! writer, and turns decisions back into results. The only module of this crate that touches
//! protobuf messages.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use saleboard_domain::resolve::Decision;
use saleboard_domain::transaction::validate;
use saleboard_domain::{Limits, PushedKind, PushedOrigin, SiteId, TransactionInput, UnixNanos};
use saleboard_proto::Timestamp;
use saleboard_proto::v1::ingest_service_server::IngestService as IngestApi;
use saleboard_proto::v1::{
    EventWindow, Origin, Outcome, SubmitTransactionsRequest, SubmitTransactionsResponse,
    Transaction, TransactionKind, TransactionResult, WhoAmIRequest, WhoAmIResponse,
};
use saleboard_runtime::status::invalid_field;
use saleboard_storage::Candidate;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument as _;

use crate::directory::{Directory, Retailer};
use crate::error::IngestError;
use crate::metrics::{IngestMetrics, Tally};
use crate::writer::{self, Reply, Writer};

/// Batches of one stream that may be waiting for their commit at once. Keeps a streaming client
/// busy without letting it queue without bound.
const STREAM_PIPELINE: usize = 16;

impl From<IngestError> for Status {
    fn from(e: IngestError) -> Self {
        match &e {
            IngestError::QueueFull => Status::resource_exhausted(e.to_string()),
            IngestError::WriterGone => Status::unavailable(e.to_string()),
            IngestError::NoEvent => Status::failed_precondition(e.to_string()),
            IngestError::UnknownKey => Status::unauthenticated(e.to_string()),
            IngestError::Storage(storage) => saleboard_runtime::status::from_storage(storage),
            // Logged once by the writer for every request of the group.
            IngestError::Commit(storage) => saleboard_runtime::status::status_of(storage),
        }
    }
}

/// Authenticates retailer API keys against a [`Directory`] (for the bearer-auth layer).
#[derive(Debug, Clone)]
pub struct KeyAuth(pub Arc<Directory>);

impl saleboard_runtime::auth::Authenticate for KeyAuth {
    type Principal = Retailer;

    async fn authenticate(&self, secret: &str) -> Result<Retailer, Status> {
        Ok(self.0.retailer(secret).await?)
    }
}

/// Limits on `StreamTransactions` calls.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Open streams per site.
    pub per_site: u32,
    /// A stream with no message for this long is ended.
    pub idle_timeout: Duration,
}

/// Open streams per site, shared by every clone of the service.
#[derive(Debug, Default)]
struct OpenStreams(Mutex<HashMap<SiteId, u32>>);

/// One open stream of a site, counted until dropped.
struct StreamSlot {
    open: Arc<OpenStreams>,
    site: SiteId,
}

impl OpenStreams {
    fn open(self: &Arc<Self>, site: &SiteId, most: u32) -> Result<StreamSlot, Status> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(site.clone()).or_default();
        if *n >= most {
            return Err(Status::resource_exhausted(format!(
                "site {site} already has {most} open StreamTransactions calls (--site-max-streams); \
                 send more batches on the open ones or close one first"
            )));
        }
        *n += 1;
        Ok(StreamSlot {
            open: self.clone(),
            site: site.clone(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut map = self
            .open
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.site) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.site);
            }
        }
    }
}

/// The ingest gRPC service.
#[derive(Debug, Clone)]
pub struct IngestService {
    writer: Writer,
    directory: Arc<Directory>,
    limits: Limits,
    max_batch: usize,
    metrics: IngestMetrics,
    /// Becomes true when the server starts shutting down: streams stop taking messages.
    draining: watch::Receiver<bool>,
    stream_limits: StreamLimits,
    open_streams: Arc<OpenStreams>,
    /// Requests per second per site (0: none), as `WhoAmI` reports it.
    site_rate_limit: u32,
}

/// A request after validation: the results known already and the candidates for the writer.
struct Prepared {
    results: Vec<TransactionResult>,
    /// The outcomes so far, for the metrics.
    tally: Tally,
    /// Index in `results` of each candidate.
    slots: Vec<usize>,
    candidates: Vec<Candidate>,
}

impl Prepared {
    fn finish(
        mut self,
        decisions: Vec<Decision>,
        metrics: &IngestMetrics,
    ) -> SubmitTransactionsResponse {
        for (slot, decision) in self.slots.into_iter().zip(decisions) {
            self.tally.decided(&decision);
            let r = &mut self.results[slot];
            match decision {
                Decision::Accepted { position, event_id } => {
                    r.outcome = Outcome::Accepted.into();
                    r.position = position;
                    r.event_id = event_id;
                }
                Decision::Duplicate { position, event_id } => {
                    r.outcome = Outcome::Duplicate.into();
                    r.position = position;
                    r.event_id = event_id;
                    r.message =
                        format!("already in the ledger at position {position}; counted once");
                }
                Decision::Rejected(rej) => {
                    r.outcome = Outcome::Rejected.into();
                    r.reason = rej.reason.code().to_owned();
                    r.message = rej.message;
                }
            }
        }
        metrics.answered(&self.tally);
        SubmitTransactionsResponse {
            results: self.results,
        }
    }
}

/// The domain's view of a pushed transaction: plain values, validated by
/// `saleboard_domain::transaction::validate`.
#[must_use]
pub fn transaction_input(t: &Transaction) -> TransactionInput {
    TransactionInput {
        transaction_id: t.transaction_id.clone(),
        store_id: t.store_id.clone(),
        kind: match TransactionKind::try_from(t.kind) {
            Ok(TransactionKind::Sale) => PushedKind::Sale,
            Ok(TransactionKind::Refund) => PushedKind::Refund,
            Ok(TransactionKind::Unspecified) => PushedKind::Unspecified,
            Err(_) => PushedKind::Unknown(t.kind),
        },
        currency: t.currency.clone(),
        amount_minor: t.amount_minor,
        occurred_at: t.occurred_at.as_ref().map(|ts| (ts.seconds, ts.nanos)),
        refund_of: t.refund_of.clone(),
        brand: t.brand.clone(),
        category: t.category.clone(),
        origin: match Origin::try_from(t.origin) {
            Ok(Origin::Unspecified) => PushedOrigin::Unspecified,
            Ok(Origin::Domestic) => PushedOrigin::Domestic,
            Ok(Origin::CrossBorder) => PushedOrigin::CrossBorder,
            Err(_) => PushedOrigin::Unknown(t.origin),
        },
    }
}

fn timestamp(t: UnixNanos) -> Timestamp {
    let (seconds, nanos) = t.to_parts();
    Timestamp { seconds, nanos }
}

fn retailer<T>(request: &Request<T>) -> Result<Retailer, Status> {
    request
        .extensions()
        .get::<Retailer>()
        .cloned()
        .ok_or_else(|| Status::internal("request reached ingest without authentication"))
}

impl IngestService {
    /// A service handing batches to `writer`; its streams end once `draining` turns true.
    #[must_use]
    pub fn new(
        writer: Writer,
        directory: Arc<Directory>,
        limits: Limits,
        max_batch: usize,
        metrics: IngestMetrics,
        draining: watch::Receiver<bool>,
        stream_limits: StreamLimits,
    ) -> Self {
        Self {
            writer,
            directory,
            limits,
            max_batch,
            metrics,
            draining,
            stream_limits,
            open_streams: Arc::default(),
            site_rate_limit: 0,
        }
    }

    /// Says (in `WhoAmI`) that each site may send `per_second` requests a second (0: no
    /// limit). The limit itself is the rate limit layer's.
    #[must_use]
    pub fn reporting_site_rate_limit(mut self, per_second: u32) -> Self {
        self.site_rate_limit = per_second;
        self
    }

    async fn prepare(
        &self,
        who: &Retailer,
        request: SubmitTransactionsRequest,
    ) -> Result<Prepared, Status> {
        let n = request.transactions.len();
        if n == 0 {
            return Err(invalid_field(
                "transactions",
                "the request has no transactions",
            ));
        }
        if n > self.max_batch {
            return Err(invalid_field(
                "transactions",
                format!(
                    "the request has {n} transactions; at most {} are allowed per request",
                    self.max_batch
                ),
            ));
        }
        // Some event must exist (a cheap, cached check); which one a transaction belongs to is
        // decided under the writer lock against the events as committed.
        self.directory.event().await?;
        let now = UnixNanos::now();
        let mut prepared = Prepared {
            results: Vec::with_capacity(n),
            tally: Tally::default(),
            slots: Vec::with_capacity(n),
            candidates: Vec::with_capacity(n),
        };
        for (slot, t) in request.transactions.iter().enumerate() {
            let mut result = TransactionResult {
                // An invalid id may be 64 KiB long: the answer repeats only its start.
                transaction_id: saleboard_domain::ids::excerpt(&t.transaction_id),
                ..TransactionResult::default()
            };
            match validate(&transaction_input(t), now, &self.limits) {
                Ok(tx) => {
                    prepared.slots.push(slot);
                    prepared.candidates.push(Candidate {
                        site: who.site.clone(),
                        key_id: who.key_id.clone(),
                        received_at: now,
                        tx,
                    });
                }
                Err(rej) => {
                    prepared.tally.rejected(rej.reason);
                    result.outcome = Outcome::Rejected.into();
                    result.reason = rej.reason.code().to_owned();
                    result.message = rej.message;
                }
            }
            prepared.results.push(result);
        }
        Ok(prepared)
    }
}

/// A stream's batch on its way: already answered, or waiting for its commit.
enum Pending {
    Done(Result<SubmitTransactionsResponse, Status>),
    Waiting(Prepared, tokio::sync::oneshot::Receiver<Reply>),
}

impl Pending {
    async fn resolve(self, metrics: IngestMetrics) -> Result<SubmitTransactionsResponse, Status> {
        match self {
            Self::Done(r) => r,
            Self::Waiting(prepared, rx) => Ok(prepared.finish(writer::wait(rx).await?, &metrics)),
        }
    }
}

fn revoked(key_id: &str) -> Status {
    Status::unauthenticated(format!(
        "API key {key_id} was revoked; batches after it were not taken. Ask the organizer for a \
         new key"
    ))
}

fn idle(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "no message on this stream for {} ms: closed; open a new stream when there is more to send",
        timeout.as_millis()
    ))
}

fn shutting_down() -> Status {
    Status::unavailable(
        "ingest is shutting down: every batch answered on this stream was handled, later \
         messages were not taken; resend them to another instance",
    )
}

type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<SubmitTransactionsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IngestApi for IngestService {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let who = retailer(&request)?;
        let event = match self.directory.event().await {
            Ok(event) => Some(EventWindow {
                event_id: event.event_id.clone(),
                display_name: event.display_name.clone(),
                starts_at: Some(timestamp(event.starts_at)),
                ends_at: Some(timestamp(event.ends_at)),
                reporting_currency: event.reporting_currency.code().to_owned(),
            }),
            Err(IngestError::NoEvent) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Response::new(WhoAmIResponse {
            key_id: who.key_id,
            site_id: who.site.to_string(),
            event,
            max_batch: u32::try_from(self.max_batch).unwrap_or(u32::MAX),
            site_rate_limit: self.site_rate_limit,
        }))
    }

    async fn submit_transactions(
        &self,
        request: Request<SubmitTransactionsRequest>,
    ) -> Result<Response<SubmitTransactionsResponse>, Status> {
        let who = retailer(&request)?;
        let mut prepared = self.prepare(&who, request.into_inner()).await?;
        if prepared.candidates.is_empty() {
            return Ok(Response::new(prepared.finish(Vec::new(), &self.metrics)));
        }
        let rx = self
            .writer
            .try_submit(std::mem::take(&mut prepared.candidates))?;
        let decisions = writer::wait(rx).await?;
        Ok(Response::new(prepared.finish(decisions, &self.metrics)))
    }

    type StreamTransactionsStream = ResponseStream;

    async fn stream_transactions(
        &self,
        request: Request<Streaming<SubmitTransactionsRequest>>,
    ) -> Result<Response<Self::StreamTransactionsStream>, Status> {
        let who = retailer(&request)?;
        // The key was found active just now (authentication): only a reload that begins
        // after this can say it was revoked.
        let opened = tokio::time::Instant::now();
        let slot = self
            .open_streams
            .open(&who.site, self.stream_limits.per_site)?;
        let mut inbound = request.into_inner();
        let (pending_tx, pending_rx) = mpsc::channel::<Pending>(STREAM_PIPELINE);
        let service = self.clone();
        let mut draining = self.draining.clone();
        let mut keys = self.directory.keys_changed();
        let idle_timeout = self.stream_limits.idle_timeout;
        // Owned by the stream: ends when the client ends its side, fails, or stops reading
        // (the response side is dropped), when it sends nothing for the idle timeout, when its
        // key is revoked, or when the server drains (after the batches taken so far are
        // answered, the stream ends with UNAVAILABLE). Batches are submitted in request order,
        // so a refund may name a sale sent in an earlier message of the same stream.
        let task = async move {
            let _slot = slot;
            loop {
                let idle_until = tokio::time::Instant::now() + idle_timeout;
                // A reload since the last look is seen before the next message is taken
                // (`keys` is polled first), so a revoked key's next batch is never taken.
                let next = loop {
                    tokio::select! {
                        biased;
                        _ = draining.wait_for(|d| *d) => break Err(shutting_down()),
                        changed = keys.changed() => {
                            if changed.is_err() || service.directory.revoked_since(&who.key_id, opened) {
                                break Err(revoked(&who.key_id));
                            }
                        }
                        () = tokio::time::sleep_until(idle_until) => break Err(idle(idle_timeout)),
                        next = inbound.message() => break Ok(next),
                    }
                };
                let message = match next {
                    Err(status) => {
                        drop(pending_tx.send(Pending::Done(Err(status))).await);
                        break;
                    }
                    Ok(Ok(Some(m))) => m,
                    Ok(Ok(None)) => break,
                    Ok(Err(status)) => {
                        tracing::debug!(%status, "ingest stream ended by the client");
                        break;
                    }
                };
                let pending = match service.prepare(&who, message).await {
                    Err(status) => Pending::Done(Err(status)),
                    Ok(prepared) if prepared.candidates.is_empty() => {
                        Pending::Done(Ok(prepared.finish(Vec::new(), &service.metrics)))
                    }
                    Ok(mut prepared) => {
                        let batch = std::mem::take(&mut prepared.candidates);
                        match service.writer.submit(batch).await {
                            Ok(rx) => Pending::Waiting(prepared, rx),
                            Err(e) => Pending::Done(Err(e.into())),
                        }
                    }
                };
                let failed = matches!(pending, Pending::Done(Err(_)));
                if pending_tx.send(pending).await.is_err() || failed {
                    break;
                }
            }
        };
        tokio::spawn(task.in_current_span());
        let metrics = self.metrics.clone();
        let responses =
            ReceiverStream::new(pending_rx).then(move |pending| pending.resolve(metrics.clone()));
        Ok(Response::new(Box::pin(responses)))
    }
}
