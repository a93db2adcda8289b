//! `saleboard push FILE...`: streams transactions from CSV or JSON Lines files in batches over
//! `StreamTransactions`, shows progress, prints a summary, writes rejected rows (with their
//! reasons) next to the input, and exits non-zero when anything was rejected. Safe to run twice:
//! the second run reports duplicates. Ctrl-C stops sending, waits for the answers of what was
//! sent, and says how far it got. When the stream fails with UNAVAILABLE or RESOURCE_EXHAUSTED
//! (a storage fault, a restart, shed load) it opens another and sends again what was not
//! answered, with backoff ([`crate::retry`]); rows whose first attempt was stored come back
//! DUPLICATE.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use saleboard_proto::v1::{Outcome, SubmitTransactionsRequest, Transaction, TransactionResult};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{self, Output};
use crate::input::{self, Original, Row};

/// Arguments of `saleboard push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// CSV (header row) or JSON Lines (`.jsonl`) files of transactions.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ingest: client::IngestTarget,
    /// Transactions per request.
    #[arg(long, env = "SALEBOARD_PUSH_BATCH", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Summary format.
    #[arg(long, env = "SALEBOARD_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// How the `amount` column writes numbers when a shop's export groups thousands: `id`
    /// (1.250.000,50) or `en` (1,250,000.50). Without it, amounts are plain (1250000.50).
    #[arg(long, env = "SALEBOARD_NUMBER_FORMAT", value_enum)]
    pub number_format: Option<input::NumberFormat>,
}

/// What happened to one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// Rows read.
    pub rows: u64,
    /// Told ACCEPTED.
    pub accepted: u64,
    /// Told DUPLICATE.
    pub duplicate: u64,
    /// Rejected, by reason code.
    pub rejected: BTreeMap<String, u64>,
    /// Rows that could not be read, with their line and why.
    pub malformed: Vec<(u64, String)>,
    /// Stopped by Ctrl-C before the end.
    pub interrupted: bool,
    /// Streams opened again after UNAVAILABLE or RESOURCE_EXHAUSTED.
    pub retries: u32,
    /// Where the rejects went, if there were any.
    pub rejects_file: Option<PathBuf>,
}

impl FileSummary {
    fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Whether everything was accepted or a duplicate.
    #[must_use]
    pub fn clean(&self) -> bool {
        self.rejected.is_empty() && self.malformed.is_empty() && !self.interrupted
    }

    fn json(&self, file: &Path) -> serde_json::Value {
        json!({
            "file": file.display().to_string(),
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "malformed": self.malformed.iter().map(|(l, m)| json!({"line": l, "message": m})).collect::<Vec<_>>(),
            "interrupted": self.interrupted,
            "rejects_file": self.rejects_file.as_ref().map(|p| p.display().to_string()),
            "trace_id": crate::client::trace_id(),
        })
    }
}

/// Where the rejected rows of `file` go, beside it: `FILE.rejects.csv` for a CSV file,
/// `FILE.rejects.jsonl` for JSON Lines. Each keeps the row as written (every column or key) with
/// its `line`, `reason` and `message`, so the file can be fixed and pushed again.
#[must_use]
pub fn rejects_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(match input::Format::of(file) {
        input::Format::Csv => ".rejects.csv",
        input::Format::JsonLines => ".rejects.jsonl",
    });
    file.with_file_name(name)
}

/// Columns the rejects file adds (and drops from a row that already had them: a rejects file
/// pushed again).
const REJECT_COLUMNS: [&str; 3] = ["line", "reason", "message"];

struct Rejects {
    path: PathBuf,
    writer: Option<RejectsWriter>,
}

enum RejectsWriter {
    Csv(Box<csv::Writer<std::fs::File>>),
    Json(std::io::BufWriter<std::fs::File>),
}

impl Rejects {
    /// The rejects file of `file`, removing one left by an earlier run (it is written anew,
    /// only when there is a reject).
    fn for_file(file: &Path) -> anyhow::Result<Self> {
        let path = rejects_path(file);
        if path.exists() {
            std::fs::remove_file(&path)
                .map_err(|e| anyhow::anyhow!("cannot remove the old {}: {e}", path.display()))?;
            eprintln!(
                "removed {} (the rejects of an earlier push of this file); this push writes \
                 its own rejects there, if any",
                path.display()
            );
        }
        Ok(Self { path, writer: None })
    }

