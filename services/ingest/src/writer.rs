//! The group-commit writer. Handlers hand batches to one task per process through a bounded
//! queue; the task takes everything waiting (up to a row cap), appends it in one database
//! transaction, and answers each batch once that transaction has committed. Under load, many
//! requests share one commit; when idle, a lone request commits at once.

use std::sync::Arc;

use saleboard_domain::resolve::Decision;
use saleboard_storage::{Candidate, Store};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use crate::error::IngestError;
use crate::metrics::IngestMetrics;

/// The answer to one batch: its decisions, in order, or why none of it was stored.
pub type Reply = Result<Vec<Decision>, IngestError>;

struct Job {
    batch: Vec<Candidate>,
    reply: oneshot::Sender<Reply>,
    /// The request's span (none unless tracing is on): the commit span joins its trace.
    span: tracing::Span,
}

/// Most requests a commit span links to besides its parent.
const MAX_LINKS: usize = 64;

/// Handle to submit batches to the writer task. Cheap to clone; the task ends once every
/// handle is dropped and the queue is drained.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("rows", &self.batch.len())
            .finish()
    }
}

impl Writer {
    /// Starts a writer over `store`. Returns the handle and the task to run (and await at
    /// shutdown, after every handle is dropped, to drain the queue).
    pub fn new(
        store: Arc<dyn Store>,
        queue: usize,
        max_rows: usize,
        metrics: IngestMetrics,
    ) -> (Self, impl std::future::Future<Output = ()> + Send) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        (Self { queue: tx }, run(store, rx, max_rows.max(1), metrics))
    }

    /// Queues a batch, waiting for room (backpressure for streams).
    ///
    /// # Errors
    /// [`IngestError::WriterGone`] when the writer has stopped.
    pub async fn submit(
        &self,
        batch: Vec<Candidate>,
    ) -> Result<oneshot::Receiver<Reply>, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Job {
                batch,
                reply,
                span: request_span(),
            })
            .await
            .map_err(|_| IngestError::WriterGone)?;
        Ok(rx)
    }

    /// Queues a batch if there is room now.
    ///
    /// # Errors
    /// [`IngestError::QueueFull`] when the queue is full, [`IngestError::WriterGone`] when the
    /// writer has stopped.
    pub fn try_submit(
        &self,
        batch: Vec<Candidate>,
    ) -> Result<oneshot::Receiver<Reply>, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .try_send(Job {
                batch,
                reply,
                span: request_span(),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => IngestError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => IngestError::WriterGone,
            })?;
        Ok(rx)
    }
}

/// The span of the request submitting a batch, when spans are exported.
fn request_span() -> tracing::Span {
    if saleboard_runtime::telemetry::tracing_enabled() {
        tracing::Span::current()
    } else {
        tracing::Span::none()
    }
}

/// The span of one group commit: a child of the first request's span (so a client's trace
/// shows the commit that stored its batch), linked to the other requests it served.
fn commit_span(jobs: &[Job], rows: usize) -> tracing::Span {
    let Some(first) = jobs.first() else {
        return tracing::Span::none();
    };
    if first.span.is_none() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        target: "saleboard::ingest",
        parent: &first.span,
        "commit",
        otel.name = "ingest.commit",
        rows,
        requests = jobs.len(),
    );
    for job in jobs.iter().skip(1).take(MAX_LINKS) {
        saleboard_runtime::telemetry::add_link(&span, &job.span);
    }
    span
}

/// Awaits a writer reply.
///
/// # Errors
/// The writer's status, or UNAVAILABLE when it stopped before answering.
pub async fn wait(rx: oneshot::Receiver<Reply>) -> Reply {
    rx.await.unwrap_or(Err(IngestError::WriterGone))
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Job>,
    max_rows: usize,
    metrics: IngestMetrics,
) {
    let mut jobs: Vec<Job> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut rows = first.batch.len();
        jobs.push(first);
        while rows < max_rows {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let span = commit_span(&jobs, rows);
        // Move the rows into one group (no copy), keeping each requester's share.
        let mut group: Vec<Candidate> = Vec::with_capacity(rows);
        let mut waiting = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            waiting.push((job.batch.len(), job.reply));
            group.extend(job.batch);
        }
        let started = std::time::Instant::now();
        let result = store.append(&group).instrument(span).await;
        let elapsed = started.elapsed();
        metrics.committed(group.len(), elapsed);
        tracing::debug!(
            rows = group.len(),
            requests = waiting.len(),
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            ok = result.is_ok(),
            "group commit"
        );
        match result {
            Ok(decisions) => {
                let mut decisions = decisions.into_iter();
                for (len, reply) in waiting {
                    let mine: Vec<Decision> = decisions.by_ref().take(len).collect();
                    // The requester may have gone (cancelled); its rows are committed anyway
                    // and a resend will find them as duplicates.
                    drop(reply.send(Ok(mine)));
                }
            }
            Err(e) => {
                // Every waiting request gets the same status. A retryable fault (a full disk,
                // a lost database) is logged by storage once per episode; anything else is a
                // bug, logged for each group.
                if e.is_unavailable() {
                    tracing::debug!(error = %e, rows = group.len(), requests = waiting.len(), "group commit failed; nothing of it was stored");
                } else {
                    tracing::error!(error = %e, rows = group.len(), requests = waiting.len(), "group commit failed; nothing of it was stored");
                }
                let failed = IngestError::Commit(Arc::new(e));
                for (_, reply) in waiting {
                    drop(reply.send(Err(failed.clone())));
                }
            }
        }
    }
    tracing::debug!("ingest writer drained and stopped");
}
