//! Warm runtimes: launchers started ahead of launches, so a preview is ready in a fraction of
//! its framework's cold start.
//!
//! A warm process is a launcher started through the very path of a cold start ([`Spawner`]):
//! its own session, cgroup (with the preview limits) and sandbox, its output piped to previewd.
//! Its launcher runs in warm mode: it imports the framework and the plugin's
//! [`preload`](previewd_plugin_api::LaunchPlan::preload) modules, says `ready` and waits on
//! stdin. It has no project: at launch previewd attaches the project and the preview's scratch
//! folder to its sandbox ([`Isolation::attach`]) and writes it one line, the launch's working
//! dir, arguments and whole environment. From then on it is the preview's process in every
//! respect (logs from its first line, readiness, limits, stop, crash recovery) and a
//! replacement starts in the background. Each warm process serves one preview and ends with
//! it: nothing of one preview (sockets, descriptors, threads, module state) can reach another,
//! and no user code is ever imported ahead of its launch. Node, which cannot fork safely, and
//! Python work the same way.
//!
//! Warm processes are kept per environment ([`WarmKey`]: runtime, interpreter, virtualenv or
//! `node_modules`, framework and preload list), `--warm-pool` of each, prepared lazily (after an
//! environment's first launch), within the `--warm-memory` budget (least recently used
//! environments give theirs up first), and replaced when they die. A launch that no warm
//! process fits starts cold and its log says why.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use previewd_plugin_api::Runtime;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::isolation::PreviewFolders;
use super::launcher::{LauncherSpec, Provisioned, Run};
use super::limits::cgroup::PreviewCgroup;
use super::limits::ByteSize;
use super::process_tree::ProcessTree;
use super::{Supervisor, KILL_CONFIRM};
use crate::store::{StoreError, WarmRecord};

/// How often warm processes are looked at: deaths, memory, the budget, refills.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Deaths in a row after which an environment gets no more warm processes.
const MAX_FAILURES: u32 = 3;
/// How long an environment nobody launches keeps its warm processes.
const ENV_IDLE: Duration = Duration::from_secs(60 * 60);
/// Memory assumed for a warm process of an environment none has been measured in yet.
const DEFAULT_ESTIMATE: u64 = 96 << 20;
/// The launcher's lines on stdout before it is handed a project.
const STARTED: &str = "previewd-warm: started";
const READY: &str = "previewd-warm: ready";
/// Variables a runtime reads when it starts, which a warm process has started without.
const START_UP_VARIABLES: &[(&str, bool)] = &[
    // (name, or prefix when true)
    ("PYTHON", true),
    ("NODE_OPTIONS", false),
    ("NODE_PATH", false),
    ("LD_", true),
];

/// The environment a warm process is for: a launch fits it when all of this is the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WarmKey {
    runtime: Runtime,
    provisioned: Provisioned,
    framework: String,
    preload: Vec<String>,
}

impl WarmKey {
    pub fn new(
        runtime: Runtime,
        provisioned: &Provisioned,
        framework: &str,
        preload: &[String],
    ) -> WarmKey {
        WarmKey {
            runtime,
            provisioned: provisioned.clone(),
            framework: framework.to_string(),
            preload: preload.to_vec(),
        }
    }

    /// The launcher's arguments in warm mode.
    fn launcher_args(&self) -> Vec<String> {
        let mut args = vec!["--warm".to_string()];
        match self.runtime {
            Runtime::Python => args.extend(["--framework".to_string(), self.framework.clone()]),
            Runtime::Node => {
                if let Some(modules) = &self.provisioned.env_dir {
                    args.extend([
                        "--modules".to_string(),
                        modules.to_string_lossy().into_owned(),
                    ]);
                }
            }
        }
        for module in &self.preload {
            args.extend(["--preload".to_string(), module.clone()]);
        }
        args
    }
}

/// The first variable of `env` a runtime reads at start-up, which a warm process cannot take.
pub fn start_up_variable<'a>(env: impl IntoIterator<Item = &'a String>) -> Option<&'a String> {
    env.into_iter().find(|name| {
        START_UP_VARIABLES.iter().any(|(var, prefix)| match prefix {
            true => name.starts_with(var) && name.as_str() != "PYTHONUNBUFFERED",
            false => name.as_str() == *var,
        })
    })
}

