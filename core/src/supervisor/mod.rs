//! Starts, watches and stops preview processes.
//!
//! Each launch becomes a task that owns the preview from start to end, in a tracing span of its
//! own: it provisions the runtime, spawns the launcher in a new session and in the preview's
//! cgroup (with its resource limits), streams its output into the [`LogStore`], probes
//! readiness, waits for the process to exit, a stop or a broken limit, kills the whole process
//! tree and cgroup, confirms the port is free and releases it. Every step is a `system` line in
//! the generation's log and every status change is saved and published.
//!
//! # Layout
//! - [`port_pool`]: ports checked free by binding, leased for a preview's life.
//! - [`process_tree`]: a preview's processes through `/proc`: signal them all, measure them.
//! - [`readiness`]: the HTTP readiness probe.
//! - [`line_reader`]: bounded line splitting of untrusted output.
//! - [`activity`]: a preview's last real use, for the idle timeout.
//! - [`limits`]: memory, process, CPU and disk limits: cgroups (v1 or v2) or rlimits.
//! - [`isolation`]: the preview's own namespaces and file-system view.
//! - [`launcher`]: starting a launcher process, cold or warm, in its cgroup and sandbox.
//! - [`warm`]: warm runtimes, launchers started ahead of launches.

pub mod activity;
pub mod isolation;
pub mod launcher;
pub mod limits;
pub mod line_reader;
pub mod port_pool;
pub mod process_tree;
pub mod readiness;
pub mod warm;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;
use previewd_plugin_api::{
    Detection, Endpoint, LaunchPlan, PluginError, Project, Runtime, RuntimePlugin,
};
use tokio::io::BufReader;
use tokio::process::Child;
use tokio::sync::watch;
use tracing::{info, info_span, warn, Instrument};

use crate::config::Config;
use crate::database::{self, DatabaseNeed, Databases};
use crate::env_file::{EnvFile, LeftOut};
use crate::log_store::ingest::Ingest;
use crate::log_store::{LogStore, LogStream, NewLine, StatusChange};
use crate::node_env::NodeEnvs;
use crate::python_env::PythonEnvs;
use crate::registry::Registry;
use crate::runtimes::{self, Runtimes};
pub use crate::store::LaunchOptions;
use crate::store::{GenerationRecord, PreviewRecord, PreviewStatus, Store, StoreError};
use crate::words::counted;
use activity::Activity;
use isolation::{Isolation, PreviewFolders};
use launcher::{LauncherSpec, Provisioned, Run, Spawner};
use limits::cgroup::PreviewCgroup;
use limits::{disk, Limits};
use port_pool::{PortLease, PortPool};
use process_tree::{ProcessTree, Usage};
use readiness::Probe;
use warm::{Handover, TakenOver, WarmKey, WarmMetrics, WarmPool};

/// Output lines kept in memory per preview, for the reason of a failure.
const RECENT_LINES: usize = 20;
/// How often an idle timeout looks at open log streams (use ending is exact: see [`Viewer`]).
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Bytes read from a pipe at a time.
const PIPE_BUFFER: usize = 64 * 1024;
/// How long a stopped tree may take to vanish after SIGKILL, and the port to be free again.
const KILL_CONFIRM: Duration = Duration::from_secs(3);
/// How often a preview's disk use (and OOM kills of its lesser processes) are looked at.
const LIMIT_CHECK: Duration = Duration::from_secs(2);

