//! Isolation of previews from the host and from each other (`--isolation`).
//!
//! With `namespaces` each preview runs in its own mount, PID and IPC namespaces, sees the system
//! read-only, writes only to its project folder, its scratch folder and a private `/tmp`, and
//! sees nothing of previewd's data and cache folders (database, secret, other previews' files,
//! other environments) but the runtime scripts and the one environment it runs in. The app
//! keeps the host's network: it binds its port on loopback and reaches what it needs.
//!
//! Whether the host allows it (root or `CAP_SYS_ADMIN`, a kernel with `open_tree` and
//! `mount_setattr`, 5.12 or later) is found once at start-up by building a real sandbox in a
//! throw-away process. Without `--isolation`, a host that does not allow it runs previews
//! without namespaces and says so; `--isolation namespaces` refuses to start there.
//!
//! # Layout
//! - [`sandbox`]: the child's side: namespaces, the file-system view, the init, the relay.
//! - `sys`: the allocation-free system calls the sandbox is built with.

pub mod sandbox;
mod sys;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sandbox::{Attachment, Failure, Keep, Mask, Sandbox, Step, MAX_KEEPS};

/// How previews are isolated, as chosen by `--isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsolationMode {
    /// Own mount, PID and IPC namespaces, a read-only system and a private `/tmp`.
    Namespaces,
    /// Previews run in previewd's namespaces and see what previewd's user may see.
    None,
}

/// Why isolation could not be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("--isolation namespaces, but this host does not allow it: {0}")]
    Unavailable(String),
}

/// The folders of previewd a sandbox is built around.
#[derive(Debug, Clone)]
pub struct Folders {
    /// previewd's data folder: hidden.
    pub data_dir: PathBuf,
    /// The shared cache folder: hidden.
    pub cache_dir: PathBuf,
    /// The runtime scripts: read-only.
    pub runtimes_dir: PathBuf,
}

/// The isolation previews get on this host.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// `None` when previews run without namespaces.
    sandboxes: Option<SandboxFactory>,
    summary: String,
}

impl Isolation {
    /// Decides how previews are isolated: `mode` as asked, or namespaces where the host allows.
    /// `tmp_bytes` bounds each preview's private `/tmp`.
    pub fn detect(
        mode: Option<IsolationMode>,
        folders: Folders,
        tmp_bytes: Option<u64>,
    ) -> Result<Isolation, IsolationError> {
        if mode == Some(IsolationMode::None) {
            return Ok(Isolation::none("none (--isolation none)".into()));
        }
        let factory = SandboxFactory::new(folders, tmp_bytes);
        match factory.probe() {
            Ok(()) => Ok(Isolation {
                sandboxes: Some(factory),
                summary: "namespaces: own mount, PID and IPC namespaces, read-only system, \
                          private /tmp, no capabilities"
                    .into(),
            }),
            Err(reason) if mode.is_none() => Ok(Isolation::none(format!(
                "none: this host does not allow namespaces ({reason}); previews run unisolated"
            ))),
            Err(reason) => Err(IsolationError::Unavailable(reason)),
        }
    }

    fn none(summary: String) -> Isolation {
        Isolation {
            sandboxes: None,
            summary,
        }
    }

    /// Whether previews get a sandbox (namespaces).
    pub fn is_sandboxed(&self) -> bool {
        self.sandboxes.is_some()
    }

