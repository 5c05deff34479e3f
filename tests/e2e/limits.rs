//! Resource limits against real apps: an app allocating past its memory limit fails as out of
//! memory, a fork bomb stops at the process limit and leaves nothing behind, a busy loop gets
//! its CPU share and no more, an app filling its folder is stopped at the disk limit, and a Node
//! app runs under the limits (never under an address-space rlimit, which V8 cannot live with).
//!
//! Memory, process and CPU limits need a cgroup previewd can write; on a host without one those
//! tests say so and pass without checking (the rlimit fallback has its own test).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use previewd::config::Config;
use previewd::log_store::LogStream;
use previewd::supervisor::limits::cgroup::Controller;
use previewd::supervisor::limits::{ByteSize, LimitsMode};
use previewd_e2e::fixture_runs::{self, plugin_fixture};
use previewd_e2e::pids::{app_host_pid, marked_processes};
use previewd_e2e::{process_alive, Client, TestServer};
use serde_json::Value;

/// How long a preview may take to end after it broke a limit.
const END_LIMIT: Duration = Duration::from_secs(20);

/// A launched preview: its generation, id and session token.
struct Launched {
    generation: String,
    preview_id: String,
    session: String,
}

/// Uploads `files`, launches them and waits until the app runs.
async fn launch(client: &Client, name: &str, files: &[(&str, &str)]) -> Launched {
    let generation = client.upload_files(name, files).await;
    let answer = client.launch_wait(&generation).await;
    assert_eq!(answer.status, 200, "{name}: {:?}", answer.body);
    let field = |k: &str| answer.body[k].as_str().expect(k).to_string();
    Launched {
        preview_id: field("preview_id"),
        session: field("session_token"),
        generation,
    }
}

/// Sends `method path` to the app through the proxy; the answer's status and body, or `None`
/// when the app died on the way.
async fn call_app(
    server: &TestServer,
    preview: &Launched,
    method: reqwest::Method,
    path: &str,
) -> Option<(u16, String)> {
    let (id, session) = (&preview.preview_id, &preview.session);
    fixture_runs::through_proxy(&server.base, id, session, method, path).await
}

