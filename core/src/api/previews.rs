//! The preview of a generation: launch, status, stop, routes, the envelope request and the
//! effective configuration, all under `/api/v1/generations/{generation_id}/preview`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use previewd_plugin_api::{Endpoint, PluginError, Project};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::generations::owned_generation;
use super::security::{PreviewSession, UserAuth};
use super::{examples, ApiTags};
use crate::database::{self, DatabaseNeed, Databases};
use crate::env_file::EnvFile;
use crate::envelope::EnvelopeRequest;
use crate::registry;
use crate::route_table::{self, Origin};
use crate::state::AppState;
use crate::store::{GenerationRecord, PreviewRecord, PreviewStatus};
use crate::supervisor::limits::Limits;
use crate::supervisor::{readiness, LaunchError, LaunchOptions};

/// Output lines returned with a failed launch.
const FAILURE_TAIL: usize = 30;

/// A preview's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Status {
    /// Dependencies are being installed or the app is starting.
    Starting,
    /// The app answers HTTP.
    Running,
    /// The app is being stopped.
    Stopping,
    /// The app was stopped (by a user, a limit or a restart of previewd).
    Stopped,
    /// The app failed to start or exited on its own.
    Failed,
}

impl From<PreviewStatus> for Status {
    fn from(s: PreviewStatus) -> Status {
        match s {
            PreviewStatus::Starting => Status::Starting,
            PreviewStatus::Running => Status::Running,
            PreviewStatus::Stopping => Status::Stopping,
            PreviewStatus::Stopped => Status::Stopped,
            PreviewStatus::Failed => Status::Failed,
        }
    }
}

/// What to launch.
#[derive(Debug, Default, Object)]
#[oai(example)]
pub struct LaunchRequest {
    /// A plugin name overriding detection (`fastapi`, ...).
    #[oai(nullable)]
    pub framework: Option<String>,
    /// Extra environment variables for the app.
    #[oai(default)]
    pub env: BTreeMap<String, String>,
    /// Apply the project's database migrations before the app starts (Django's `migrate`,
    /// Alembic's `upgrade head`), their output in the log as `system` lines; a failed migration
    /// fails the launch.
    #[oai(default)]
    pub migrate: bool,
}

impl Example for LaunchRequest {
    fn example() -> LaunchRequest {
        LaunchRequest {
            framework: Some("fastapi".into()),
            env: BTreeMap::from([("LOG_LEVEL".into(), "debug".into())]),
            migrate: false,
        }
    }
}

/// A launched preview.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Launched {
    /// The preview's id (a new one per launch).
    pub preview_id: String,
    /// The generation launched.
    pub generation_id: String,
    /// `starting` (202) or, with `?wait=true`, `running` (200).
    pub status: Status,
    /// The plugin running it.
    pub framework: String,
    /// The app's own port on previewd's host.
    pub port: u16,
    /// The transparent proxy address of the app on previewd.
    pub base_url: String,
    /// Token for the proxy and the envelope request (`X-Preview-Session`).
    pub session_token: String,
    /// When the session token expires.
    pub session_expires_at: DateTime<Utc>,
    /// When the preview is stopped at the latest (maximum uptime).
    pub expires_at: DateTime<Utc>,
}

impl Example for Launched {
    fn example() -> Launched {
        Launched {
            preview_id: examples::PREVIEW_ID.into(),
            generation_id: examples::GENERATION_ID.into(),
            status: Status::Starting,
            framework: "fastapi".into(),
            port: examples::PORT,
            base_url: examples::BASE_URL.into(),
            session_token: examples::SESSION_TOKEN.into(),
            session_expires_at: examples::at(examples::SESSION_EXPIRES_AT),
            expires_at: examples::at(examples::EXPIRES_AT),
        }
    }
}

#[derive(ApiResponse)]
pub enum LaunchResponse {
    /// With `?wait=true`: the app is running.
    #[oai(status = 200)]
    Running(Json<Launched>),
    /// The launch started; follow the logs or poll the status.
    #[oai(status = 202)]
    Accepted(Json<Launched>),
}

