//! A preview's processes seen from the host. previewd marks them with the preview's id in their
//! environment; an isolated app knows itself by its pid inside its own PID namespace (the app
//! is 2), while tests check processes from the host, so they translate.

use std::fs;
use std::path::PathBuf;

use crate::process_alive;

/// The live processes carrying `preview_id`'s marker.
pub fn marked_processes(preview_id: &str) -> Vec<i32> {
    let marker = format!("PREVIEWD_PREVIEW_ID={preview_id}");
    all_pids()
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|entry| entry == marker.as_bytes())
            })
        })
        .filter(|pid| process_alive(*pid))
        .collect()
}

/// The host pid of the process that `preview_id`'s app knows as `ns_pid`: the same number
/// without isolation. Panics when the preview runs no such process.
pub fn app_host_pid(preview_id: &str, ns_pid: i32) -> i32 {
    let own = pid_namespace(std::process::id() as i32);
    let namespace = marked_processes(preview_id)
        .into_iter()
        .filter_map(pid_namespace)
        .find(|ns| Some(ns) != own.as_ref());
    let Some(namespace) = namespace else {
        return ns_pid;
    };
    all_pids()
        .find(|&pid| {
            pid_namespace(pid).as_ref() == Some(&namespace) && inner_pid(pid) == Some(ns_pid)
        })
        .unwrap_or_else(|| panic!("preview {preview_id} runs no process {ns_pid}"))
}

fn all_pids() -> impl Iterator<Item = i32> {
    fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
}

fn pid_namespace(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// A process's pid in its innermost namespace (the last of `NSpid`).
fn inner_pid(pid: i32) -> Option<i32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}