    fn write(
        &mut self,
        line: u64,
        original: &Original,
        reason: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let cannot = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!("cannot write {}: {e}", self.path.display())
        };
        if self.writer.is_none() {
            let file = std::fs::File::create(&self.path).map_err(|e| cannot(&e))?;
            self.writer = Some(match original {
                Original::Csv { header, .. } => {
                    let mut w = csv::Writer::from_writer(file);
                    let kept = header
                        .iter()
                        .filter(|h| !REJECT_COLUMNS.contains(&h.as_str()));
                    w.write_record(
                        REJECT_COLUMNS
                            .iter()
                            .copied()
                            .chain(kept.map(String::as_str)),
                    )
                    .map_err(|e| cannot(&e))?;
                    RejectsWriter::Csv(Box::new(w))
                }
                Original::Json(_) | Original::Text(_) => {
                    RejectsWriter::Json(std::io::BufWriter::new(file))
                }
            });
        }
        let line_text = line.to_string();
        match (self.writer.as_mut(), original) {
            (Some(RejectsWriter::Csv(w)), Original::Csv { header, values }) => {
                let kept = header
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| !REJECT_COLUMNS.contains(&h.as_str()))
                    .map(|(i, _)| values.get(i).map_or("", String::as_str));
                w.write_record(
                    [line_text.as_str(), reason, message]
                        .into_iter()
                        .chain(kept),
                )
                .map_err(|e| cannot(&e))?;
            }
            (Some(RejectsWriter::Json(w)), original) => {
                // Members keep their exact JSON text (a number is never re-read as a float).
                use serde_json::value::to_raw_value;
                let mut object: BTreeMap<&str, Box<RawValue>> = BTreeMap::new();
                object.insert("line", to_raw_value(&line)?);
                object.insert("reason", to_raw_value(reason)?);
                object.insert("message", to_raw_value(message)?);
                match original {
                    Original::Json(members) => {
                        for (key, value) in members {
                            if !REJECT_COLUMNS.contains(&key.as_str()) {
                                object.insert(key, value.clone());
                            }
                        }
                    }
                    Original::Text(text) => {
                        object.insert("text", to_raw_value(text)?);
                    }
                    Original::Csv { .. } => {}
                }
                serde_json::to_writer(&mut *w, &object).map_err(|e| cannot(&e))?;
                w.write_all(b"\n").map_err(|e| cannot(&e))?;
            }
            _ => anyhow::bail!("{}: a CSV row in a JSON Lines file", self.path.display()),
        }
        Ok(())
    }

    /// Flushes the file; its path when anything was written.
    fn finish(self) -> anyhow::Result<Option<PathBuf>> {
        match self.writer {
            None => Ok(None),
            Some(RejectsWriter::Csv(mut w)) => {
                w.flush()?;
                Ok(Some(self.path))
            }
            Some(RejectsWriter::Json(mut w)) => {
                w.flush()?;
                Ok(Some(self.path))
            }
        }
    }
}

