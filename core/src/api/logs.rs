//! The live log stream of a generation's previews, as Server-Sent Events.
//!
//! Each stream subscribes to the live feed first and reads the store second, so no line falls
//! between the two; lines already sent are skipped by `seq` and any gap in the feed (a slow
//! client that lagged) is filled from the store. A task per client pumps frames into a bounded
//! channel, so a slow client only ever slows itself: it lags behind the live feed and catches
//! up from the store, holding no more than its channel's worth of frames.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use poem::http::header;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{Example, ToJSON, Type};
use poem_openapi::{ApiResponse, Object, OpenApi, Union};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::error::{ApiError, ApiResult};
use super::generations::owned_generation;
use super::previews::Status;
use super::security::UserAuth;
use super::{examples, ApiTags};
use crate::log_store::{LiveEvent, LogLine, LogStore, LogStream, StatusChange, StoredLine};
use crate::state::AppState;
use crate::supervisor::Viewer;

/// Most lines one history page returns.
const MAX_PAGE: u32 = 5_000;
/// Most stored lines one history request examines while filtering, so a rare `q` over a huge
/// log answers quickly with `has_more` instead of scanning everything.
const MAX_SCAN: usize = 200_000;

/// Interval of the comment heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// The reconnection delay suggested to clients, in milliseconds.
const RETRY_MS: u64 = 2000;
/// Lines read from the store at a time while catching up.
const PAGE: usize = 512;
/// Chunks (lines, up to [`MAX_CHUNK`] bytes, or a status change) buffered per client: what a
/// client that stopped reading holds in memory.
const CLIENT_BUFFER: usize = 16;
/// Largest chunk of frames sent at once.
const MAX_CHUNK: usize = 64 * 1024;

/// Where a line came from.
#[derive(Debug, Clone, Copy, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Stream {
    /// The app's standard output.
    Stdout,
    /// The app's standard error.
    Stderr,
    /// previewd's own account of the preview's steps.
    System,
}

/// `event: log`: one output line (the SSE `id:` is its `seq`), and a line of a history page.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct LogEvent {
    /// Per-generation sequence number, strictly increasing, continued across relaunches.
    pub seq: u64,
    /// When the line was read.
    pub ts: DateTime<Utc>,
    /// `stdout`, `stderr` or `system`.
    pub stream: Stream,
    /// The line, without its newline.
    pub line: String,
}

impl Example for LogEvent {
    fn example() -> LogEvent {
        LogEvent::from(example_line())
    }
}

/// The line of the examples, as stored and sent.
fn example_line() -> LogLine {
    LogLine {
        seq: 42,
        ts: examples::at("2025-10-15T09:31:04.182Z"),
        stream: LogStream::Stderr,
        line: "INFO:     Uvicorn running on http://127.0.0.1:3001 (Press CTRL+C to quit)".into(),
    }
}

/// `event: status`: a preview's status changed.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct StatusEvent {
    /// The preview concerned.
    pub preview_id: String,
    /// Its new status.
    pub status: Status,
    /// When it changed.
    pub ts: DateTime<Utc>,
    /// The exit code, once it ended (128 + signal when killed by one).
    #[oai(nullable)]
    pub exit_code: Option<i32>,
    /// Why it failed or stopped.
    #[oai(nullable)]
    pub error: Option<String>,
}

impl Example for StatusEvent {
    fn example() -> StatusEvent {
        StatusEvent {
            preview_id: examples::PREVIEW_ID.into(),
            status: Status::Running,
            ts: examples::at(examples::READY_AT),
            exit_code: None,
            error: None,
        }
    }
}

/// An event of the stream.
#[derive(Debug, Clone, Union)]
pub enum StreamEvent {
    Log(LogEvent),
    Status(StatusEvent),
}

/// The kind of an event of the log stream.
#[derive(Debug, Clone, Copy, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum LogStreamEventKind {
    /// `data` is a `LogEvent`.
    Log,
    /// `data` is a `StatusEvent`.
    Status,
}

// The spec's description of the stream's events; the stream itself is written by
// `LogEventStream`.
/// One Server-Sent Event of the log stream, as an SSE parser (a browser's `EventSource`) hands
/// it over: `event: log` (one output line, `data` a `LogEvent`, `id` its seq) or
/// `event: status` (a status change, `data` a `StatusEvent`, no `id` of its own). The stream
/// also holds what parsers consume themselves: a `retry: 2000` field at the start and a
/// `: heartbeat` comment every 15 s.
#[derive(Debug, Object)]
#[oai(example)]
pub struct LogStreamEvent {
    /// The SSE `event:` field: `log` or `status`.
    pub event: LogStreamEventKind,
    /// The SSE `data:` field, one line of JSON: a `LogEvent` (`{seq, ts, stream, line}`) for
    /// `log`, a `StatusEvent` (`{preview_id, status, ts, exit_code, error}`) for `status`.
    pub data: String,
    /// The SSE `id:` field: the seq of the last log line sent (a `log` event's own seq; a
    /// `status` event has none and parsers keep the previous one). A reconnecting client sends
    /// it as `Last-Event-ID` and gets the lines after it. Absent before the first line.
    pub id: Option<String>,
}