/// The first preloaded Python package the project at `work_dir` has a module of its own of:
/// a cold start would import the project's, a warm process has the environment's.
pub fn shadowed_preload<'a>(preload: &'a [String], work_dir: &Path) -> Option<&'a str> {
    preload
        .iter()
        .filter_map(|module| module.split('.').next())
        .find(|top| work_dir.join(format!("{top}.py")).is_file() || work_dir.join(top).is_dir())
}

/// How far a warm process has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Spawned; its sandbox may still be being built.
    Spawned,
    /// Its launcher runs (so its sandbox is complete) and imports the framework.
    Started,
    /// Waiting for a project.
    Ready,
    /// Its output ended before it was ready.
    Ended,
}

/// An idle warm process.
pub struct Slot {
    /// Its id: its marker, cgroup and scratch folder are named by it.
    pub id: String,
    pub child: Child,
    pub pid: u32,
    pub cgroup: PreviewCgroup,
    /// Its command line.
    pub command: String,
    spawned: Instant,
    stage: watch::Receiver<Stage>,
    stdin: ChildStdin,
    stderr: ChildStderr,
    /// Ends with its stdout once the launcher said it is ready.
    stdout: JoinHandle<Option<BufReader<ChildStdout>>>,
    /// Its memory when last measured.
    rss: u64,
}

/// What a launch hands a warm process.
pub struct Handover<'a> {
    /// Folders to attach to its sandbox (the project, the preview's scratch folder).
    pub folders: [&'a Path; 2],
    pub cwd: &'a Path,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, OsString>,
}

/// A warm process that took a project: now the preview's.
pub struct TakenOver {
    pub id: String,
    pub child: Child,
    pub pid: u32,
    pub cgroup: PreviewCgroup,
    pub command: String,
    /// How long it had been up.
    pub age: Duration,
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn AsyncRead + Send + Unpin>,
}

/// The warm processes of one environment.
struct EnvSlots {
    idle: Vec<Slot>,
    /// Being spawned now.
    spawning: usize,
    last_used: Instant,
    /// Deaths in a row before a handover, and the last one.
    failures: u32,
    last_failure: String,
    /// Memory of one of its warm processes, as last measured.
    estimate: u64,
}

impl EnvSlots {
    fn new() -> EnvSlots {
        EnvSlots {
            idle: Vec::new(),
            spawning: 0,
            last_used: Instant::now(),
            failures: 0,
            last_failure: String::new(),
            estimate: DEFAULT_ESTIMATE,
        }
    }
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WarmMetrics {
    pub starting: usize,
    pub ready: usize,
    pub memory_bytes: u64,
    pub budget_bytes: Option<u64>,
    pub warm_launches: u64,
    pub cold_launches: u64,
}

/// The warm processes of a supervisor.
pub struct WarmPool {
    size: usize,
    budget: ByteSize,
    envs: Mutex<HashMap<WarmKey, EnvSlots>>,
    warm_launches: AtomicU64,
    cold_launches: AtomicU64,
}

impl WarmPool {
    /// `size` warm processes per environment within `budget` (`0`: none).
    pub fn new(size: usize, budget: ByteSize) -> WarmPool {
        WarmPool {
            size,
            budget,
            envs: Mutex::default(),
            warm_launches: AtomicU64::new(0),
            cold_launches: AtomicU64::new(0),
        }
    }

    /// The counts `/metrics` shows.
    pub fn metrics(&self) -> WarmMetrics {
        let envs = self.envs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut metrics = WarmMetrics {
            budget_bytes: self.budget.limit(),
            warm_launches: self.warm_launches.load(Ordering::Relaxed),
            cold_launches: self.cold_launches.load(Ordering::Relaxed),
            ..WarmMetrics::default()
        };
        for env in envs.values() {
            metrics.starting += env.spawning;
            for slot in &env.idle {
                match *slot.stage.borrow() {
                    Stage::Ready => metrics.ready += 1,
                    _ => metrics.starting += 1,
                }
                metrics.memory_bytes += slot.rss;
            }
        }
        metrics
    }

