//! What a preview's first process does between `fork` and `exec` to put the app in a sandbox
//! of its own. Everything here is prepared in the parent ([`Sandbox`] holds only C strings) and
//! runs allocation-free and async-signal-safe in the child.
//!
//! The process previewd spawns (the *relay*) unshares the mount, PID and IPC namespaces and
//! forks the namespace's init, which builds the file-system view and forks the app. So:
//!
//! - the relay stays in previewd's PID namespace as the child previewd waits for: it ignores
//!   termination signals, waits for the app to end and ends the same way (exit code or signal);
//! - the init (PID 1 in the namespace) reaps orphans and reports the app's wait status to the
//!   relay. It dies with the relay, and when it ends the kernel kills everything left in the
//!   namespace: the namespace is a unit no `setsid` or double fork escapes;
//! - the app, PID 2, runs with no capabilities at all, so it cannot undo the view.
//!
//! The view: every mount of the host read-only and `nosuid`; tmpfs over previewd's data and
//! cache folders, the project folder, the preview's scratch folder (writable), the runtime
//! scripts and the environment in use (read-only) put back at their own paths, so every path
//! previewd hands the app stays valid; a private `/tmp`; a `/dev` with only the harmless
//! devices; a `/proc` of the namespace, with its kernel knobs read-only.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;

use super::sys::{self, Errno, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// Most folders a sandbox puts back ([`Sandbox::keeps`]).
pub const MAX_KEEPS: usize = 8;
/// The device nodes a sandbox's `/dev` has.
const DEVICES: [&CStr; 6] = [
    c"/dev/null",
    c"/dev/zero",
    c"/dev/full",
    c"/dev/random",
    c"/dev/urandom",
    c"/dev/tty",
];
/// `/dev`'s links to the process's own descriptors.
const DEV_LINKS: [(&CStr, &CStr); 4] = [
    (c"/proc/self/fd", c"/dev/fd"),
    (c"/proc/self/fd/0", c"/dev/stdin"),
    (c"/proc/self/fd/1", c"/dev/stdout"),
    (c"/proc/self/fd/2", c"/dev/stderr"),
];
/// Parts of `/proc` that set kernel-wide state, made read-only.
const PROC_READ_ONLY: [&CStr; 4] = [
    c"/proc/sys",
    c"/proc/sysrq-trigger",
    c"/proc/irq",
    c"/proc/bus",
];
/// Signals the relay ignores: a stop signals the whole tree, and the relay ends with the app.
const RELAYED: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

/// A folder put back into the view.
#[derive(Debug, Clone)]
pub struct Keep {
    pub path: CString,
    pub writable: bool,
}

/// A tmpfs mounted over a path.
#[derive(Debug, Clone)]
pub struct Mask {
    pub path: CString,
    /// tmpfs options (`mode=…,size=…`).
    pub options: CString,
    /// Whether the app may write in it (a private `/tmp`) or not (a hidden folder).
    pub writable: bool,
}

/// A sandbox, prepared before the fork.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Folders put back at their own paths, in this order (at most [`MAX_KEEPS`]).
    pub keeps: Vec<Keep>,
    /// tmpfs mounts hiding what is below them; none inside another.
    pub masks: Vec<Mask>,
    /// Directories to create inside the masks for the keeps to be attached to, parents first.
    pub mount_points: Vec<CString>,
    /// The app's working directory.
    pub work_dir: CString,
    /// The highest capability number of the running kernel.
    pub last_cap: libc::c_ulong,
}

/// A step of building a sandbox that failed, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub errno: Errno,
}

/// The steps of building a sandbox, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    Unshare = 1,
    Fork,
    PrivateMounts,
    CloneFolder,
    Mask,
    MountPoint,
    Dev,
    ReadOnly,
    AttachFolder,
    Proc,
    WorkDir,
    DropCapabilities,
    EnterNamespace,
}

impl Step {
    const ALL: [Step; 13] = [
        Step::Unshare,
        Step::Fork,
        Step::PrivateMounts,
        Step::CloneFolder,
        Step::Mask,
        Step::MountPoint,
        Step::Dev,
        Step::ReadOnly,
        Step::AttachFolder,
        Step::Proc,
        Step::WorkDir,
        Step::DropCapabilities,
        Step::EnterNamespace,
    ];

    /// The step of a code written by a probe.
    pub fn from_code(code: u8) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u8 == code)
    }

    /// What the step does, for a message.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Unshare => "creating mount, PID and IPC namespaces",
            Step::Fork => "forking the namespace's init",
            Step::PrivateMounts => "making mounts private",
            Step::CloneFolder => "cloning a folder's mount (open_tree)",
            Step::Mask => "mounting a tmpfs over a hidden folder",
            Step::MountPoint => "creating a mount point",
            Step::Dev => "building /dev",
            Step::ReadOnly => "making the system read-only (mount_setattr)",
            Step::AttachFolder => "attaching a folder (move_mount)",
            Step::Proc => "mounting /proc",
            Step::WorkDir => "entering the working directory",
            Step::DropCapabilities => "dropping capabilities",
            Step::EnterNamespace => "entering the sandbox's mount namespace (setns)",
        }
    }
}

