//! previewd: live previews of generated web backends.
//!
//! A user uploads a project's files (a *generation*); previewd detects its framework with a
//! plugin, provisions its dependencies, launches it on a port of its own, checks that it answers
//! HTTP, streams its output over Server-Sent Events, forwards requests to it, lists its routes,
//! reports its status and stops it. Everything is kept in an embedded sled database under the
//! data dir: nothing else has to run.
//!
//! # Layout
//! - [`cli`]: the `previewd` command line (`serve`, `token`, ...), which the binary and the
//!   tests' own build of it both run.
//! - [`config`]: the server's settings, from flags and environment variables.
//! - [`server`]: builds the HTTP app and runs it on a listener the caller binds, until the
//!   shutdown future the caller passes resolves.
//! - [`state`]: the shared state, opened once from the data dir.
//! - [`api`]: the poem-openapi operations, one module per area, and the JSON error shape.
//! - [`auth`]: bearer JWTs for users and per-launch session tokens for a preview.
//! - [`store`]: sled trees for generations and preview instances.
//! - [`upload`]: checks and writes uploaded files (JSON, `.tar.gz`, `.zip`) with every limit.
//! - [`registry`]: the built-in plugins, in one list, the third-party ones loaded from the
//!   plugins dir (and the refused libraries), and framework detection across them.
//! - [`route_table`]: the runtime and static route tables merged into one.
//! - [`runtimes`]: the launcher scripts previewd ships, written out under the data dir.
//! - [`install_step`]: one installer run (venv, pip/uv, npm) with progress, tail and timeout.
//! - [`cache_build`]: what the caches of built things share: the key, the build folder renamed
//!   into place when complete.
//! - [`python_env`]: cached virtualenvs keyed by what they install.
//! - [`node_env`]: cached `node_modules` installs keyed by the lockfile (Prisma clients generated
//!   into them, the SQLite drivers' native addons compiled from the registry), linked into
//!   projects.
//! - [`supervisor`]: starts, watches and stops preview processes; the port pool, readiness,
//!   process-tree kill and `/proc` statistics live below it.
//! - [`log_store`]: every output line stored in sled with its sequence number, and a live feed.
//! - [`env_file`]: the project's `.env` (or `.env.example`, ...) as the app's default
//!   environment.
//! - [`envelope`]: the JSON envelope request to a preview's own port.
//! - [`proxy`]: the transparent reverse proxy at `/preview/{preview_id}/`, streaming any request
//!   (WebSocket included) to a preview's own port and back.
//! - [`words`]: wording shared by the lines users read ("1 route", "3 packages").

pub mod api;
pub mod auth;
pub mod cache_build;
pub mod cli;
pub mod config;
pub mod database;
pub mod env_file;
pub mod envelope;
pub mod install_step;
pub mod log_store;
pub mod node_env;
pub mod proxy;
pub mod python_env;
pub mod registry;
pub mod route_table;
pub mod runtimes;
pub mod server;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod upload;
pub mod words;
