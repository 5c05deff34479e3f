//! How lines sit in sled: a run of consecutive lines per entry, keyed by the first line's seq.
//!
//! sled costs about as much per entry as per kilobyte, so a flood stored one entry per line
//! would be bounded by entries per second; a chunk per batch stores hundreds of lines for the
//! price of one. A chunk is the lines' JSON, each followed by `\n` (JSON escapes newlines, so
//! the separator is unambiguous); an entry without a final `\n` is one line, as stored before
//! chunks existed.

use bytes::Bytes;

use super::StoredLine;
use crate::store::StoreError;

/// A chunk is closed once it holds this many bytes, so reading from the middle of a log
/// decodes little that is not wanted.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Groups consecutive lines into chunk values: `(first seq, value)`.
pub fn encode(lines: &[StoredLine]) -> Vec<(u64, Vec<u8>)> {
    let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
    for line in lines {
        match chunks.last_mut() {
            Some((_, value)) if value.len() < MAX_CHUNK_BYTES => {}
            _ => chunks.push((line.seq, Vec::with_capacity(MAX_CHUNK_BYTES.min(4096)))),
        }
        if let Some((_, value)) = chunks.last_mut() {
            value.extend_from_slice(line.json());
            value.push(b'\n');
        }
    }
    chunks
}

/// The lines of a chunk value, in order.
pub fn decode(value: &[u8], generation_id: &str) -> Result<Vec<StoredLine>, StoreError> {
    let value = Bytes::copy_from_slice(value);
    let mut lines = Vec::new();
    let mut start = 0;
    while start < value.len() {
        let end = value[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(value.len(), |i| start + i);
        lines.push(StoredLine::decode(value.slice(start..end), generation_id)?);
        start = end + 1;
    }
    Ok(lines)
}

/// How many lines a chunk value holds.
pub fn line_count(value: &[u8]) -> u64 {
    let newlines = value.iter().filter(|b| **b == b'\n').count() as u64;
    newlines + u64::from(value.last().is_some_and(|b| *b != b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_store::{LogLine, LogStream};

    fn line(seq: u64, text: &str) -> StoredLine {
        let line = LogLine {
            seq,
            ts: chrono::Utc::now(),
            stream: LogStream::Stdout,
            line: text.to_string(),
        };
        StoredLine::encode(line, "g").unwrap()
    }

    /// Lines round-trip through a chunk, newlines in their text included.
    #[test]
    fn round_trip() {
        let lines = vec![line(7, "a"), line(8, "b\nc"), line(9, "")];
        let chunks = encode(&lines);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].0, 7);
        assert_eq!(line_count(&chunks[0].1), 3);
        let back = decode(&chunks[0].1, "g").unwrap();
        let texts: Vec<&str> = back.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(texts, ["a", "b\nc", ""]);
        assert_eq!(back[1].json(), lines[1].json());
    }

    /// A batch larger than a chunk is split, each chunk keyed by its first line.
    #[test]
    fn splits_large_batches() {
        let text = "x".repeat(10_000);
        let lines: Vec<_> = (1..=20).map(|seq| line(seq, &text)).collect();
        let chunks = encode(&lines);
        assert!(chunks.len() > 1);
        let counts: u64 = chunks.iter().map(|(_, v)| line_count(v)).sum();
        assert_eq!(counts, 20);
        assert_eq!(chunks[1].0, 1 + line_count(&chunks[0].1));
    }

    /// An entry of the one-line-per-entry format reads as a chunk of one.
    #[test]
    fn reads_single_line_entries() {
        let old = line(3, "old");
        assert_eq!(line_count(old.json()), 1);
        assert_eq!(decode(old.json(), "g").unwrap()[0].line, "old");
    }
}