/// `Err(Failure)` of `step` for a raw result.
trait At<T> {
    fn at(self, step: Step) -> Result<T, Failure>;
}

impl<T> At<T> for Result<T, Errno> {
    fn at(self, step: Step) -> Result<T, Failure> {
        self.map_err(|errno| Failure { step, errno })
    }
}

impl Sandbox {
    /// Runs in the spawned child before `exec`. Returns only in the app's process, ready to
    /// `exec`; the relay and the init never return.
    pub fn enter(&self) -> Result<(), Failure> {
        let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
        // SAFETY: unshare takes an integer.
        check_ret(unsafe { libc::unshare(flags) }).at(Step::Unshare)?;
        let mut status_pipe = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two-element array.
        check_ret(unsafe { libc::pipe2(status_pipe.as_mut_ptr(), libc::O_CLOEXEC) })
            .at(Step::Fork)?;
        let [status_read, status_write] = status_pipe;
        // SAFETY: the child only makes async-signal-safe calls until it execs or exits.
        let init = check_ret(unsafe { libc::fork() }).at(Step::Fork)?;
        if init > 0 {
            relay(init, status_read)
        }
        // SAFETY: closes this process's copy of the read end, once.
        unsafe { libc::close(status_read) };
        // The namespace ends with the relay previewd holds, whatever kills it.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        self.build_view()?;
        // SAFETY: as above.
        let app = check_ret(unsafe { libc::fork() }).at(Step::Fork)?;
        if app > 0 {
            init_loop(app, status_write)
        }
        // SAFETY: closes the app's copy of the write end, once.
        unsafe { libc::close(status_write) };
        sys::drop_capabilities(self.last_cap).at(Step::DropCapabilities)
    }

    /// Builds the file-system view in the new mount namespace.
    fn build_view(&self) -> Result<(), Failure> {
        let rec_private = libc::MS_REC | libc::MS_PRIVATE;
        sys::mount(None, c"/", None, rec_private, None).at(Step::PrivateMounts)?;

        // Copies of what is put back, taken before anything is hidden.
        let mut keeps = [-1 as RawFd; MAX_KEEPS];
        for (fd, keep) in keeps.iter_mut().zip(&self.keeps) {
            *fd = sys::clone_tree(&keep.path).at(Step::CloneFolder)?;
        }
        let mut devices = [-1 as RawFd; DEVICES.len()];
        for (fd, device) in devices.iter_mut().zip(DEVICES) {
            // A device the host lacks is left out.
            *fd = sys::clone_tree(device).unwrap_or(-1);
        }

        let hidden = libc::MS_NOSUID | libc::MS_NODEV;
        for mask in &self.masks {
            sys::mount(
                Some(c"tmpfs"),
                &mask.path,
                Some(c"tmpfs"),
                hidden,
                Some(&mask.options),
            )
            .at(Step::Mask)?;
        }
        for dir in &self.mount_points {
            sys::mkdir(dir, 0o755).at(Step::MountPoint)?;
        }
        sys::mount(
            Some(c"tmpfs"),
            c"/dev",
            Some(c"tmpfs"),
            hidden | libc::MS_NOEXEC,
            Some(c"mode=0755,size=64k"),
        )
        .at(Step::Dev)?;
        for (fd, device) in devices.iter().zip(DEVICES) {
            if *fd >= 0 {
                sys::touch(device).at(Step::Dev)?;
            }
        }
        for (target, link) in DEV_LINKS {
            sys::symlink(target, link).at(Step::Dev)?;
        }
        sys::mkdir(c"/dev/shm", 0o1777).at(Step::Dev)?;

        // Everything so far read-only, then the writable parts opened up or attached.
        sys::set_mount_attrs(None, c"/", true, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)
            .at(Step::ReadOnly)?;
        for mask in self.masks.iter().filter(|m| m.writable) {
            sys::set_mount_attrs(None, &mask.path, false, 0, MOUNT_ATTR_RDONLY)
                .at(Step::ReadOnly)?;
        }
        sys::mount(
            Some(c"tmpfs"),
            c"/dev/shm",
            Some(c"tmpfs"),
            hidden,
            Some(c"mode=1777,size=64m"),
        )
        .at(Step::Dev)?;
        for (fd, device) in devices.iter().zip(DEVICES) {
            if *fd >= 0 {
                sys::move_mount(*fd, device).at(Step::Dev)?;
            }
        }
        for (fd, keep) in keeps.iter().zip(&self.keeps) {
            let (set, clear) = match keep.writable {
                true => (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, MOUNT_ATTR_RDONLY),
                false => (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0),
            };
            sys::set_mount_attrs(Some(*fd), c"", true, set, clear).at(Step::AttachFolder)?;
            sys::move_mount(*fd, &keep.path).at(Step::AttachFolder)?;
        }

        sys::mount(
            Some(c"proc"),
            c"/proc",
            Some(c"proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        )
        .at(Step::Proc)?;
        for path in PROC_READ_ONLY {
            // Absent on some kernels.
            if sys::mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None).is_ok() {
                let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
                sys::mount(None, path, None, flags, None).at(Step::Proc)?;
            }
        }
        // The working directory was entered before the view changed; enter the new one.
        // SAFETY: `work_dir` is NUL-terminated.
        check_ret(unsafe { libc::chdir(self.work_dir.as_ptr()) }).at(Step::WorkDir)?;
        Ok(())
    }
}

/// Folders put into the sandbox of a running process (a warm process handed a project): its
/// mount namespace gets them writable at their own paths, as if the sandbox had been built with
/// them. Prepared before the fork, like [`Sandbox`].
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The folders, all writable (at most [`MAX_KEEPS`]).
    pub keeps: Vec<Keep>,
    /// Read-only masks the mount points are made in: made writable for as long as that takes.
    pub unlock: Vec<CString>,
    /// Directories to create inside the masks, parents first.
    pub mount_points: Vec<CString>,
}