/// A preview's status.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PreviewStatusBody {
    /// The preview's id.
    pub preview_id: String,
    /// The generation it runs.
    pub generation_id: String,
    /// Where it is in its life.
    pub status: Status,
    /// The plugin running it.
    pub framework: String,
    /// The app's port.
    pub port: u16,
    /// The transparent proxy address.
    pub base_url: String,
    /// When the launch began.
    pub started_at: DateTime<Utc>,
    /// Seconds since the app first answered HTTP (0 before).
    pub uptime_seconds: f64,
    /// Resident memory of all the preview's processes, in bytes.
    pub memory_bytes: u64,
    /// CPU use of all its processes since the previous status call, in percent of one core.
    pub cpu_percent: f64,
    /// Whether the app is running and accepts connections now.
    pub healthy: bool,
    /// Number of routes `/endpoints` lists.
    pub endpoint_count: u64,
    /// The app's exit code once it ended (128 + signal when killed by one).
    #[oai(nullable)]
    pub exit_code: Option<i32>,
    /// Why it failed or stopped.
    #[oai(nullable)]
    pub error: Option<String>,
    /// When it is stopped at the latest (maximum uptime).
    pub expires_at: DateTime<Utc>,
    /// While it is active: when it is stopped if nobody uses it until then (the idle timeout;
    /// proxied and envelope requests, keepalives and open log streams count as use).
    #[oai(nullable)]
    pub idle_expires_at: Option<DateTime<Utc>>,
}

impl Example for PreviewStatusBody {
    fn example() -> PreviewStatusBody {
        PreviewStatusBody {
            preview_id: examples::PREVIEW_ID.into(),
            generation_id: examples::GENERATION_ID.into(),
            status: Status::Running,
            framework: "fastapi".into(),
            port: examples::PORT,
            base_url: examples::BASE_URL.into(),
            started_at: examples::at(examples::LAUNCHED_AT),
            uptime_seconds: 95.75,
            memory_bytes: 48_652_288,
            cpu_percent: 1.5,
            healthy: true,
            endpoint_count: 1,
            exit_code: None,
            error: None,
            expires_at: examples::at(examples::EXPIRES_AT),
            idle_expires_at: Some(examples::at("2025-10-15T09:47:40Z")),
        }
    }
}

#[derive(ApiResponse)]
pub enum StatusAnswer {
    /// The preview's status now.
    #[oai(status = 200)]
    Ok(Json<PreviewStatusBody>),
}

#[derive(ApiResponse)]
pub enum Stopped {
    /// The preview is stopped (or had already ended); its status.
    #[oai(status = 200)]
    Ok(Json<PreviewStatusBody>),
}

/// Where a route was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RouteSource {
    /// Read from the source with tree-sitter, without running the app.
    Static,
    /// Reported by the running app itself.
    Runtime,
}

/// One route of the app.
#[derive(Debug, Object)]
#[oai(example)]
pub struct EndpointInfo {
    /// HTTP method.
    pub method: String,
    /// Path with `{name}` parameters.
    pub path: String,
    /// Names of the path parameters.
    pub path_params: Vec<String>,
    /// One-line summary.
    #[oai(nullable)]
    pub summary: Option<String>,
    /// Longer description (the handler's docstring).
    #[oai(nullable)]
    pub description: Option<String>,
    /// Grouping tags.
    pub tags: Vec<String>,
    /// File of the handler, relative to the project root.
    #[oai(nullable)]
    pub file: Option<String>,
    /// Line of the handler.
    #[oai(nullable)]
    pub line: Option<u32>,
    /// `static` or `runtime`.
    pub source: RouteSource,
}

impl Example for EndpointInfo {
    fn example() -> EndpointInfo {
        EndpointInfo {
            method: "GET".into(),
            path: "/items/{item_id}".into(),
            path_params: vec!["item_id".into()],
            summary: Some("Read Item".into()),
            description: Some("One item by its id.".into()),
            tags: vec!["items".into()],
            file: Some("main.py".into()),
            line: Some(7),
            source: RouteSource::Runtime,
        }
    }
}

/// The app's routes.
#[derive(Debug, Object)]
#[oai(example)]
pub struct EndpointList {
    /// The routes, sorted by path then method.
    pub endpoints: Vec<EndpointInfo>,
}

impl Example for EndpointList {
    fn example() -> EndpointList {
        EndpointList {
            endpoints: vec![EndpointInfo::example()],
        }
    }
}

#[derive(ApiResponse)]
pub enum Endpoints {
    /// The app's routes.
    #[oai(status = 200)]
    Ok(Json<EndpointList>),
}

/// An HTTP request to send to the preview.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PreviewRequest {
    /// HTTP method.
    #[oai(default = "default_method")]
    pub method: String,
    /// Path on the app, starting with `/` (it may carry a `?query`). Never a URL.
    pub path: String,
    /// Query parameters added to the path's own.
    #[oai(default)]
    pub query: BTreeMap<String, String>,
    /// Request headers.
    #[oai(default)]
    pub headers: BTreeMap<String, String>,
    /// A text body.
    #[oai(nullable)]
    pub body: Option<String>,
    /// A binary body, base64-encoded.
    #[oai(nullable)]
    pub body_base64: Option<String>,
}

impl Example for PreviewRequest {
    fn example() -> PreviewRequest {
        PreviewRequest {
            method: "GET".into(),
            path: "/items/1".into(),
            query: BTreeMap::from([("q".into(), "milk".into())]),
            headers: BTreeMap::from([("accept".into(), "application/json".into())]),
            body: None,
            body_base64: None,
        }
    }
}

