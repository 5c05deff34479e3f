//! End-to-end tests: a real previewd server in-process, real FastAPI apps as child processes
//! (installed by previewd's own provisioning), real HTTP and SSE between them.

/// Bearer tokens, session tokens and the 401/404 rules.
mod auth;
/// The real previewd binary killed with SIGKILL mid-stream, and flooded with output.
mod crash_safety;
/// A database per preview: a real PostgreSQL, migrations, isolation, the SQLite default.
mod databases;
/// Django apps, with and without Django REST framework.
mod django;
/// A project's env file (`.env`, `.env.example`, ...) as the app's defaults.
mod env_file;
/// The envelope request: bodies, headers, limits and errors.
mod envelope;
/// Express apps on Node, JavaScript and TypeScript.
mod express;
/// Apps that crash, never bind, or leave stubborn children behind.
mod failures;
/// The FastAPI plugin's fixtures, launched: static routes equal the running app's.
mod fastapi_fixtures;
/// Flask apps: detected, launched, answering, routes matching the running app.
mod flask;
/// Upload → launch → logs → request → endpoints → stop, the way a frontend drives it.
mod flow;
/// Namespaces: a preview reads and writes its own files only, sees its own processes only.
mod isolation;
/// After launch: idle timeout, maximum uptime, quota, restart, sessions, the envelope's refusals.
mod lifecycle;
/// Memory, process, CPU and disk limits: OOM, fork bomb, CPU share, disk, Node under limits.
mod limits;
/// Stored log history and stream resumption.
mod logs;
/// Third-party plugins loaded from the plugins dir: Koa end to end, refusals, panics contained.
mod plugins;
/// Virtualenvs built once and shared.
mod provisioning;
/// The transparent proxy: streamed bodies, WebSocket, Swagger UI under the prefix, tokens.
mod proxy;
/// previewd restarting on the same data dir.
mod restart;
/// schemathesis against the live server's own spec: no 5xx, nothing outside the spec.
mod schema_fuzz;
/// The served OpenAPI spec is the committed one.
mod spec;
/// Hostile and malformed uploads.
mod uploads;
/// Warm runtimes: relaunches on a ready interpreter, under the same sandbox and limits.
mod warm;

use std::time::Duration;

/// How long a test waits for a launch, including a cold dependency install.
pub const LAUNCH_LIMIT: Duration = Duration::from_secs(300);