    /// Counts a launch that started cold.
    pub fn count_cold(&self) {
        self.cold_launches.fetch_add(1, Ordering::Relaxed);
    }

    /// An idle warm process for `key`, the furthest along; else why the launch goes cold.
    /// Either way the environment is marked in use, so it gets (or keeps) warm processes.
    fn take(&self, key: &WarmKey) -> Result<Slot, String> {
        if self.size == 0 {
            return Err("warm runtimes are off (--warm-pool 0)".into());
        }
        let mut envs = self.envs.lock().unwrap_or_else(PoisonError::into_inner);
        let spent = self.spent(&envs, key);
        let env = envs.entry(key.clone()).or_insert_with(EnvSlots::new);
        env.last_used = Instant::now();
        let alive = |i: &usize| *env.idle[*i].stage.borrow() != Stage::Ended;
        if let Some(best) = (0..env.idle.len())
            .filter(alive)
            .max_by_key(|&i| *env.idle[i].stage.borrow())
        {
            return Ok(env.idle.swap_remove(best));
        }
        Err(if env.failures >= MAX_FAILURES {
            format!(
                "warm processes of this environment died {} times in a row (last: {}), so it gets no more",
                env.failures, env.last_failure
            )
        } else if spent && env.spawning == 0 {
            format!(
                "the warm processes' memory budget (--warm-memory {}) is spent",
                self.budget
            )
        } else {
            "no warm process for this environment yet; one is being prepared for the next launch"
                .into()
        })
    }

    /// Whether one more warm process for `key` would overrun the budget.
    fn spent(&self, envs: &HashMap<WarmKey, EnvSlots>, key: &WarmKey) -> bool {
        let Some(budget) = self.budget.limit() else {
            return false;
        };
        let used: u64 = envs
            .values()
            .map(|env| {
                env.idle
                    .iter()
                    .map(|s| s.rss.max(env.estimate))
                    .sum::<u64>()
                    + env.spawning as u64 * env.estimate
            })
            .sum();
        let next = envs.get(key).map_or(DEFAULT_ESTIMATE, |env| env.estimate);
        used + next > budget
    }

    /// Environments short of warm processes, each marked as getting one more.
    fn to_refill(&self) -> Vec<WarmKey> {
        let mut envs = self.envs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<WarmKey> = envs
            .iter()
            .filter(|(_, env)| {
                env.failures < MAX_FAILURES && env.idle.len() + env.spawning < self.size
            })
            .map(|(key, _)| key.clone())
            .collect();
        // The most recently used first, while the budget lasts.
        keys.sort_by_key(|key| std::cmp::Reverse(envs[key].last_used));
        keys.retain(|key| {
            if self.spent(&envs, key) {
                return false;
            }
            if let Some(env) = envs.get_mut(key) {
                env.spawning += 1;
            }
            true
        });
        keys
    }

    /// Takes out the warm processes that died, those of environments unused for [`ENV_IDLE`],
    /// and those the budget no longer has room for (the least recently used environments'
    /// first), measuring the others' memory on the way.
    fn sweep(&self) -> Vec<Slot> {
        let mut envs = self.envs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        envs.retain(|_, env| {
            let unused = env.last_used.elapsed() > ENV_IDLE && env.spawning == 0;
            if unused {
                out.append(&mut env.idle);
            }
            !unused
        });
        for env in envs.values_mut() {
            let mut kept = Vec::new();
            for mut slot in env.idle.drain(..) {
                match slot.child.try_wait() {
                    Ok(None) if *slot.stage.borrow() != Stage::Ended => {
                        let tree = ProcessTree::new(slot.pid as i32, &slot.id)
                            .with_cgroup(slot.cgroup.clone());
                        slot.rss = tree.usage().rss_bytes;
                        if *slot.stage.borrow() == Stage::Ready && slot.rss > 0 {
                            env.estimate = slot.rss;
                        }
                        kept.push(slot);
                    }
                    status => {
                        env.failures += 1;
                        env.last_failure = match status {
                            Ok(Some(status)) => format!("it ended with {status}"),
                            _ => "it closed its output".into(),
                        };
                        out.push(slot);
                    }
                }
            }
            env.idle = kept;
        }
        if let Some(budget) = self.budget.limit() {
            let mut by_use: Vec<&mut EnvSlots> = envs.values_mut().collect();
            by_use.sort_by_key(|env| env.last_used);
            let mut used: u64 = by_use
                .iter()
                .flat_map(|env| env.idle.iter().map(|s| s.rss))
                .sum();
            for env in by_use {
                while used > budget {
                    let Some(slot) = env.idle.pop() else { break };
                    used -= slot.rss;
                    out.push(slot);
                }
            }
        }
        out
    }

