//! The path from a preview's pipes into the log store, with back-pressure instead of memory.
//!
//! The pipe readers push lines; one writer task per preview takes everything pushed since its
//! last write and stores it as one batch (one sled write and flush however many lines arrived,
//! which is what makes a flood cheap). What is pushed but not yet stored is held to a byte
//! budget: when an app writes faster than lines can be stored, `push` waits, the readers stop
//! reading, the pipe fills and the app blocks in `write`. Nothing is dropped and previewd's
//! memory stays flat whatever the app writes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use super::{LogStore, NewLine};

/// Bytes of lines pushed but not yet stored, per preview.
const BUDGET_BYTES: usize = 1 << 20;
/// What a line costs the budget beyond its text, so a flood of empty lines is bounded too.
const LINE_OVERHEAD: usize = 64;
/// Most lines stored in one batch.
const MAX_BATCH: usize = 8192;
/// Least time between two writes of one preview. Each write ends in an fsync; an app printing
/// a line every few hundred microseconds (an access log under load) would otherwise pay one
/// per line. A line after a quiet spell is written at once; under steady output lines wait at
/// most this long, gathering into one write.
const MIN_WRITE_INTERVAL: Duration = Duration::from_millis(1);

/// A handle to push a preview's lines to its writer. Cheap to clone; the writer ends once every
/// clone is dropped and the last lines are stored.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::UnboundedSender<Pending>,
    budget: Arc<Semaphore>,
}

/// A pushed line and its share of the budget, given back once it is stored.
struct Pending {
    line: NewLine,
    permit: OwnedSemaphorePermit,
}

impl Ingest {
    /// Starts the writer of `generation_id`'s lines; the handle resolves when it has stored
    /// every line pushed.
    pub fn start(logs: LogStore, generation_id: String) -> (Ingest, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write(logs, generation_id, rx));
        let ingest = Ingest {
            tx,
            budget: Arc::new(Semaphore::new(BUDGET_BYTES)),
        };
        (ingest, writer)
    }

    /// Queues a line for storage, waiting while the budget is spent. Returns false when the
    /// writer is gone (the caller can stop reading).
    pub async fn push(&self, line: NewLine) -> bool {
        let cost = (line.line.len() + LINE_OVERHEAD).min(BUDGET_BYTES);
        // The semaphore is never closed; `cost` fits the budget, so acquiring always succeeds.
        let Ok(permit) = self
            .budget
            .clone()
            .acquire_many_owned(u32::try_from(cost).unwrap_or(u32::MAX))
            .await
        else {
            return false;
        };
        self.tx.send(Pending { line, permit }).is_ok()
    }
}

/// Stores whatever was pushed since the last write, as one batch, until every handle is gone.
async fn write(logs: LogStore, generation_id: String, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    let mut failing = false;
    let mut last_write: Option<Instant> = None;
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        if let Some(due) = last_write.map(|at| at + MIN_WRITE_INTERVAL) {
            if Instant::now() < due {
                tokio::time::sleep_until(due).await;
                while pending.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(more) => pending.push(more),
                        Err(_) => break,
                    }
                }
            }
        }
        last_write = Some(Instant::now());
        let (lines, permits): (Vec<NewLine>, Vec<OwnedSemaphorePermit>) =
            pending.drain(..).map(|p| (p.line, p.permit)).unzip();
        let (logs, generation_id) = (logs.clone(), generation_id.clone());
        let stored =
            tokio::task::spawn_blocking(move || logs.append_batch(&generation_id, lines)).await;
        match stored {
            Ok(Ok(_)) => failing = false,
            // Say it once per run of failures, not once per batch.
            Ok(Err(err)) if !failing => {
                failing = true;
                warn!("storing log lines: {err}");
            }
            Ok(Err(_)) => {}
            Err(err) => warn!("the log writer failed: {err}"),
        }
        // The budget comes back only now that the lines are stored.
        drop(permits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_store::{LogLimits, LogStream};

    /// Lines pushed from two tasks are all stored, each task's in its order, seqs contiguous.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_everything_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let limits = LogLimits {
            max_lines: 1_000_000,
            max_bytes: 1 << 30,
        };
        let logs = LogStore::open(&db, limits).unwrap();
        let (ingest, writer) = Ingest::start(logs.clone(), "g".into());
        let pushers: Vec<_> = [LogStream::Stdout, LogStream::Stderr]
            .into_iter()
            .map(|stream| {
                let ingest = ingest.clone();
                tokio::spawn(async move {
                    for i in 0..5000 {
                        assert!(ingest.push(NewLine::now(stream, i.to_string())).await);
                    }
                })
            })
            .collect();
        drop(ingest);
        for pusher in pushers {
            pusher.await.unwrap();
        }
        writer.await.unwrap();
        let lines = logs.read_after("g", 0, 20_000).unwrap();
        assert_eq!(lines.len(), 10_000);
        assert!(lines.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let numbers: Vec<usize> = lines
                .iter()
                .filter(|l| l.stream == stream)
                .map(|l| l.line.parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..5000).collect::<Vec<_>>());
        }
    }
}