    /// `namespaces` or `none`.
    pub fn mechanism(&self) -> &'static str {
        match self.sandboxes {
            Some(_) => "namespaces",
            None => "none",
        }
    }

    /// What previewd found at start-up, for its log and `/config`.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The sandbox of a preview, or `None` without isolation.
    pub fn sandbox(&self, preview: &PreviewFolders) -> io::Result<Option<Sandbox>> {
        self.sandboxes
            .as_ref()
            .map(|factory| factory.sandbox(preview))
            .transpose()
    }

    /// Puts `folders` (writable) into the sandbox of the running process `pid`, a warm process
    /// about to be handed a project; nothing to do without isolation.
    pub fn attach(&self, pid: u32, folders: &[&Path]) -> io::Result<()> {
        let Some(factory) = &self.sandboxes else {
            return Ok(());
        };
        let attachment = factory.attachment(folders)?;
        let namespace = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&namespace);
        in_child(|| attachment.attach(fd)).map_err(io::Error::other)
    }

    /// One line on what a preview gets, for its log.
    pub fn describe(&self) -> String {
        match self.sandboxes {
            Some(_) => "isolation: own mount, PID and IPC namespaces; the system read-only; \
                        writable: the project folder, the scratch folder (HOME, TMPDIR) and a \
                        private /tmp; \
                        previewd's data and cache folders hidden; no capabilities"
                .into(),
            None => format!("isolation: {}", self.summary),
        }
    }
}

/// The folders of one preview.
#[derive(Debug, Clone)]
pub struct PreviewFolders<'a> {
    /// The generation's files: writable. `None` for a warm process, which is handed its
    /// project later ([`Isolation::attach`]).
    pub project_dir: Option<&'a Path>,
    /// The preview's scratch folder: writable.
    pub scratch_dir: &'a Path,
    /// The environment the app runs in (a virtualenv, a `node_modules`): read-only.
    pub env_dir: Option<&'a Path>,
    /// Where the app starts.
    pub work_dir: &'a Path,
}

/// Makes [`Sandbox`]es for previewd's folders.
#[derive(Debug, Clone)]
struct SandboxFactory {
    folders: Folders,
    tmp_bytes: Option<u64>,
    last_cap: libc::c_ulong,
}

impl SandboxFactory {
    fn new(folders: Folders, tmp_bytes: Option<u64>) -> SandboxFactory {
        let folders = Folders {
            data_dir: real_path(&folders.data_dir),
            cache_dir: real_path(&folders.cache_dir),
            runtimes_dir: real_path(&folders.runtimes_dir),
        };
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(63);
        SandboxFactory {
            folders,
            tmp_bytes,
            last_cap,
        }
    }

    fn sandbox(&self, preview: &PreviewFolders) -> io::Result<Sandbox> {
        let mut keeps: Vec<(PathBuf, bool)> = preview
            .project_dir
            .map(|dir| (real_path(dir), true))
            .into_iter()
            .collect();
        keeps.push((real_path(preview.scratch_dir), true));
        keeps.push((self.folders.runtimes_dir.clone(), false));
        keeps.extend(preview.env_dir.map(|dir| (real_path(dir), false)));
        let masks = self.masks();
        let mount_points = mount_points(&keeps, &masks)?;
        Ok(Sandbox {
            keeps: c_keeps(keeps)?,
            masks: masks
                .into_iter()
                .map(|(path, options, writable)| {
                    Ok(Mask {
                        path: c_path(&path)?,
                        options: CString::new(options).map_err(io::Error::other)?,
                        writable,
                    })
                })
                .collect::<io::Result<_>>()?,
            mount_points,
            work_dir: c_path(&real_path(preview.work_dir))?,
            last_cap: self.last_cap,
        })
    }

    /// Putting `folders` (writable) into a sandbox this factory built.
    fn attachment(&self, folders: &[&Path]) -> io::Result<Attachment> {
        let keeps: Vec<(PathBuf, bool)> = folders.iter().map(|f| (real_path(f), true)).collect();
        let masks = self.masks();
        let unlock = masks
            .iter()
            .filter(|(mask, _, writable)| {
                !writable && keeps.iter().any(|(k, _)| k.starts_with(mask))
            })
            .map(|(mask, ..)| c_path(mask))
            .collect::<io::Result<_>>()?;
        Ok(Attachment {
            mount_points: mount_points(&keeps, &masks)?,
            keeps: c_keeps(keeps)?,
            unlock,
        })
    }

