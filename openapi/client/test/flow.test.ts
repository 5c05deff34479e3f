/**
 * The generated client against a real previewd, the way a frontend drives it: upload a
 * one-file Flask app, launch it, follow its logs, list its routes, call it through the
 * envelope request, stop it. Only the client talks to the server.
 *
 * Needs `PREVIEWD_URL` (the server's root) and `PREVIEWD_TOKEN` (a bearer token); run by
 * `tests/client/main.rs` in `cargo test`, or by hand: `npm test`.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  createPreviewdClient,
  type ErrorBody,
  type Generation,
  type LogEvent,
  PreviewdError,
  streamPreviewLogs,
  type StatusEvent,
} from "../src/index.ts";

/** How long a launch may take: a cold cache installs Flask into a fresh virtualenv. */
const LAUNCH_LIMIT_MS = 300_000;

const APP = `
from flask import Flask, jsonify, request

app = Flask(__name__)
print("client-test app imported", flush=True)


@app.get("/hello")
def hello():
    """Greets the caller."""
    return jsonify(message=f"hello {request.args.get('name', 'world')}")
`;

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} must be set`);
  return value;
}

const client = createPreviewdClient(env("PREVIEWD_URL"), env("PREVIEWD_TOKEN"));
let generation: Generation | undefined;

before(async () => {
  const { data, error, response } = await client.POST("/api/v1/generations", {
    body: { name: "client-test", files: [{ path: "app.py", content: APP }] },
  });
  assert.equal(response.status, 201, JSON.stringify(error));
  assert.ok(data);
  assert.equal(data.framework, "flask");
  assert.equal(data.file_count, 1);
  generation = data;
});

after(async () => {
  if (!generation) return;
  const { response } = await client.DELETE("/api/v1/generations/{generation_id}", {
    params: { path: { generation_id: generation.id } },
  });
  assert.equal(response.status, 204);
});

test("an unknown generation is a typed 404", async () => {
  const { data, error, response } = await client.GET("/api/v1/generations/{generation_id}", {
    params: { path: { generation_id: "no-such-generation" } },
  });
  assert.equal(response.status, 404);
  assert.equal(data, undefined);
  const body: ErrorBody | undefined = error;
  assert.equal(typeof body?.code, "string");
  assert.equal(typeof body?.message, "string");
});

test("upload, launch, logs, endpoints, request, stop", { timeout: LAUNCH_LIMIT_MS + 60_000 }, async () => {
  assert.ok(generation);
  const path = { generation_id: generation.id };

  // Launch and wait until it runs.
  const launch = await client.POST("/api/v1/generations/{generation_id}/preview/launch", {
    params: { path, query: { wait: true } },
    body: {},
    signal: AbortSignal.timeout(LAUNCH_LIMIT_MS),
  });
  assert.equal(launch.response.status, 200, JSON.stringify(launch.error));
  assert.ok(launch.data);
  const launched = launch.data;
  assert.equal(launched.status, "running");
  assert.equal(launched.generation_id, generation.id);
  assert.ok(launched.session_token.length > 0);

  // The status of the preview and the list of previews agree.
  const status = await client.GET("/api/v1/generations/{generation_id}/preview/status", {
    params: { path },
  });
  assert.equal(status.data?.status, "running");
  assert.equal(status.data?.preview_id, launched.preview_id);
  const previews = await client.GET("/api/v1/previews", {
    params: { query: { status: "running" } },
  });
  assert.ok(previews.data?.previews.some((p) => p.preview_id === launched.preview_id));

  // The log stream from the start: system lines, then the app's own line; the current
  // status comes as an event too.
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 30_000);
  const lines: LogEvent[] = [];
  const statuses: StatusEvent[] = [];
  try {
    for await (const message of streamPreviewLogs(client, generation.id, { after: 0 }, {
      signal: stop.signal,
    })) {
      if (message.event === "status") {
        statuses.push(message.data);
        continue;
      }
      assert.equal(message.id, String(message.data.seq));
      lines.push(message.data);
      if (message.data.line.includes("client-test app imported")) break;
    }
  } finally {
    clearTimeout(timer);
  }
  const appLine = lines.find((l) => l.line.includes("client-test app imported"));
  assert.ok(appLine, `the app's line in the stream: ${JSON.stringify(lines)}`);
  assert.equal(appLine.stream, "stdout");
  assert.ok(lines.some((l) => l.stream === "system"), "previewd's own steps are in the stream");
  const seqs = lines.map((l) => l.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "seqs increase");
  assert.equal(new Set(seqs).size, seqs.length, "no duplicate");
  assert.ok(
    statuses.some((s) => s.preview_id === launched.preview_id && s.status === "running"),
    `a running status event: ${JSON.stringify(statuses)}`,
  );

  // The app's routes.
  const endpoints = await client.GET("/api/v1/generations/{generation_id}/preview/endpoints", {
    params: { path },
  });
  assert.equal(endpoints.response.status, 200, JSON.stringify(endpoints.error));
  const hello = endpoints.data?.endpoints.find((e) => e.path === "/hello");
  assert.ok(hello, JSON.stringify(endpoints.data));
  assert.equal(hello.method, "GET");

  // A request to the app through the envelope, with the launch's session token.
  const call = await client.POST("/api/v1/generations/{generation_id}/preview/request", {
    params: { path, header: { "X-Preview-Session": launched.session_token } },
    body: { method: "GET", path: "/hello", query: { name: "client" } },
  });
  assert.equal(call.response.status, 200, JSON.stringify(call.error));
  assert.ok(call.data);
  assert.equal(call.data.status, 200);
  assert.match(call.data.headers["content-type"] ?? "", /application\/json/);
  assert.deepEqual(JSON.parse(call.data.body ?? "null"), { message: "hello client" });

  // Without the session token the envelope is refused, with the API's error shape.
  const refused = await client.POST("/api/v1/generations/{generation_id}/preview/request", {
    params: { path },
    body: { path: "/hello" },
  });
  assert.equal(refused.response.status, 401);
  assert.equal(refused.error?.code, "missing_session_token");

  // Stop it.
  const stopped = await client.DELETE("/api/v1/generations/{generation_id}/preview", {
    params: { path },
  });
  assert.equal(stopped.response.status, 200, JSON.stringify(stopped.error));
  assert.equal(stopped.data?.status, "stopped");
  const after = await client.GET("/api/v1/generations/{generation_id}/preview/status", {
    params: { path },
  });
  assert.equal(after.data?.status, "stopped");
});

test("a log stream of an unknown generation is a PreviewdError", async () => {
  await assert.rejects(
    async () => {
      for await (const _ of streamPreviewLogs(client, "no-such-generation")) break;
    },
    (err: unknown) => err instanceof PreviewdError && err.status === 404,
  );
});
