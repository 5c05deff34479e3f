//! Resource limits of a preview: memory, processes, CPU and disk.
//!
//! At start-up [`Limits::detect`] looks at what the host offers, once, and says so in the log.
//! Each of memory, processes and CPU is limited by a cgroup controller where previewd can write
//! one (v2 preferred, else v1; previews get `<previewd's own cgroup>/previewd/<preview_id>` in
//! each hierarchy, never a cgroup at the root), else by an rlimit where one fits: the address
//! space for Python apps (never for Node, whose V8 reserves far more address space than it
//! uses), CPU seconds, open files. There is no rlimit for processes (`RLIMIT_NPROC` counts every
//! process of the user, previewd's included). A writable cgroup v2 hierarchy is used even with
//! no controllers: it holds a preview's processes together, `setsid` or not, and kills them at
//! once through `cgroup.kill`.
//!
//! The app's first process joins the cgroup before `exec` ([`child`]), so every process it
//! starts is inside. Disk is not a cgroup matter: the supervisor measures the preview's folders
//! periodically ([`disk`]).
//!
//! # Layout
//! - [`byte_size`]: sizes as people write them (`512MiB`).
//! - [`cgroup`]: a preview's cgroup directories: limits, membership, OOM kills, kill, removal.
//! - `detect`: which hierarchies are mounted, writable and carry which controllers.
//! - [`child`]: the async-signal-safe set-up of the app's first process.
//! - [`disk`]: the disk use of a folder tree.

pub mod byte_size;
pub mod cgroup;
pub mod child;
mod detect;
pub mod disk;

use std::io;
use std::time::Duration;

use nix::sys::resource::{getrlimit, Resource};
use previewd_plugin_api::Runtime;

pub use byte_size::ByteSize;
use cgroup::{Controller, Hierarchy, PreviewCgroup, Version};
use child::ChildSetup;

/// Most files a preview process may have open, where only rlimits limit it.
const OPEN_FILES: u64 = 4096;
/// Seconds between the CPU-time rlimit's SIGXCPU and its SIGKILL.
const CPU_RLIMIT_GRACE: u64 = 5;

/// How limits are applied, as chosen by `--limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LimitsMode {
    /// Cgroups where the host lets previewd write them, rlimits for the rest.
    Auto,
    /// Cgroups only: start-up fails when memory, processes or CPU cannot have one.
    Cgroup,
    /// Rlimits only, even where cgroups are available.
    Rlimit,
    /// No memory, process or CPU limit (the disk limit still applies).
    None,
}

/// The limits every preview gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitSettings {
    /// Memory of all the preview's processes together; `0`: none.
    pub memory: ByteSize,
    /// Processes (threads, under cgroups) at once; `0`: none.
    pub pids: u64,
    /// CPU cores' worth of time; `0`: none.
    pub cpu: f64,
    /// Disk taken by the project and scratch folders; `0`: none.
    pub disk: ByteSize,
    /// A preview's longest life, which bounds its CPU seconds under rlimits.
    pub max_uptime: Duration,
}

/// How one limit is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    Cgroup(Version),
    Rlimit,
    NotEnforced,
}

/// Why limits could not be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("--limits cgroup, but {0}")]
    NoCgroup(String),
}

/// The limits previews get and how they are applied on this host.
#[derive(Debug, Clone)]
pub struct Limits {
    settings: LimitSettings,
    mode: LimitsMode,
    hierarchies: Vec<Hierarchy>,
    memory: Enforcement,
    pids: Enforcement,
    cpu: Enforcement,
    summary: String,
}

impl Limits {
    /// Finds what the host offers and decides how each limit is applied.
    pub fn detect(mode: LimitsMode, settings: LimitSettings) -> Result<Limits, LimitsError> {
        let wanted: &[Controller] = match mode {
            LimitsMode::Auto | LimitsMode::Cgroup => &Controller::ALL,
            LimitsMode::Rlimit | LimitsMode::None => &[],
        };
        let found = detect::detect(wanted);
        if mode == LimitsMode::Cgroup && !found.missing.is_empty() {
            return Err(LimitsError::NoCgroup(missing_text(&found.missing)));
        }
        let by_cgroup = |controller: Controller| {
            found
                .hierarchies
                .iter()
                .find(|h| h.controllers.contains(&controller))
                .map(|h| Enforcement::Cgroup(h.version))
        };
        let fallback = |controller: Controller| match (mode, controller) {
            (LimitsMode::None, _) | (_, Controller::Pids) => Enforcement::NotEnforced,
            _ => Enforcement::Rlimit,
        };
        let enforcement = |c: Controller| by_cgroup(c).unwrap_or_else(|| fallback(c));
        let mut limits = Limits {
            settings,
            mode,
            memory: enforcement(Controller::Memory),
            pids: enforcement(Controller::Pids),
            cpu: enforcement(Controller::Cpu),
            hierarchies: found.hierarchies,
            summary: String::new(),
        };
        limits.summary = limits.describe_host(&found.missing);
        Ok(limits)
    }