    /// The tmpfs masks of every sandbox: previewd's data and cache folders (hidden) and a
    /// private `/tmp`, as (path, tmpfs options, writable), none inside another.
    fn masks(&self) -> Vec<(PathBuf, String, bool)> {
        let tmp_options = match self.tmp_bytes {
            Some(bytes) => format!("mode=1777,size={bytes}"),
            None => "mode=1777".into(),
        };
        outermost(vec![
            (
                self.folders.data_dir.clone(),
                "mode=0755,size=64k".to_string(),
                false,
            ),
            (
                self.folders.cache_dir.clone(),
                "mode=0755,size=64k".to_string(),
                false,
            ),
            (PathBuf::from("/tmp"), tmp_options, true),
        ])
    }

    /// Builds a sandbox in a throw-away process; the reason when it cannot.
    fn probe(&self) -> Result<(), String> {
        let dir = self.folders.data_dir.join("isolation-probe");
        let project = dir.join("project");
        std::fs::create_dir_all(&project)
            .map_err(|err| format!("creating {}: {err}", project.display()))?;
        let sandbox = self
            .sandbox(&PreviewFolders {
                project_dir: Some(&project),
                scratch_dir: &dir,
                env_dir: None,
                work_dir: &project,
            })
            .map_err(|err| err.to_string())?;
        let outcome = in_child(|| sandbox.enter());
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }
}

/// Forks a process that runs `step` (a sandbox's system calls) and exits; the failed step, if
/// any. `step` must make only async-signal-safe calls: previewd has other threads.
fn in_child(step: impl FnOnce() -> Result<(), Failure>) -> Result<(), String> {
    let mut pipe = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(format!("pipe: {}", io::Error::last_os_error()));
    }
    let [read, write] = pipe;
    // SAFETY: the child makes only async-signal-safe calls (the sandbox's, write, _exit).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match step() {
            Ok(()) => 0,
            Err(Failure { step, errno }) => {
                let report = [step as u8, errno as u8, (errno >> 8) as u8];
                // SAFETY: writes from a live buffer, then exits without unwinding.
                unsafe { libc::write(write, report.as_ptr().cast(), report.len()) };
                1
            }
        };
        // SAFETY: ends the probe process.
        unsafe { libc::_exit(code) }
    }
    // SAFETY: closes the parent's write end, once.
    unsafe { libc::close(write) };
    if pid < 0 {
        // SAFETY: closes the read end, once.
        unsafe { libc::close(read) };
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    let mut report = [0u8; 3];
    // SAFETY: reads into a live buffer, then closes the read end once.
    let n = unsafe {
        let n = libc::read(read, report.as_mut_ptr().cast(), report.len());
        libc::close(read);
        n
    };
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)
        .map_err(|err| format!("waiting for the probe: {err}"))?;
    if n == 3 {
        let step = Step::from_code(report[0]).map_or("an unknown step", Step::describe);
        let errno = i32::from(report[1]) | i32::from(report[2]) << 8;
        return Err(format!(
            "{step} failed: {}",
            io::Error::from_raw_os_error(errno)
        ));
    }
    match status {
        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
        other => Err(format!("the probe process ended as {other:?}")),
    }
}

/// The directories to create inside the masks for `keeps` to be attached to, parents first.
fn mount_points(
    keeps: &[(PathBuf, bool)],
    masks: &[(PathBuf, String, bool)],
) -> io::Result<Vec<CString>> {
    if keeps.len() > MAX_KEEPS {
        return Err(io::Error::other("too many folders for a sandbox"));
    }
    let mut mount_points = Vec::new();
    let mut seen = BTreeSet::new();
    for (keep, _) in keeps {
        let Some((mask, ..)) = masks.iter().find(|(m, ..)| keep.starts_with(m)) else {
            continue;
        };
        let mut points: Vec<&Path> = keep
            .ancestors()
            .take_while(|a| a != mask && a.starts_with(mask))
            .collect();
        points.reverse();
        for point in points {
            if seen.insert(point.to_path_buf()) {
                mount_points.push(c_path(point)?);
            }
        }
    }
    Ok(mount_points)
}

fn c_keeps(keeps: Vec<(PathBuf, bool)>) -> io::Result<Vec<Keep>> {
    keeps
        .into_iter()
        .map(|(path, writable)| {
            Ok(Keep {
                path: c_path(&path)?,
                writable,
            })
        })
        .collect()
}