fn default_method() -> String {
    "GET".into()
}

/// The preview's answer.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PreviewResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body, when it is UTF-8 text.
    #[oai(nullable)]
    pub body: Option<String>,
    /// The body, base64-encoded, when it is not text.
    #[oai(nullable)]
    pub body_base64: Option<String>,
    /// Time from sending to the last byte, in milliseconds.
    pub elapsed_ms: f64,
}

impl Example for PreviewResponse {
    fn example() -> PreviewResponse {
        PreviewResponse {
            status: 200,
            headers: BTreeMap::from([
                ("content-length".into(), "13".into()),
                ("content-type".into(), "application/json".into()),
            ]),
            body: Some("{\"item_id\":1}".into()),
            body_base64: None,
            elapsed_ms: 3.2,
        }
    }
}

#[derive(ApiResponse)]
pub enum Answered {
    /// The app answered (whatever its status); its answer.
    #[oai(status = 200)]
    Ok(Json<PreviewResponse>),
}

/// The plugin chosen for a project.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PluginRef {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Whether it is built into previewd.
    pub builtin: bool,
}

impl Example for PluginRef {
    fn example() -> PluginRef {
        PluginRef {
            name: "fastapi".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            builtin: true,
        }
    }
}

/// How readiness is checked.
#[derive(Debug, Object)]
#[oai(example)]
pub struct HealthCheck {
    /// Always `GET`.
    pub method: String,
    /// Path probed; any HTTP answer counts as ready.
    pub path: String,
    /// Time between probes, in milliseconds.
    pub interval_ms: u64,
    /// How long the app may take to answer, in seconds.
    pub timeout_seconds: u64,
}

impl Example for HealthCheck {
    fn example() -> HealthCheck {
        HealthCheck {
            method: "GET".into(),
            path: "/".into(),
            interval_ms: 100,
            timeout_seconds: 60,
        }
    }
}

/// The effective configuration for a generation's preview.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PreviewConfig {
    /// The framework (plugin name) that runs it, or null when none claims the project.
    #[oai(nullable)]
    pub framework: Option<String>,
    /// The plugin.
    #[oai(nullable)]
    pub plugin: Option<PluginRef>,
    /// Why the plugin claimed the project.
    #[oai(nullable)]
    pub detection_reason: Option<String>,
    /// The runtime (`python`, `node`).
    #[oai(nullable)]
    pub runtime: Option<String>,
    /// How dependencies are installed (e.g. `uv 0.13.9`, `venv+pip`).
    pub installer: String,
    /// The command line (of the latest launch, else the one a launch would use with `$PORT`).
    #[oai(nullable)]
    pub launch_command: Option<String>,
    /// Ports previews get, `FIRST-LAST`.
    pub port_range: String,
    /// The readiness probe.
    pub health_check: HealthCheck,
    /// A preview is stopped this long after launch.
    pub max_uptime_seconds: u64,
    /// A preview unused this long is stopped.
    pub idle_timeout_seconds: u64,
    /// Lifetime of a session token.
    pub session_timeout_seconds: u64,
    /// Previews one user may run at once.
    pub max_previews_per_user: u64,
    /// The resource limits each preview runs under.
    pub limits: ResourceLimits,
    /// How each preview is kept apart from the host and from other previews.
    pub isolation: IsolationInfo,
    /// The database the project expects and what its preview gets; null when it uses none
    /// previewd knows.
    #[oai(nullable)]
    pub database: Option<DatabaseInfo>,
    /// The project's env file whose variables the app gets as defaults; null when it has
    /// none.
    #[oai(nullable)]
    pub env_file: Option<EnvFileInfo>,
}

/// A project's env file (`.env`, else `.env.example`, `.env.sample`, ..., else the files in
/// cookiecutter-django's `.envs/.local/`; in the app's working dir, then the project root), whose variables the app gets as defaults: the plan's, the
/// database's, the launch's `env` and previewd's own (`PORT`, `HOST`) win. Names only: values
/// stay in the file.
#[derive(Debug, Object)]
#[oai(example)]
pub struct EnvFileInfo {
    /// The file (or folder of files), relative to the project root.
    pub file: String,
    /// The variables the app gets from it, in file order: those with a value, but for those
    /// previewd sets (the plan's, the database's, `PORT`, `HOST`); the launch's `env` wins
    /// over these too.
    pub variables: Vec<String>,
    /// The variables it sets that previewd leaves out: those an interpreter reads at start-up
    /// (`PYTHONPATH`, `NODE_OPTIONS`, ...), the machine's (`PATH`, `HOME`, ...), those
    /// pointing at a server beside the app, which no preview has (`REDIS_URL=redis://localhost`,
    /// `DB_HOST=db`), and those running the app as in production (`NODE_ENV=production`,
    /// `SECURE_SSL_REDIRECT=True`). The log says which is which.
    pub left_out: Vec<String>,
}