    /// The limits.
    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// How memory, processes and CPU are limited: `cgroup v1`, `cgroup v2`, `rlimit` or `none`,
    /// joined with ` + ` when they differ.
    pub fn mechanism(&self) -> String {
        let mut labels: Vec<&str> = Vec::new();
        for enforcement in [self.memory, self.pids, self.cpu] {
            let label = match enforcement {
                Enforcement::Cgroup(version) => version.label(),
                Enforcement::Rlimit => "rlimit",
                Enforcement::NotEnforced => continue,
            };
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        if labels.is_empty() {
            "none".into()
        } else {
            labels.join(" + ")
        }
    }

    /// What detection found, as logged at start-up.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The cgroup directories a preview gets, one per hierarchy (empty without cgroups).
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    /// Creates a preview's cgroup, limits written, ready for its first process to join.
    pub fn create(&self, preview_id: &str) -> io::Result<PreviewCgroup> {
        PreviewCgroup::create(&self.hierarchies, preview_id, &self.settings)
    }

    /// Puts the preview's CPU limit in place, once it is ready (see
    /// [`PreviewCgroup::limit_cpu`]).
    pub fn limit_cpu(&self, cgroup: &PreviewCgroup) -> io::Result<()> {
        cgroup.limit_cpu(&self.settings)
    }

    /// What is left of a preview's cgroup (after previewd itself was stopped abruptly).
    pub fn existing(&self, preview_id: &str) -> PreviewCgroup {
        PreviewCgroup::existing(&self.hierarchies, preview_id)
    }

    /// The set-up of the first process of a `runtime` app in `cgroup`.
    pub fn child_setup(&self, cgroup: &PreviewCgroup, runtime: Runtime) -> io::Result<ChildSetup> {
        ChildSetup::new(cgroup.procs_files(), self.rlimits(runtime))
    }

    /// The error of a preview the kernel killed for memory.
    pub fn oom_reason(&self) -> String {
        match self.settings.memory.limit() {
            Some(_) => format!("killed: out of memory (limit {})", self.settings.memory),
            None => "killed: out of memory".into(),
        }
    }

    /// The error of a preview stopped for taking too much disk.
    pub fn disk_reason(&self) -> String {
        format!("killed: disk limit exceeded (limit {})", self.settings.disk)
    }

    /// One line on what a `runtime` preview gets, for its log.
    pub fn describe(&self, runtime: Runtime) -> String {
        let how = |enforcement: Enforcement| match enforcement {
            Enforcement::Cgroup(version) => version.label(),
            Enforcement::Rlimit => "rlimit",
            Enforcement::NotEnforced => "not enforced",
        };
        let s = &self.settings;
        let memory = match (s.memory.limit(), self.memory, runtime) {
            (None, ..) => "memory unlimited".to_string(),
            (Some(_), Enforcement::Rlimit, Runtime::Node) => {
                "memory unlimited (only an address-space rlimit is available, and Node cannot run under one)".to_string()
            }
            (Some(_), Enforcement::Rlimit, _) => format!("address space {} (rlimit)", s.memory),
            (Some(_), how_memory, _) => format!("memory {} ({})", s.memory, how(how_memory)),
        };
        let pids = match s.pids {
            0 => "processes unlimited".to_string(),
            n => format!("{n} processes ({})", how(self.pids)),
        };
        let cpu = match (s.cpu > 0.0, self.cpu) {
            (false, _) => "CPU unlimited".to_string(),
            (true, Enforcement::Rlimit) => {
                format!("{} CPU seconds per process (rlimit)", self.cpu_seconds())
            }
            (true, Enforcement::Cgroup(version)) => {
                format!("{} CPU ({}, once ready)", s.cpu, version.label())
            }
            (true, Enforcement::NotEnforced) => format!("{} CPU (not enforced)", s.cpu),
        };
        let disk = match s.disk.limit() {
            Some(_) => format!("disk {}", s.disk),
            None => "disk unlimited".to_string(),
        };
        format!("limits: {memory}, {pids}, {cpu}, {disk}")
    }

    /// Environment variables a `runtime` app gets for its limits: under an address-space
    /// limit, glibc's malloc keeps to two arenas instead of reserving 64 MiB of address space
    /// for each thread that allocates (which fails a threaded Python server at 512 MiB).
    pub fn child_env(&self, runtime: Runtime) -> &'static [(&'static str, &'static str)] {
        if self.address_space_limited(runtime) {
            &[("MALLOC_ARENA_MAX", "2")]
        } else {
            &[]
        }
    }