/// The masks none of which is inside another.
fn outermost(mut masks: Vec<(PathBuf, String, bool)>) -> Vec<(PathBuf, String, bool)> {
    masks.sort_by_key(|(path, ..)| path.components().count());
    let mut kept: Vec<(PathBuf, String, bool)> = Vec::new();
    for mask in masks {
        if !kept.iter().any(|(outer, ..)| mask.0.starts_with(outer)) {
            kept.push(mask);
        }
    }
    kept
}

/// `path` with symbolic links and `..` resolved, as mounts see it (as is if it does not exist).
fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other(format!("{} contains a NUL byte", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders() -> Folders {
        Folders {
            data_dir: "/srv/previewd".into(),
            cache_dir: "/srv/previewd/cache".into(),
            runtimes_dir: "/srv/previewd/runtimes".into(),
        }
    }

    #[test]
    fn masks_nest_and_mount_points_lead_to_every_kept_folder() {
        let factory = SandboxFactory::new(folders(), Some(1 << 20));
        let sandbox = factory
            .sandbox(&PreviewFolders {
                project_dir: Some(Path::new("/srv/previewd/generations/g1")),
                scratch_dir: Path::new("/srv/previewd/previews/p1"),
                env_dir: Some(Path::new("/srv/previewd/cache/python-envs/abc")),
                work_dir: Path::new("/srv/previewd/generations/g1/app"),
            })
            .unwrap();
        let masks: Vec<_> = sandbox
            .masks
            .iter()
            .map(|m| (m.path.to_str().unwrap(), m.writable))
            .collect();
        assert_eq!(masks, [("/tmp", true), ("/srv/previewd", false)]);
        let points: Vec<_> = sandbox
            .mount_points
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(
            points,
            [
                "/srv/previewd/generations",
                "/srv/previewd/generations/g1",
                "/srv/previewd/previews",
                "/srv/previewd/previews/p1",
                "/srv/previewd/runtimes",
                "/srv/previewd/cache",
                "/srv/previewd/cache/python-envs",
                "/srv/previewd/cache/python-envs/abc",
            ]
        );
        let writable: Vec<_> = sandbox.keeps.iter().map(|k| k.writable).collect();
        assert_eq!(writable, [true, true, false, false]);
    }

    #[test]
    fn an_attachment_opens_only_the_read_only_masks_it_makes_mount_points_in() {
        let factory = SandboxFactory::new(folders(), None);
        let attachment = factory
            .attachment(&[
                Path::new("/srv/previewd/generations/g1"),
                Path::new("/tmp/elsewhere/p1"),
            ])
            .unwrap();
        let unlock: Vec<_> = attachment
            .unlock
            .iter()
            .map(|m| m.to_str().unwrap())
            .collect();
        assert_eq!(unlock, ["/srv/previewd"]);
        let points: Vec<_> = attachment
            .mount_points
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(
            points,
            [
                "/srv/previewd/generations",
                "/srv/previewd/generations/g1",
                "/tmp/elsewhere",
                "/tmp/elsewhere/p1",
            ]
        );
        assert!(attachment.keeps.iter().all(|k| k.writable));
    }

    #[test]
    fn a_data_dir_under_tmp_is_hidden_by_the_private_tmp() {
        let mut folders = folders();
        folders.data_dir = "/tmp/x/data".into();
        folders.cache_dir = "/var/cache/previewd".into();
        let masks = SandboxFactory::new(folders, None)
            .sandbox(&PreviewFolders {
                project_dir: Some(Path::new("/tmp/x/data/generations/g")),
                scratch_dir: Path::new("/tmp/x/data/previews/p"),
                env_dir: None,
                work_dir: Path::new("/tmp/x/data/generations/g"),
            })
            .unwrap()
            .masks;
        let paths: Vec<_> = masks.iter().map(|m| m.path.to_str().unwrap()).collect();
        assert_eq!(paths, ["/tmp", "/var/cache/previewd"]);
        assert_eq!(masks[0].options.to_str().unwrap(), "mode=1777");
    }
}