impl Attachment {
    /// Runs in a forked, single-threaded child of previewd: clones the folders from previewd's
    /// view, enters the sandbox's mount namespace (`namespace`: an open `/proc/<pid>/ns/mnt`)
    /// and attaches them there.
    pub fn attach(&self, namespace: RawFd) -> Result<(), Failure> {
        let mut keeps = [-1 as RawFd; MAX_KEEPS];
        for (fd, keep) in keeps.iter_mut().zip(&self.keeps) {
            *fd = sys::clone_tree(&keep.path).at(Step::CloneFolder)?;
        }
        sys::enter_mount_namespace(namespace).at(Step::EnterNamespace)?;
        for mask in &self.unlock {
            sys::set_mount_attrs(None, mask, false, 0, MOUNT_ATTR_RDONLY).at(Step::MountPoint)?;
        }
        let made = self
            .mount_points
            .iter()
            .try_for_each(|dir| sys::mkdir(dir, 0o755))
            .at(Step::MountPoint);
        for mask in &self.unlock {
            sys::set_mount_attrs(None, mask, false, MOUNT_ATTR_RDONLY, 0).at(Step::MountPoint)?;
        }
        made?;
        for (fd, keep) in keeps.iter().zip(&self.keeps) {
            let set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
            sys::set_mount_attrs(Some(*fd), c"", true, set, MOUNT_ATTR_RDONLY)
                .at(Step::AttachFolder)?;
            sys::move_mount(*fd, &keep.path).at(Step::AttachFolder)?;
        }
        Ok(())
    }
}

/// `Ok` for a non-negative return, else `errno`.
fn check_ret(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret < 0 {
        Err(sys::errno())
    } else {
        Ok(ret)
    }
}

/// The relay: waits for the app's wait status from the init (or the init's own, if it died
/// first) and ends the same way.
fn relay(init: libc::pid_t, status_read: RawFd) -> ! {
    sys::close_all_but(status_read);
    for signal in RELAYED {
        // SAFETY: setting a signal to be ignored is async-signal-safe.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    let mut buf = [0u8; 4];
    let mut read = 0;
    while read < buf.len() {
        // SAFETY: reads into the rest of `buf`.
        let n = unsafe {
            libc::read(
                status_read,
                buf[read..].as_mut_ptr().cast(),
                buf.len() - read,
            )
        };
        match n {
            n if n > 0 => read += n as usize,
            n if n < 0 && sys::errno() == libc::EINTR => {}
            _ => break,
        }
    }
    let mut init_status = 0;
    // SAFETY: waits for our own child.
    while unsafe { libc::waitpid(init, &mut init_status, 0) } < 0 && sys::errno() == libc::EINTR {}
    let status = if read == buf.len() {
        i32::from_ne_bytes(buf)
    } else {
        init_status
    };
    end_as(status)
}

/// Ends this process as a process with wait status `status` ended.
fn end_as(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // SAFETY: resets the signal's action, unblocks it and sends it to ourselves.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
        }
        // SAFETY: _exit never returns.
        unsafe { libc::_exit(128 + signal) }
    }
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
}

/// The namespace's init: reaps every process that ends in the namespace and, when the app
/// ends, hands its wait status to the relay and exits (which kills what is left).
fn init_loop(app: libc::pid_t, status_write: RawFd) -> ! {
    sys::close_all_but(status_write);
    loop {
        let mut status = 0;
        // SAFETY: waits for any child; `status` is a live integer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == app {
            let bytes = status.to_ne_bytes();
            // SAFETY: writes four bytes from a live buffer; a short write leaves the relay
            // with the init's own status.
            unsafe {
                libc::write(status_write, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0)
            }
        }
        if pid < 0 && sys::errno() != libc::EINTR {
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(1) }
        }
    }
}
