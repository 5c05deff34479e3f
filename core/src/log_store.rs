//! Every output line of a generation's previews, stored in order and fed live to subscribers.
//!
//! A generation has one log: lines get a strictly increasing `seq` that goes on across
//! relaunches, so a client following a generation's stream never sees numbering start over. A
//! line is written to sled before it is published, under a per-generation lock that also hands
//! out the sequence numbers, so storage order, `seq` order and publish order are one order, and
//! a subscriber that reads the store after subscribing can always close any gap from the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::store::{PreviewStatus, StoreError};

/// The tree holding every line, keyed by `<generation id>/` + big-endian seq.
const LOGS: &str = "logs";
/// Live events buffered per generation before a slow subscriber lags (and re-reads the store).
const FEED_CAPACITY: usize = 1024;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// previewd's own account of what it does for the preview.
    System,
}

/// One stored line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub stream: LogStream,
    pub line: String,
}

/// A preview's status change, published to the generation's subscribers (not stored here; the
/// preview record is the source of truth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub preview_id: String,
    pub status: PreviewStatus,
    pub ts: DateTime<Utc>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

/// What a live subscriber receives.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    Line(LogLine),
    Status(StatusChange),
}

/// Per-generation state: the range of stored seqs and the live feed.
struct GenerationLog {
    seqs: Mutex<SeqRange>,
    feed: broadcast::Sender<LiveEvent>,
}

/// The stored seqs of a generation: `first..next`.
#[derive(Debug, Clone, Copy)]
struct SeqRange {
    first: u64,
    next: u64,
}

/// The log store. Cheap to clone.
#[derive(Clone)]
pub struct LogStore {
    tree: sled::Tree,
    /// Most lines kept per generation; the oldest go first.
    max_lines: u64,
    logs: Arc<Mutex<HashMap<String, Arc<GenerationLog>>>>,
}

impl LogStore {
    /// Opens the log tree of `db`, keeping at most `max_lines` lines per generation.
    pub fn open(db: &sled::Db, max_lines: u64) -> Result<LogStore, StoreError> {
        Ok(LogStore {
            tree: db.open_tree(LOGS)?,
            max_lines: max_lines.max(2),
            logs: Arc::default(),
        })
    }

    /// Stores a line and publishes it; returns its seq. When the generation's log is over its cap,
    /// the oldest tenth goes, and a `system` line says so.
    pub fn append(
        &self,
        generation_id: &str,
        stream: LogStream,
        line: impl Into<String>,
    ) -> Result<u64, StoreError> {
        let log = self.log(generation_id)?;
        let mut seqs = log.seqs.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = self.store_line(generation_id, &log, &mut seqs, stream, line.into())?;
        if seqs.next - seqs.first > self.max_lines {
            // Keep nine tenths of the cap, then the notice: a notice per tenth, not per line.
            let keep = self.max_lines - (self.max_lines / 10).max(1);
            let dropped = seqs.next - seqs.first - keep;
            let mut batch = sled::Batch::default();
            for old in seqs.first..seqs.first + dropped {
                batch.remove(key(generation_id, old));
            }
            self.tree.apply_batch(batch)?;
            seqs.first += dropped;
            let notice = format!(
                "dropped the {dropped} oldest log lines: a generation keeps its newest {} lines",
                self.max_lines
            );
            self.store_line(generation_id, &log, &mut seqs, LogStream::System, notice)?;
        }
        Ok(seq)
    }

    /// Writes one line under the next seq, then publishes it.
    fn store_line(
        &self,
        generation_id: &str,
        log: &GenerationLog,
        seqs: &mut SeqRange,
        stream: LogStream,
        line: String,
    ) -> Result<u64, StoreError> {
        let line = LogLine {
            seq: seqs.next,
            ts: Utc::now(),
            stream,
            line,
        };
        let bytes = serde_json::to_vec(&line).map_err(|source| StoreError::Corrupt {
            key: generation_id.to_string(),
            source,
        })?;
        self.tree.insert(key(generation_id, line.seq), bytes)?;
        seqs.next += 1;
        let seq = line.seq;
        // No subscriber is not an error: the line is stored.
        let _ = log.feed.send(LiveEvent::Line(line));
        Ok(seq)
    }

    /// Publishes a status change to the generation's subscribers.
    pub fn publish_status(&self, generation_id: &str, change: StatusChange) {
        if let Ok(log) = self.log(generation_id) {
            let _ = log.feed.send(LiveEvent::Status(change));
        }
    }

    /// A live feed of the generation's events from now on. Subscribe first, then read the store:
    /// no line falls between the two.
    pub fn subscribe(
        &self,
        generation_id: &str,
    ) -> Result<broadcast::Receiver<LiveEvent>, StoreError> {
        Ok(self.log(generation_id)?.feed.subscribe())
    }

    /// Up to `limit` stored lines with seq greater than `after`, in order.
    pub fn read_after(
        &self,
        generation_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        let start = key(generation_id, after.saturating_add(1));
        let end = key(generation_id, u64::MAX);
        self.tree
            .range(start..=end)
            .take(limit)
            .map(|entry| decode(generation_id, &entry?.1))
            .collect()
    }