/// Why a launch was refused.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("a preview of this generation is already {0}; stop it first")]
    AlreadyActive(&'static str),
    #[error("you have reached the limit of {0} active preview(s) per user (starting, running or stopping); stop one first")]
    QuotaExceeded(usize),
    #[error("unknown framework `{name}`; known frameworks: {known}")]
    UnknownFramework { name: String, known: String },
    #[error("no plugin recognises this project. Looked for: {0}")]
    NotDetected(String),
    #[error("the {plugin} plugin cannot start this project: {source}")]
    Plan {
        plugin: String,
        #[source]
        source: PluginError,
    },
    #[error("invalid environment variable name `{0}`")]
    InvalidEnv(String),
    #[error(transparent)]
    NoPort(#[from] port_pool::PortsExhausted),
    #[error("reading the project: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A live view of a preview for the status endpoint.
#[derive(Debug, Clone)]
pub struct PreviewState {
    pub record: PreviewRecord,
    pub usage: Usage,
    pub cpu_percent: f64,
    pub healthy: bool,
    /// The route table the running app reported, if it did.
    pub runtime_routes: Option<Vec<Endpoint>>,
}

/// An open log stream of a generation, counted as use of its preview; see [`Supervisor::viewer`].
pub struct Viewer {
    supervisor: Supervisor,
    generation_id: String,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let inner = &self.supervisor.inner;
        {
            let mut viewers = inner.viewers.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = viewers.get_mut(&self.generation_id) {
                *count -= 1;
                if *count == 0 {
                    viewers.remove(&self.generation_id);
                }
            }
        }
        // The idle time of the preview starts when its last viewer leaves.
        for running in self.supervisor.active() {
            if running.record().generation_id == self.generation_id {
                running.activity.touch();
            }
        }
    }
}

/// A preview the supervisor is running.
struct Running {
    record: Mutex<PreviewRecord>,
    status: watch::Sender<PreviewStatus>,
    /// Set (with the reason) to ask the preview to stop.
    stop: watch::Sender<Option<String>>,
    recent: Mutex<VecDeque<String>>,
    runtime_routes: Mutex<Option<Vec<Endpoint>>>,
    /// The last CPU sample: when, and the tree's total ticks then.
    cpu_sample: Mutex<Option<(Instant, u64)>>,
    done: tokio::sync::Notify,
    activity: Activity,
    /// The preview's cgroup, once made (just before its process starts).
    cgroup: OnceLock<PreviewCgroup>,
    /// The marker its processes carry, once they run: the warm process's id when it started
    /// warm, else the preview's.
    marker: OnceLock<String>,
}

impl Running {
    fn record(&self) -> PreviewRecord {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, line: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == RECENT_LINES {
            recent.pop_front();
        }
        recent.push_back(line.to_string());
    }

    fn recent_output(&self) -> String {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The preview's cgroup (empty before it has one, or on a host without cgroups).
    fn cgroup(&self) -> PreviewCgroup {
        self.cgroup.get().cloned().unwrap_or_default()
    }

    /// The preview's processes, led by group `pgid`.
    fn tree(&self, pgid: i32) -> ProcessTree {
        let marker = match self.marker.get() {
            Some(marker) => marker.clone(),
            None => self.record().id,
        };
        ProcessTree::new(pgid, &marker).with_cgroup(self.cgroup())
    }
}

struct Inner {
    config: Config,
    databases: Databases,
    limits: Limits,
    isolation: Isolation,
    store: Store,
    logs: LogStore,
    registry: Registry,
    envs: PythonEnvs,
    node_envs: NodeEnvs,
    runtimes: Runtimes,
    ports: Arc<PortPool>,
    warm: WarmPool,
    generations_dir: PathBuf,
    previews_dir: PathBuf,
    running: Mutex<HashMap<String, Arc<Running>>>,
    /// Open log streams per generation: while a generation has any, its preview is in use.
    viewers: Mutex<HashMap<String, usize>>,
    /// Serialises the checks and bookkeeping of launches (quota, one preview per generation).
    launching: tokio::sync::Mutex<()>,
}

/// The supervisor. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

/// Everything a supervisor works with.
pub struct SupervisorParts {
    pub config: Config,
    /// Where previews' databases are made.
    pub databases: Databases,
    /// The resource limits previews get, as detected on this host.
    pub limits: Limits,
    /// How previews are isolated on this host.
    pub isolation: Isolation,
    pub store: Store,
    pub logs: LogStore,
    pub registry: Registry,
    pub envs: PythonEnvs,
    /// The cached `node_modules` installs of Node projects.
    pub node_envs: NodeEnvs,
    pub runtimes: Runtimes,
    pub generations_dir: PathBuf,
    pub previews_dir: PathBuf,
}

impl Supervisor {
    /// A supervisor; previews left `starting`/`running` by an earlier previewd are stopped
    /// (their processes killed if still there) and marked `stopped`.
    pub async fn start(parts: SupervisorParts) -> Result<Supervisor, StoreError> {
        let supervisor = Supervisor {
            inner: Arc::new(Inner {
                ports: PortPool::new(parts.config.port_range.clone()),
                warm: WarmPool::new(parts.config.warm_pool, parts.config.warm_memory),
                databases: parts.databases,
                config: parts.config,
                limits: parts.limits,
                isolation: parts.isolation,
                store: parts.store,
                logs: parts.logs,
                registry: parts.registry,
                envs: parts.envs,
                node_envs: parts.node_envs,
                runtimes: parts.runtimes,
                generations_dir: parts.generations_dir,
                previews_dir: parts.previews_dir,
                running: Mutex::default(),
                viewers: Mutex::default(),
                launching: tokio::sync::Mutex::new(()),
            }),
        };
        supervisor.recover().await?;
        supervisor.watch_warm_processes();
        Ok(supervisor)
    }

    /// What starts launcher processes.
    fn spawner(&self) -> Spawner<'_> {
        Spawner {
            limits: &self.inner.limits,
            isolation: &self.inner.isolation,
            runtimes: &self.inner.runtimes,
        }
    }

    /// Where previews' databases are made.
    pub fn databases(&self) -> &Databases {
        &self.inner.databases
    }

    /// The warm processes' counts, for `/metrics`.
    pub fn warm_metrics(&self) -> WarmMetrics {
        self.inner.warm.metrics()
    }

    /// The resource limits previews get.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// How previews are isolated.
    pub fn isolation(&self) -> &Isolation {
        &self.inner.isolation
    }

    /// The plugin registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The Python environments (for the installer's name).
    pub fn python_envs(&self) -> &PythonEnvs {
        &self.inner.envs
    }

    /// The folder holding a generation's files.
    pub fn project_dir(&self, generation_id: &str) -> PathBuf {
        self.inner.generations_dir.join(generation_id)
    }

    /// Launches a preview of `generation` for its owner.
    pub async fn launch(
        &self,
        generation: &GenerationRecord,
        options: LaunchOptions,
    ) -> Result<PreviewRecord, LaunchError> {
        let inner = &self.inner;
        if let Some(bad) = options.env.keys().find(|k| !valid_env_name(k)) {
            return Err(LaunchError::InvalidEnv(bad.clone()));
        }
        let _guard = inner.launching.lock().await;
        let active: Vec<PreviewRecord> = self.active().into_iter().map(|r| r.record()).collect();
        if let Some(same) = active.iter().find(|r| r.generation_id == generation.id) {
            return Err(LaunchError::AlreadyActive(same.status.as_str()));
        }
        let owned = active
            .iter()
            .filter(|r| r.owner == generation.owner)
            .count();
        if owned >= inner.config.max_previews_per_user {
            return Err(LaunchError::QuotaExceeded(
                inner.config.max_previews_per_user,
            ));
        }

        let project_dir = self.project_dir(&generation.id);
        let (plugin, detection, lease, plan) = {
            let registry = inner.registry.clone();
            let ports = inner.ports.clone();
            let framework = options.framework.clone();
            tokio::task::spawn_blocking(move || {
                plan_launch(&registry, &ports, &project_dir, framework.as_deref())
            })
            .await
            .map_err(|join| LaunchError::Io(std::io::Error::other(join.to_string())))??
        };

        let now = Utc::now();
        let record = PreviewRecord {
            id: uuid::Uuid::now_v7().to_string(),
            generation_id: generation.id.clone(),
            owner: generation.owner.clone(),
            status: PreviewStatus::Starting,
            framework: plugin.name().to_string(),
            port: lease.port(),
            pid: None,
            pgid: None,
            launch_command: None,
            created_at: now,
            ready_at: None,
            ended_at: None,
            exit_code: None,
            error: None,
            expires_at: now
                + chrono::Duration::from_std(inner.config.max_uptime)
                    .unwrap_or(chrono::Duration::MAX),
            options: options.clone(),
            warm_id: None,
        };
        inner.store.put_preview(&record).await?;
        let running = Arc::new(Running {
            record: Mutex::new(record.clone()),
            status: watch::channel(PreviewStatus::Starting).0,
            stop: watch::channel(None).0,
            recent: Mutex::default(),
            runtime_routes: Mutex::default(),
            cpu_sample: Mutex::default(),
            done: tokio::sync::Notify::new(),
            activity: Activity::default(),
            cgroup: OnceLock::new(),
            marker: OnceLock::new(),
        });
        inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.id.clone(), running.clone());
        self.publish(&record);

        let span = info_span!("preview", id = %record.id, generation = %generation.id, framework = %record.framework, port = lease.port());
        let run = PreviewRun {
            supervisor: self.clone(),
            running,
            plan,
            lease: Some(lease),
            detection,
            options,
            expired: Default::default(),
            no_database: Default::default(),
        };
        tokio::spawn(run.run().instrument(span));
        Ok(record)
    }

    /// Waits until the preview has left `starting`, and returns its record then.
    pub async fn wait_settled(
        &self,
        preview_id: &str,
    ) -> Result<Option<PreviewRecord>, StoreError> {
        if let Some(running) = self.running(preview_id) {
            let mut status = running.status.subscribe();
            // An error means the run ended; its record is final in the store.
            let _ = status.wait_for(|s| *s != PreviewStatus::Starting).await;
            if *status.borrow() != PreviewStatus::Stopping {
                return Ok(Some(running.record()));
            }
        }
        self.inner.store.preview(preview_id)
    }

    /// Stops a preview and waits until it is stopped. Harmless on a preview that is not running.
    pub async fn stop(&self, preview_id: &str, reason: &str) {
        let Some(running) = self.running(preview_id) else {
            return;
        };
        let done = running.done.notified();
        running.stop.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason.to_string());
                true
            } else {
                false
            }
        });
        if self.running(preview_id).is_some() {
            done.await;
        }
    }

    /// Stops every preview and ends the warm processes (server shutdown).
    pub async fn stop_all(&self, reason: &str) {
        let ids: Vec<String> = self.active().iter().map(|r| r.record().id).collect();
        let stops = ids.iter().map(|id| self.stop(id, reason));
        futures_util::future::join_all(stops).await;
        self.retire_all_warm().await;
    }

    /// The current state of a preview: its record, and for a live one its resource use.
    pub async fn state(&self, preview_id: &str) -> Result<Option<PreviewState>, StoreError> {
        let Some(running) = self.running(preview_id) else {
            return Ok(self
                .inner
                .store
                .preview(preview_id)?
                .map(|record| PreviewState {
                    record,
                    usage: Usage::default(),
                    cpu_percent: 0.0,
                    healthy: false,
                    runtime_routes: None,
                }));
        };
        let record = running.record();
        let usage = match record.pgid {
            Some(pgid) => {
                let tree = running.tree(pgid);
                tokio::task::spawn_blocking(move || tree.usage())
                    .await
                    .unwrap_or_default()
            }
            None => Usage::default(),
        };
        let cpu_percent = {
            let mut sample = running
                .cpu_sample
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let percent = match *sample {
                Some((at, ticks)) if now > at => {
                    let used = usage.cpu_ticks.saturating_sub(ticks) as f64
                        / process_tree::clock_ticks_per_second() as f64;
                    100.0 * used / now.duration_since(at).as_secs_f64()
                }
                _ => 0.0,
            };
            *sample = Some((now, usage.cpu_ticks));
            (percent * 10.0).round() / 10.0
        };
        let healthy = record.status == PreviewStatus::Running
            && tokio::net::TcpStream::connect(("127.0.0.1", record.port))
                .await
                .is_ok();
        let runtime_routes = running
            .runtime_routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok(Some(PreviewState {
            record,
            usage,
            cpu_percent,
            healthy,
            runtime_routes,
        }))
    }

    /// Ports currently leased (for `/metrics`).
    pub fn leased_ports(&self) -> usize {
        self.inner.ports.leased()
    }

    /// Previews being run now.
    pub fn active_count(&self) -> usize {
        self.active().len()
    }

    fn active(&self) -> Vec<Arc<Running>> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Records real use of a preview (a proxied request, an envelope call, a keepalive), which
    /// pushes back its idle timeout. Unknown or ended previews are ignored.
    pub fn touch(&self, preview_id: &str) {
        if let Some(running) = self.running(preview_id) {
            running.activity.touch();
        }
    }

    /// Counts an open log stream of a generation as use of its preview until the returned guard
    /// is dropped.
    pub fn viewer(&self, generation_id: &str) -> Viewer {
        *self
            .inner
            .viewers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(generation_id.to_string())
            .or_default() += 1;
        Viewer {
            supervisor: self.clone(),
            generation_id: generation_id.to_string(),
        }
    }

    fn viewed(&self, generation_id: &str) -> bool {
        self.inner
            .viewers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(generation_id)
    }

    /// How long a preview this supervisor runs has gone unused.
    pub fn idle_for(&self, preview_id: &str) -> Option<Duration> {
        self.running(preview_id).map(|r| r.activity.idle_for())
    }

    /// The port and status of a preview this supervisor runs (None once it ended): the cheap
    /// lookup the proxy makes per request.
    pub fn upstream(&self, preview_id: &str) -> Option<(u16, PreviewStatus)> {
        let running = self.running(preview_id)?;
        let status = *running.status.borrow();
        let port = running
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .port;
        Some((port, status))
    }

    fn running(&self, preview_id: &str) -> Option<Arc<Running>> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(preview_id)
            .cloned()
    }

    fn system(&self, generation_id: &str, line: impl Into<String>) {
        let line = line.into();
        info!(target: "previewd::preview", "{line}");
        if let Err(err) = self
            .inner
            .logs
            .append(generation_id, LogStream::System, line)
        {
            warn!("storing a log line: {err}");
        }
    }

    fn publish(&self, record: &PreviewRecord) {
        self.inner.logs.publish_status(
            &record.generation_id,
            StatusChange {
                preview_id: record.id.clone(),
                status: record.status,
                ts: Utc::now(),
                exit_code: record.exit_code,
                error: record.error.clone(),
            },
        );
    }

    /// Marks previews an earlier previewd left active as stopped, killing what is left of them,
    /// and kills the warm processes it left.
    async fn recover(&self) -> Result<(), StoreError> {
        let store = &self.inner.store;
        for mut record in store.previews_where(|p| p.status.is_active())? {
            // Saved as stopped only once reality agrees: no process left, the port free.
            let marker = record.warm_id.clone().unwrap_or_else(|| record.id.clone());
            let killed = self
                .kill_leftovers(&marker, record.pgid, Some(record.port))
                .await;
            let reason = "previewd restarted while this preview was active; it was stopped";
            record.status = PreviewStatus::Stopped;
            record.ended_at = Some(Utc::now());
            record.error = Some(reason.to_string());
            store.put_preview(&record).await?;
            self.system(
                &record.generation_id,
                match killed {
                    0 => format!("{reason} (no process of it was left)"),
                    1 => format!("{reason} (1 leftover process killed)"),
                    n => format!("{reason} ({n} leftover processes killed)"),
                },
            );
        }
        for warm in store.warm()? {
            let killed = self.kill_leftovers(&warm.id, Some(warm.pgid), None).await;
            info!(
                "killed {killed} leftover process(es) of warm process {}",
                warm.id
            );
            self.forget_warm(&warm.id).await?;
        }
        Ok(())
    }

    /// Kills what is left of the processes marked `marker` (led by group `pgid`, if it is
    /// still theirs: a pid can be reused) and of their cgroup; waits until none is left and
    /// `port` is free (up to [`KILL_CONFIRM`]), then removes the cgroup. How many it killed.
    async fn kill_leftovers(&self, marker: &str, pgid: Option<i32>, port: Option<u16>) -> usize {
        // The recorded group when its leader is still the preview's, else whatever carries
        // the marker: a crash may have come before the pid was saved.
        let tree = match pgid {
            Some(pgid) if process_tree::is_preview_process(pgid, marker) => {
                ProcessTree::new(pgid, marker)
            }
            _ => ProcessTree::marked(marker),
        };
        let cgroup = self.inner.limits.existing(marker);
        self.kill_and_confirm(tree.with_cgroup(cgroup.clone()), cgroup, port)
            .await
    }

    /// SIGKILLs every process of `tree`, waits until none is left and `port` is free (up to
    /// [`KILL_CONFIRM`]), then removes `cgroup`. How many it killed.
    async fn kill_and_confirm(
        &self,
        tree: ProcessTree,
        cgroup: PreviewCgroup,
        port: Option<u16>,
    ) -> usize {
        let killed = tree.signal(Signal::SIGKILL);
        let confirm_until = Instant::now() + KILL_CONFIRM;
        loop {
            let tree = tree.clone();
            let gone = tokio::task::spawn_blocking(move || {
                tree.pids().is_empty() && port.is_none_or(port_pool::is_free)
            })
            .await
            .unwrap_or(false);
            if gone || Instant::now() >= confirm_until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // The cgroup goes once the kernel has finished its processes (removal retries).
        match tokio::task::spawn_blocking(move || cgroup.remove()).await {
            Ok(Err(err)) => warn!("{err}"),
            Err(err) => warn!("removing a cgroup: {err}"),
            Ok(Ok(())) => {}
        }
        killed
    }
}

