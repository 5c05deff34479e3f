//! Every output line of a generation's previews, stored in order and fed live to subscribers.
//!
//! A generation has one log: lines get a strictly increasing `seq` that goes on across
//! relaunches, so a client following a generation's stream never sees numbering start over.
//! Lines arrive in batches ([`ingest`] gathers whatever a preview wrote since the last write);
//! a batch is written to sled and flushed to disk before it is published, under a
//! per-generation lock that also hands out the sequence numbers. So storage order, `seq` order
//! and publish order are one order, a subscriber that reads the store after subscribing can
//! always close any gap from the store, and a SIGKILL of previewd loses no line a client saw.
//!
//! Each line is encoded to JSON once, when it is stored; that same encoding is what sled keeps
//! and what the SSE stream sends as `data:`, so a thousand subscribers cost no re-encoding.

mod chunk;
pub mod ingest;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::store::{PreviewStatus, StoreError};

/// The tree holding every line, in chunks keyed by `<generation id>/` + the big-endian seq of
/// their first line (see [`chunk`]).
const LOGS: &str = "logs";
/// Live events (batches and status changes) kept per generation for subscribers that are behind;
/// one that falls further behind lags and re-reads the store. A batch holds at most the ingest
/// budget, so this bounds what a never-reading subscriber can pin in memory.
const FEED_CAPACITY: usize = 16;

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
    /// Written as the API writes every other time (`to_rfc3339`), so a line's `ts` reads the
    /// same in the stream and in the history.
    #[serde(serialize_with = "rfc3339")]
    pub ts: DateTime<Utc>,
    pub stream: LogStream,
    pub line: String,
}

fn rfc3339<S: serde::Serializer>(ts: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&ts.to_rfc3339())
}

/// A line to store: everything but its seq, which the store hands out.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLine {
    pub ts: DateTime<Utc>,
    pub stream: LogStream,
    pub line: String,
}

impl NewLine {
    /// A line read now.
    pub fn now(stream: LogStream, line: impl Into<String>) -> NewLine {
        NewLine {
            ts: Utc::now(),
            stream,
            line: line.into(),
        }
    }
}

/// A stored line together with its JSON encoding (`{"seq","ts","stream","line"}`).
#[derive(Debug, Clone)]
pub struct StoredLine {
    decoded: LogLine,
    json: Bytes,
}

impl StoredLine {
    fn encode(line: LogLine, generation_id: &str) -> Result<StoredLine, StoreError> {
        let json = serde_json::to_vec(&line).map_err(|source| StoreError::Corrupt {
            key: generation_id.to_string(),
            source,
        })?;
        Ok(StoredLine {
            decoded: line,
            json: json.into(),
        })
    }

    fn decode(json: Bytes, generation_id: &str) -> Result<StoredLine, StoreError> {
        let line = serde_json::from_slice(&json).map_err(|source| StoreError::Corrupt {
            key: generation_id.to_string(),
            source,
        })?;
        Ok(StoredLine {
            decoded: line,
            json,
        })
    }

    /// The line as JSON, exactly as stored.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The line itself.
    pub fn into_line(self) -> LogLine {
        self.decoded
    }
}

impl Deref for StoredLine {
    type Target = LogLine;

    fn deref(&self) -> &LogLine {
        &self.decoded
    }
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
    /// Lines just stored, consecutive seqs in order.
    Lines(Arc<[StoredLine]>),
    Status(StatusChange),
}

/// How much log a generation keeps; past either bound the oldest lines go.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    pub max_lines: u64,
    pub max_bytes: u64,
}

/// Per-generation state: what is stored and the live feed.
struct GenerationLog {
    extent: Mutex<Extent>,
    feed: broadcast::Sender<LiveEvent>,
}

/// The stored lines of a generation: seqs `first..next`, `bytes` of JSON in all.
#[derive(Debug, Clone, Copy)]
struct Extent {
    first: u64,
    next: u64,
    bytes: u64,
}

/// The log store. Cheap to clone.
#[derive(Clone)]
pub struct LogStore {
    tree: sled::Tree,
    limits: LogLimits,
    logs: Arc<Mutex<HashMap<String, Arc<GenerationLog>>>>,
}

impl LogStore {
    /// Opens the log tree of `db`, keeping each generation's log within `limits`.
    pub fn open(db: &sled::Db, limits: LogLimits) -> Result<LogStore, StoreError> {
        Ok(LogStore {
            tree: db.open_tree(LOGS)?,
            limits: LogLimits {
                max_lines: limits.max_lines.max(10),
                max_bytes: limits.max_bytes.max(64 * 1024),
            },
            logs: Arc::default(),
        })
    }

    /// Stores one line and publishes it; returns its seq.
    pub fn append(
        &self,
        generation_id: &str,
        stream: LogStream,
        line: impl Into<String>,
    ) -> Result<u64, StoreError> {
        self.append_batch(generation_id, vec![NewLine::now(stream, line)])
    }

