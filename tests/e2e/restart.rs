//! The crash-safety contract of previews: when previewd dies by SIGKILL, its previews run on
//! without it, and the previewd started next on the same data dir must end them. Only the real
//! binary, run out of process, can be SIGKILLed and restarted, so this runs it with
//! [`ExternalServer`] against two running previews, one of them with a child that left the app's
//! session, ignores SIGTERM and listens on a port of its own. After the restart nothing of the
//! old previews runs, every port they held can be bound, the status, the list and the log tell
//! the user why they stopped, and the same generations launch again.

use std::collections::HashSet;
use std::time::Duration;

use previewd_e2e::external::ExternalServer;
use previewd_e2e::fixture_runs::envelope;
use previewd_e2e::{port_in_use, previewd_under_test, process_alive, Client};
use serde_json::{json, Value};

/// The requirements of the `fastapi-app` fixture, so the apps here reuse its cached virtualenv.
const REQUIREMENTS: &str = "fastapi>=0.110\nuvicorn[standard]>=0.29\n";

/// An app whose child calls `setsid`, ignores SIGTERM and listens on a port the system picks;
/// `GET /` answers that port.
const STUBBORN: &str = r#"
import subprocess
import sys

from fastapi import FastAPI

CHILD = """
import os, signal, socket, time
os.setsid()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
print(listener.getsockname()[1], flush=True)
while True:
    time.sleep(3600)
"""
child = subprocess.Popen(
    [sys.executable, "-c", CHILD, "stubborn-child"], stdout=subprocess.PIPE, text=True
)
child_port = int(child.stdout.readline())
app = FastAPI()


@app.get("/")
def root():
    return {"child_port": child_port}
"#;

/// How long the killed processes may take to be gone after the restart.
const KILL_LIMIT: Duration = Duration::from_secs(10);

/// A running preview, as the test finds it.
struct Launched {
    generation: String,
    /// The preview's port and, for the stubborn app, its child's.
    ports: Vec<u16>,
    /// The process previewd started and all its descendants, as the host sees them (in a PID
    /// namespace the app knows only its namespace's pids, so it cannot report them).
    pids: Vec<i32>,
}

/// Two running previews, previewd SIGKILLed, restarted on the same data dir: every process of
/// the old previews is killed (the setsid child too), every port is free, status, list and log
/// say previewd restarted, and both generations launch and answer again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_sigkill_ends_orphaned_previews() {
    let mut server = ExternalServer::start(previewd_under_test!(), &[]).await;
    let alice = server.client("alice");
    let stubborn = alice
        .upload_files(
            "stubborn",
            &[("requirements.txt", REQUIREMENTS), ("main.py", STUBBORN)],
        )
        .await;
    let todo = alice.upload_fixture("fastapi-app").await;
    let mut previews = Vec::new();
    for generation in [stubborn, todo] {
        previews.push(launch(&alice, &generation).await);
    }
    let child = previews[0]
        .pids
        .iter()
        .copied()
        .find(|pid| cmdline(*pid).contains("stubborn-child"))
        .expect("the stubborn app's child is in its tree");
    assert_eq!(
        session(child),
        Some(child),
        "the child left the app's session"
    );

    server.kill9();
    // The test means something only if previewd's death left all of this running.
    for p in &previews {
        println!("{}: pids {:?}, ports {:?}", p.generation, p.pids, p.ports);
        for pid in &p.pids {
            assert!(process_alive(*pid), "{pid} outlives a SIGKILLed previewd");
        }
        for port in &p.ports {
            assert!(port_in_use(*port), "{port} is still held");
        }
    }

    server.restart().await;
    let listed = alice.get("/previews").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    for p in &previews {
        let alive = survivors(&p.pids).await;
        assert!(alive.is_empty(), "{alive:?} survived the restart");
        for port in &p.ports {
            assert!(!port_in_use(*port), "{port} can be bound again");
        }

        let status = alice
            .get(&format!("/generations/{}/preview/status", p.generation))
            .await;
        assert_eq!(status.body["status"], "stopped", "{:?}", status.body);
        let error = status.body["error"].as_str().expect("an error");
        assert!(error.contains("previewd restarted"), "{error}");
        let entry = listed.body["previews"]
            .as_array()
            .expect("previews")
            .iter()
            .find(|e| e["generation_id"] == p.generation.as_str())
            .expect("listed");
        assert_eq!(entry["status"], "stopped", "{entry}");
        assert_eq!(entry["error"], error, "{entry}");
        let told = system_lines(&alice, &p.generation)
            .await
            .into_iter()
            .find(|l| l.starts_with(error))
            .expect("a system line in the log says previewd restarted");
        println!("{}: {told}", p.generation);
        assert!(
            told.ends_with(&format!("({} leftover processes killed)", p.pids.len())),
            "previewd killed the {} processes left: {told}",
            p.pids.len()
        );
    }
    // Relaunched only now, so a new preview cannot take a port checked above.
    for p in &previews {
        launch(&alice, &p.generation).await;
        let stopped = alice.stop_preview(&p.generation).await;
        assert_eq!(stopped.body["status"], "stopped", "{:?}", stopped.body);
    }
}

/// Launches `generation`, checks that it answers `GET /` through the envelope, and notes its
/// processes and ports.
async fn launch(client: &Client, generation: &str) -> Launched {
    let launched = client.launch_wait(generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    assert_eq!(launched.body["status"], "running", "{:?}", launched.body);
    let session = launched.body["session_token"].as_str().expect("session");
    let response = envelope(client, generation, session, &json!({"path": "/"})).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("envelope JSON");
    assert_eq!(answer["status"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().expect("body")).expect("JSON");

    let started = system_lines(client, generation)
        .await
        .iter()
        .rev()
        .find_map(|l| {
            l.strip_prefix("started process ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .expect("a `started process N` line");
    let mut ports = vec![launched.body["port"].as_u64().expect("port") as u16];
    ports.extend(body["child_port"].as_u64().map(|p| p as u16));
    Launched {
        generation: generation.to_string(),
        ports,
        pids: tree(started),
    }
}

/// Those of `pids` still alive after [`KILL_LIMIT`] (or as soon as none is).
async fn survivors(pids: &[i32]) -> Vec<i32> {
    let deadline = tokio::time::Instant::now() + KILL_LIMIT;
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
        if alive.is_empty() || tokio::time::Instant::now() >= deadline {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The system lines of a generation's stored log, oldest first.
async fn system_lines(client: &Client, generation: &str) -> Vec<String> {
    let page = client
        .get(&format!(
            "/generations/{generation}/preview/logs?stream=system&limit=5000"
        ))
        .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    page.body["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["line"].as_str().expect("line").to_string())
        .collect()
}

/// `root` and every live descendant of it, from the parent pids in `/proc` (whatever session,
/// group or PID namespace they moved to).
fn tree(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(|pid| Some((pid, stat_field(pid, 1)?)))
        .collect();
    let mut members = HashSet::from([root]);
    while let Some(&(pid, _)) = parents
        .iter()
        .find(|(pid, ppid)| members.contains(ppid) && !members.contains(pid))
    {
        members.insert(pid);
    }
    let mut pids: Vec<i32> = members.into_iter().filter(|p| process_alive(*p)).collect();
    pids.sort();
    pids
}

/// The session id of a process.
fn session(pid: i32) -> Option<i32> {
    stat_field(pid, 3)
}

/// A numeric field of `/proc/<pid>/stat`, counted from the state (0) after the command name.
fn stat_field(pid: i32, index: usize) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(index)?
        .parse()
        .ok()
}

/// The command line of a process, its arguments joined by spaces.
fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}