    /// Every idle warm process, taken out (server shutdown).
    fn drain(&self) -> Vec<Slot> {
        let mut envs = self.envs.lock().unwrap_or_else(PoisonError::into_inner);
        envs.values_mut()
            .flat_map(|env| env.idle.drain(..))
            .collect()
    }

    fn add(&self, key: &WarmKey, slot: Option<Slot>) {
        let mut envs = self.envs.lock().unwrap_or_else(PoisonError::into_inner);
        let env = envs.entry(key.clone()).or_insert_with(EnvSlots::new);
        env.spawning = env.spawning.saturating_sub(1);
        match slot {
            Some(slot) => env.idle.push(slot),
            None => env.failures += 1,
        }
    }

    fn handed_over(&self, key: &WarmKey) {
        let mut envs = self.envs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(env) = envs.get_mut(key) {
            env.failures = 0;
        }
        self.warm_launches.fetch_add(1, Ordering::Relaxed);
    }
}

impl Supervisor {
    /// Looks after the warm processes until previewd ends: replaces the dead, keeps the budget
    /// and prepares the missing.
    pub(super) fn watch_warm_processes(&self) {
        if self.inner.warm.size == 0 {
            return;
        }
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                let Some(inner) = weak.upgrade() else { return };
                let supervisor = Supervisor { inner };
                let gone = {
                    let warm_supervisor = supervisor.clone();
                    tokio::task::spawn_blocking(move || warm_supervisor.inner.warm.sweep())
                        .await
                        .unwrap_or_default()
                };
                for slot in gone {
                    info!(warm = %slot.id, "retiring warm process {}", slot.pid);
                    supervisor.retire(slot).await;
                }
                supervisor.refill_warm();
            }
        });
    }

    /// Starts the warm processes environments are short of, in the background.
    pub(super) fn refill_warm(&self) {
        for key in self.inner.warm.to_refill() {
            let supervisor = self.clone();
            tokio::spawn(async move {
                let slot = match supervisor.spawn_warm(&key).await {
                    Ok(slot) => Some(slot),
                    Err(err) => {
                        warn!("starting a warm {} process: {err}", key.framework);
                        None
                    }
                };
                supervisor.inner.warm.add(&key, slot);
            });
        }
    }

    /// An idle warm process fitting the launch, or why it goes cold.
    pub(super) fn take_warm(&self, key: &WarmKey) -> Result<Slot, String> {
        let taken = self.inner.warm.take(key);
        self.refill_warm();
        taken
    }

    /// Ends every idle warm process (server shutdown).
    pub(super) async fn retire_all_warm(&self) {
        let slots = self.inner.warm.drain();
        futures_util::future::join_all(slots.into_iter().map(|slot| self.retire(slot))).await;
    }

    async fn spawn_warm(&self, key: &WarmKey) -> Result<Slot, String> {
        let inner = &self.inner;
        let id = uuid::Uuid::now_v7().to_string();
        let scratch = inner.previews_dir.join(&id);
        let cgroup = inner
            .limits
            .create(&id)
            .map_err(|err| format!("setting up its cgroup: {err}"))?;
        let spawner = self.spawner();
        let runtime = key.runtime;
        let launched = spawner
            .base_env(runtime, &key.provisioned, &scratch, &id)
            .and_then(|env| {
                spawner.spawn(LauncherSpec {
                    runtime,
                    provisioned: &key.provisioned,
                    run: Run::Launcher(&key.launcher_args()),
                    cwd: &scratch,
                    env: &env,
                    cgroup: &cgroup,
                    folders: PreviewFolders {
                        project_dir: None,
                        scratch_dir: &scratch,
                        env_dir: key.provisioned.env_dir.as_deref(),
                        work_dir: &scratch,
                    },
                    stdin: true,
                })
            });
        let mut launched = match launched {
            Ok(launched) => launched,
            Err(err) => {
                let _ = cgroup.remove();
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(err);
            }
        };
        let pid = launched.child.id().unwrap_or_default();
        let (stdin, stdout, stderr) = match (
            launched.child.stdin.take(),
            launched.child.stdout.take(),
            launched.child.stderr.take(),
        ) {
            (Some(stdin), Some(stdout), Some(stderr)) => (stdin, stdout, stderr),
            _ => return Err("its pipes were not set up".into()),
        };
        let (stage_tx, stage) = watch::channel(Stage::Spawned);
        let stdout = tokio::spawn(until_ready(BufReader::new(stdout), stage_tx));
        let slot = Slot {
            id: id.clone(),
            child: launched.child,
            pid,
            cgroup,
            command: launched.command,
            spawned: Instant::now(),
            stage,
            stdin,
            stderr,
            stdout,
            rss: 0,
        };
        let record = WarmRecord {
            id,
            pgid: pid as i32,
        };
        if let Err(err) = inner.store.put_warm(&record).await {
            self.retire(slot).await;
            return Err(format!("noting it in the database: {err}"));
        }
        info!(warm = %record.id, "warm {} process {pid} started: {}", key.framework, key.launcher_args().join(" "));
        Ok(slot)
    }

    /// Hands `slot` a project: attaches the folders to its sandbox once it has one, and writes
    /// it the launch. Retires it on failure.
    pub(super) async fn hand_over(
        &self,
        key: &WarmKey,
        mut slot: Slot,
        launch: Handover<'_>,
    ) -> Result<TakenOver, String> {
        let timeout = self.inner.config.startup_timeout;
        let mut stage = slot.stage.clone();
        let started = tokio::time::timeout(timeout, stage.wait_for(|s| *s >= Stage::Started))
            .await
            .map_err(|_| "it did not start in time".to_string())
            .and_then(|s| s.map(|s| *s).map_err(|_| "it ended".to_string()));
        let attached = match started {
            Ok(Stage::Ended) => Err("it ended before it was ready".to_string()),
            Ok(_) => {
                let isolation = self.inner.isolation.clone();
                let pid = slot.pid;
                let folders = launch.folders.map(Path::to_path_buf);
                tokio::task::spawn_blocking(move || {
                    isolation.attach(pid, &[&folders[0], &folders[1]])
                })
                .await
                .map_err(|err| err.to_string())
                .and_then(|r| r.map_err(|err| format!("attaching the project: {err}")))
            }
            Err(err) => Err(err),
        };
        let written = match attached {
            Ok(()) => match go_line(launch) {
                Ok(line) => slot
                    .stdin
                    .write_all(line.as_bytes())
                    .await
                    .map_err(|err| format!("writing to it: {err}")),
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let stdout = match written {
            Ok(()) => match tokio::time::timeout(timeout, &mut slot.stdout).await {
                Ok(Ok(Some(stdout))) => Ok(stdout),
                _ => Err("it ended before it was ready".to_string()),
            },
            Err(err) => Err(err),
        };
        let stdout = match stdout {
            Ok(stdout) => stdout,
            Err(err) => {
                self.retire(slot).await;
                return Err(err);
            }
        };
        // Its stdin closes: the app reads an empty stdin, as a cold start's.
        let Slot {
            id,
            child,
            pid,
            cgroup,
            command,
            spawned,
            stderr,
            ..
        } = slot;
        self.inner.warm.handed_over(key);
        Ok(TakenOver {
            id,
            child,
            pid,
            cgroup,
            command,
            age: spawned.elapsed(),
            stdout: Box::new(stdout),
            stderr: Box::new(stderr),
        })
    }

    /// Ends a warm process nobody took and removes what it had.
    async fn retire(&self, slot: Slot) {
        let Slot {
            id,
            mut child,
            pid,
            cgroup,
            stdin,
            ..
        } = slot;
        drop(stdin);
        // The relay reaped first, then the rest of the tree, and its cgroup removed.
        let _ = child.start_kill();
        let _ = tokio::time::timeout(KILL_CONFIRM, child.wait()).await;
        let tree = ProcessTree::new(pid as i32, &id).with_cgroup(cgroup.clone());
        self.kill_and_confirm(tree, cgroup, None).await;
        if let Err(err) = self.forget_warm(&id).await {
            warn!("forgetting warm process {id}: {err}");
        }
    }

    /// Removes a gone warm process's scratch folder and record.
    pub(super) async fn forget_warm(&self, id: &str) -> Result<(), StoreError> {
        let _ = tokio::fs::remove_dir_all(self.inner.previews_dir.join(id)).await;
        self.inner.store.remove_warm(id).await
    }
}

/// Follows the launcher's stdout up to its `ready` line, publishing its stage; then hands the
/// pipe over (`None` if it ended first).
async fn until_ready(
    mut stdout: BufReader<ChildStdout>,
    stage: watch::Sender<Stage>,
) -> Option<BufReader<ChildStdout>> {
    let mut line = String::new();
    loop {
        line.clear();
        match stdout.read_line(&mut line).await {
            Ok(0) | Err(_) => {
                stage.send_replace(Stage::Ended);
                return None;
            }
            Ok(_) => match line.trim_end() {
                STARTED => {
                    stage.send_replace(Stage::Started);
                }
                READY => {
                    stage.send_replace(Stage::Ready);
                    return Some(stdout);
                }
                // Nothing else comes before `ready`: the project is not there yet.
                _ => {}
            },
        }
    }
}

/// The line a warm launcher is handed its launch in.
fn go_line(launch: Handover) -> Result<String, String> {
    let env = launch
        .env
        .iter()
        .map(|(key, value)| {
            value
                .to_str()
                .map(|value| (key.as_str(), value))
                .ok_or_else(|| format!("the value of {key} is not UTF-8"))
        })
        .collect::<Result<BTreeMap<&str, &str>, String>>()?;
    let cwd = launch
        .cwd
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", launch.cwd.display()))?;
    let mut line = serde_json::json!({ "args": launch.args, "cwd": cwd, "env": env }).to_string();
    line.push('\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle warm process at `stage`: a real `cat` waiting on its stdin.
    fn slot(stage: Stage) -> Slot {
        let mut child = tokio::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (stdin, stdout, stderr) = (
            child.stdin.take().unwrap(),
            child.stdout.take().unwrap(),
            child.stderr.take().unwrap(),
        );
        Slot {
            id: uuid::Uuid::now_v7().to_string(),
            pid: child.id().unwrap(),
            child,
            cgroup: PreviewCgroup::default(),
            command: "cat".into(),
            spawned: Instant::now(),
            stage: watch::channel(stage).1,
            stdin,
            stderr,
            stdout: tokio::spawn(async move { Some(BufReader::new(stdout)) }),
            rss: 0,
        }
    }

    fn key(framework: &str) -> WarmKey {
        let provisioned = Provisioned {
            interpreter: "/venv/bin/python".into(),
            env_dir: Some(format!("/venv/{framework}").into()),
        };
        WarmKey::new(Runtime::Python, &provisioned, framework, &[])
    }

    fn pool_with(budget: ByteSize, envs: Vec<(WarmKey, Vec<Slot>, Duration)>) -> WarmPool {
        let pool = WarmPool::new(1, budget);
        let mut map = pool.envs.lock().unwrap();
        for (key, idle, unused_for) in envs {
            let mut env = EnvSlots::new();
            env.idle = idle;
            env.last_used = Instant::now() - unused_for;
            map.insert(key, env);
        }
        drop(map);
        pool
    }

    #[tokio::test]
    async fn a_launch_takes_the_furthest_live_warm_process() {
        let flask = key("flask");
        let stages = [Stage::Started, Stage::Ready, Stage::Ended];
        let pool = pool_with(
            ByteSize(0),
            vec![(flask.clone(), stages.map(slot).into(), Duration::ZERO)],
        );
        assert_eq!(*pool.take(&flask).unwrap().stage.borrow(), Stage::Ready);
        assert_eq!(*pool.take(&flask).unwrap().stage.borrow(), Stage::Started);
        let cold = pool.take(&flask).err().unwrap();
        assert!(
            cold.starts_with("no warm process for this environment yet"),
            "{cold}"
        );
        let off = WarmPool::new(0, ByteSize(0)).take(&flask).err().unwrap();
        assert!(off.contains("--warm-pool 0"), "{off}");
    }

    #[tokio::test]
    async fn over_budget_the_least_recently_used_environment_gives_up_first() {
        let (old, recent) = (key("django"), key("fastapi"));
        let (old_slot, recent_slot) = (slot(Stage::Ready), slot(Stage::Ready));
        let order = [old_slot.id.clone(), recent_slot.id.clone()];
        let pool = pool_with(
            ByteSize(1),
            vec![
                (recent.clone(), vec![recent_slot], Duration::ZERO),
                (old.clone(), vec![old_slot], Duration::from_secs(60)),
            ],
        );
        let (gone, pool) = tokio::task::spawn_blocking(move || {
            let gone: Vec<String> = pool.sweep().into_iter().map(|s| s.id.clone()).collect();
            (gone, pool)
        })
        .await
        .unwrap();
        assert_eq!(
            gone, order,
            "both are over a 1-byte budget, the older first"
        );
        let spent = pool.take(&old).err().unwrap();
        assert!(spent.contains("memory budget"), "{spent}");
    }

    #[test]
    fn variables_read_at_start_up_are_found() {
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            start_up_variable(&names(&["DEBUG", "PYTHONPATH"])).map(String::as_str),
            Some("PYTHONPATH")
        );
        assert_eq!(
            start_up_variable(&names(&["NODE_OPTIONS"])).map(String::as_str),
            Some("NODE_OPTIONS")
        );
        assert_eq!(
            start_up_variable(&names(&["LD_PRELOAD"])).map(String::as_str),
            Some("LD_PRELOAD")
        );
        assert_eq!(
            start_up_variable(&names(&["PYTHONUNBUFFERED", "NODE_ENV", "DATABASE_URL"])),
            None
        );
    }

    #[test]
    fn a_project_module_named_like_a_preload_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let preload = ["flask".to_string(), "encodings.idna".to_string()];
        assert_eq!(shadowed_preload(&preload, dir.path()), None);
        std::fs::create_dir(dir.path().join("encodings")).unwrap();
        assert_eq!(shadowed_preload(&preload, dir.path()), Some("encodings"));
        std::fs::write(dir.path().join("flask.py"), "").unwrap();
        assert_eq!(shadowed_preload(&preload, dir.path()), Some("flask"));
    }

    #[test]
    fn warm_launchers_get_the_framework_and_the_preload_list() {
        let provisioned = Provisioned {
            interpreter: "/venv/bin/python".into(),
            env_dir: Some("/venv".into()),
        };
        let key = WarmKey::new(
            Runtime::Python,
            &provisioned,
            "fastapi",
            &["fastapi".into(), "uvicorn".into()],
        );
        assert_eq!(
            key.launcher_args(),
            [
                "--warm",
                "--framework",
                "fastapi",
                "--preload",
                "fastapi",
                "--preload",
                "uvicorn"
            ]
        );
        let node = Provisioned {
            interpreter: "/usr/bin/node".into(),
            env_dir: Some("/cache/abc/node_modules".into()),
        };
        let key = WarmKey::new(Runtime::Node, &node, "express", &["express".into()]);
        assert_eq!(
            key.launcher_args(),
            [
                "--warm",
                "--modules",
                "/cache/abc/node_modules",
                "--preload",
                "express"
            ]
        );
    }

    #[test]
    fn the_go_line_is_one_json_line() {
        let env = BTreeMap::from([("PORT".to_string(), OsString::from("3001"))]);
        let line = go_line(Handover {
            folders: [Path::new("/p"), Path::new("/s")],
            cwd: Path::new("/p/app"),
            args: &["--port".to_string(), "3001".to_string()],
            env: &env,
        })
        .unwrap();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["cwd"], "/p/app");
        assert_eq!(value["args"][1], "3001");
        assert_eq!(value["env"]["PORT"], "3001");
    }
}
