//! Splits a child's output into lines without trusting it: a line longer than the limit is cut
//! with a marker (the rest of it skipped, never buffered), invalid UTF-8 is replaced, and a
//! trailing `\r` is dropped. Memory stays bounded by the limit whatever the app writes.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest line kept whole, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The lines of a reader, one at a time, so the caller can wait between lines (back-pressure).
pub struct Lines<R> {
    reader: R,
    max: usize,
    line: Vec<u8>,
    skipped: usize,
    ended: bool,
}

impl<R: AsyncBufRead + Unpin> Lines<R> {
    /// Lines of `reader`, each cut at `max` bytes.
    pub fn new(reader: R, max: usize) -> Lines<R> {
        Lines {
            reader,
            max,
            line: Vec::new(),
            skipped: 0,
            ended: false,
        }
    }

    /// The next line, or `None` once the reader ended (or failed) and the last line was given.
    pub async fn next_line(&mut self) -> Option<String> {
        while !self.ended {
            let chunk = match self.reader.fill_buf().await {
                Ok(chunk) if !chunk.is_empty() => chunk,
                _ => {
                    self.ended = true;
                    break;
                }
            };
            let (part, newline) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            let room = self.max.saturating_sub(self.line.len());
            self.line.extend_from_slice(&part[..part.len().min(room)]);
            self.skipped += part.len().saturating_sub(room);
            let used = part.len() + usize::from(newline);
            self.reader.consume(used);
            if newline {
                return Some(self.finish());
            }
        }
        (!self.line.is_empty() || self.skipped > 0).then(|| self.finish())
    }

    fn finish(&mut self) -> String {
        if self.line.last() == Some(&b'\r') && self.skipped == 0 {
            self.line.pop();
        }
        let mut text = match String::from_utf8(std::mem::take(&mut self.line)) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        };
        if self.skipped > 0 {
            text.push_str(&format!(" … [line cut: {} more bytes]", self.skipped));
        }
        self.skipped = 0;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8], max: usize) -> Vec<String> {
        let mut out = Vec::new();
        // A tiny buffer, so lines straddle reads.
        let mut lines = Lines::new(tokio::io::BufReader::with_capacity(3, input), max);
        while let Some(line) = lines.next_line().await {
            out.push(line);
        }
        out
    }

    /// Lines split on `\n`, `\r\n` handled, a last line without newline kept.
    #[tokio::test]
    async fn splits_lines() {
        assert_eq!(
            lines_of(b"a\r\nbb\n\nccc", 100).await,
            ["a", "bb", "", "ccc"]
        );
    }

    /// A line over the limit is cut with a marker and the next line is intact.
    #[tokio::test]
    async fn cuts_long_lines() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\nnext\n");
        let lines = lines_of(&input, 10).await;
        assert_eq!(lines[0], "xxxxxxxxxx … [line cut: 40 more bytes]");
        assert_eq!(lines[1], "next");
    }

    /// Invalid UTF-8 is replaced, never a panic.
    #[tokio::test]
    async fn replaces_invalid_utf8() {
        assert_eq!(
            lines_of(b"ok \xff\xfe\n", 100).await,
            ["ok \u{fffd}\u{fffd}"]
        );
    }
}
