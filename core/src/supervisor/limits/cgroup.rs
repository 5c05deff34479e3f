//! A preview's cgroups: one directory per hierarchy previewd uses, created before the app starts
//! (with the limits written into it), joined by the app's first process, read for OOM kills,
//! emptied with SIGKILL (`cgroup.kill` where the kernel has it) and removed when the preview
//! ends.
//!
//! cgroup v1 and v2 differ only in file names here; both are plain files under `/sys/fs/cgroup`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::LimitSettings;

/// The CFS period CPU quotas are given in, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CPU quota the kernel accepts, in microseconds.
const CPU_MIN_QUOTA_US: u64 = 1_000;
/// How often and how long removing a cgroup is retried while its last processes finish exiting.
const REMOVE_RETRY: Duration = Duration::from_millis(20);
const REMOVE_ATTEMPTS: u32 = 50;

/// A cgroup version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// `cgroup v1` or `cgroup v2`.
    pub fn label(self) -> &'static str {
        match self {
            Version::V1 => "cgroup v1",
            Version::V2 => "cgroup v2",
        }
    }
}

/// A resource controller previewd limits a preview with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    /// Every controller, in the order they are reported.
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    /// The kernel's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }

    /// The file that sets its limit, present in a cgroup where the controller is usable.
    pub fn limit_file(self, version: Version) -> &'static str {
        match (self, version) {
            (Controller::Memory, Version::V1) => "memory.limit_in_bytes",
            (Controller::Memory, Version::V2) => "memory.max",
            (Controller::Pids, _) => "pids.max",
            (Controller::Cpu, Version::V1) => "cpu.cfs_quota_us",
            (Controller::Cpu, Version::V2) => "cpu.max",
        }
    }
}

/// One cgroup hierarchy previews get a directory in.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub version: Version,
    /// `<mount><previewd's own cgroup>/previewd`: the parent of every preview's directory, so
    /// previews sit under previewd's own cgroup, never at the root.
    pub parent: PathBuf,
    /// The controllers whose limits are set through this hierarchy (none: it only tracks the
    /// preview's processes).
    pub controllers: Vec<Controller>,
    /// Whether a cgroup here has `cgroup.kill` (v2 on Linux 5.14 and later).
    pub kill_file: bool,
}

impl Hierarchy {
    fn dir(&self, preview_id: &str) -> CgroupDir {
        CgroupDir {
            version: self.version,
            path: self.parent.join(preview_id),
            controllers: self.controllers.clone(),
            kill_file: self.kill_file,
        }
    }
}

/// One directory of a preview's cgroup.
#[derive(Debug, Clone)]
struct CgroupDir {
    version: Version,
    path: PathBuf,
    controllers: Vec<Controller>,
    kill_file: bool,
}

impl CgroupDir {
    /// Writes the limits of its memory and pids controllers; a zero setting leaves the
    /// kernel's "max". The CPU limit comes later ([`CgroupDir::write_cpu_limit`]).
    fn write_limits(&self, settings: &LimitSettings) -> io::Result<()> {
        for controller in &self.controllers {
            match (controller, self.version) {
                (Controller::Memory, version) => {
                    let Some(bytes) = settings.memory.limit() else {
                        continue;
                    };
                    self.write(Controller::Memory.limit_file(version), &bytes.to_string())?;
                    // Swap, where the kernel accounts it, is held to the same bound (v1: memory
                    // plus swap; v2: no swap at all).
                    let (swap_file, swap) = match version {
                        Version::V1 => ("memory.memsw.limit_in_bytes", bytes.to_string()),
                        Version::V2 => ("memory.swap.max", "0".to_string()),
                    };
                    if self.path.join(swap_file).exists() {
                        self.write(swap_file, &swap)?;
                    }
                }
                (Controller::Pids, _) => {
                    if settings.pids > 0 {
                        self.write("pids.max", &settings.pids.to_string())?;
                    }
                }
                (Controller::Cpu, _) => {}
            }
        }
        Ok(())
    }

    /// Writes the CPU quota, where this directory has the controller and a limit is set.
    fn write_cpu_limit(&self, settings: &LimitSettings) -> io::Result<()> {
        let Some(quota) = cpu_quota_us(settings.cpu) else {
            return Ok(());
        };
        if !self.controllers.contains(&Controller::Cpu) {
            return Ok(());
        }
        match self.version {
            Version::V1 => {
                self.write("cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                self.write("cpu.cfs_quota_us", &quota.to_string())
            }
            Version::V2 => self.write("cpu.max", &format!("{quota} {CPU_PERIOD_US}")),
        }
    }

    fn write(&self, file: &str, value: &str) -> io::Result<()> {
        let path = self.path.join(file);
        fs::write(&path, value).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("writing {value} to {}: {err}", path.display()),
            )
        })
    }

    fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.path.join("cgroup.procs"))
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kills every process at once through `cgroup.kill`; false where there is none.
    fn kill_all(&self) -> bool {
        self.kill_file && fs::write(self.path.join("cgroup.kill"), "1").is_ok()
    }

    /// The OOM kills the kernel recorded, when this directory limits memory.
    fn oom_kills(&self) -> Option<u64> {
        if !self.controllers.contains(&Controller::Memory) {
            return None;
        }
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = fs::read_to_string(self.path.join(file)).ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
    }
}

/// The CFS quota for `cores` CPUs, in microseconds per [`CPU_PERIOD_US`]; `None` for no limit.
pub fn cpu_quota_us(cores: f64) -> Option<u64> {
    (cores > 0.0).then(|| ((cores * CPU_PERIOD_US as f64).round() as u64).max(CPU_MIN_QUOTA_US))
}