    /// Stores lines in one write, flushed to disk, then publishes them; returns the last seq.
    /// When the generation's log is over its limits, the oldest lines go (down to nine tenths of
    /// the limits, so trimming is not paid per line) and a `system` line says so.
    pub fn append_batch(
        &self,
        generation_id: &str,
        lines: Vec<NewLine>,
    ) -> Result<u64, StoreError> {
        let log = self.log(generation_id)?;
        let mut extent = log.extent.lock().unwrap_or_else(PoisonError::into_inner);
        self.store(generation_id, &log, &mut extent, lines)?;
        let over_lines = extent.next - extent.first > self.limits.max_lines;
        if over_lines || extent.bytes > self.limits.max_bytes {
            let dropped = self.trim(generation_id, &mut extent)?;
            let notice = format!(
                "dropped the {dropped} oldest log lines: a generation keeps its newest {} lines and {} of log",
                self.limits.max_lines,
                human_bytes(self.limits.max_bytes),
            );
            self.store(
                generation_id,
                &log,
                &mut extent,
                vec![NewLine::now(LogStream::System, notice)],
            )?;
        }
        Ok(extent.next - 1)
    }

    /// Writes lines under the next seqs, flushes, then publishes them.
    fn store(
        &self,
        generation_id: &str,
        log: &GenerationLog,
        extent: &mut Extent,
        lines: Vec<NewLine>,
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let stored = (extent.next..)
            .zip(lines)
            .map(|(seq, new)| {
                let line = LogLine {
                    seq,
                    ts: new.ts,
                    stream: new.stream,
                    line: new.line,
                };
                StoredLine::encode(line, generation_id)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut batch = sled::Batch::default();
        let mut bytes = 0;
        for (first, value) in chunk::encode(&stored) {
            bytes += value.len() as u64;
            batch.insert(key(generation_id, first), value);
        }
        self.tree.apply_batch(batch)?;
        // On disk before anyone sees it: a crash of previewd loses nothing a client was shown.
        self.tree.flush()?;
        extent.next += stored.len() as u64;
        extent.bytes += bytes;
        // No subscriber is not an error: the lines are stored.
        let _ = log.feed.send(LiveEvent::Lines(stored.into()));
        Ok(())
    }

    /// Removes the oldest chunks until the log is within nine tenths of both limits; returns how
    /// many lines went.
    fn trim(&self, generation_id: &str, extent: &mut Extent) -> Result<u64, StoreError> {
        let keep_lines = self.limits.max_lines - self.limits.max_lines / 10;
        let keep_bytes = self.limits.max_bytes - self.limits.max_bytes / 10;
        let mut batch = sled::Batch::default();
        let mut dropped = 0;
        for entry in self.tree.scan_prefix(prefix(generation_id)) {
            if extent.next - extent.first <= keep_lines && extent.bytes <= keep_bytes {
                break;
            }
            let (k, v) = entry?;
            let count = chunk::line_count(&v);
            batch.remove(k);
            extent.first += count;
            extent.bytes = extent.bytes.saturating_sub(v.len() as u64);
            dropped += count;
        }
        self.tree.apply_batch(batch)?;
        Ok(dropped)
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
    ) -> Result<Vec<StoredLine>, StoreError> {
        let wanted = after.saturating_add(1);
        // Start at the chunk holding `wanted`: the last one starting at or before it.
        let start = match self
            .tree
            .range(prefix(generation_id)..=key(generation_id, wanted))
            .next_back()
        {
            Some(entry) => entry?.0.to_vec(),
            None => key(generation_id, wanted),
        };
        let mut lines = Vec::new();
        for entry in self.tree.range(start..=key(generation_id, u64::MAX)) {
            let chunk = chunk::decode(&entry?.1, generation_id)?;
            for line in chunk.into_iter().filter(|l| l.seq >= wanted) {
                if lines.len() == limit {
                    return Ok(lines);
                }
                lines.push(line);
            }
        }
        Ok(lines)
    }

    /// The last `n` stored lines, in order.
    pub fn last_lines(&self, generation_id: &str, n: usize) -> Result<Vec<StoredLine>, StoreError> {
        let mut lines = Vec::new();
        for entry in self.tree.scan_prefix(prefix(generation_id)).rev() {
            if lines.len() >= n {
                break;
            }
            let chunk = chunk::decode(&entry?.1, generation_id)?;
            lines.extend(chunk.into_iter().rev().take(n - lines.len()));
        }
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
            .map_or(0, |(k, v)| seq_of(&k) + chunk::line_count(&v) - 1))
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
        // First use since start-up: measure what is stored.
        let mut extent = Extent {
            first: 1,
            next: 1,
            bytes: 0,
        };
        for (i, entry) in self.tree.scan_prefix(prefix(generation_id)).enumerate() {
            let (k, v) = entry?;
            if i == 0 {
                extent.first = seq_of(&k);
            }
            extent.next = seq_of(&k) + chunk::line_count(&v);
            extent.bytes += v.len() as u64;
        }
        let log = Arc::new(GenerationLog {
            extent: Mutex::new(extent),
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

/// `1536` → `1.5 KiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_lines: u64) -> LogLimits {
        LogLimits {
            max_lines,
            max_bytes: 1 << 30,
        }
    }

    fn store(limits: LogLimits) -> (tempfile::TempDir, LogStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, LogStore::open(&db, limits).unwrap())
    }

    fn out(line: impl Into<String>) -> NewLine {
        NewLine::now(LogStream::Stdout, line)
    }

    /// Lines are numbered from 1, read back in order, paged, and kept apart per generation; the
    /// stored JSON is the line's SSE data.
    #[test]
    fn append_and_read() {
        let (_dir, logs) = store(limits(1000));
        logs.append("g1", LogStream::Stdout, "line 0").unwrap();
        let last = logs
            .append_batch("g1", (1..5).map(|i| out(format!("line {i}"))).collect())
            .unwrap();
        assert_eq!(last, 5);
        logs.append("g2", LogStream::Stderr, "other").unwrap();
        let lines = logs.read_after("g1", 2, 10).unwrap();
        assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(lines[0].line, "line 2");
        let json: serde_json::Value = serde_json::from_slice(lines[0].json()).unwrap();
        assert_eq!(json["seq"], 3);
        assert_eq!(json["stream"], "stdout");
        assert_eq!(json["line"], "line 2");
        assert_eq!(logs.read_after("g1", 0, 2).unwrap().len(), 2);
        assert_eq!(logs.last_lines("g1", 2).unwrap()[1].line, "line 4");
        assert_eq!(logs.last_seq("g2").unwrap(), 1);
    }

    /// Reads start and end anywhere inside a chunk.
    #[test]
    fn reads_from_inside_chunks() {
        let (_dir, logs) = store(limits(1000));
        logs.append_batch("g1", (1..=100).map(|i| out(i.to_string())).collect())
            .unwrap();
        logs.append_batch("g1", (101..=150).map(|i| out(i.to_string())).collect())
            .unwrap();
        let seqs = |lines: Vec<StoredLine>| lines.iter().map(|l| l.seq).collect::<Vec<_>>();
        assert_eq!(seqs(logs.read_after("g1", 50, 3).unwrap()), [51, 52, 53]);
        assert_eq!(seqs(logs.read_after("g1", 99, 3).unwrap()), [100, 101, 102]);
        assert_eq!(seqs(logs.read_after("g1", 148, 10).unwrap()), [149, 150]);
        assert_eq!(seqs(logs.last_lines("g1", 52).unwrap())[..2], [99, 100]);
        assert_eq!(logs.last_seq("g1").unwrap(), 150);
        assert_eq!(logs.read_after("g1", 0, 1000).unwrap().len(), 150);
    }

    /// Numbering goes on after reopening; delete removes only that generation.
    #[test]
    fn seq_continues_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let logs = LogStore::open(&db, limits(1000)).unwrap();
            logs.append("g1", LogStream::System, "a").unwrap();
            logs.append("g1", LogStream::System, "b").unwrap();
        }
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let logs = LogStore::open(&db, limits(1000)).unwrap();
        assert_eq!(logs.append("g1", LogStream::Stdout, "c").unwrap(), 3);
        logs.append("g10", LogStream::Stdout, "x").unwrap();
        logs.delete("g1").unwrap();
        assert!(logs.read_after("g1", 0, 10).unwrap().is_empty());
        assert_eq!(logs.read_after("g10", 0, 10).unwrap().len(), 1);
    }

