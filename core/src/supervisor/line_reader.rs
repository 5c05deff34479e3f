//! Splits a child's output into lines without trusting it: a line longer than the limit is cut
//! with a marker (the rest of it skipped, never buffered), invalid UTF-8 is replaced, and a
//! trailing `\r` is dropped. Memory stays bounded by the limit whatever the app writes.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest line kept whole, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads `reader` to its end, calling `on_line` with each line.
pub async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    max: usize,
    mut on_line: impl FnMut(String),
) {
    let mut line: Vec<u8> = Vec::new();
    let mut skipped: usize = 0;
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk,
        };
        let (part, newline) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        skipped += part.len().saturating_sub(room);
        let used = part.len() + usize::from(newline);
        reader.consume(used);
        if newline {
            on_line(finish(&mut line, &mut skipped));
        }
    }
    if !line.is_empty() || skipped > 0 {
        on_line(finish(&mut line, &mut skipped));
    }
}

fn finish(line: &mut Vec<u8>, skipped: &mut usize) -> String {
    if line.last() == Some(&b'\r') && *skipped == 0 {
        line.pop();
    }
    let mut text = String::from_utf8_lossy(line).into_owned();
    if *skipped > 0 {
        text.push_str(&format!(" … [line cut: {} more bytes]", *skipped));
    }
    line.clear();
    *skipped = 0;
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8], max: usize) -> Vec<String> {
        let mut out = Vec::new();
        // A tiny buffer, so lines straddle reads.
        let reader = tokio::io::BufReader::with_capacity(3, input);
        read_lines(reader, max, |l| out.push(l)).await;
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