impl Example for LogStreamEvent {
    fn example() -> LogStreamEvent {
        let line = example_line();
        LogStreamEvent {
            event: LogStreamEventKind::Log,
            id: Some(line.seq.to_string()),
            // As the stream writes it: the stored JSON of the line.
            data: serde_json::to_string(&line).unwrap_or_default(),
        }
    }
}

#[derive(ApiResponse)]
pub enum LogHistory {
    /// A page of stored lines.
    #[oai(status = 200)]
    Ok(Json<LogPage>),
}

/// A page of stored log lines.
#[derive(Debug, Object)]
#[oai(example)]
pub struct LogPage {
    /// The lines, oldest first.
    pub lines: Vec<LogEvent>,
    /// Pass as `after` to get the next page (the last seq examined).
    pub next_after: u64,
    /// Whether stored lines remain after `next_after`.
    pub has_more: bool,
}

impl Example for LogPage {
    fn example() -> LogPage {
        LogPage {
            lines: vec![LogEvent::example()],
            next_after: 42,
            has_more: true,
        }
    }
}

impl From<LogLine> for LogEvent {
    fn from(l: LogLine) -> LogEvent {
        LogEvent {
            seq: l.seq,
            ts: l.ts,
            stream: match l.stream {
                LogStream::Stdout => Stream::Stdout,
                LogStream::Stderr => Stream::Stderr,
                LogStream::System => Stream::System,
            },
            line: l.line,
        }
    }
}

impl From<StatusChange> for StatusEvent {
    fn from(s: StatusChange) -> StatusEvent {
        StatusEvent {
            preview_id: s.preview_id,
            status: s.status.into(),
            ts: s.ts,
            exit_code: s.exit_code,
            error: s.error,
        }
    }
}

/// Which lines a reader wants: one stream, lines containing a text (case-insensitive), or all.
struct LineFilter {
    stream: Option<LogStream>,
    needle: Option<String>,
}

impl LineFilter {
    fn new(stream: Option<Stream>, q: Option<String>) -> LineFilter {
        LineFilter {
            stream: stream.map(|s| match s {
                Stream::Stdout => LogStream::Stdout,
                Stream::Stderr => LogStream::Stderr,
                Stream::System => LogStream::System,
            }),
            needle: q.map(|q| q.to_lowercase()).filter(|q| !q.is_empty()),
        }
    }

    fn keeps(&self, line: &LogLine) -> bool {
        self.stream.is_none_or(|s| s == line.stream)
            && self
                .needle
                .as_ref()
                .is_none_or(|n| line.line.to_lowercase().contains(n))
    }
}

/// The SSE response. Frames are written here rather than by poem's `EventStream`, so that a
/// line's `data:` is its JSON exactly as stored (encoded once, however many clients follow),
/// and a batch of lines leaves as one chunk.
///
/// Its schema describes one event ([`LogStreamEvent`]), as OpenAPI 3.2's `itemSchema` does
/// and as tools read `schema` of `text/event-stream` before 3.2; poem's `EventStream`
/// documents an array of the `data` payloads instead, which no event matches.
pub struct LogEventStream(BoxStream<'static, Bytes>);

impl ApiResponse for LogEventStream {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "Server-Sent Events, open until the client leaves: `retry: 2000` \
                              first, then `event: status` (`data` a `StatusEvent`) and \
                              `event: log` (`id` the line's seq, `data` a `LogEvent`), with a \
                              `: heartbeat` comment every 15 s. The schema is one event as an \
                              SSE parser hands it over.",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "text/event-stream",
                    schema: LogStreamEvent::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        LogStreamEvent::register(registry);
        StreamEvent::register(registry);
    }
}