impl Example for EnvFileInfo {
    fn example() -> EnvFileInfo {
        EnvFileInfo {
            file: "backend/.env.example".into(),
            variables: vec!["SECRET_KEY".into(), "ACCESS_TOKEN_EXPIRE_MINUTES".into()],
            left_out: vec!["PYTHONPATH".into(), "REDIS_URL".into()],
        }
    }
}

/// The database a project expects, and where its preview's is.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DatabaseInfo {
    /// `sql` (a relational database through a library that also runs on SQLite), `postgres`
    /// or `mongo`.
    pub wants: String,
    /// The library the project uses it through (`sqlalchemy`, `django`, `prisma`, ...).
    pub library: String,
    /// The environment variables previewd sets to the database's URL.
    pub variables: Vec<String>,
    /// The split connection variables the project reads to build its URL itself
    /// (`POSTGRES_SERVER`, `DB_USER`, ...), which previewd sets to the parts of a PostgreSQL
    /// database (libpq's `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE` are set
    /// too, always); empty for most projects.
    pub parts: Vec<DatabasePart>,
    /// Why previewd thinks so, naming the files.
    pub reason: String,
    /// Where the preview's database is: `sqlite` (a file in its working dir), `postgresql` (a
    /// database and role of its own on the PostgreSQL server previewd is given), `mongodb` (a
    /// database and user of its own on the MongoDB server previewd is given) or `none`.
    pub provider: String,
    /// The provider in words (never credentials).
    pub provider_detail: String,
}

impl Example for DatabaseInfo {
    fn example() -> DatabaseInfo {
        DatabaseInfo {
            wants: "postgres".into(),
            library: "sqlmodel".into(),
            variables: vec!["DATABASE_URL".into()],
            parts: vec![DatabasePart::example()],
            reason: "app/core/db.py imports sqlmodel; app/core/config.py uses PostgresDsn; \
                     no database URL variable found, DATABASE_URL assumed; \
                     app/core/config.py reads POSTGRES_SERVER"
                .into(),
            provider: "postgresql".into(),
            provider_detail: "a PostgreSQL database of its own on 127.0.0.1:5432".into(),
        }
    }
}

/// A split connection variable a project reads, and what previewd puts in it.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DatabasePart {
    /// The variable (`POSTGRES_SERVER`, `DB_PASS`, `PGUSER` ...).
    pub variable: String,
    /// What it holds: `host`, `port`, `user`, `password` or `database` (the name).
    pub part: String,
}

impl Example for DatabasePart {
    fn example() -> DatabasePart {
        DatabasePart {
            variable: "POSTGRES_SERVER".into(),
            part: "host".into(),
        }
    }
}

impl Example for PreviewConfig {
    fn example() -> PreviewConfig {
        PreviewConfig {
            framework: Some("fastapi".into()),
            plugin: Some(PluginRef::example()),
            detection_reason: Some(
                "main.py creates `app = FastAPI()`; requirements.txt lists fastapi".into(),
            ),
            runtime: Some("python".into()),
            installer: "uv 0.13.9".into(),
            launch_command: Some(
                "python launcher --framework fastapi --app main:app --port 3001".into(),
            ),
            port_range: "3001-3100".into(),
            health_check: HealthCheck::example(),
            max_uptime_seconds: 3600,
            idle_timeout_seconds: 900,
            session_timeout_seconds: 1800,
            max_previews_per_user: 3,
            limits: ResourceLimits::example(),
            isolation: IsolationInfo::example(),
            database: Some(DatabaseInfo::example()),
            env_file: Some(EnvFileInfo::example()),
        }
    }
}

#[derive(ApiResponse)]
pub enum Config {
    /// The configuration that applies to the generation's preview.
    #[oai(status = 200)]
    Ok(Json<PreviewConfig>),
}

/// How previews are isolated on this host.
#[derive(Debug, Object)]
#[oai(example)]
pub struct IsolationInfo {
    /// `namespaces` (own mount, PID and IPC namespaces, the system read-only, a private /tmp,
    /// previewd's folders hidden, no capabilities) or `none`.
    pub mechanism: String,
    /// What previewd found at start-up, as it logged it.
    pub detail: String,
}

impl Example for IsolationInfo {
    fn example() -> IsolationInfo {
        IsolationInfo {
            mechanism: "namespaces".into(),
            detail: "namespaces: own mount, PID and IPC namespaces, read-only system, private \
                     /tmp, no capabilities"
                .into(),
        }
    }
}