/// Picks the plugin, leases a port and makes the plan; blocking (reads the project).
fn plan_launch(
    registry: &Registry,
    ports: &Arc<PortPool>,
    project_dir: &Path,
    framework: Option<&str>,
) -> Result<(Arc<dyn RuntimePlugin>, Detection, PortLease, LaunchPlan), LaunchError> {
    let project = Project::open(project_dir)?;
    let (plugin, detection) = match framework {
        Some(name) => {
            let plugin = registry
                .get(name)
                .ok_or_else(|| LaunchError::UnknownFramework {
                    name: name.to_string(),
                    known: registry.names().join(", "),
                })?;
            let detection = Detection {
                confidence: 1.0,
                reason: format!("framework `{}` chosen at launch", plugin.name()),
            };
            (plugin, detection)
        }
        None => registry
            .detect(&project)
            .ok_or_else(|| LaunchError::NotDetected(registry.looked_for()))?,
    };
    let lease = ports.acquire()?;
    let plan = plugin
        .launch_plan(&project, lease.port())
        .map_err(|source| LaunchError::Plan {
            plugin: plugin.name().to_string(),
            source,
        })?;
    Ok((plugin, detection, lease, plan))
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0']) && !name.starts_with("PREVIEWD_")
}

/// How a run ended, before the final bookkeeping.
struct Outcome {
    status: PreviewStatus,
    exit_code: Option<i32>,
    error: Option<String>,
}