impl poem::IntoResponse for LogEventStream {
    fn into_response(self) -> poem::Response {
        let hint =
            futures_util::stream::once(async { Bytes::from(format!("retry: {RETRY_MS}\n\n")) });
        let body = hint.chain(self.0).map(Ok::<_, std::io::Error>);
        poem::Response::builder()
            .content_type("text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            // Tells a buffering reverse proxy in front of previewd (nginx) to pass events on.
            .header("X-Accel-Buffering", "no")
            .body(poem::Body::from_bytes_stream(body))
    }
}

/// Log operations.
pub struct LogsApi;

#[OpenApi(prefix_path = "/api/v1/generations", tag = "ApiTags::Logs")]
impl LogsApi {
    /// Read stored logs
    ///
    /// Pages through a generation's stored lines, oldest first: the lines after `after`, at
    /// most `limit` (default 1000, at most 5000), optionally only one `stream` and only lines
    /// containing `q` (case-insensitive). Follow `next_after` while `has_more`.
    #[oai(
        path = "/:generation_id/preview/logs",
        method = "get",
        operation_id = "listPreviewLogs"
    )]
    // Each argument is a documented parameter of the operation.
    #[allow(clippy::too_many_arguments)]
    async fn history(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
        /// Only lines with a seq greater than this.
        #[oai(default)]
        after: Query<u64>,
        /// Most lines to return.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "5000"))
        )]
        limit: Query<u32>,
        /// Only this stream.
        stream: Query<Option<Stream>>,
        /// Only lines containing this text (case-insensitive).
        q: Query<Option<String>>,
    ) -> ApiResult<LogHistory> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let limit = limit.0.min(MAX_PAGE) as usize;
        let filter = LineFilter::new(stream.0, q.0);
        let (mut lines, mut cursor, mut scanned) = (Vec::new(), after.0, 0usize);
        let mut has_more = true;
        while lines.len() < limit && scanned < MAX_SCAN {
            let page = state.logs.read_after(&generation.id, cursor, PAGE)?;
            if page.is_empty() {
                has_more = false;
                break;
            }
            for line in page {
                scanned += 1;
                cursor = line.seq;
                if filter.keeps(&line) {
                    lines.push(LogEvent::from(line.into_line()));
                    if lines.len() == limit {
                        break;
                    }
                }
            }
        }
        if has_more {
            has_more = !state.logs.read_after(&generation.id, cursor, 1)?.is_empty();
        }
        Ok(LogHistory::Ok(Json(LogPage {
            lines,
            next_after: cursor,
            has_more,
        })))
    }

    /// Follow the logs live
    ///
    /// Server-Sent Events (`text/event-stream`); the 200 schema, `LogStreamEvent`, is one event
    /// as an SSE parser hands it over. The stream holds:
    ///
    /// - `retry: 2000` first: the reconnection delay, in milliseconds, for `EventSource`.
    /// - `event: status`, `data:` a `StatusEvent` as JSON (`{preview_id, status, ts, exit_code,
    ///   error}`): each status change of the generation's previews, the current status first.
    ///   No `id:` of its own, so the resume point stays the last line's.
    /// - `event: log`, `id:` the line's `seq`, `data:` a `LogEvent` as JSON (`{seq, ts, stream,
    ///   line}`): one line the app wrote, `stream` `stdout` or `stderr`, or one of previewd's own
    ///   steps (files written, dependencies installed, process started, health check passed or
    ///   failed, stopped, exit code), `stream` `system`. Seqs increase strictly, per generation,
    ///   across relaunches.
    /// - `: heartbeat`, a comment every 15 s, which parsers skip; it keeps idle connections open.
    ///
    /// Resuming: every stored line after `Last-Event-ID` (what `EventSource` sends on reconnect)
    /// or `?after=N` comes first, then live lines, with no gap and no duplicate; `?tail=N` starts
    /// with the last N stored lines instead; with neither, every stored line comes first.
    /// `stream` and `q` keep only some lines (ids stay the lines' seqs, so resuming works the
    /// same). The stream stays open across stops and relaunches of the preview, and counts as
    /// use of it (idle timeout) while open. A browser's `EventSource`, which cannot send
    /// headers, passes the token as `?access_token=`. A refusal (bad token, unknown generation,
    /// bad `Last-Event-ID`) comes before the stream starts, as a JSON error.
    #[oai(
        path = "/:generation_id/preview/logs/stream",
        method = "get",
        operation_id = "streamPreviewLogs"
    )]
    // Each argument is a documented parameter of the operation.
    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
        /// Resume after this seq (sent by EventSource on reconnect).
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Resume after this seq.
        after: Query<Option<u64>>,
        /// Start with the last N stored lines.
        tail: Query<Option<u64>>,
        /// Only this stream's lines.
        stream: Query<Option<Stream>>,
        /// Only lines containing this text (case-insensitive).
        q: Query<Option<String>>,
        /// The bearer token, for clients that cannot set the `Authorization` header (a browser's
        /// `EventSource`). Taken out of the URL before it is logged.
        #[oai(name = "access_token")]
        _access_token: Query<Option<String>>,
    ) -> ApiResult<LogEventStream> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let resume = match last_event_id.0.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Some(id.parse::<u64>().map_err(|_| {
                ApiError::new(
                    400,
                    "invalid_last_event_id",
                    format!("Last-Event-ID `{id}` is not a sequence number"),
                )
            })?),
            _ => after.0,
        };
        // Subscribe before anything is read, so no line is missed.
        let live = state.logs.subscribe(&generation.id)?;
        let after = match (resume, tail.0) {
            (Some(after), _) => after,
            (None, Some(tail)) => state.logs.last_seq(&generation.id)?.saturating_sub(tail),
            (None, None) => 0,
        };
        let current = state
            .store
            .latest_preview(&generation.id)?
            .map(|p| StatusChange {
                preview_id: p.id,
                status: p.status,
                ts: Utc::now(),
                exit_code: p.exit_code,
                error: p.error,
            });
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
        let viewer = state.supervisor.viewer(&generation.id);
        let client = Client {
            logs: state.logs.clone(),
            generation_id: generation.id,
            after,
            filter: LineFilter::new(stream.0, q.0),
            tx,
            _viewer: viewer,
        };
        tokio::spawn(client.pump(current, live));
        Ok(LogEventStream(
            tokio_stream::wrappers::ReceiverStream::new(rx).boxed(),
        ))
    }
}

