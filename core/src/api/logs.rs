//! The live log stream of a generation's previews, as Server-Sent Events.
//!
//! Each stream subscribes to the live feed first and reads the store second, so no line falls
//! between the two; lines already sent are skipped by `seq` and any gap in the feed (a slow
//! client that lagged) is filled from the store. A task per client pumps events into a bounded
//! channel, so a slow client only ever slows itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use poem::web::sse::Event;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, Union};
use tokio::sync::{broadcast, mpsc};

use super::error::{ApiError, ApiResult};
use super::generations::owned_generation;
use super::previews::Status;
use super::security::UserAuth;
use super::ApiTags;
use crate::log_store::{LiveEvent, LogLine, LogStore, LogStream, StatusChange};
use crate::state::AppState;

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
/// Events buffered per client.
const CLIENT_BUFFER: usize = 256;

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

/// `event: log`: one output line (the SSE `id:` is its `seq`).
#[derive(Debug, Clone, Object)]
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

/// `event: status`: a preview's status changed.
#[derive(Debug, Clone, Object)]
pub struct StatusEvent {
    /// The preview concerned.
    pub preview_id: String,
    /// Its new status.
    pub status: Status,
    /// When it changed.
    pub ts: DateTime<Utc>,
    /// The exit code, once it ended.
    pub exit_code: Option<i32>,
    /// Why it failed or stopped.
    pub error: Option<String>,
}

/// An event of the stream.
#[derive(Debug, Clone, Union)]
pub enum StreamEvent {
    Log(LogEvent),
    Status(StatusEvent),
}

/// A page of stored log lines.
#[derive(Debug, Object)]
pub struct LogPage {
    /// The lines, oldest first.
    pub lines: Vec<LogEvent>,
    /// Pass as `after` to get the next page (the last seq examined).
    pub next_after: u64,
    /// Whether stored lines remain after `next_after`.
    pub has_more: bool,
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

impl From<LogLine> for StreamEvent {
    fn from(l: LogLine) -> StreamEvent {
        StreamEvent::Log(l.into())
    }
}

impl From<StatusChange> for StreamEvent {
    fn from(s: StatusChange) -> StreamEvent {
        StreamEvent::Status(StatusEvent {
            preview_id: s.preview_id,
            status: s.status.into(),
            ts: s.ts,
            exit_code: s.exit_code,
            error: s.error,
        })
    }
}

/// The SSE response: events as [`EventStream`] documents them, after a `retry:` hint.
pub struct LogEventStream(EventStream<BoxStream<'static, StreamEvent>>);

impl ApiResponse for LogEventStream {
    fn meta() -> MetaResponses {
        EventStream::<BoxStream<'static, StreamEvent>>::meta()
    }

    fn register(registry: &mut Registry) {
        EventStream::<BoxStream<'static, StreamEvent>>::register(registry);
    }
}

impl poem::IntoResponse for LogEventStream {
    fn into_response(self) -> poem::Response {
        let response = self.0.into_response();
        let (parts, body) = response.into_parts();
        let hint = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(bytes::Bytes::from(format!("retry: {RETRY_MS}\n\n")))
        });
        let body = poem::Body::from_bytes_stream(hint.chain(body.into_bytes_stream()));
        poem::Response::from_parts(parts, body)
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
    ) -> ApiResult<Json<LogPage>> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let limit = limit.0.min(MAX_PAGE) as usize;
        let wanted = stream.0.map(|s| match s {
            Stream::Stdout => LogStream::Stdout,
            Stream::Stderr => LogStream::Stderr,
            Stream::System => LogStream::System,
        });
        let needle = q.0.map(|q| q.to_lowercase()).filter(|q| !q.is_empty());
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
                let keep = wanted.is_none_or(|w| w == line.stream)
                    && needle
                        .as_ref()
                        .is_none_or(|n| line.line.to_lowercase().contains(n));
                if keep {
                    lines.push(LogEvent::from(line));
                    if lines.len() == limit {
                        break;
                    }
                }
            }
        }
        if has_more {
            has_more = !state.logs.read_after(&generation.id, cursor, 1)?.is_empty();
        }
        Ok(Json(LogPage {
            lines,
            next_after: cursor,
            has_more,
        }))
    }

    /// Follow the logs live
    ///
    /// Server-Sent Events. `event: log` carries one line (`id:` is its `seq`, data
    /// `{seq, ts, stream, line}` with stream `stdout`, `stderr` or `system`); `event: status`
    /// carries each status change of the generation's previews (the current one is sent first).
    /// Every stored line after `Last-Event-ID` (or `?after=N`) comes first, then live lines, with
    /// no gap and no duplicate; `?tail=N` starts with the last N lines instead. A comment
    /// heartbeat goes out every 15 s. Lines keep their numbering across relaunches.
    #[oai(
        path = "/:generation_id/preview/logs/stream",
        method = "get",
        operation_id = "streamPreviewLogs"
    )]
    async fn stream(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        generation_id: Path<String>,
        /// Resume after this seq (sent by EventSource on reconnect).
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Resume after this seq.
        after: Query<Option<u64>>,
        /// Start with the last N lines.
        tail: Query<Option<u64>>,
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
        let current = state.store.latest_preview(&generation.id)?.map(|p| {
            StreamEvent::from(StatusChange {
                preview_id: p.id,
                status: p.status,
                ts: Utc::now(),
                exit_code: p.exit_code,
                error: p.error,
            })
        });
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
        tokio::spawn(pump(
            state.logs.clone(),
            generation.id,
            after,
            current,
            live,
            tx,
        ));
        let events = tokio_stream::wrappers::ReceiverStream::new(rx).boxed();
        Ok(LogEventStream(
            EventStream::new(events)
                .keep_alive(HEARTBEAT)
                .to_event(|event| match &event {
                    StreamEvent::Log(log) => Event::message(event.to_json_string())
                        .event_type("log")
                        .id(log.seq.to_string()),
                    StreamEvent::Status(_) => {
                        Event::message(event.to_json_string()).event_type("status")
                    }
                }),
        ))
    }
}