/// Polls the preview's status until it has ended; returns the last status body.
async fn wait_ended(client: &Client, generation: &str) -> Value {
    let until = Instant::now() + END_LIMIT;
    loop {
        let status = client
            .get(&format!("/generations/{generation}/preview/status"))
            .await
            .body;
        if status["status"] == "failed" || status["status"] == "stopped" || Instant::now() > until {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The lines of a generation's log on `stream`.
fn log_lines(server: &TestServer, generation: &str, stream: LogStream) -> Vec<String> {
    server
        .state
        .logs
        .read_after(generation, 0, 100_000)
        .expect("logs")
        .into_iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.into_line().line)
        .collect()
}

/// Waits for an output line of the app starting with `prefix`; returns its rest.
async fn wait_output(server: &TestServer, generation: &str, prefix: &str) -> String {
    let until = Instant::now() + END_LIMIT;
    loop {
        let found = log_lines(server, generation, LogStream::Stdout)
            .into_iter()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_string));
        if let Some(rest) = found {
            return rest;
        }
        assert!(Instant::now() < until, "no output line `{prefix}...`");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The directory of `controller` for a preview, when a cgroup limits it on this host.
fn cgroup_dir(server: &TestServer, controller: Controller, preview_id: &str) -> Option<PathBuf> {
    server
        .state
        .supervisor
        .limits()
        .hierarchies()
        .iter()
        .find(|h| h.controllers.contains(&controller))
        .map(|h| h.parent.join(preview_id))
}

/// Every cgroup directory a preview has now.
fn cgroup_dirs_left(server: &TestServer, preview_id: &str) -> Vec<PathBuf> {
    server
        .state
        .supervisor
        .limits()
        .hierarchies()
        .iter()
        .map(|h| h.parent.join(preview_id))
        .filter(|dir| dir.exists())
        .collect()
}

/// A server whose previews get `adjust`ed limits; `None` (after saying why) when no cgroup
/// offers `controller` here.
async fn cgroup_server(
    controller: Controller,
    adjust: impl FnOnce(&mut Config),
) -> Option<TestServer> {
    let server = TestServer::start_with(adjust).await;
    let limited = server
        .state
        .supervisor
        .limits()
        .hierarchies()
        .iter()
        .any(|h| h.controllers.contains(&controller));
    if limited {
        return Some(server);
    }
    eprintln!(
        "skipped: no writable {} cgroup here ({})",
        controller.name(),
        server.state.supervisor.limits().summary()
    );
    server.stop().await;
    None
}

/// An app that allocates 1 GiB on `POST /hog`.
pub(crate) const HOG_APP: &str = r#"
from fastapi import FastAPI

app = FastAPI()
held = []


@app.get("/")
async def root():
    return {"held_mib": 10 * len(held)}


@app.post("/hog")
def hog():
    # 1 GiB, 10 MiB at a time, every page written.
    for _ in range(100):
        held.append(b"x" * (10 << 20))
    return {"held_mib": 10 * len(held)}
"#;

/// An app allocating 1 GiB under a 256 MiB limit is killed by the kernel and the preview fails
/// with the out-of-memory reason (not a bare exit code), in `/status` and in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_fails_with_the_reason() {
    let Some(server) =
        cgroup_server(Controller::Memory, |c| c.memory_limit = ByteSize::mib(256)).await
    else {
        return;
    };
    let alice = server.client("alice");
    let preview = launch(&alice, "hog", &[("main.py", HOG_APP)]).await;
    assert!(
        cgroup_dir(&server, Controller::Memory, &preview.preview_id).is_some_and(|dir| {
            std::fs::read_to_string(dir.join(if dir.join("memory.max").exists() {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            }))
            .is_ok_and(|limit| limit.trim() == (256u64 << 20).to_string())
        }),
        "the cgroup carries the limit"
    );

    let answer = call_app(&server, &preview, reqwest::Method::POST, "/hog").await;
    assert!(
        answer.as_ref().is_none_or(|(status, _)| *status >= 500),
        "the app cannot hold 1 GiB: {answer:?}"
    );
    let status = wait_ended(&alice, &preview.generation).await;
    assert_eq!(status["status"], "failed", "{status:?}");
    assert_eq!(
        status["error"], "killed: out of memory (limit 256 MiB)",
        "{status:?}"
    );
    assert_eq!(status["exit_code"], 137, "SIGKILL: {status:?}");
    let system = log_lines(&server, &preview.generation, LogStream::System);
    assert!(
        system
            .iter()
            .any(|l| l == "failed: killed: out of memory (limit 256 MiB)"),
        "{system:?}"
    );
    assert!(cgroup_dirs_left(&server, &preview.preview_id).is_empty());
    server.stop().await;
}

const FORK_BOMB_APP: &str = r#"
import subprocess
import threading

from fastapi import FastAPI

app = FastAPI()


def spawn():
    # A grandchild in a session of its own, without previewd's marker, its parent gone: only
    # the cgroup still knows it belongs to the preview.
    escaped = subprocess.run(
        ["/bin/sh", "-c", "/bin/sleep 3600 >/dev/null 2>&1 & echo $!"],
        env={}, start_new_session=True, capture_output=True, text=True,
    )
    print(f"escaped pid {escaped.stdout.strip()}", flush=True)
    children, refused, why = [], 0, ""
    for _ in range(500):
        try:
            children.append(subprocess.Popen(["/bin/sleep", "3600"]))
        except OSError as err:
            refused, why = refused + 1, str(err)
    print(f"children {len(children)} refused {refused}: {why}", flush=True)


@app.get("/")
async def root():
    return {"ok": True}


@app.post("/spawn")
async def start_spawning():
    threading.Thread(target=spawn, daemon=True).start()
    return {"spawning": 500}
"#;

/// An app starting 500 sleeping children stops at the process limit, previewd carries on, and
/// a stop leaves no process behind, not even a grandchild that left the session and the marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_stops_at_the_pids_limit() {
    let Some(server) = cgroup_server(Controller::Pids, |c| c.pids_limit = 64).await else {
        return;
    };
    let alice = server.client("alice");
    let preview = launch(&alice, "fork-bomb", &[("main.py", FORK_BOMB_APP)]).await;
    let answer = call_app(&server, &preview, reqwest::Method::POST, "/spawn").await;
    assert_eq!(answer.map(|(s, _)| s), Some(200));

    let escaped: i32 = wait_output(&server, &preview.generation, "escaped pid ")
        .await
        .parse()
        .expect("a pid");
    let escaped = app_host_pid(&preview.preview_id, escaped);
    let outcome = wait_output(&server, &preview.generation, "children ").await;
    let (children, refused) = outcome
        .split_once(" refused ")
        .expect("children N refused M: why");
    let children: usize = children.parse().unwrap();
    let refused: usize = refused.split(':').next().unwrap().parse().unwrap();
    assert!(children < 64, "{outcome}");
    assert_eq!(children + refused, 500, "{outcome}");
    assert!(
        outcome.contains("Resource temporarily unavailable"),
        "{outcome}"
    );
    let pids_dir = cgroup_dir(&server, Controller::Pids, &preview.preview_id).unwrap();
    let current: u64 = std::fs::read_to_string(pids_dir.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(current <= 64, "pids.current {current}");
    assert!(process_alive(escaped), "the escaped grandchild runs");

    // previewd itself is unaffected.
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let status = alice
        .get(&format!(
            "/generations/{}/preview/status",
            preview.generation
        ))
        .await;
    assert_eq!(status.body["status"], "running", "{:?}", status.body);

    let stopped = alice.stop_preview(&preview.generation).await;
    assert_eq!(stopped.body["status"], "stopped", "{:?}", stopped.body);
    assert!(
        !process_alive(escaped),
        "escaped grandchild {escaped} survived"
    );
    assert_eq!(marked_processes(&preview.preview_id), Vec::<i32>::new());
    assert!(cgroup_dirs_left(&server, &preview.preview_id).is_empty());
    server.stop().await;
}

const BURNER_APP: &str = r#"
import subprocess
import sys

from fastapi import FastAPI

burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
print(f"burner pid {burner.pid}", flush=True)
app = FastAPI()


@app.get("/")
async def root():
    return {"burner": burner.pid}
"#;

/// A process spinning in a loop gets half a core with `--cpu-limit 0.5`: its preview's CPU use
/// over a few seconds, from the processes' own CPU ticks, stays at about half a core, and the
/// cgroup reports throttling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_loop_gets_its_cpu_share() {
    let Some(server) = cgroup_server(Controller::Cpu, |c| c.cpu_limit = 0.5).await else {
        return;
    };
    let alice = server.client("alice");
    let preview = launch(&alice, "burner", &[("main.py", BURNER_APP)]).await;
    let status_path = format!("/generations/{}/preview/status", preview.generation);
    // The first call starts the measurement, the second reads the CPU used since.
    alice.get(&status_path).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = alice.get(&status_path).await.body;
    let cpu = status["cpu_percent"].as_f64().expect("cpu_percent");
    assert!(cpu <= 60.0, "at most about half a core: {cpu}%");
    assert!(cpu > 5.0, "the loop did run: {cpu}%");
    let cpu_dir = cgroup_dir(&server, Controller::Cpu, &preview.preview_id).unwrap();
    let stat = std::fs::read_to_string(cpu_dir.join("cpu.stat")).unwrap();
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .expect("nr_throttled")
        .parse()
        .unwrap();
    assert!(throttled > 0, "{stat}");
    alice.stop_preview(&preview.generation).await;
    assert!(cgroup_dirs_left(&server, &preview.preview_id).is_empty());
    server.stop().await;
}