fn default_limit() -> u32 {
    1000
}

/// One client of the stream: what it has been sent and where its frames go.
struct Client {
    logs: LogStore,
    generation_id: String,
    /// The seq of the last line handled (sent, or skipped by the filter).
    after: u64,
    filter: LineFilter,
    tx: mpsc::Sender<Bytes>,
    /// Counts the open stream as use of the preview (idle timeout) while the client is here.
    _viewer: Viewer,
}

/// The client went away.
struct Gone;

impl Client {
    /// Feeds the client: its preview's status, stored lines after `after`, then live events,
    /// each line exactly once, and a heartbeat.
    async fn pump(
        mut self,
        current: Option<StatusChange>,
        mut live: broadcast::Receiver<LiveEvent>,
    ) {
        if let Some(status) = current {
            if self.send(status_frame(status)).await.is_err() {
                return;
            }
        }
        if self.catch_up().await.is_err() {
            return;
        }
        let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            let sent = tokio::select! {
                event = live.recv() => match event {
                    Ok(LiveEvent::Lines(lines)) => self.send_live(&lines).await,
                    Ok(LiveEvent::Status(change)) => self.send(status_frame(change)).await,
                    // Lines went past while this client was slow: the store has them all.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = heartbeat.tick() => self.send(Bytes::from_static(b": heartbeat\n\n")).await,
                _ = self.tx.closed() => return,
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// Sends a live batch: the lines not yet handled, after filling any gap from the store.
    async fn send_live(&mut self, lines: &[StoredLine]) -> Result<(), Gone> {
        if lines.first().is_some_and(|l| l.seq > self.after + 1) {
            return self.catch_up().await;
        }
        let after = self.after;
        self.send_lines(lines.iter().filter(|l| l.seq > after))
            .await
    }

    /// Sends every stored line after `after`.
    async fn catch_up(&mut self) -> Result<(), Gone> {
        loop {
            let page = self
                .logs
                .read_after(&self.generation_id, self.after, PAGE)
                .map_err(|err| {
                    tracing::warn!("reading logs of {}: {err}", self.generation_id);
                    Gone
                })?;
            if page.is_empty() {
                return Ok(());
            }
            self.send_lines(page.iter()).await?;
        }
    }

    /// Sends lines (consecutive, in order) that pass the filter, in chunks of frames.
    async fn send_lines<'a>(
        &mut self,
        lines: impl Iterator<Item = &'a StoredLine>,
    ) -> Result<(), Gone> {
        let mut chunk = BytesMut::new();
        for line in lines {
            if chunk.len() >= MAX_CHUNK {
                self.send(chunk.split().freeze()).await?;
            }
            self.after = line.seq;
            if self.filter.keeps(line) {
                chunk.extend_from_slice(format!("id: {}\nevent: log\ndata: ", line.seq).as_bytes());
                chunk.extend_from_slice(line.json());
                chunk.extend_from_slice(b"\n\n");
            }
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.send(chunk.freeze()).await
    }

    async fn send(&self, frame: Bytes) -> Result<(), Gone> {
        self.tx.send(frame).await.map_err(|_| Gone)
    }
}

/// `event: status` with the change as data.
fn status_frame(change: StatusChange) -> Bytes {
    let data = StreamEvent::Status(change.into()).to_json_string();
    Bytes::from(format!("event: status\ndata: {data}\n\n"))
}
