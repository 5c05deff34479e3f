//! Thin, allocation-free wrappers of the Linux calls a sandbox is built with, for use between
//! `fork` and `exec`: each returns the raw `errno` on failure, so a caller can say which step
//! failed without allocating.

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::ptr;

/// An `errno`.
pub type Errno = i32;

/// `Ok` for a non-negative return, else the current `errno`.
fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// The calling thread's `errno`.
pub fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

// From <linux/mount.h>; not all of them are in the libc crate.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached copy of the mount tree at `path` (`open_tree(OPEN_TREE_CLONE)`), to be attached
/// elsewhere with [`move_mount`] after `path` itself is hidden.
pub fn clone_tree(path: &CStr) -> Result<RawFd, Errno> {
    // SAFETY: `path` is NUL-terminated; the call takes no other pointer.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint,
        )
    })?;
    Ok(fd as RawFd)
}

/// Attaches the detached tree `fd` at `target`.
pub fn move_mount(fd: RawFd, target: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// Sets and clears mount attributes (`MOUNT_ATTR_*`) of the mount at `path`, or of the
/// detached tree `fd` when `path` is `None`, and of every mount below it when `recursive`.
pub fn set_mount_attrs(
    fd: Option<RawFd>,
    path: &CStr,
    recursive: bool,
    set: u64,
    clear: u64,
) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    let dirfd = match fd {
        Some(fd) => {
            flags |= libc::AT_EMPTY_PATH;
            fd
        }
        None => libc::AT_FDCWD,
    };
    // SAFETY: `path` is NUL-terminated and `attr` is a live `struct mount_attr` of the size given.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// `mount(2)`; `None` for the arguments a call does not use.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let ptr_of = |s: Option<&CStr>| s.map_or(ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    let ret = unsafe {
        libc::mount(
            ptr_of(source),
            target.as_ptr(),
            ptr_of(fstype),
            flags,
            ptr_of(data).cast(),
        )
    };
    check(ret.into())?;
    Ok(())
}

/// `setns(2)` into the mount namespace `fd` refers to; the caller must be single-threaded.
pub fn enter_mount_namespace(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: setns takes plain integers.
    check(unsafe { libc::setns(fd, libc::CLONE_NEWNS) }.into())?;
    Ok(())
}

/// `mkdir(2)`, an existing directory being no error.
pub fn mkdir(path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated.
    match check(unsafe { libc::mkdir(path.as_ptr(), mode) }.into()) {
        Err(libc::EEXIST) | Ok(_) => Ok(()),
        Err(errno) => Err(errno),
    }
}

/// Creates an empty file at `path` (a mount point for a device node).
pub fn touch(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated; the descriptor is closed at once.
    let fd = check(
        unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o666,
            )
        }
        .into(),
    )?;
    // SAFETY: closes the descriptor just opened, once.
    unsafe { libc::close(fd as RawFd) };
    Ok(())
}

/// A symbolic link at `link` to `target`.
pub fn symlink(target: &CStr, link: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated.
    check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }.into())?;
    Ok(())
}

/// Closes every descriptor but `keep`.
pub fn close_all_but(keep: RawFd) {
    // SAFETY: close_range takes plain integers; closing descriptors this process owns.
    unsafe {
        if keep > 0 {
            libc::syscall(libc::SYS_close_range, 0, keep - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0);
    }
}

/// `_LINUX_CAPABILITY_VERSION_3` of `capset(2)`.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability for good: the bounding set (so that `exec`, even as root, grants
/// none back), the ambient set, then the process's own sets; and forbids gaining privileges
/// through set-uid files.
pub fn drop_capabilities(last_cap: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        for cap in 0..=last_cap {
            match check(libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0).into()) {
                Ok(_) | Err(libc::EINVAL) => {}
                Err(errno) => return Err(errno),
            }
        }
        check(
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
            .into(),
        )?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
    }
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: a valid header and the two data structs version 3 expects.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) })?;
    Ok(())
}
