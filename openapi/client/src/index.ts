/**
 * A typed client of previewd's API for a frontend (browser or Node 20+).
 *
 * `schema.d.ts` is generated from `../openapi.json` by `npm run generate` (openapi-typescript);
 * every call below is typed by it, so a change of the spec that breaks a caller fails
 * `npm run typecheck` instead of a user's page. The runtime is openapi-fetch (a thin `fetch`
 * wrapper); the log stream, which openapi-fetch hands over as a raw body, is read by
 * {@link streamPreviewLogs}, a small Server-Sent Events parser.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };

/** The spec's schemas, by name: `Schemas["Generation"]`, `Schemas["Launched"]`, ... */
export type Schemas = components["schemas"];
export type Generation = Schemas["Generation"];
export type Launched = Schemas["Launched"];
export type PreviewStatus = Schemas["Status"];
export type LogEvent = Schemas["LogEvent"];
/** Every error answer: `{code, message}` (a failed launch adds `preview_id` and `last_lines`). */
export type ErrorBody = Schemas["ErrorBody"];

/**
 * The data of an `event: status` of the log stream. Written out here because the spec names
 * `StatusEvent` in prose but does not define its schema; the status itself is the spec's.
 */
export interface StatusEvent {
  preview_id: string;
  status: PreviewStatus;
  ts: string;
  exit_code: number | null;
  error: string | null;
}

/** One event of the log stream, its `data` decoded. */
export type LogStreamMessage =
  | { event: "log"; id: string | undefined; data: LogEvent }
  | { event: "status"; id: string | undefined; data: StatusEvent };

/** A client of one previewd server: `client.GET("/api/v1/generations")`, ... */
export type PreviewdClient = Client<paths>;

/**
 * A client of the previewd at `baseUrl` (its root, e.g. `http://127.0.0.1:8080`; the paths
 * carry `/api/v1`) sending `token` as `Authorization: Bearer`. `token` may be a function, read
 * before every request, for a token that gets renewed.
 */
export function createPreviewdClient(
  baseUrl: string,
  token: string | (() => string),
  options: { fetch?: typeof globalThis.fetch } = {},
): PreviewdClient {
  const client = createClient<paths>({
    baseUrl: baseUrl.replace(/\/+$/, ""),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  client.use(bearerAuth(token));
  return client;
}

/** Middleware adding `Authorization: Bearer <token>` to every request. */
export function bearerAuth(token: string | (() => string)): Middleware {
  return {
    onRequest({ request }) {
      const value = typeof token === "function" ? token() : token;
      request.headers.set("Authorization", `Bearer ${value}`);
      return request;
    },
  };
}

/** Where a log stream starts and what it keeps (the query of `streamPreviewLogs`). */
export type StreamLogsQuery = NonNullable<
  operations["streamPreviewLogs"]["parameters"]["query"]
>;

/** Thrown when the log stream cannot be opened: the API's error answer and its status. */
export class PreviewdError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody | undefined,
  ) {
    super(body ? `${status} ${body.code}: ${body.message}` : `HTTP ${status}`);
    this.name = "PreviewdError";
  }
}

/**
 * Follows a generation's log stream: every `log` and `status` event, decoded, in order, until
 * `signal` aborts or the server closes the stream. `query` picks the start (`after`, `tail`)
 * and filters (`stream`, `q`); `lastEventId` resumes after an event's `id` as a reconnecting
 * `EventSource` would.
 *
 * ```ts
 * for await (const message of streamPreviewLogs(client, generationId, { tail: 100 })) {
 *   if (message.event === "log") console.log(message.data.line);
 * }
 * ```
 */
export async function* streamPreviewLogs(
  client: PreviewdClient,
  generationId: string,
  query: StreamLogsQuery = {},
  options: { signal?: AbortSignal; lastEventId?: string } = {},
): AsyncGenerator<LogStreamMessage, void, undefined> {
  const { data, error, response } = await client.GET(
    "/api/v1/generations/{generation_id}/preview/logs/stream",
    {
      params: {
        path: { generation_id: generationId },
        query,
        header:
          options.lastEventId === undefined
            ? {}
            : { "Last-Event-ID": options.lastEventId },
      },
      headers: { Accept: "text/event-stream" },
      parseAs: "stream",
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
  if (error !== undefined || !data) {
    throw new PreviewdError(response.status, error);
  }
  try {
    for await (const frame of sseFrames(data)) {
      if (frame.event === "log") {
        yield { event: "log", id: frame.id, data: JSON.parse(frame.data) as LogEvent };
      } else if (frame.event === "status") {
        yield { event: "status", id: frame.id, data: JSON.parse(frame.data) as StatusEvent };
      }
    }
  } catch (err) {
    // Aborting the request is how a caller stops following: not an error.
    if (options.signal?.aborted) return;
    throw err;
  }
}

/** One Server-Sent Event as it arrived: its type (`message` when none), `id` and `data`. */
export interface SseFrame {
  event: string;
  id: string | undefined;
  data: string;
}

/**
 * The events of a `text/event-stream` body, per the HTML standard's parsing rules: lines end
 * with LF, CRLF or CR; a blank line ends an event; `:` lines are comments (heartbeats);
 * several `data:` lines join with LF; an event without data is dropped; `retry:` is ignored.
 */
export async function* sseFrames(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<SseFrame, void, undefined> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  let event = "";
  let id: string | undefined;
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // Complete lines only; a lone trailing CR may be the first half of a CRLF.
      for (;;) {
        const end = buffer.search(/\r\n|\r|\n/);
        if (end < 0 || (buffer[end] === "\r" && end === buffer.length - 1 && !done)) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) yield { event: event || "message", id, data: data.join("\n") };
          event = "";
          data = [];
          continue;
        }
        const colon = line.indexOf(":");
        if (colon === 0) continue;
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id" && !value.includes("\0")) id = value;
      }
      if (done) return;
    }
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => {});
  }
}