    /// Whether a `runtime` app gets an address-space rlimit: Python, when no cgroup limits
    /// memory.
    fn address_space_limited(&self, runtime: Runtime) -> bool {
        self.settings.memory.limit().is_some()
            && self.memory == Enforcement::Rlimit
            && runtime == Runtime::Python
    }

    /// The rlimits standing in for missing cgroup controllers.
    fn rlimits(&self, runtime: Runtime) -> Vec<(Resource, u64, u64)> {
        let mut rlimits = Vec::new();
        if self.address_space_limited(runtime) {
            let bytes = self.settings.memory.0;
            rlimits.push((Resource::RLIMIT_AS, bytes, bytes));
        }
        if self.settings.cpu > 0.0 && self.cpu == Enforcement::Rlimit {
            let seconds = self.cpu_seconds();
            rlimits.push((Resource::RLIMIT_CPU, seconds, seconds + CPU_RLIMIT_GRACE));
        }
        if self.rlimits_only() {
            let hard = getrlimit(Resource::RLIMIT_NOFILE).map_or(OPEN_FILES, |(_, hard)| hard);
            let files = OPEN_FILES.min(hard);
            rlimits.push((Resource::RLIMIT_NOFILE, files, files));
        }
        rlimits
    }

    /// The CPU seconds a process may use under rlimits: the CPU share over a whole preview's
    /// life, which a cgroup would allow too.
    fn cpu_seconds(&self) -> u64 {
        ((self.settings.cpu * self.settings.max_uptime.as_secs_f64()).ceil() as u64).max(1)
    }

    /// Whether no limit has a cgroup and rlimits stand in for them.
    fn rlimits_only(&self) -> bool {
        self.mode != LimitsMode::None
            && ![self.memory, self.pids, self.cpu]
                .iter()
                .any(|e| matches!(e, Enforcement::Cgroup(_)))
    }

    /// The start-up line: what applies each limit, and why where it is not a cgroup.
    fn describe_host(&self, missing: &[(Controller, String)]) -> String {
        let mut parts = Vec::new();
        let controllers = [
            (Controller::Memory, self.memory),
            (Controller::Pids, self.pids),
            (Controller::Cpu, self.cpu),
        ];
        for version in [Version::V1, Version::V2] {
            let names: Vec<&str> = controllers
                .iter()
                .filter(|(_, e)| *e == Enforcement::Cgroup(version))
                .map(|(c, _)| c.name())
                .collect();
            if !names.is_empty() {
                parts.push(format!("{} ({})", version.label(), names.join(", ")));
            }
        }
        let why = match self.mode {
            LimitsMode::Rlimit => "chosen with --limits rlimit".to_string(),
            LimitsMode::None => "chosen with --limits none".to_string(),
            _ => missing_text(missing),
        };
        if self.mode == LimitsMode::None {
            parts.push(format!("none: {why}"));
        } else if self.rlimits_only() {
            parts.push(format!(
                "rlimits only: {why}; address space of Python apps (not Node's), CPU seconds and open files are limited, processes are not (RLIMIT_NPROC counts every process of the user)"
            ));
        } else {
            for (controller, enforcement) in controllers {
                let reason = missing
                    .iter()
                    .find(|(c, _)| *c == controller)
                    .map_or("", |(_, why)| why.as_str());
                match enforcement {
                    Enforcement::Cgroup(_) => {}
                    Enforcement::Rlimit => {
                        parts.push(format!("{} by rlimit ({reason})", controller.name()))
                    }
                    Enforcement::NotEnforced => {
                        parts.push(format!("{} not limited ({reason})", controller.name()))
                    }
                }
            }
        }
        if let Some(tracker) = self
            .hierarchies
            .iter()
            .find(|h| h.version == Version::V2 && h.controllers.is_empty())
        {
            parts.push(format!(
                "processes tracked in cgroup v2 under {}{}",
                tracker.parent.display(),
                if tracker.kill_file {
                    " (killed with cgroup.kill)"
                } else {
                    ""
                }
            ));
        }
        parts.join("; ")
    }
}