const FILLER_APP: &str = r#"
import os
import threading

from fastapi import FastAPI

app = FastAPI()


def fill():
    # 200 MB in the project folder, 1 MB at a time; and a bit in $TMPDIR, also counted.
    with open(os.path.join(os.environ["TMPDIR"], "scratch.bin"), "wb") as f:
        f.write(b"t" * (1 << 20))
    with open("filler.bin", "wb") as f:
        for i in range(200):
            f.write(b"d" * (1 << 20))
            f.flush()
    print("filled 200 MB", flush=True)


@app.get("/")
async def root():
    return {"ok": True}


@app.post("/fill")
async def start_filling():
    threading.Thread(target=fill, daemon=True).start()
    return {"filling": "200 MB"}
"#;

/// An app writing 200 MB with a 50 MiB disk limit is killed and its preview fails with the disk
/// reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_limit_stops_a_filling_app() {
    let server = TestServer::start_with(|c| c.disk_limit = ByteSize::mib(50)).await;
    let alice = server.client("alice");
    let preview = launch(&alice, "filler", &[("main.py", FILLER_APP)]).await;
    let config = alice
        .get(&format!(
            "/generations/{}/preview/config",
            preview.generation
        ))
        .await
        .body;
    let limits = &config["limits"];
    assert_eq!(limits["disk_bytes"], 50u64 << 20, "{config:?}");
    assert_eq!(limits["memory_bytes"], 512u64 << 20, "{config:?}");
    assert_eq!(limits["pids"], 256, "{config:?}");
    assert_eq!(limits["cpu_cores"], 0.5, "{config:?}");
    assert_eq!(
        limits["mechanism"],
        server.state.supervisor.limits().mechanism()
    );
    let answer = call_app(&server, &preview, reqwest::Method::POST, "/fill").await;
    assert_eq!(answer.map(|(s, _)| s), Some(200));
    let status = wait_ended(&alice, &preview.generation).await;
    assert_eq!(status["status"], "failed", "{status:?}");
    assert_eq!(
        status["error"], "killed: disk limit exceeded (limit 50 MiB)",
        "{status:?}"
    );
    let system = log_lines(&server, &preview.generation, LogStream::System);
    assert!(
        system
            .iter()
            .any(|l| l.starts_with("disk limit exceeded: the project and scratch folders take ")),
        "{system:?}"
    );
    assert_eq!(marked_processes(&preview.preview_id), Vec::<i32>::new());
    server.stop().await;
}