    /// A subscriber gets each batch stored after it subscribed, as one event.
    #[tokio::test]
    async fn live_feed() {
        let (_dir, logs) = store(limits(1000));
        logs.append("g1", LogStream::Stdout, "before").unwrap();
        let mut rx = logs.subscribe("g1").unwrap();
        logs.append_batch("g1", vec![out("a"), out("b")]).unwrap();
        match rx.recv().await.unwrap() {
            LiveEvent::Lines(lines) => {
                let got: Vec<_> = lines.iter().map(|l| (l.seq, l.line.as_str())).collect();
                assert_eq!(got, [(2, "a"), (3, "b")]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Past the line cap the oldest lines go, a system line says so, and numbering goes on.
    #[test]
    fn cap_keeps_the_newest_lines() {
        let (_dir, logs) = store(limits(10));
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

    /// The byte cap holds too, counting what was stored before a restart.
    #[test]
    fn byte_cap_counts_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cap = LogLimits {
            max_lines: 1_000_000,
            max_bytes: 100 * 1024,
        };
        let line = "x".repeat(1000);
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let logs = LogStore::open(&db, cap).unwrap();
            logs.append_batch("g1", (0..60).map(|_| out(line.clone())).collect())
                .unwrap();
        }
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let logs = LogStore::open(&db, cap).unwrap();
        logs.append_batch("g1", (0..60).map(|_| out(line.clone())).collect())
            .unwrap();
        let kept = logs.read_after("g1", 0, 1000).unwrap();
        let bytes: usize = kept.iter().map(|l| l.json().len()).sum();
        assert!(bytes <= 100 * 1024, "{bytes} bytes kept");
        assert!(kept.len() > 50, "{} lines kept", kept.len());
        assert_eq!(kept.last().unwrap().stream, LogStream::System);
        assert!(kept.last().unwrap().line.contains("100.0 KiB"));
    }

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
    }
}