/// A preview's cgroup: its directory in each hierarchy previewd uses (none: no cgroup at all,
/// and every operation does nothing).
#[derive(Debug, Clone, Default)]
pub struct PreviewCgroup {
    dirs: Vec<CgroupDir>,
}

impl PreviewCgroup {
    /// Creates the preview's directories and writes the limits into them. What was created is
    /// removed again on failure.
    pub(super) fn create(
        hierarchies: &[Hierarchy],
        preview_id: &str,
        settings: &LimitSettings,
    ) -> io::Result<PreviewCgroup> {
        let mut cgroup = PreviewCgroup::default();
        for hierarchy in hierarchies {
            let dir = hierarchy.dir(preview_id);
            let made = fs::create_dir(&dir.path)
                .map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!("creating {}: {err}", dir.path.display()),
                    )
                })
                .and_then(|()| {
                    cgroup.dirs.push(dir.clone());
                    dir.write_limits(settings)
                });
            if let Err(err) = made {
                let _ = cgroup.remove();
                return Err(err);
            }
        }
        Ok(cgroup)
    }

    /// Puts the CPU limit in place. Not at creation: a start-up throttled to a fraction of a
    /// core would take that many times longer (a FastAPI app's 0.35 s of imports, 0.7 s at
    /// half a core), and the start-up timeout already bounds what it may use.
    pub(super) fn limit_cpu(&self, settings: &LimitSettings) -> io::Result<()> {
        self.dirs
            .iter()
            .try_for_each(|dir| dir.write_cpu_limit(settings))
    }

    /// The directories a preview `preview_id` has now (after a crash of previewd, say).
    pub(super) fn existing(hierarchies: &[Hierarchy], preview_id: &str) -> PreviewCgroup {
        PreviewCgroup {
            dirs: hierarchies
                .iter()
                .map(|h| h.dir(preview_id))
                .filter(|d| d.path.is_dir())
                .collect(),
        }
    }

    /// The directories, one per hierarchy.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|d| d.path.as_path())
    }

    /// The `cgroup.procs` files a process writes itself into to join.
    pub(super) fn procs_files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.dirs.iter().map(|d| d.path.join("cgroup.procs"))
    }

    /// Every process in the cgroup, in any of its hierarchies.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.dirs.iter().flat_map(CgroupDir::pids).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Sends `signal` to every process in the cgroup (SIGKILL through `cgroup.kill` first where
    /// there is one, which reaches processes forked meanwhile too); returns how many were seen.
    pub fn signal(&self, signal: Signal) -> usize {
        let pids = self.pids();
        if signal == Signal::SIGKILL {
            // One hierarchy's cgroup.kill reaches every process: they all joined every dir.
            let _ = self.dirs.iter().any(CgroupDir::kill_all);
        }
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), signal);
        }
        pids.len()
    }

    /// How many processes the kernel's OOM killer ended in the cgroup; `None` when memory is
    /// not limited by a cgroup.
    pub fn oom_kills(&self) -> Option<u64> {
        self.dirs.iter().find_map(CgroupDir::oom_kills)
    }

    /// Removes the directories (a cgroup goes only once its processes have); retried briefly
    /// while the last ones finish exiting.
    pub fn remove(&self) -> io::Result<()> {
        for dir in &self.dirs {
            let mut attempt = 0;
            loop {
                match fs::remove_dir(&dir.path) {
                    Ok(()) => break,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => break,
                    Err(_) if attempt + 1 < REMOVE_ATTEMPTS => {
                        attempt += 1;
                        std::thread::sleep(REMOVE_RETRY);
                    }
                    Err(err) => {
                        return Err(io::Error::new(
                            err.kind(),
                            format!("removing {}: {err}", dir.path.display()),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quotas are in microseconds per 100 ms period, never below the kernel's minimum.
    #[test]
    fn cpu_quotas() {
        assert_eq!(cpu_quota_us(0.5), Some(50_000));
        assert_eq!(cpu_quota_us(2.0), Some(200_000));
        assert_eq!(cpu_quota_us(0.001), Some(CPU_MIN_QUOTA_US));
        assert_eq!(cpu_quota_us(0.0), None);
    }

    /// OOM kills are read from the v1 and v2 files alike, only where memory is limited.
    #[test]
    fn reads_oom_kills() {
        let root = tempfile::tempdir().unwrap();
        let dir = |version, controllers: Vec<Controller>, name: &str, file: &str, text: &str| {
            let path = root.path().join(name);
            fs::create_dir(&path).unwrap();
            fs::write(path.join(file), text).unwrap();
            CgroupDir {
                version,
                path,
                controllers,
                kill_file: false,
            }
        };
        let v1 = dir(
            Version::V1,
            vec![Controller::Memory],
            "v1",
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        let v2 = dir(
            Version::V2,
            vec![Controller::Memory, Controller::Pids],
            "v2",
            "memory.events",
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
        );
        let pids_only = dir(
            Version::V1,
            vec![Controller::Pids],
            "pids",
            "memory.oom_control",
            "oom_kill 9\n",
        );
        assert_eq!(v1.oom_kills(), Some(2));
        assert_eq!(v2.oom_kills(), Some(1));
        assert_eq!(pids_only.oom_kills(), None);
        let cgroup = PreviewCgroup {
            dirs: vec![pids_only, v1],
        };
        assert_eq!(cgroup.oom_kills(), Some(2));
        assert_eq!(PreviewCgroup::default().oom_kills(), None);
    }
}
