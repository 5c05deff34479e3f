//! What a preview's first process does between `fork` and `exec`: join the preview's cgroups
//! (so every descendant is inside from its first instruction) and set the rlimits that stand in
//! for missing cgroup controllers. Only async-signal-safe calls happen there (`open`, `write`,
//! `close`, `setrlimit`); everything is prepared beforehand in the parent.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sys::resource::{setrlimit, Resource};

/// The set-up of a preview's first process, prepared before the fork.
#[derive(Debug, Clone, Default)]
pub struct ChildSetup {
    /// `cgroup.procs` files to write `0` (the writing process itself) into.
    procs: Vec<CString>,
    /// Resource, soft limit, hard limit.
    rlimits: Vec<(Resource, u64, u64)>,
}

impl ChildSetup {
    /// A set-up joining `procs` files and setting `rlimits`.
    pub(super) fn new(
        procs: impl IntoIterator<Item = PathBuf>,
        rlimits: Vec<(Resource, u64, u64)>,
    ) -> io::Result<ChildSetup> {
        let procs = procs
            .into_iter()
            .map(|path| CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other))
            .collect::<io::Result<_>>()?;
        Ok(ChildSetup { procs, rlimits })
    }

    /// Runs in the forked child before `exec`; async-signal-safe, allocation-free.
    pub fn apply(&self) -> io::Result<()> {
        for path in &self.procs {
            // SAFETY: `path` is a valid NUL-terminated string owned by `self`.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: writes one byte from a static buffer to the descriptor just opened.
            let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            let error = io::Error::last_os_error();
            // SAFETY: closes the descriptor opened above, once.
            unsafe { libc::close(fd) };
            if written != 1 {
                return Err(error);
            }
        }
        for (resource, soft, hard) in &self.rlimits {
            setrlimit(*resource, *soft, *hard)?;
        }
        Ok(())
    }
}