fn default_limit() -> u32 {
    1000
}

/// Feeds one client: stored lines after `after`, then live events, each line exactly once.
async fn pump(
    logs: LogStore,
    generation_id: String,
    mut after: u64,
    current: Option<StreamEvent>,
    mut live: broadcast::Receiver<LiveEvent>,
    tx: mpsc::Sender<StreamEvent>,
) {
    if let Some(status) = current {
        if tx.send(status).await.is_err() {
            return;
        }
    }
    if catch_up(&logs, &generation_id, &mut after, &tx)
        .await
        .is_err()
    {
        return;
    }
    loop {
        let event = tokio::select! {
            event = live.recv() => event,
            _ = tx.closed() => return,
        };
        let sent = match event {
            Ok(LiveEvent::Line(line)) if line.seq <= after => Ok(()),
            Ok(LiveEvent::Line(line)) if line.seq == after + 1 => {
                after = line.seq;
                tx.send(line.into()).await.map_err(drop)
            }
            // A gap (or a lag): the store has every line in order.
            Ok(LiveEvent::Line(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {
                catch_up(&logs, &generation_id, &mut after, &tx).await
            }
            Ok(LiveEvent::Status(change)) => tx.send(change.into()).await.map_err(drop),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Sends every stored line after `after`, advancing it.
async fn catch_up(
    logs: &LogStore,
    generation_id: &str,
    after: &mut u64,
    tx: &mpsc::Sender<StreamEvent>,
) -> Result<(), ()> {
    loop {
        let page = logs
            .read_after(generation_id, *after, PAGE)
            .map_err(|err| {
                tracing::warn!("reading logs of {generation_id}: {err}");
            })?;
        if page.is_empty() {
            return Ok(());
        }
        for line in page {
            *after = line.seq;
            tx.send(line.into()).await.map_err(drop)?;
        }
    }
}