/// How far a file has got: a bar on a terminal, otherwise a line every two seconds.
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
    last_report: Instant,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} eta {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Self {
            bar,
            total,
            started: Instant::now(),
            last_report: Instant::now(),
        }
    }

    /// `answered` more rows of `file` were answered; `summary` is the state so far.
    fn advance(&mut self, file: &Path, answered: u64, summary: &FileSummary) {
        if let Some(bar) = &self.bar {
            bar.inc(answered);
            bar.set_message(format!(
                "{} accepted, {} duplicate, {} rejected",
                summary.accepted,
                summary.duplicate,
                summary.rejected_total()
            ));
        } else if self.last_report.elapsed() >= Duration::from_secs(2) {
            let done = summary.accepted + summary.duplicate + summary.rejected_total();
            eprintln!(
                "{}: {done}/{} rows answered ({:.0}/s): {} accepted, {} duplicate, {} rejected",
                file.display(),
                self.total,
                done as f64 / self.started.elapsed().as_secs_f64().max(0.001),
                summary.accepted,
                summary.duplicate,
                summary.rejected_total()
            );
            self.last_report = Instant::now();
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

impl FileSummary {
    /// Counts the answer to one batch whose rows were `sent` (line, transaction id), writing
    /// its rejects.
    fn record(
        &mut self,
        rejects: &mut Rejects,
        sent: &[(u64, Original)],
        results: &[TransactionResult],
    ) -> anyhow::Result<()> {
        for ((line, original), result) in sent.iter().zip(results) {
            match result.outcome() {
                Outcome::Accepted => self.accepted += 1,
                Outcome::Duplicate => self.duplicate += 1,
                _ => {
                    *self.rejected.entry(result.reason.clone()).or_default() += 1;
                    rejects.write(*line, original, &result.reason, &result.message)?;
                }
            }
        }
        Ok(())
    }
}

/// A batch sent and not yet answered: its lines, and its transactions to send again.
type Unanswered = (Vec<(u64, Original)>, Vec<Transaction>);

/// Pushes one file. `stop` turns true on Ctrl-C.
async fn push_file(
    args: &PushArgs,
    file: &Path,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<FileSummary> {
    let mut client = args
        .ingest
        .connect()
        .await?
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut progress = Progress::new(input::count_rows(file));

    // Reading runs on a blocking thread; rows come through a bounded channel.
    let (row_tx, mut row_rx) = mpsc::channel::<input::Row>(4 * args.batch_size as usize);
    let path = file.to_path_buf();
    let number = args.number_format;
    let reader = tokio::task::spawn_blocking(move || {
        input::read(&path, number, |row| row_tx.blocking_send(row).is_ok())
    });

    let endpoint = args.ingest.endpoint.as_str();
    let mut backoff = crate::retry::Backoff::default();
    let (req_tx, mut responses) = open_retrying(&mut client, &mut backoff, endpoint).await?;

    let mut summary = FileSummary::default();
    let mut rejects = Rejects::for_file(file)?;
    // Lines and transactions of every batch sent and not yet answered, in order (sent again
    // on a new stream when one fails).
    let mut in_flight: VecDeque<Unanswered> = VecDeque::new();
    let mut batch: Vec<Transaction> = Vec::new();
    let mut lines: Vec<(u64, Original)> = Vec::new();
    let mut input_done = false;
    let mut sender = Some(req_tx);
    // Why the stream failed, when it did: handled after the select below.
    let mut broken: Option<tonic::Status> = None;

    loop {
        if stop.load(Ordering::Relaxed) && !summary.interrupted {
            summary.interrupted = true;
            input_done = true;
            batch.clear();
            lines.clear();
        }
        if input_done && let Some(s) = sender.take() {
            // The last, partial batch; dropping the sender then ends the request stream.
            if !batch.is_empty() {
                let transactions = std::mem::take(&mut batch);
                let request = SubmitTransactionsRequest {
                    transactions: transactions.clone(),
                };
                // Failed: the stream's error comes with the responses and it is sent again.
                drop(s.send(request).await);
                in_flight.push_back((std::mem::take(&mut lines), transactions));
            }
        }
        if input_done && sender.is_none() && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            row = row_rx.recv(), if !input_done && batch.len() < args.batch_size as usize => match row {
                None => input_done = true,
                Some(Row { line, original, parsed: Ok(t) }) => {
                    summary.rows += 1;
                    lines.push((line, original));
                    batch.push(t);
                }
                Some(Row { line, original, parsed: Err(why) }) => {
                    summary.rows += 1;
                    rejects.write(line, &original, "MALFORMED", &why)?;
                    summary.malformed.push((line, why));
                }
            },
            sent = async { sender.as_ref()?.reserve().await.ok() }, if batch.len() >= args.batch_size as usize => {
                if let Some(permit) = sent {
                    let transactions = std::mem::take(&mut batch);
                    permit.send(SubmitTransactionsRequest { transactions: transactions.clone() });
                    in_flight.push_back((std::mem::take(&mut lines), transactions));
                }
            }
            response = responses.message(), if !in_flight.is_empty() => {
                broken = match response {
                    Ok(Some(response)) => {
                        backoff.reset();
                        let (sent_lines, _) = in_flight.pop_front().unwrap_or_default();
                        summary.record(&mut rejects, &sent_lines, &response.results)?;
                        progress.advance(file, sent_lines.len() as u64, &summary);
                        None
                    }
                    Ok(None) => Some(tonic::Status::unavailable(format!(
                        "the stream closed with {} batches unanswered",
                        in_flight.len()
                    ))),
                    Err(status) => Some(status),
                };
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if let Some(status) = broken.take() {
            // Another stream, and what was not answered sent again, in order.
            backoff
                .wait(endpoint, "StreamTransactions", &status)
                .await?;
            let (again, answers) = open_retrying(&mut client, &mut backoff, endpoint).await?;
            summary.retries += 1;
            for (_, transactions) in &in_flight {
                let request = SubmitTransactionsRequest {
                    transactions: transactions.clone(),
                };
                drop(again.send(request).await);
            }
            responses = answers;
            // A request stream that had ended (the input was done) ends again.
            if sender.is_some() {
                sender = Some(again);
            }
        }
    }
    drop(row_rx);
    reader.await??;
    progress.finish();
    summary.rejects_file = rejects.finish()?;
    Ok(summary)
}

/// The request side and the answers of a new `StreamTransactions` call.
/// [`open_stream`], again after each retryable failure as `backoff` allows.
async fn open_retrying(
    client: &mut saleboard_proto::v1::ingest_service_client::IngestServiceClient<client::Authed>,
    backoff: &mut crate::retry::Backoff,
    endpoint: &str,
) -> anyhow::Result<(
    mpsc::Sender<SubmitTransactionsRequest>,
    tonic::Streaming<saleboard_proto::v1::SubmitTransactionsResponse>,
)> {
    loop {
        match open_stream(client).await {
            Ok(opened) => return Ok(opened),
            Err(status) => {
                backoff
                    .wait(endpoint, "StreamTransactions", &status)
                    .await?;
            }
        }
    }
}

async fn open_stream(
    client: &mut saleboard_proto::v1::ingest_service_client::IngestServiceClient<client::Authed>,
) -> Result<
    (
        mpsc::Sender<SubmitTransactionsRequest>,
        tonic::Streaming<saleboard_proto::v1::SubmitTransactionsResponse>,
    ),
    tonic::Status,
> {
    let (req_tx, req_rx) = mpsc::channel::<SubmitTransactionsRequest>(4);
    let responses = client
        .stream_transactions(ReceiverStream::new(req_rx))
        .await?
        .into_inner();
    Ok((req_tx, responses))
}

fn print_table(file: &Path, s: &FileSummary) {
    let answered = s.accepted + s.duplicate + s.rejected_total();
    println!(
        "{}: {} rows: {} accepted, {} duplicate, {} rejected, {} malformed",
        file.display(),
        s.rows,
        s.accepted,
        s.duplicate,
        s.rejected_total(),
        s.malformed.len()
    );
    if s.retries > 0 {
        println!(
            "  the stream was opened again {} time(s) after UNAVAILABLE or RESOURCE_EXHAUSTED; rows sent again that had been stored count as duplicates",
            s.retries
        );
    }
    if s.interrupted {
        println!(
            "  interrupted by Ctrl-C after {answered} answered rows; run the same command again to send the rest (what was sent comes back as duplicates)"
        );
    }
    for (reason, n) in &s.rejected {
        println!("  rejected {reason}: {n}");
    }
    for (line, why) in s.malformed.iter().take(20) {
        println!("  line {line}: {why}");
    }
    if s.malformed.len() > 20 {
        println!("  ... and {} more malformed lines", s.malformed.len() - 20);
    }
    if let Some(p) = &s.rejects_file {
        println!("  rejected rows and reasons written to {}", p.display());
    }
}

/// Runs the command; the exit code is 0 when every row was accepted or a duplicate, 1 when any
/// was rejected or malformed, 130 when interrupted.
///
/// # Errors
/// When the service cannot be reached or a file cannot be read.
pub async fn run(args: &PushArgs) -> anyhow::Result<u8> {
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Ctrl-C: finishing what was sent, then stopping");
            on_signal.store(true, Ordering::Relaxed);
        }
    });
    let mut code = 0;
    let mut reports = Vec::new();
    for file in &args.files {
        let summary = push_file(args, file, stop.clone()).await?;
        match args.output {
            Output::Table => print_table(file, &summary),
            Output::Json => reports.push(summary.json(file)),
        }
        if summary.interrupted {
            code = 130;
            break;
        }
        if !summary.clean() {
            code = 1;
        }
    }
    match args.output {
        Output::Json => println!("{}", serde_json::Value::Array(reports)),
        Output::Table => {
            if let Some(id) = crate::client::trace_id() {
                // Only a command that exports its own spans has a trace to look up.
                if saleboard_runtime::telemetry::tracing_enabled() {
                    println!("trace {id} (every request carried it; look it up in Jaeger)");
                } else {
                    println!("trace {id} (every request carried it as its traceparent)");
                }
            }
        }
    }
    Ok(code)
}