/// One preview's life, owned by its task.
struct PreviewRun {
    supervisor: Supervisor,
    running: Arc<Running>,
    plan: LaunchPlan,
    /// The preview's port, held until the process tree is gone and the port is free.
    lease: Option<PortLease>,
    detection: Detection,
    options: LaunchOptions,
    /// Set when the preview is stopped for its maximum uptime or idle timeout: its database
    /// goes with it.
    expired: std::sync::atomic::AtomicBool,
    /// Why the app got no database though its project wants one ("none: mongoose needs
    /// MongoDB; start previewd with --mongodb-url ..."): said again when it fails to start.
    no_database: std::sync::OnceLock<String>,
}

impl PreviewRun {
    async fn run(self) {
        let record = self.running.record();
        self.system(format!(
            "launching {} preview {} on port {}: {}",
            record.framework, record.id, record.port, self.detection.reason
        ));
        let outcome = self.start_and_watch().await;
        self.finish(outcome).await;
    }

    fn system(&self, line: impl Into<String>) {
        let generation_id = self.running.record().generation_id;
        self.supervisor.system(&generation_id, line);
    }

    fn stop_requested(&self) -> Option<String> {
        self.running.stop.borrow().clone()
    }

    async fn update(&self, change: impl FnOnce(&mut PreviewRecord)) {
        let record = {
            let mut record = self
                .running
                .record
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            change(&mut record);
            record.clone()
        };
        if let Err(err) = self.supervisor.inner.store.put_preview(&record).await {
            warn!("saving preview {}: {err}", record.id);
        }
        if *self.running.status.borrow() != record.status {
            self.running.status.send_replace(record.status);
            self.supervisor.publish(&record);
        }
    }