    /// The last `n` stored lines, in order.
    pub fn last_lines(&self, generation_id: &str, n: usize) -> Result<Vec<LogLine>, StoreError> {
        let mut lines = self
            .tree
            .scan_prefix(prefix(generation_id))
            .rev()
            .take(n)
            .map(|entry| decode(generation_id, &entry?.1))
            .collect::<Result<Vec<_>, _>>()?;
        lines.reverse();
        Ok(lines)
    }

    /// The seq of the newest stored line (0 when there is none).
    pub fn last_seq(&self, generation_id: &str) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .scan_prefix(prefix(generation_id))
            .next_back()
            .transpose()?
            .map_or(0, |(k, _)| seq_of(&k)))
    }

    /// Deletes every stored line of a generation; live subscribers see their feed close.
    pub fn delete(&self, generation_id: &str) -> Result<(), StoreError> {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(generation_id);
        let mut batch = sled::Batch::default();
        for entry in self.tree.scan_prefix(prefix(generation_id)).keys() {
            batch.remove(entry?);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    fn log(&self, generation_id: &str) -> Result<Arc<GenerationLog>, StoreError> {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = logs.get(generation_id) {
            return Ok(log.clone());
        }
        let first = self
            .tree
            .scan_prefix(prefix(generation_id))
            .next()
            .transpose()?
            .map_or(1, |(k, _)| seq_of(&k));
        let log = Arc::new(GenerationLog {
            seqs: Mutex::new(SeqRange {
                first,
                next: self.last_seq(generation_id)? + 1,
            }),
            feed: broadcast::channel(FEED_CAPACITY).0,
        });
        logs.insert(generation_id.to_string(), log.clone());
        Ok(log)
    }
}

fn prefix(generation_id: &str) -> Vec<u8> {
    let mut key = generation_id.as_bytes().to_vec();
    key.push(b'/');
    key
}

fn key(generation_id: &str, seq: u64) -> Vec<u8> {
    let mut key = prefix(generation_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn seq_of(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|start| key[start..].try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn decode(generation_id: &str, bytes: &[u8]) -> Result<LogLine, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        key: generation_id.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LogStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, LogStore::open(&db, 1000).unwrap())
    }

    /// Lines are numbered from 1, read back in order, paged, and kept apart per generation.
    #[test]
    fn append_and_read() {
        let (_dir, logs) = store();
        for i in 0..5 {
            logs.append("g1", LogStream::Stdout, format!("line {i}"))
                .unwrap();
        }
        logs.append("g2", LogStream::Stderr, "other").unwrap();
        let lines = logs.read_after("g1", 2, 10).unwrap();
        assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(lines[0].line, "line 2");
        assert_eq!(logs.read_after("g1", 0, 2).unwrap().len(), 2);
        assert_eq!(logs.last_lines("g1", 2).unwrap()[1].line, "line 4");
        assert_eq!(logs.last_seq("g2").unwrap(), 1);
    }

    /// Numbering goes on after reopening; delete removes only that generation.
    #[test]
    fn seq_continues_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let logs = LogStore::open(&db, 1000).unwrap();
            logs.append("g1", LogStream::System, "a").unwrap();
            logs.append("g1", LogStream::System, "b").unwrap();
            db.flush().unwrap();
        }
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let logs = LogStore::open(&db, 1000).unwrap();
        assert_eq!(logs.append("g1", LogStream::Stdout, "c").unwrap(), 3);
        logs.append("g10", LogStream::Stdout, "x").unwrap();
        logs.delete("g1").unwrap();
        assert!(logs.read_after("g1", 0, 10).unwrap().is_empty());
        assert_eq!(logs.read_after("g10", 0, 10).unwrap().len(), 1);
    }

    /// A subscriber gets lines appended after it subscribed, in order.
    #[tokio::test]
    async fn live_feed() {
        let (_dir, logs) = store();
        logs.append("g1", LogStream::Stdout, "before").unwrap();
        let mut rx = logs.subscribe("g1").unwrap();
        logs.append("g1", LogStream::Stdout, "after").unwrap();
        match rx.recv().await.unwrap() {
            LiveEvent::Line(line) => assert_eq!((line.seq, line.line.as_str()), (2, "after")),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Past the cap the oldest lines go, a system line says so, and numbering goes on.
    #[test]
    fn cap_keeps_the_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let logs = LogStore::open(&db, 10).unwrap();
        for i in 0..25 {
            logs.append("g1", LogStream::Stdout, format!("line {i}"))
                .unwrap();
        }
        let kept = logs.read_after("g1", 0, 100).unwrap();
        assert!(kept.len() <= 11, "{} lines kept", kept.len());
        let last_output = kept
            .iter()
            .rev()
            .find(|l| l.stream == LogStream::Stdout)
            .unwrap();
        assert_eq!(last_output.line, "line 24");
        assert!(kept
            .iter()
            .any(|l| l.stream == LogStream::System && l.line.contains("oldest log lines")));
        let seqs: Vec<u64> = kept.iter().map(|l| l.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
}
