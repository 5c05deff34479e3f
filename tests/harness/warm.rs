//! Warm runtimes seen from a test: a server's warm processes found in `/proc` (their launcher
//! runs with `--warm`, and their `TMPDIR` is a scratch folder under the server's data dir), the
//! processes around them, and the warm gauges and counters of `/metrics`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::fleet::metric;
use crate::{process_alive, Client};

/// Idle warm processes that are ready for a launch.
pub const READY: &str = r#"previewd_warm_processes{state="ready"}"#;
/// Idle warm processes still pre-importing.
pub const STARTING: &str = r#"previewd_warm_processes{state="starting"}"#;
/// Launches that reached a process on the warm path.
pub const WARM_LAUNCHES: &str = r#"previewd_launches_total{start="warm"}"#;
/// Launches that reached a process on the cold path.
pub const COLD_LAUNCHES: &str = r#"previewd_launches_total{start="cold"}"#;

/// The live processes started as warm processes by the server whose data dir is `data_dir`:
/// idle ones, and ones that have become a preview since (a warm process keeps its command line
/// and its first environment in `/proc` when it takes a project). Sorted.
pub fn warm_processes(data_dir: &Path) -> Vec<i32> {
    let scratch: Vec<String> = [data_dir.to_path_buf()]
        .into_iter()
        .chain(data_dir.canonicalize().ok())
        .map(|dir| format!("TMPDIR={}/", dir.join("previews").display()))
        .collect();
    let mut pids: Vec<i32> = all_pids()
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == b"--warm"))
        })
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|b| *b == 0)
                    .any(|var| scratch.iter().any(|s| var.starts_with(s.as_bytes())))
            })
        })
        .filter(|pid| process_alive(*pid))
        .collect();
    pids.sort();
    pids
}

/// The process `spawner` started that `pid` descends from: the ancestor of `pid` (or `pid`
/// itself) whose parent is `spawner`. Under namespaces a launcher is the third of a line the
/// server starts (the relay it spawns, the namespace's init, the launcher), and the server
/// names the relay in its log (`started process`, `warm start: process`); without namespaces
/// it is the launcher itself. `pid` when `spawner` is no ancestor of it.
pub fn spawned_root(pid: i32, spawner: i32) -> i32 {
    let mut top = pid;
    while let Some(up) = parent(top) {
        if up == spawner {
            return top;
        }
        if up <= 1 {
            break;
        }
        top = up;
    }
    pid
}

/// Every live process of the tree `spawner` started that `pid` belongs to: its
/// [`spawned_root`] and all the root's descendants, whatever session or PID namespace they
/// moved to. Sorted.
pub fn spawned_tree(pid: i32, spawner: i32) -> Vec<i32> {
    let top = spawned_root(pid, spawner);
    let parents: Vec<(i32, i32)> = all_pids().filter_map(|p| Some((p, parent(p)?))).collect();
    let mut members = BTreeSet::from([top]);
    while let Some(&(child, _)) = parents
        .iter()
        .find(|(child, pp)| members.contains(pp) && !members.contains(child))
    {
        members.insert(child);
    }
    members.into_iter().filter(|p| process_alive(*p)).collect()
}

/// Those of `pids` still alive after `limit` (or as soon as none is).
pub async fn survivors(pids: &[i32], limit: Duration) -> Vec<i32> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
        if alive.is_empty() || tokio::time::Instant::now() >= deadline {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gauge or counter of `/metrics` (`name` with its labels, as the line starts), 0 when the
/// server does not report it.
pub async fn value(client: &Client, name: &str) -> f64 {
    metric(client, name).await.unwrap_or(0.0)
}

/// Polls `/metrics` until `name` satisfies `until`; returns its value then. Panics after
/// `limit` with the last value seen.
pub async fn wait_metric(
    client: &Client,
    name: &str,
    until: impl Fn(f64) -> bool,
    limit: Duration,
) -> f64 {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let now = metric(client, name).await;
        if let Some(v) = now.filter(|v| until(*v)) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not reach the expected value within {limit:?}; last seen {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the server has at least one ready warm process; returns how many it has.
pub async fn wait_ready(client: &Client, limit: Duration) -> f64 {
    wait_metric(client, READY, |v| v >= 1.0, limit).await
}

fn all_pids() -> impl Iterator<Item = i32> {
    fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
}

/// A process's parent pid, from `/proc/<pid>/stat`.
fn parent(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
