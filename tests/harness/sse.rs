//! A small Server-Sent Events reader over a reqwest response, for tests that follow log streams
//! the way a browser's EventSource would.

use std::time::Duration;

use futures_util::StreamExt;

/// One event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
}

/// Reads events from an SSE response.
pub struct SseReader {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    /// The bytes of a character split across two chunks, kept until the rest arrives.
    partial: Vec<u8>,
    /// Comment lines seen (heartbeats).
    pub comments: usize,
}

impl SseReader {
    /// A reader over `response`.
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
            partial: Vec::new(),
            comments: 0,
        }
    }

    /// The next event, or `None` when the stream ended or `limit` passed without one.
    pub async fn next(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = self.parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            self.push(&chunk);
        }
    }

    /// Appends a chunk to the text read so far. A chunk may end inside a multi-byte character
    /// (`…`, U+FFFD): its first bytes wait for the next chunk instead of becoming replacements.
    fn push(&mut self, chunk: &[u8]) {
        self.partial.extend_from_slice(chunk);
        let complete = match std::str::from_utf8(&self.partial) {
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            _ => self.partial.len(),
        };
        let rest = self.partial.split_off(complete);
        let text = std::mem::replace(&mut self.partial, rest);
        self.buffer.push_str(&String::from_utf8_lossy(&text));
    }

    /// Reads events until `done` says stop (the matching event included) or `limit` passes.
    pub async fn until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&SseEvent) -> bool,
    ) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut events = Vec::new();
        while let Some(event) = self
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            let stop = done(&event);
            events.push(event);
            if stop {
                break;
            }
        }
        events
    }

    fn parse(&mut self, block: &str) -> Option<SseEvent> {
        let mut event = SseEvent {
            event: "message".into(),
            ..SseEvent::default()
        };
        let mut data = Vec::new();
        let mut any = false;
        for line in block.lines().filter(|l| !l.is_empty()) {
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line
                .split_once(':')
                .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
            any = true;
            match field {
                "event" => event.event = value.to_string(),
                "id" => event.id = Some(value.to_string()),
                "data" => data.push(value.to_string()),
                "retry" => event.retry = value.parse().ok(),
                _ => {}
            }
        }
        event.data = data.join("\n");
        any.then_some(event)
    }
}