/// The resource limits of a preview, and how this host applies them.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ResourceLimits {
    /// How memory, process and CPU limits are applied: `cgroup v1`, `cgroup v2`, `rlimit` or
    /// `none` (joined with ` + ` when they differ, e.g. `cgroup v2 + rlimit`).
    pub mechanism: String,
    /// What previewd found on the host at start-up, as it logged it.
    pub detail: String,
    /// Memory of all the preview's processes together, in bytes; past it the app is killed and
    /// the preview fails as out of memory. Null: no limit.
    #[oai(nullable)]
    pub memory_bytes: Option<u64>,
    /// Processes (and threads) at once. Null: no limit.
    #[oai(nullable)]
    pub pids: Option<u64>,
    /// CPU, in cores (0.5: half of one), from the moment the app is ready; its start-up runs
    /// at full speed. Null: no limit.
    #[oai(nullable)]
    pub cpu_cores: Option<f64>,
    /// Disk taken by the project and scratch folders, in bytes; past it the preview is killed
    /// and fails. Null: no limit.
    #[oai(nullable)]
    pub disk_bytes: Option<u64>,
}

impl Example for ResourceLimits {
    fn example() -> ResourceLimits {
        ResourceLimits {
            mechanism: "cgroup v2".into(),
            detail: "cgroup v2 (memory, pids, cpu)".into(),
            memory_bytes: Some(536_870_912),
            pids: Some(256),
            cpu_cores: Some(1.0),
            disk_bytes: Some(1_073_741_824),
        }
    }
}

/// Preview operations.
pub struct PreviewsApi;