/// `memory: why; cpu: why`, or that nothing is missing.
fn missing_text(missing: &[(Controller, String)]) -> String {
    if missing.is_empty() {
        return "no controller is missing".into();
    }
    missing
        .iter()
        .map(|(c, why)| format!("no writable {} cgroup ({why})", c.name()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LimitSettings {
        LimitSettings {
            memory: ByteSize::mib(512),
            pids: 256,
            cpu: 0.5,
            disk: ByteSize::gib(1),
            max_uptime: Duration::from_secs(3600),
        }
    }

    fn limits(memory: Enforcement, pids: Enforcement, cpu: Enforcement) -> Limits {
        Limits {
            settings: settings(),
            mode: LimitsMode::Auto,
            hierarchies: Vec::new(),
            memory,
            pids,
            cpu,
            summary: String::new(),
        }
    }

    /// Under rlimits only Python gets an address-space limit; CPU seconds and open files apply
    /// to every runtime.
    #[test]
    fn rlimits_spare_node_the_address_space() {
        let fallback = limits(
            Enforcement::Rlimit,
            Enforcement::NotEnforced,
            Enforcement::Rlimit,
        );
        let resources = |runtime| -> Vec<Resource> {
            fallback
                .rlimits(runtime)
                .into_iter()
                .map(|(r, ..)| r)
                .collect()
        };
        assert_eq!(
            resources(Runtime::Python),
            [
                Resource::RLIMIT_AS,
                Resource::RLIMIT_CPU,
                Resource::RLIMIT_NOFILE
            ]
        );
        assert_eq!(
            resources(Runtime::Node),
            [Resource::RLIMIT_CPU, Resource::RLIMIT_NOFILE]
        );
        assert_eq!(
            fallback.child_env(Runtime::Python),
            [("MALLOC_ARENA_MAX", "2")]
        );
        assert!(fallback.child_env(Runtime::Node).is_empty());
        let cpu = fallback.rlimits(Runtime::Node)[0];
        assert_eq!((cpu.1, cpu.2), (1800, 1800 + CPU_RLIMIT_GRACE));
        assert_eq!(fallback.mechanism(), "rlimit");
        assert!(fallback
            .describe(Runtime::Node)
            .contains("memory unlimited (only an address-space rlimit"));
    }

    /// With cgroups there is no rlimit at all, and the mechanism names the version.
    #[test]
    fn cgroups_need_no_rlimits() {
        let v1 = Enforcement::Cgroup(Version::V1);
        let cgroups = limits(v1, v1, v1);
        assert!(cgroups.rlimits(Runtime::Python).is_empty());
        assert!(cgroups.child_env(Runtime::Python).is_empty());
        assert_eq!(cgroups.mechanism(), "cgroup v1");
        assert_eq!(
            cgroups.describe(Runtime::Python),
            "limits: memory 512 MiB (cgroup v1), 256 processes (cgroup v1), 0.5 CPU (cgroup v1, once ready), disk 1 GiB"
        );
        assert_eq!(
            cgroups.oom_reason(),
            "killed: out of memory (limit 512 MiB)"
        );
        assert_eq!(
            cgroups.disk_reason(),
            "killed: disk limit exceeded (limit 1 GiB)"
        );
        let mixed = limits(v1, Enforcement::NotEnforced, Enforcement::Rlimit);
        assert_eq!(mixed.mechanism(), "cgroup v1 + rlimit");
        assert_eq!(
            mixed
                .rlimits(Runtime::Python)
                .into_iter()
                .map(|(r, ..)| r)
                .collect::<Vec<_>>(),
            [Resource::RLIMIT_CPU]
        );
    }

    /// `--limits none` sets nothing and says so.
    #[test]
    fn none_sets_nothing() {
        let limits = Limits::detect(LimitsMode::None, settings()).unwrap();
        assert_eq!(limits.mechanism(), "none");
        assert!(limits.rlimits(Runtime::Python).is_empty());
        assert!(limits
            .summary()
            .starts_with("none: chosen with --limits none"));
        assert!(limits
            .hierarchies()
            .iter()
            .all(|h| h.controllers.is_empty()));
    }
}