    async fn start_and_watch(&self) -> Outcome {
        let mut stop = self.running.stop.subscribe();
        let need = self.database_need().await;
        let provisioned = tokio::select! {
            provisioned = self.provision(need.as_ref()) => provisioned,
            _ = until_stop_requested(&mut stop) => Err("stopped while installing dependencies".to_string()),
        };
        let provisioned = match provisioned {
            Ok(provisioned) => provisioned,
            Err(error) => return self.stopped_or_failed(error),
        };
        if let Some(reason) = self.stop_requested() {
            return self.stopped_or_failed(reason);
        }
        let database = match self.database(need.as_ref()).await {
            Ok(env) => env,
            Err(error) => return failed(None, error),
        };
        let given = self.given(database).await;
        if self.options.migrate {
            if let Err(error) = self.migrate(&provisioned, &given).await {
                return self.stopped_or_failed(error);
            }
        } else if !self.plan.migrate.is_empty() {
            self.system(format!(
                "migrate: not asked at this launch; \"migrate\": true applies the project's migrations ({})",
                self.plan.migrate.join(" ")
            ));
        }
        let (mut child, stdout, stderr) = match self.start(&provisioned, &given).await {
            Ok(started) => started,
            Err(error) => {
                self.remove_cgroup().await;
                return failed(None, error);
            }
        };
        let readers = self.read_output([(LogStream::Stdout, stdout), (LogStream::Stderr, stderr)]);
        let outcome = self.watch(&mut child, &mut stop).await;
        self.kill_tree(&mut child, outcome.status == PreviewStatus::Stopping)
            .await;
        // Let the readers store the last lines the app wrote before its pipes closed.
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            futures_util::future::join_all(readers),
        )
        .await;
        self.remove_cgroup().await;
        let exit_code = match child.try_wait() {
            Ok(Some(status)) => exit_code(status),
            _ => None,
        };
        Outcome {
            status: if outcome.status == PreviewStatus::Stopping {
                PreviewStatus::Stopped
            } else {
                outcome.status
            },
            exit_code: outcome.exit_code.or(exit_code),
            error: outcome.error,
        }
    }

    fn stopped_or_failed(&self, error: String) -> Outcome {
        match self.stop_requested() {
            Some(reason) => Outcome {
                status: PreviewStatus::Stopped,
                exit_code: None,
                error: Some(reason),
            },
            None => failed(None, error),
        }
    }

    /// Prepares the runtime: the interpreter to run the launcher with, and its environment,
    /// with what the database previewd gives the app needs (`need`, [`Self::database_need`]).
    async fn provision(&self, need: Option<&DatabaseNeed>) -> Result<Provisioned, String> {
        let inner = &self.supervisor.inner;
        let project_dir = self
            .supervisor
            .project_dir(&self.running.record().generation_id);
        match self.plan.runtime {
            Runtime::Python => {
                let manifests: Vec<PathBuf> = self
                    .plan
                    .requirements
                    .iter()
                    .map(|m| project_dir.join(m))
                    .collect();
                let logs = inner.logs.clone();
                let generation_id = self.running.record().generation_id;
                let progress = move |line: String| {
                    let _ = logs.append(&generation_id, LogStream::System, line);
                };
                let mut requirements =
                    runtimes::python_requirements(&self.running.record().framework).to_string();
                let for_database = need.map(|need| inner.databases.python_packages(need));
                for package in for_database.unwrap_or_default() {
                    self.system(format!(
                        "database: installing {package} too, the driver the app's async engine needs on the SQLite file"
                    ));
                    requirements.push_str(&format!("{package}\n"));
                }
                let env = inner
                    .envs
                    .ensure(&requirements, &manifests, &project_dir, &progress)
                    .await
                    .map_err(|err| format!("installing dependencies failed: {err}"))?;
                Ok(Provisioned {
                    env_dir: env
                        .python
                        .parent()
                        .and_then(Path::parent)
                        .map(Path::to_path_buf),
                    interpreter: env.python,
                })
            }
            Runtime::Node => {
                let package_json = self
                    .plan
                    .requirements
                    .first()
                    .map(|m| project_dir.join(m))
                    .unwrap_or_else(|| {
                        project_dir
                            .join(&self.plan.working_dir)
                            .join("package.json")
                    });
                let logs = inner.logs.clone();
                let generation_id = self.running.record().generation_id;
                let progress = move |line: String| {
                    let _ = logs.append(&generation_id, LogStream::System, line);
                };
                let env = inner
                    .node_envs
                    .ensure(
                        &package_json,
                        &project_dir.join(&self.plan.working_dir),
                        &progress,
                    )
                    .await
                    .map_err(|err| format!("installing dependencies failed: {err}"))?;
                Ok(Provisioned {
                    interpreter: env.node,
                    env_dir: env.node_modules,
                })
            }
        }
    }

    /// Starts the app: in a warm process when one fits, else cold. Its process, stdout and
    /// stderr.
    async fn start(
        &self,
        provisioned: &Provisioned,
        given: &BTreeMap<String, String>,
    ) -> Result<(Child, Pipe, Pipe), String> {
        let inner = &self.supervisor.inner;
        let record = self.running.record();
        let project_dir = self.supervisor.project_dir(&record.generation_id);
        let work_dir = project_dir.join(&self.plan.working_dir);
        let scratch = inner.previews_dir.join(&record.id);
        let key = WarmKey::new(
            self.plan.runtime,
            provisioned,
            &record.framework,
            &self.plan.preload,
        );
        let startup_variable =
            warm::start_up_variable(self.plan.env.keys().chain(self.options.env.keys()));
        let shadowed = match self.plan.runtime {
            Runtime::Python => warm::shadowed_preload(&self.plan.preload, &work_dir),
            Runtime::Node => None,
        };
        let taken = match (startup_variable, shadowed) {
            (Some(name), _) => Err(format!(
                "{name} in the launch's environment is read when the interpreter starts"
            )),
            (None, Some(module)) => Err(format!(
                "the project has a module `{module}` of its own, which a warm process has imported from the environment"
            )),
            (None, None) => self.supervisor.take_warm(&key),
        };
        let cold_reason = match taken {
            Ok(slot) => {
                let env = self.app_env(provisioned, &scratch, &slot.id, given)?;
                let handover = Handover {
                    folders: [&project_dir, &scratch],
                    cwd: &work_dir,
                    args: &self.plan.args,
                    env: &env,
                };
                match self.supervisor.hand_over(&key, slot, handover).await {
                    Ok(warm) => return Ok(self.started_warm(warm, &work_dir).await),
                    Err(err) => format!("the warm process could not take the project: {err}"),
                }
            }
            Err(reason) => reason,
        };
        inner.warm.count_cold();
        self.system(format!("cold start: {cold_reason}"));
        let cgroup = inner
            .limits
            .create(&record.id)
            .map_err(|err| format!("setting up the preview's cgroup: {err}"))?;
        let _ = self.running.cgroup.set(cgroup.clone());
        let run = Run::Launcher(&self.plan.args);
        let mut launched = self.spawn_cold(provisioned, run, &cgroup, &record.id, given)?;
        let pid = launched.child.id().unwrap_or_default();
        let stdout = launched.child.stdout.take().map(|p| Box::new(p) as Pipe);
        let stderr = launched.child.stderr.take().map(|p| Box::new(p) as Pipe);
        self.started(pid, &launched.command, &work_dir, None).await;
        match (stdout, stderr) {
            (Some(stdout), Some(stderr)) => Ok((launched.child, stdout, stderr)),
            _ => Err("the app's output pipes were not set up".into()),
        }
    }

    /// What the app's project expects of a database ([`database::need_of`]); `None` when it
    /// uses none previewd knows, or when the launch points it at a database itself, by any
    /// variable the project reads or previewd would set (a URL, a split one, libpq's), which
    /// then wins whole: no mix of its settings and ours.
    async fn database_need(&self) -> Option<DatabaseNeed> {
        let project_dir = self
            .supervisor
            .project_dir(&self.running.record().generation_id);
        let need = tokio::task::spawn_blocking(move || database::need_of(&project_dir))
            .await
            .ok()
            .flatten()?;
        let read = need
            .variables
            .iter()
            .chain(need.parts.iter().map(|(name, _)| name));
        let provided = self.supervisor.inner.databases.variables(&need);
        let watched: Vec<String> = read.cloned().chain(provided).collect();
        if let Some(given) = watched.iter().find(|v| self.options.env.contains_key(*v)) {
            self.system(format!(
                "database: {given} is set at launch, so previewd provides none"
            ));
            return None;
        }
        Some(need)
    }

    /// The variables pointing the app at its database for `need` ([`database`]): empty
    /// without one.
    async fn database(
        &self,
        need: Option<&DatabaseNeed>,
    ) -> Result<BTreeMap<String, String>, String> {
        let Some(need) = need else {
            return Ok(BTreeMap::new());
        };
        let record = self.running.record();
        let project_dir = self.supervisor.project_dir(&record.generation_id);
        let work_dir = project_dir.join(&self.plan.working_dir);
        let databases = &self.supervisor.inner.databases;
        match databases
            .provide(&record.generation_id, need, &work_dir)
            .await
        {
            Ok(Some(provided)) => {
                self.system(provided.summary);
                Ok(provided.env)
            }
            Ok(None) => {
                let (_, why) = databases.provider(need);
                self.system(format!("database: {why} ({})", need.reason));
                let _ = self.no_database.set(why);
                Ok(BTreeMap::new())
            }
            Err(err) => Err(format!("preparing the preview's database failed: {err}")),
        }
    }

    /// The variables previewd gives the app beside the plan's and the launch's: its project's
    /// env file's as defaults ([`EnvFile`]: not those the plan, the database, the launch or
    /// previewd itself set), and `database`'s.
    async fn given(&self, database: BTreeMap<String, String>) -> BTreeMap<String, String> {
        let project_dir = self
            .supervisor
            .project_dir(&self.running.record().generation_id);
        let working_dir = self.plan.working_dir.clone();
        let found = tokio::task::spawn_blocking(move || EnvFile::find(&project_dir, &working_dir))
            .await
            .ok()
            .flatten();
        let mut given = BTreeMap::new();
        if let Some(found) = found {
            let taken = found.defaults(|name| {
                self.plan.env.contains_key(name)
                    || database.contains_key(name)
                    || self.options.env.contains_key(name)
            });
            if !taken.is_empty() {
                let names: Vec<&str> = taken.iter().map(|(name, _)| name.as_str()).collect();
                self.system(format!(
                    "env: {} from {} as defaults: {}",
                    counted(names.len(), "variable"),
                    found.file.display(),
                    names.join(", ")
                ));
            }
            for why in LeftOut::ALL {
                let names: Vec<&str> = found
                    .left_out
                    .iter()
                    .filter(|(_, left)| *left == why)
                    .map(|(name, _)| name.as_str())
                    .collect();
                if !names.is_empty() {
                    self.system(format!(
                        "env: {} in {} left out: {} (the launch's env can set them)",
                        names.join(", "),
                        found.file.display(),
                        why.describe()
                    ));
                }
            }
            given.extend(taken);
        }
        given.extend(database);
        given
    }

    /// Drops the generation's PostgreSQL or MongoDB database, if it has one (an expired
    /// preview's).
    async fn drop_database(&self) {
        let generation_id = self.running.record().generation_id;
        match self
            .supervisor
            .inner
            .databases
            .drop_generation(&generation_id)
            .await
        {
            Ok(true) => self.system("database: dropped with the expired preview"),
            Ok(false) => {}
            Err(err) => self.system(format!("database: dropping it failed: {err}")),
        }
    }

    /// Applies the project's migrations (the plugin's `migrate` command) with the app's
    /// interpreter, environment, database, limits and sandbox, its output as `system` lines.
    async fn migrate(
        &self,
        provisioned: &Provisioned,
        given: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let inner = &self.supervisor.inner;
        let record = self.running.record();
        if self.plan.migrate.is_empty() {
            self.system(format!(
                "migrate: the {} plugin knows no migration tool for this project; nothing applied",
                record.framework
            ));
            return Ok(());
        }
        let marker = format!("{}-migrate", record.id);
        let cgroup = inner
            .limits
            .create(&marker)
            .map_err(|err| format!("setting up the migration's cgroup: {err}"))?;
        let run = Run::Interpreter(&self.plan.migrate);
        let spawned = self.spawn_cold(provisioned, run, &cgroup, &marker, given);
        let mut launched = match spawned {
            Ok(launched) => launched,
            Err(err) => {
                let _ = cgroup.remove();
                return Err(err);
            }
        };
        let pgid = launched.child.id().and_then(|pid| i32::try_from(pid).ok());
        self.system(format!("migrating: {}", launched.command));
        let pipes = [
            launched.child.stdout.take().map(|p| Box::new(p) as Pipe),
            launched.child.stderr.take().map(|p| Box::new(p) as Pipe),
        ];
        let readers = pipes.into_iter().flatten().map(|pipe| {
            let supervisor = self.supervisor.clone();
            let running = self.running.clone();
            async move {
                let pipe = BufReader::with_capacity(PIPE_BUFFER, pipe);
                let mut lines = line_reader::Lines::new(pipe, line_reader::MAX_LINE_BYTES);
                while let Some(line) = lines.next_line().await {
                    running.remember(&line);
                    supervisor.system(&running.record().generation_id, line);
                }
            }
        });
        let output = futures_util::future::join_all(readers);
        let mut stop = self.running.stop.subscribe();
        let timeout = inner.config.startup_timeout;
        let outcome = tokio::select! {
            (status, _) = async { tokio::join!(launched.child.wait(), output) } => match status {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(format!(
                    "the migrations failed{}. Their last output:\n{}",
                    exit_code(status).map(|c| format!(" (exit code {c})")).unwrap_or_default(),
                    self.running.recent_output()
                )),
                Err(err) => Err(format!("waiting for the migrations: {err}")),
            },
            _ = until_stop_requested(&mut stop) => Err("stopped while migrating".to_string()),
            _ = tokio::time::sleep(timeout) => Err(format!(
                "the migrations did not finish within {}",
                humantime::format_duration(timeout)
            )),
        };
        // Whatever the migration left (on a stop or a timeout): its group, marker and cgroup.
        let tree = match pgid {
            Some(pgid) => ProcessTree::new(pgid, &marker),
            None => ProcessTree::marked(&marker),
        };
        self.supervisor
            .kill_and_confirm(tree.with_cgroup(cgroup.clone()), cgroup, None)
            .await;
        if outcome.is_ok() {
            self.system("migrations applied");
        }
        outcome
    }

    /// Starts `run` fresh in the project's working dir, with the app's environment (its
    /// processes marked `marker`), in `cgroup` and the preview's sandbox.
    fn spawn_cold(
        &self,
        provisioned: &Provisioned,
        run: Run,
        cgroup: &PreviewCgroup,
        marker: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<launcher::Launched, String> {
        let record = self.running.record();
        let project_dir = self.supervisor.project_dir(&record.generation_id);
        let work_dir = project_dir.join(&self.plan.working_dir);
        let scratch = self.supervisor.inner.previews_dir.join(&record.id);
        let env = self.app_env(provisioned, &scratch, marker, given)?;
        self.supervisor.spawner().spawn(LauncherSpec {
            runtime: self.plan.runtime,
            provisioned,
            run,
            cwd: &work_dir,
            env: &env,
            cgroup,
            folders: PreviewFolders {
                project_dir: Some(&project_dir),
                scratch_dir: &scratch,
                env_dir: provisioned.env_dir.as_deref(),
                work_dir: &work_dir,
            },
            stdin: false,
        })
    }

    /// Takes on a warm process that took the project as the preview's.
    async fn started_warm(&self, warm: TakenOver, work_dir: &Path) -> (Child, Pipe, Pipe) {
        let _ = self.running.cgroup.set(warm.cgroup);
        let _ = self.running.marker.set(warm.id.clone());
        let modules = match self.plan.preload.as_slice() {
            [] => "its serving module".to_string(),
            modules => modules.join(", "),
        };
        self.system(format!(
            "warm start: process {} (started {:.1} s ago, {modules} pre-imported) takes the project",
            warm.pid,
            warm.age.as_secs_f64()
        ));
        // Saved as the preview's before it is forgotten as a warm process, so a crash in
        // between leaves it findable by the restarted previewd.
        self.started(warm.pid, &warm.command, work_dir, Some(warm.id.clone()))
            .await;
        if let Err(err) = self.supervisor.inner.store.remove_warm(&warm.id).await {
            warn!("forgetting warm process {}: {err}", warm.id);
        }
        (warm.child, warm.stdout, warm.stderr)
    }

    /// Saves and logs the app's process.
    async fn started(&self, pid: u32, command: &str, work_dir: &Path, warm_id: Option<String>) {
        let inner = &self.supervisor.inner;
        self.update(|r| {
            r.pid = Some(pid);
            r.pgid = i32::try_from(pid).ok();
            r.launch_command = Some(command.to_string());
            r.warm_id = warm_id;
        })
        .await;
        self.system(format!(
            "started process {pid} in {}: {command}",
            work_dir.display()
        ));
        self.system(inner.limits.describe(self.plan.runtime));
        self.system(inner.isolation.describe());
    }

    /// The app's whole environment, its processes marked `marker`: the base, the plan's
    /// variables, those previewd `given` ([`Self::given`]), the launch's, then previewd's own.
    fn app_env(
        &self,
        provisioned: &Provisioned,
        scratch: &Path,
        marker: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, OsString>, String> {
        let record = self.running.record();
        let mut env =
            self.supervisor
                .spawner()
                .base_env(self.plan.runtime, provisioned, scratch, marker)?;
        let launch_env = self.plan.env.iter().chain(given).chain(&self.options.env);
        for (key, value) in launch_env {
            env.insert(key.clone(), value.into());
        }
        let project_dir = self.supervisor.project_dir(&record.generation_id);
        env.insert("PORT".into(), record.port.to_string().into());
        env.insert("HOST".into(), "127.0.0.1".into());
        env.insert(
            "PREVIEWD_ROUTES_FILE".into(),
            scratch.join("routes.json").into(),
        );
        env.insert("PREVIEWD_PROJECT_ROOT".into(), project_dir.into());
        Ok(env)
    }

    fn read_output(&self, pipes: [(LogStream, Pipe); 2]) -> Vec<tokio::task::JoinHandle<()>> {
        let generation_id = self.running.record().generation_id;
        let mut readers = Vec::new();
        let (ingest, writer) =
            Ingest::start(self.supervisor.inner.logs.clone(), generation_id.clone());
        for (stream, pipe) in pipes {
            let running = self.running.clone();
            let ingest = ingest.clone();
            readers.push(tokio::spawn(async move {
                let pipe = BufReader::with_capacity(PIPE_BUFFER, pipe);
                let mut lines = line_reader::Lines::new(pipe, line_reader::MAX_LINE_BYTES);
                while let Some(line) = lines.next_line().await {
                    running.remember(&line);
                    if !ingest.push(NewLine::now(stream, line)).await {
                        break;
                    }
                }
            }));
        }
        // The writer ends once both readers have, after storing their last lines.
        readers.push(writer);
        readers
    }

    /// " It got no database, which its project wants: none: ... ." when previewd could not
    /// give it the one its project wants, a likely cause of a failed start; empty otherwise.
    fn no_database_note(&self) -> String {
        self.no_database
            .get()
            .map(|why| format!(" It got no database, which its project wants: {why}."))
            .unwrap_or_default()
    }

    /// Probes readiness, then waits for the exit, a stop or the end of the preview's time.
    async fn watch(
        &self,
        child: &mut Child,
        stop: &mut watch::Receiver<Option<String>>,
    ) -> Outcome {
        let inner = &self.supervisor.inner;
        let port = self.running.record().port;
        let started = Instant::now();
        let probe = Probe::new(port, &self.plan.readiness.path);
        let deadline = tokio::time::sleep(inner.config.startup_timeout);
        let limits = self.enforce_limits();
        tokio::pin!(limits);
        tokio::select! {
            exit = child.wait() => {
                let code = exit.ok().and_then(exit_code);
                return self.exited(code, format!(
                    "the app exited{} before answering HTTP on port {port}.{} Its last output:\n{}",
                    code.map(|c| format!(" with code {c}")).unwrap_or_default(),
                    self.no_database_note(),
                    self.running.recent_output()
                ));
            }
            error = &mut limits => return failed(None, error),
            _ = until_stop_requested(stop) => return self.stopping().await,
            _ = deadline => {
                return failed(None, format!(
                    "the app did not answer HTTP on port {port} within {}; is it listening on the port given in $PORT?{} Its last output:\n{}",
                    humantime::format_duration(inner.config.startup_timeout),
                    self.no_database_note(),
                    self.running.recent_output()
                ));
            }
            status = probe.wait_ready() => {
                self.system(format!(
                    "health check passed: GET {} answered {status} {:.2} s after start",
                    self.plan.readiness.path,
                    started.elapsed().as_secs_f64()
                ));
            }
        }
        if let Err(err) = inner.limits.limit_cpu(&self.running.cgroup()) {
            self.system(format!("the CPU limit could not be set: {err}"));
        }
        self.load_runtime_routes().await;
        self.update(|r| {
            r.status = PreviewStatus::Running;
            r.ready_at = Some(Utc::now());
        })
        .await;
        // Idle time counts from the moment there is something to use.
        self.running.activity.touch();
        let expires_in = (self.running.record().expires_at - Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            exit = child.wait() => {
                let code = exit.ok().and_then(exit_code);
                let error = format!(
                    "the app exited{} on its own. Its last output:\n{}",
                    code.map(|c| format!(" with code {c}")).unwrap_or_default(),
                    self.running.recent_output()
                );
                self.exited(code, error)
            }
            error = &mut limits => failed(None, error),
            _ = until_stop_requested(stop) => self.stopping().await,
            _ = tokio::time::sleep(expires_in) => {
                self.expired.store(true, std::sync::atomic::Ordering::Relaxed);
                self.running.stop.send_replace(Some(format!(
                    "stopped after the maximum uptime of {}",
                    humantime::format_duration(inner.config.max_uptime)
                )));
                self.stopping().await
            }
            idle = self.until_idle() => {
                self.expired.store(true, std::sync::atomic::Ordering::Relaxed);
                self.running.stop.send_replace(Some(format!(
                    "stopped after {} without use (no proxied or envelope request, no keepalive, no open log stream)",
                    humantime::format_duration(idle)
                )));
                self.stopping().await
            }
        }
    }

    /// How an app that exited on its own failed: out of memory when the kernel killed any of
    /// its processes for it, else `error`.
    fn exited(&self, code: Option<i32>, error: String) -> Outcome {
        if self.running.cgroup().oom_kills().unwrap_or(0) > 0 {
            return failed(code, self.supervisor.inner.limits.oom_reason());
        }
        failed(code, error)
    }

    /// Resolves with the error to fail with once the preview takes more disk than its limit
    /// (measured every [`LIMIT_CHECK`]); meanwhile says in the log when the kernel kills one of
    /// its processes for memory while the app lives on. Never resolves without a disk limit.
    async fn enforce_limits(&self) -> String {
        let limits = &self.supervisor.inner.limits;
        let cgroup = self.running.cgroup();
        let disk_limit = limits.settings().disk.limit();
        if disk_limit.is_none() && cgroup.oom_kills().is_none() {
            return std::future::pending().await;
        }
        let record = self.running.record();
        let dirs = vec![
            self.supervisor.project_dir(&record.generation_id),
            self.supervisor.inner.previews_dir.join(&record.id),
        ];
        let mut oom_kills = 0;
        loop {
            tokio::time::sleep(LIMIT_CHECK).await;
            let kills = cgroup.oom_kills().unwrap_or(0);
            if kills > oom_kills {
                let limit = match limits.settings().memory.limit() {
                    Some(_) => format!(" (limit {})", limits.settings().memory),
                    None => String::new(),
                };
                self.system(format!(
                    "out of memory: the kernel killed {} process(es) of the preview{limit}",
                    kills - oom_kills
                ));
                oom_kills = kills;
            }
            let Some(limit) = disk_limit else {
                continue;
            };
            let measured = dirs.clone();
            let used = tokio::task::spawn_blocking(move || disk::usage(&measured))
                .await
                .unwrap_or_default();
            if used > limit {
                self.system(format!(
                    "disk limit exceeded: the project and scratch folders take {:.1} MiB (limit {})",
                    used as f64 / (1u64 << 20) as f64,
                    limits.settings().disk
                ));
                return limits.disk_reason();
            }
        }
    }

    /// Removes the preview's cgroup once its processes are gone.
    async fn remove_cgroup(&self) {
        let cgroup = self.running.cgroup();
        match tokio::task::spawn_blocking(move || cgroup.remove()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!("{err}"),
            Err(err) => warn!("removing the preview's cgroup: {err}"),
        }
    }

    /// Resolves (with the idle timeout) once the preview has gone unused for that long; never
    /// when the timeout is zero.
    async fn until_idle(&self) -> Duration {
        let timeout = self.supervisor.inner.config.idle_timeout;
        if timeout.is_zero() {
            return std::future::pending().await;
        }
        let generation_id = self.running.record().generation_id;
        loop {
            if self.supervisor.viewed(&generation_id) {
                self.running.activity.touch();
            }
            let idle = self.running.activity.idle_for();
            if idle >= timeout {
                return timeout;
            }
            tokio::time::sleep((timeout - idle).min(IDLE_CHECK)).await;
        }
    }

    async fn stopping(&self) -> Outcome {
        let reason = self
            .stop_requested()
            .unwrap_or_else(|| "stop requested".into());
        self.update(|r| r.status = PreviewStatus::Stopping).await;
        self.system(format!("stopping: {reason}"));
        Outcome {
            status: PreviewStatus::Stopping,
            exit_code: None,
            error: Some(reason),
        }
    }

    async fn load_runtime_routes(&self) {
        let record = self.running.record();
        let path = self
            .supervisor
            .inner
            .previews_dir
            .join(&record.id)
            .join("routes.json");
        let Ok(bytes) = tokio::fs::read(&path).await else {
            return;
        };
        match serde_json::from_slice::<Vec<Endpoint>>(&bytes) {
            Ok(routes) => {
                self.system(format!(
                    "the running app reports {}",
                    counted(routes.len(), "route")
                ));
                *self
                    .running
                    .runtime_routes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(routes);
            }
            Err(err) => warn!("reading the route table {}: {err}", path.display()),
        }
    }

    /// SIGTERM to the whole tree (when `graceful`), SIGKILL after the grace period, until no
    /// process of the preview is left; then reaps the launcher.
    async fn kill_tree(&self, child: &mut Child, graceful: bool) {
        let record = self.running.record();
        let Some(pgid) = record.pgid else {
            return;
        };
        let tree = self.running.tree(pgid);
        let grace = self.supervisor.inner.config.stop_grace;
        if graceful {
            let count = tree.signal(Signal::SIGTERM);
            if count > 0 && !wait_until_gone(child, &tree, grace).await {
                self.system(format!(
                    "still running {} after SIGTERM: sending SIGKILL",
                    humantime::format_duration(grace)
                ));
            }
        }
        if !tree.pids().is_empty() {
            tree.signal(Signal::SIGKILL);
            if !wait_until_gone(child, &tree, KILL_CONFIRM).await {
                warn!(
                    "processes of preview {} survived SIGKILL: {:?}",
                    record.id,
                    tree.pids()
                );
            }
        }
        let _ = tokio::time::timeout(KILL_CONFIRM, child.wait()).await;
    }

    async fn finish(mut self, outcome: Outcome) {
        let port = self.running.record().port;
        let confirm_until = Instant::now() + KILL_CONFIRM;
        while !port_pool::is_free(port) && Instant::now() < confirm_until {
            tokio::time::sleep(readiness::POLL_INTERVAL).await;
        }
        if !port_pool::is_free(port) {
            warn!("port {port} is still taken after the preview ended");
        }
        self.lease.take();
        // Temporary files end with the preview that made them.
        let record = self.running.record();
        let tmp = self
            .supervisor
            .inner
            .previews_dir
            .join(&record.id)
            .join("tmp");
        let _ = tokio::fs::remove_dir_all(tmp).await;
        // A warm process's own scratch folder, used before it was handed the project.
        if let Some(warm_id) = &record.warm_id {
            let _ =
                tokio::fs::remove_dir_all(self.supervisor.inner.previews_dir.join(warm_id)).await;
        }
        self.system(match (outcome.status, outcome.exit_code) {
            (PreviewStatus::Failed, _) => {
                format!("failed: {}", outcome.error.clone().unwrap_or_default())
            }
            (_, Some(code)) => format!("stopped (exit code {code}); port {port} released"),
            _ => format!("stopped; port {port} released"),
        });
        self.update(|r| {
            r.status = outcome.status;
            r.exit_code = outcome.exit_code;
            r.error = outcome.error;
            r.ended_at = Some(Utc::now());
        })
        .await;
        if self.expired.load(std::sync::atomic::Ordering::Relaxed) {
            self.drop_database().await;
        }
        let id = self.running.record().id;
        self.supervisor
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.running.done.notify_waiters();
    }
}

/// An output pipe of the app.
type Pipe = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

fn failed(exit_code: Option<i32>, error: String) -> Outcome {
    Outcome {
        status: PreviewStatus::Failed,
        exit_code,
        error: Some(error),
    }
}

fn exit_code(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// Resolves once a stop has been asked for (at once if it already was).
async fn until_stop_requested(stop: &mut watch::Receiver<Option<String>>) {
    // The borrow the wait returns is dropped here, never held across an await of the caller.
    let _ = stop.wait_for(Option::is_some).await.map(drop);
}

/// Waits until the launcher has exited and no process of the tree is left, up to `limit`.
async fn wait_until_gone(child: &mut Child, tree: &ProcessTree, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        let _ = child.try_wait();
        let tree = tree.clone();
        let left = tokio::task::spawn_blocking(move || tree.pids().len())
            .await
            .unwrap_or(1);
        if left == 0 {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