/// An Express app that reports its own rlimits.
fn express_app() -> Vec<(&'static str, String)> {
    let fixture = plugin_fixture("express", "hardcoded_port");
    let read = |name: &str| std::fs::read_to_string(fixture.join(name)).expect("fixture file");
    vec![
        ("package.json", read("package.json")),
        ("package-lock.json", read("package-lock.json")),
        (
            "index.js",
            "const fs = require('fs');\n\
             const express = require('express');\n\
             const app = express();\n\
             app.get('/', (req, res) => res.type('text').send(fs.readFileSync('/proc/self/limits', 'utf8')));\n\
             app.listen(process.env.PORT);\n"
                .to_string(),
        ),
    ]
}

const LIMITS_APP: &str = r#"
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
def limits():
    with open("/proc/self/limits") as f:
        return f.read()
"#;

/// The "Max address space" soft limit in a `/proc/<pid>/limits` text.
fn address_space(limits: &str) -> String {
    limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("Max address space")
        .to_string()
}

/// Launches the Express app and the Python one on `server`; returns their address-space
/// limits, and stops them.
async fn address_spaces(server: &TestServer) -> (String, String) {
    let alice = server.client("alice");
    let files = express_app();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let node = launch(&alice, "express-limits", &files).await;
    let python = launch(&alice, "python-limits", &[("main.py", LIMITS_APP)]).await;
    let mut spaces = Vec::new();
    for preview in [&node, &python] {
        let (status, body) = call_app(server, preview, reqwest::Method::GET, "/")
            .await
            .expect("an answer");
        assert_eq!(status, 200, "{body}");
        spaces.push(address_space(&body));
        alice.stop_preview(&preview.generation).await;
    }
    (spaces.remove(0), spaces.remove(0))
}

/// Node runs under a 256 MiB memory limit through cgroups, and under the rlimit fallback it
/// gets no address-space limit while a Python app does (and runs with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_runs_under_the_limits() {
    let server = TestServer::start_with(|c| c.memory_limit = ByteSize::mib(256)).await;
    let limits = server.state.supervisor.limits();
    let (node, python) = address_spaces(&server).await;
    assert_eq!(node, "unlimited", "{}", limits.summary());
    if limits.mechanism().starts_with("cgroup") {
        assert_eq!(python, "unlimited", "a cgroup, not an rlimit");
    }
    server.stop().await;

    // The default 512 MiB as an address space is enough for a threaded Python server.
    let server = TestServer::start_with(|c| c.limits = LimitsMode::Rlimit).await;
    assert_eq!(server.state.supervisor.limits().mechanism(), "rlimit");
    let (node, python) = address_spaces(&server).await;
    assert_eq!(node, "unlimited");
    assert_eq!(python, (512u64 << 20).to_string());
    server.stop().await;
}
