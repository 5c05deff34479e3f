//! A preview's processes, found through `/proc`, signalled and measured as one unit.
//!
//! A preview runs in a session and process group of its own, but an app can fork children that
//! call `setsid` or change group. So the tree is everything in the preview's process group, every
//! descendant of those, and every process carrying the preview's marker in its environment
//! (inherited by all descendants unless they wipe it), and every process in the preview's
//! cgroup when it has one (which nothing inside can leave). Zombies are dead and are left out.

use std::collections::{HashMap, HashSet};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::limits::cgroup::PreviewCgroup;

/// The environment variable set on every preview process, naming its preview.
pub const MARKER_VAR: &str = "PREVIEWD_PREVIEW_ID";

/// One line of `/proc/<pid>/stat`, the fields previewd uses.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: i32,
    pgrp: i32,
    /// User plus system CPU time, in clock ticks.
    cpu_ticks: u64,
    /// Resident set, in pages.
    rss_pages: u64,
    zombie: bool,
}

/// Resource use of a process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub processes: usize,
    pub rss_bytes: u64,
    /// Total CPU time used, in clock ticks (see [`clock_ticks_per_second`]).
    pub cpu_ticks: u64,
}

/// The processes of one preview.
#[derive(Debug, Clone)]
pub struct ProcessTree {
    /// The group leader, when known; a tree found by marker alone has none.
    pgid: Option<i32>,
    marker: String,
    /// The preview's cgroup (empty when it has none).
    cgroup: PreviewCgroup,
}

impl ProcessTree {
    /// The tree of the preview `preview_id` whose group leader is `pgid`.
    pub fn new(pgid: i32, preview_id: &str) -> ProcessTree {
        ProcessTree {
            pgid: Some(pgid),
            marker: format!("{MARKER_VAR}={preview_id}"),
            cgroup: PreviewCgroup::default(),
        }
    }

    /// The processes carrying `preview_id`'s marker (and their descendants), for a preview
    /// whose group was never recorded.
    pub fn marked(preview_id: &str) -> ProcessTree {
        ProcessTree {
            pgid: None,
            marker: format!("{MARKER_VAR}={preview_id}"),
            cgroup: PreviewCgroup::default(),
        }
    }

    /// The same tree, with every process of the preview's `cgroup` in it too.
    pub fn with_cgroup(mut self, cgroup: PreviewCgroup) -> ProcessTree {
        self.cgroup = cgroup;
        self
    }

    /// The live processes of the tree.
    pub fn pids(&self) -> Vec<i32> {
        self.members().into_keys().collect()
    }

    /// Sends `signal` to every live process of the tree; returns how many there were.
    pub fn signal(&self, signal: Signal) -> usize {
        let pids = self.pids();
        // The group first, so processes forked in between are reached too.
        if let Some(pgid) = self.pgid {
            let _ = kill(Pid::from_raw(-pgid), signal);
        }
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), signal);
        }
        // Then the cgroup, which holds whatever forked or escaped meanwhile.
        self.cgroup.signal(signal);
        pids.len()
    }

    /// Memory and CPU of the whole tree.
    pub fn usage(&self) -> Usage {
        let members = self.members();
        let page = page_size();
        Usage {
            processes: members.len(),
            rss_bytes: members.values().map(|s| s.rss_pages * page).sum(),
            cpu_ticks: members.values().map(|s| s.cpu_ticks).sum(),
        }
    }

    fn members(&self) -> HashMap<i32, Stat> {
        let all = all_processes();
        let in_cgroup: HashSet<i32> = self.cgroup.pids().into_iter().collect();
        let mut members: HashSet<i32> = all
            .iter()
            .filter(|(pid, stat)| {
                self.pgid
                    .is_some_and(|pgid| stat.pgrp == pgid || **pid == pgid)
                    || in_cgroup.contains(pid)
                    || self.has_marker(**pid)
            })
            .map(|(pid, _)| *pid)
            .collect();
        // Descendants of members, to a fixed point.
        loop {
            let before = members.len();
            for (pid, stat) in &all {
                if members.contains(&stat.ppid) {
                    members.insert(*pid);
                }
            }
            if members.len() == before {
                break;
            }
        }
        all.into_iter()
            .filter(|(pid, stat)| members.contains(pid) && !stat.zombie)
            .collect()
    }

    fn has_marker(&self, pid: i32) -> bool {
        std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
            env.split(|b| *b == 0)
                .any(|entry| entry == self.marker.as_bytes())
        })
    }
}

/// Whether process `pid` exists and carries `preview_id`'s marker (a pid from an old record may
/// have been reused by an unrelated process).
pub fn is_preview_process(pid: i32, preview_id: &str) -> bool {
    ProcessTree::marked(preview_id).has_marker(pid)
}

/// Clock ticks per second, the unit of [`Usage::cpu_ticks`].
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

fn all_processes() -> HashMap<i32, Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses `/proc/<pid>/stat`; the command name may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Stat {
        zombie: *fields.first()? == "Z",
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        cpu_ticks: num(11)? + num(12)?,
        rss_pages: num(21)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Command names with spaces and parentheses do not shift the fields.
    #[test]
    fn parses_stat_lines() {
        let line = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 500 0 0 0 7 3 0 0 20 0 1 0 100 1000000 250 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            (stat.ppid, stat.pgrp, stat.cpu_ticks, stat.rss_pages),
            (1, 4242, 10, 250)
        );
        assert!(!stat.zombie);
        assert!(parse_stat("garbage").is_none());
    }

    /// The test process's own group is seen with non-zero memory.
    #[test]
    fn measures_a_live_group() {
        let pgid = nix::unistd::getpgrp().as_raw();
        let usage = ProcessTree::new(pgid, "none").usage();
        assert!(usage.processes >= 1);
        assert!(usage.rss_bytes > 0);
    }
}