#[OpenApi(prefix_path = "/api/v1/generations", tag = "ApiTags::Previews")]
impl PreviewsApi {
    /// Launch a preview
    ///
    /// Detects the framework (or uses `framework`), installs dependencies, starts the app on a
    /// port of its own and checks that it answers HTTP. Answers 202 at once with status
    /// `starting`; with `?wait=true`, 200 once it runs or 422 with the reason and the app's last
    /// output lines if it fails. The body may be omitted.
    #[oai(
        path = "/:generation_id/preview/launch",
        method = "post",
        operation_id = "launchPreview"
    )]
    async fn launch(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
        /// Wait until the app runs or fails.
        #[oai(default)]
        wait: Query<bool>,
        body: Json<Option<LaunchRequest>>,
    ) -> ApiResult<LaunchResponse> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let request = body.0.unwrap_or_default();
        let options = LaunchOptions {
            framework: request.framework.filter(|f| !f.trim().is_empty()),
            env: request.env,
            migrate: request.migrate,
        };
        launch_generation(&state, &auth.0, generation, options, wait.0).await
    }

    /// Get the preview's status
    ///
    /// The latest preview of the generation, with uptime, memory and CPU of all its processes.
    #[oai(
        path = "/:generation_id/preview/status",
        method = "get",
        operation_id = "getPreviewStatus"
    )]
    async fn status(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
    ) -> ApiResult<StatusAnswer> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let record = latest(&state, &generation)?;
        Ok(StatusAnswer::Ok(Json(
            status_body(&state, &generation, &record.id).await?,
        )))
    }

    /// Stop the preview
    ///
    /// SIGTERM to all its processes, SIGKILL after the grace period, port released. Calling it
    /// again, or on a preview that already ended, is harmless.
    #[oai(
        path = "/:generation_id/preview",
        method = "delete",
        operation_id = "stopPreview"
    )]
    async fn stop(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
    ) -> ApiResult<Stopped> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let record = latest(&state, &generation)?;
        state
            .supervisor
            .stop(&record.id, "stopped by the user")
            .await;
        Ok(Stopped::Ok(Json(
            status_body(&state, &generation, &record.id).await?,
        )))
    }

    /// List the app's routes
    ///
    /// Read from the source with tree-sitter before launch (`source: static`). Once the app runs,
    /// the routes it reports itself (`source: runtime`, completed with file and line from the
    /// source), plus any the source declares that the app does not report (`source: static`).
    #[oai(
        path = "/:generation_id/preview/endpoints",
        method = "get",
        operation_id = "listPreviewEndpoints"
    )]
    async fn endpoints(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
    ) -> ApiResult<Endpoints> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let endpoints = routes(&state, &generation)
            .await?
            .into_iter()
            .map(|(e, origin)| EndpointInfo {
                method: e.method,
                path: e.path,
                path_params: e.path_params,
                summary: e.summary,
                description: e.description,
                tags: e.tags,
                file: e.file,
                line: e.line,
                source: match origin {
                    Origin::Static => RouteSource::Static,
                    Origin::Runtime => RouteSource::Runtime,
                },
            })
            .collect();
        Ok(Endpoints::Ok(Json(EndpointList { endpoints })))
    }

    /// Send a request to the preview
    ///
    /// Sends the described request to the app's own port (a path only: no scheme, host or
    /// other port can be reached) and answers with its status, headers and body. Needs the
    /// launch's session token in `X-Preview-Session`.
    #[oai(
        path = "/:generation_id/preview/request",
        method = "post",
        operation_id = "sendPreviewRequest"
    )]
    async fn request(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
        /// The preview's session token: `session_token` from the launch answer (or from
        /// `renewPreviewSession`). The `PreviewSession` security scheme.
        #[oai(name = "X-Preview-Session")]
        session: PreviewSession,
        body: Json<PreviewRequest>,
    ) -> ApiResult<Answered> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let record = latest(&state, &generation)?;
        let token = session.0.ok_or_else(|| {
            ApiError::new(
                401,
                "missing_session_token",
                "this call needs the launch's session token in `X-Preview-Session`",
            )
        })?;
        state
            .auth
            .verify_session(&token, &record.id)
            .map_err(|err| {
                let code = match err {
                    crate::auth::AuthError::Expired => "session_expired",
                    _ => "invalid_session_token",
                };
                ApiError::new(401, code, err.to_string())
            })?;
        if record.status != PreviewStatus::Running {
            return Err(ApiError::new(
                409,
                "preview_not_running",
                format!("the preview is {}; launch it first", record.status.as_str()),
            ));
        }
        state.supervisor.touch(&record.id);
        let request = body.0;
        let envelope = EnvelopeRequest {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
            body_base64: request.body_base64,
        };
        let response = state
            .envelope
            .send(record.port, &envelope)
            .await
            .map_err(|err| ApiError::new(err.http_status(), err.code(), err.to_string()))?;
        Ok(Answered::Ok(Json(PreviewResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
            body_base64: response.body_base64,
            elapsed_ms: response.elapsed_ms,
        })))
    }

    /// Get the preview configuration
    ///
    /// The plugin, runtime, launch command, health check and limits that apply to this
    /// generation's preview.
    #[oai(
        path = "/:generation_id/preview/config",
        method = "get",
        operation_id = "getPreviewConfig"
    )]
    async fn config(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
    ) -> ApiResult<Config> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let config = &state.config;
        let latest = state.store.latest_preview(&generation.id)?;
        let plugin_name = latest
            .as_ref()
            .map(|p| p.framework.clone())
            .or(generation.framework.clone());
        let plugin = plugin_name
            .as_deref()
            .and_then(|name| state.supervisor.registry().get(name));
        let project_dir = state.supervisor.project_dir(&generation.id);
        let need = {
            let project_dir = project_dir.clone();
            tokio::task::spawn_blocking(move || database::need_of(&project_dir))
                .await
                .ok()
                .flatten()
        };
        let databases = state.supervisor.databases();
        // The variables previewd sets to the database, which no env file gives.
        let database_variables = need
            .as_ref()
            .map(|need| databases.variables(need))
            .unwrap_or_default();
        let database = need.map(|need| database_info(databases, need));
        let plan = match &plugin {
            Some(plugin) => {
                let plugin = plugin.clone();
                let port = *config.port_range.start();
                tokio::task::spawn_blocking(move || {
                    Project::open(&project_dir)
                        .ok()
                        .and_then(|p| plugin.launch_plan(&p, port).ok())
                })
                .await
                .ok()
                .flatten()
            }
            None => None,
        };
        let env_file = {
            let project_dir = state.supervisor.project_dir(&generation.id);
            let working_dir = plan
                .as_ref()
                .map(|p| p.working_dir.clone())
                .unwrap_or_default();
            tokio::task::spawn_blocking(move || EnvFile::find(&project_dir, &working_dir))
                .await
                .ok()
                .flatten()
                .map(|found| EnvFileInfo {
                    file: found.file.display().to_string(),
                    variables: found
                        .defaults(|name| {
                            plan.as_ref().is_some_and(|p| p.env.contains_key(name))
                                || database_variables.iter().any(|v| v == name)
                        })
                        .into_iter()
                        .map(|(name, _)| name)
                        .collect(),
                    left_out: found.left_out.into_iter().map(|(name, _)| name).collect(),
                })
        };
        let launch_command = latest
            .as_ref()
            .and_then(|p| p.launch_command.clone())
            .or_else(|| {
                plan.as_ref().map(|plan| {
                    let args: Vec<String> = plan
                        .args
                        .iter()
                        .map(|a| {
                            if *a == config.port_range.start().to_string() {
                                "$PORT".to_string()
                            } else {
                                a.clone()
                            }
                        })
                        .collect();
                    format!("{} launcher {}", plan.runtime.as_str(), args.join(" "))
                })
            });
        Ok(Config::Ok(Json(PreviewConfig {
            framework: plugin.as_ref().map(|p| p.name().to_string()),
            plugin: plugin.as_ref().map(|p| PluginRef {
                name: p.name().to_string(),
                version: p.version().to_string(),
                builtin: state
                    .supervisor
                    .registry()
                    .registered(p.name())
                    .is_some_and(|r| r.origin == registry::Origin::Builtin),
            }),
            detection_reason: generation.detection_reason.clone(),
            runtime: plan.as_ref().map(|p| p.runtime.as_str().to_string()),
            installer: state.supervisor.python_envs().installer(),
            launch_command,
            port_range: format!("{}-{}", config.port_range.start(), config.port_range.end()),
            health_check: HealthCheck {
                method: "GET".into(),
                path: plan.map(|p| p.readiness.path).unwrap_or_else(|| "/".into()),
                interval_ms: readiness::POLL_INTERVAL.as_millis() as u64,
                timeout_seconds: config.startup_timeout.as_secs(),
            },
            max_uptime_seconds: config.max_uptime.as_secs(),
            idle_timeout_seconds: config.idle_timeout.as_secs(),
            session_timeout_seconds: config.session_timeout.as_secs(),
            max_previews_per_user: config.max_previews_per_user as u64,
            limits: resource_limits(state.supervisor.limits()),
            isolation: IsolationInfo {
                mechanism: state.supervisor.isolation().mechanism().into(),
                detail: state.supervisor.isolation().summary().into(),
            },
            database,
            env_file,
        })))
    }
}

/// The `/config` view of what a project expects of a database and what it gets.
fn database_info(databases: &Databases, need: DatabaseNeed) -> DatabaseInfo {
    let (provider, provider_detail) = databases.provider(&need);
    DatabaseInfo {
        wants: need.wants.as_str().into(),
        library: need.library,
        variables: need.variables,
        parts: need
            .parts
            .into_iter()
            .map(|(variable, part)| DatabasePart {
                variable,
                part: part.as_str().into(),
            })
            .collect(),
        reason: need.reason,
        provider: provider.as_str().into(),
        provider_detail,
    }
}

/// The `/config` view of the limits.
fn resource_limits(limits: &Limits) -> ResourceLimits {
    let settings = limits.settings();
    ResourceLimits {
        mechanism: limits.mechanism(),
        detail: limits.summary().to_string(),
        memory_bytes: settings.memory.limit(),
        pids: (settings.pids > 0).then_some(settings.pids),
        cpu_cores: (settings.cpu > 0.0).then_some(settings.cpu),
        disk_bytes: settings.disk.limit(),
    }
}

/// Launches `generation` for `user` and answers as the launch operation does.
pub(super) async fn launch_generation(
    state: &AppState,
    user: &str,
    generation: GenerationRecord,
    options: LaunchOptions,
    wait: bool,
) -> ApiResult<LaunchResponse> {
    let mut record = state
        .supervisor
        .launch(&generation, options)
        .await
        .map_err(launch_error)?;
    let session = state
        .auth
        .session_token(user, &record.id, state.config.session_timeout);
    if wait {
        record = state
            .supervisor
            .wait_settled(&record.id)
            .await?
            .unwrap_or(record);
        if record.status != PreviewStatus::Running {
            let last_lines = state
                .logs
                .last_lines(&generation.id, FAILURE_TAIL)?
                .into_iter()
                .map(|l| l.into_line().line)
                .collect();
            return Err(ApiError::with_body(
                422,
                ErrorBody {
                    code: "launch_failed".into(),
                    message: record
                        .error
                        .clone()
                        .unwrap_or_else(|| format!("the preview is {}", record.status.as_str())),
                    preview_id: Some(record.id.clone()),
                    last_lines: Some(last_lines),
                },
            ));
        }
    }
    let launched = Launched {
        preview_id: record.id.clone(),
        generation_id: generation.id,
        status: record.status.into(),
        framework: record.framework.clone(),
        port: record.port,
        base_url: base_url(&record.id),
        session_token: session.token,
        session_expires_at: session.expires_at,
        expires_at: record.expires_at,
    };
    Ok(if record.status == PreviewStatus::Running {
        LaunchResponse::Running(Json(launched))
    } else {
        LaunchResponse::Accepted(Json(launched))
    })
}

pub(super) fn latest(state: &AppState, generation: &GenerationRecord) -> ApiResult<PreviewRecord> {
    state.store.latest_preview(&generation.id)?.ok_or_else(|| {
        ApiError::new(
            404,
            "no_preview",
            "this generation has not been launched yet",
        )
    })
}

pub(super) async fn status_body(
    state: &AppState,
    generation: &GenerationRecord,
    preview_id: &str,
) -> ApiResult<PreviewStatusBody> {
    let live = state.supervisor.state(preview_id).await?.ok_or_else(|| {
        ApiError::new(
            404,
            "no_preview",
            "this generation has not been launched yet",
        )
    })?;
    let record = live.record;
    let endpoint_count = routes(state, generation).await.map_or(0, |r| r.len()) as u64;
    let uptime_seconds = match (record.ready_at, record.status.is_active()) {
        (Some(ready), true) => (Utc::now() - ready).num_milliseconds() as f64 / 1000.0,
        (Some(ready), false) => record
            .ended_at
            .map_or(0.0, |end| (end - ready).num_milliseconds() as f64 / 1000.0),
        _ => 0.0,
    };
    let idle_timeout = state.config.idle_timeout;
    let idle_expires_at = state
        .supervisor
        .idle_for(&record.id)
        .filter(|_| !idle_timeout.is_zero() && record.status.is_active())
        .and_then(|idle| chrono::Duration::from_std(idle_timeout.saturating_sub(idle)).ok())
        .map(|left| Utc::now() + left);
    Ok(PreviewStatusBody {
        base_url: base_url(&record.id),
        generation_id: record.generation_id,
        expires_at: record.expires_at,
        idle_expires_at,
        preview_id: record.id,
        status: record.status.into(),
        framework: record.framework,
        port: record.port,
        started_at: record.created_at,
        uptime_seconds: uptime_seconds.max(0.0),
        memory_bytes: live.usage.rss_bytes,
        cpu_percent: live.cpu_percent,
        healthy: live.healthy,
        endpoint_count,
        exit_code: record.exit_code,
        error: record.error,
    })
}

/// The routes of a generation: the running app's own table merged with the static one.
async fn routes(
    state: &AppState,
    generation: &GenerationRecord,
) -> ApiResult<Vec<(Endpoint, Origin)>> {
    let latest = state.store.latest_preview(&generation.id)?;
    let runtime = match &latest {
        Some(preview) => state
            .supervisor
            .state(&preview.id)
            .await?
            .and_then(|s| s.runtime_routes),
        None => None,
    };
    // The plugin that runs (or ran) the preview, else the one detected at upload.
    let framework = latest
        .map(|p| p.framework)
        .or_else(|| generation.framework.clone());
    let statics = match static_routes(state, generation, framework).await {
        Ok(statics) => statics,
        // A running app's own table stands without the static one.
        Err(_) if runtime.is_some() => Arc::default(),
        Err(err) => return Err(err),
    };
    Ok(route_table::merge(runtime.as_deref(), &statics))
}

/// The routes the plugin reads from the source, computed once per generation.
async fn static_routes(
    state: &AppState,
    generation: &GenerationRecord,
    framework: Option<String>,
) -> ApiResult<Arc<Vec<Endpoint>>> {
    if let Some(routes) = state.cached_static_routes(&generation.id) {
        return Ok(routes);
    }
    let registry = state.supervisor.registry().clone();
    let project_dir = state.supervisor.project_dir(&generation.id);
    let routes = tokio::task::spawn_blocking(move || {
        let project = Project::open(&project_dir)
            .map_err(|err| ApiError::internal("reading the project", err))?;
        let plugin = framework
            .and_then(|name| registry.get(&name))
            .or_else(|| registry.detect(&project).map(|(plugin, _)| plugin))
            .ok_or_else(|| {
                ApiError::new(
                    422,
                    "no_framework_detected",
                    format!(
                        "no plugin recognises this project. Looked for: {}",
                        registry.looked_for()
                    ),
                )
            })?;
        plugin
            .routes(&project)
            .map_err(|err| ApiError::new(422, "route_extraction_failed", err.to_string()))
    })
    .await
    .map_err(|err| ApiError::internal("extracting routes", err))??;
    let routes = Arc::new(routes);
    state.cache_static_routes(&generation.id, Some(routes.clone()));
    Ok(routes)
}

/// The transparent proxy address of a preview.
pub fn base_url(preview_id: &str) -> String {
    format!("/preview/{preview_id}/")
}

fn launch_error(err: LaunchError) -> ApiError {
    let (status, code) = match &err {
        LaunchError::AlreadyActive(_) => (409, "preview_already_running"),
        LaunchError::QuotaExceeded(_) => (429, "preview_quota_exceeded"),
        LaunchError::UnknownFramework { .. } => (400, "unknown_framework"),
        LaunchError::InvalidEnv(_) => (400, "invalid_env"),
        LaunchError::NotDetected(_) => (422, "no_framework_detected"),
        LaunchError::Plan {
            source: PluginError::Failed { .. },
            ..
        } => (422, "plugin_failed"),
        LaunchError::Plan { .. } => (422, "no_entrypoint"),
        LaunchError::NoPort(_) => (503, "no_free_port"),
        LaunchError::Io(err) => return ApiError::internal("reading the project", err),
        LaunchError::Store(err) => return ApiError::internal("the database", err),
    };
    ApiError::new(status, code, err.to_string())
}
