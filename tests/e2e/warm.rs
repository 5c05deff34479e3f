//! Warm runtimes against real apps. The first launch on an environment is cold and prepares a
//! warm process (an interpreter with the framework imported, no project yet); the next launch
//! hands it the project. These tests check, for FastAPI, Flask, Django and Express, that such a
//! launch says so in the log, runs the app's own code, answers, reports its route table and its
//! usage, and leaves nothing behind; that the sandbox and the limits hold on the warm path; that
//! a launch whose environment the interpreter reads at start-up goes cold; that a dead warm
//! process is replaced and a SIGKILLed previewd's are killed by the next one; that two previews
//! of one environment share no state; and that `--warm-pool 0` turns it all off.
//!
//! Warm processes are found from the host the way the contract says: a launcher with `--warm`
//! on its command line and a `TMPDIR` under the server's data dir
//! ([`previewd_e2e::warm::warm_processes`]). Nothing here measures time: every wait has a
//! generous deadline, so a loaded machine slows a test down instead of failing it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::isolation::SNOOP;
use crate::limits::HOG_APP;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use previewd::supervisor::isolation::IsolationMode;
use previewd::supervisor::limits::cgroup::Controller;
use previewd::supervisor::limits::ByteSize;
use previewd_e2e::external::ExternalServer;
use previewd_e2e::fixture_runs::{self, envelope_answer, expect_routes, plugin_fixture};
use previewd_e2e::log_lines::{history, LogLine};
use previewd_e2e::pids::marked_processes;
use previewd_e2e::warm::{
    spawned_root, spawned_tree, survivors, value, wait_metric, wait_ready, warm_processes,
    COLD_LAUNCHES, READY, STARTING, WARM_LAUNCHES,
};
use previewd_e2e::{fixture, port_in_use, previewd_under_test, process_alive, Client, TestServer};
use serde_json::{json, Value};

/// Generous bound for anything that must happen eventually (a warm process getting ready, a
/// preview ending), so a loaded machine slows a test down instead of failing it.
const EVENTUALLY: Duration = Duration::from_secs(180);
/// How long a stopped preview's or a killed server's processes may take to be gone.
const KILL_LIMIT: Duration = Duration::from_secs(20);

/// The first words of the `cold start` reason of a launch that found no warm process.
const NOT_YET: &str = "no warm process for this environment yet";

/// A running preview, and where its launch starts in the generation's log.
struct Launched {
    generation: String,
    preview_id: String,
    session: String,
    port: u16,
    /// The seq of the generation's last log line before this launch.
    after: u64,
}

/// The seq of a generation's last stored log line (0 when it has none).
async fn last_seq(client: &Client, generation: &str) -> u64 {
    history(client, generation)
        .await
        .last()
        .map_or(0, |l| l.seq)
}

/// Launches `generation` with the launch body `body` and waits until it runs.
async fn launch_with(client: &Client, generation: &str, body: Value) -> Launched {
    let after = last_seq(client, generation).await;
    let answer = client
        .post(
            &format!("/generations/{generation}/preview/launch?wait=true"),
            body,
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "running", "{:?}", answer.body);
    let field = |k: &str| answer.body[k].as_str().expect(k).to_string();
    Launched {
        generation: generation.to_string(),
        preview_id: field("preview_id"),
        session: field("session_token"),
        port: answer.body["port"].as_u64().expect("port") as u16,
        after,
    }
}

/// Launches `generation` with no options and waits until it runs.
async fn launch(client: &Client, generation: &str) -> Launched {
    launch_with(client, generation, json!({})).await
}

/// Stops a generation's preview; it must say `stopped`.
async fn stop(client: &Client, generation: &str) {
    let stopped = client.stop_preview(generation).await;
    assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    assert_eq!(stopped.body["status"], "stopped", "{:?}", stopped.body);
}

/// The log lines written since `launched` was launched, oldest first.
async fn lines_since(client: &Client, launched: &Launched) -> Vec<LogLine> {
    history(client, &launched.generation)
        .await
        .into_iter()
        .filter(|l| l.seq > launched.after)
        .collect()
}

/// The system lines among `lines`.
fn system(lines: &[LogLine]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.stream == "system")
        .map(|l| l.line.as_str())
        .collect()
}

/// Asserts that `launched` took a warm process (a `warm start: process <pid> (…` line and no
/// `cold start` line); returns the pid the line names (see [`Warm::spawned`]) and the launch's
/// lines.
async fn expect_warm(client: &Client, launched: &Launched) -> (i32, Vec<LogLine>) {
    let lines = lines_since(client, launched).await;
    let system = system(&lines);
    assert!(
        !system.iter().any(|l| l.starts_with("cold start: ")),
        "a warm launch: {system:#?}"
    );
    let pid = system
        .iter()
        .find_map(|l| {
            l.strip_prefix("warm start: process ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `warm start: process <pid>` line: {system:#?}"));
    (pid, lines)
}

/// Asserts that `launched` started cold with a reason starting with `reason` (and no `warm
/// start` line).
async fn expect_cold(client: &Client, launched: &Launched, reason: &str) {
    let lines = lines_since(client, launched).await;
    let system = system(&lines);
    assert!(
        !system.iter().any(|l| l.starts_with("warm start: ")),
        "a cold launch: {system:#?}"
    );
    let cold = system
        .iter()
        .find(|l| l.starts_with("cold start: "))
        .unwrap_or_else(|| panic!("no `cold start: ` line: {system:#?}"));
    assert!(
        cold["cold start: ".len()..].starts_with(reason),
        "`cold start: {reason}…` expected: {cold}"
    );
}

/// A warm process as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Warm {
    /// The launcher running with `--warm`.
    launcher: i32,
    /// The process the server spawned for it, which its log names (`warm start: process N`):
    /// under namespaces the relay above the launcher, without them the launcher itself.
    spawned: i32,
}

impl Warm {
    /// The warm process whose launcher is `launcher`, spawned by the server of pid `server`.
    fn of(launcher: i32, server: i32) -> Warm {
        Warm {
            launcher,
            spawned: spawned_root(launcher, server),
        }
    }
}

/// Waits until the server of pid `server` and data dir `data_dir` has a ready warm process and
/// returns it: the only process of that server started as a warm process (call it when no warm
/// preview runs).
async fn ready_warm_process(client: &Client, data_dir: &Path, server: i32) -> Warm {
    wait_ready(client, EVENTUALLY).await;
    let pids = warm_processes(data_dir);
    assert_eq!(pids.len(), 1, "one warm process: {pids:?}");
    Warm::of(pids[0], server)
}

/// The first launch of `generation` on a fresh server: cold, because no warm process exists
/// for its environment yet; then a stop, and a wait for the warm process that launch started.
async fn prime(client: &Client, data_dir: &Path, server: i32, generation: &str) -> Warm {
    let first = launch(client, generation).await;
    expect_cold(client, &first, NOT_YET).await;
    stop(client, generation).await;
    ready_warm_process(client, data_dir, server).await
}

/// The pid of this test process, which runs the in-process servers and so spawns their
/// processes.
fn me() -> i32 {
    std::process::id() as i32
}

/// Sends `GET path` through the envelope; the app's status and body.
async fn through_envelope(client: &Client, launched: &Launched, path: &str) -> (u64, String) {
    let (code, answer) = envelope_answer(
        client,
        &launched.generation,
        &launched.session,
        json!({"method": "GET", "path": path}),
    )
    .await;
    assert_eq!(code, 200, "envelope: {answer}");
    (
        answer["status"].as_u64().expect("status"),
        answer["body"].as_str().unwrap_or_default().to_string(),
    )
}

/// Sends `method path` through the transparent proxy; the status and body, or `None` when the
/// app died on the way.
async fn through_proxy(
    base: &str,
    launched: &Launched,
    method: reqwest::Method,
    path: &str,
) -> Option<(u16, String)> {
    let (id, session) = (&launched.preview_id, &launched.session);
    fixture_runs::through_proxy(base, id, session, method, path).await
}

/// A `GET path` through the envelope answered 200 with a JSON body; that body.
async fn app_json(client: &Client, launched: &Launched, path: &str) -> Value {
    let (status, body) = through_envelope(client, launched, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("GET {path}: not JSON: {body}"))
}

// ---------------------------------------------------------------------------------------------
// 1. A relaunch goes warm.

/// A project whose relaunch is checked, and what it answers.
struct App {
    fixture: PathBuf,
    framework: &'static str,
    /// `GET path` must answer 200 with a body containing `body`.
    path: &'static str,
    body: &'static str,
    /// The app's own first output line, printed when its code is loaded.
    first_line: &'static str,
}

/// Launch, stop, wait for a ready warm process, launch again: the second launch takes the warm
/// process (its `warm start` line comes before `health check passed`), runs the app's own code
/// (its import-time line is in the log), answers through the envelope and the proxy, reports
/// its route table and its memory and CPU, and is counted as a warm launch; its stop leaves no
/// process and frees its port; and a new warm process replaces the one it took.
async fn relaunch_goes_warm(app: App) {
    let server = TestServer::start_with(|c| c.warm_pool = 1).await;
    let alice = server.client("alice");
    let generation = alice.upload_dir(&app.fixture).await;
    let info = alice.get(&format!("/generations/{generation}")).await;
    assert_eq!(info.body["framework"], app.framework, "{:?}", info.body);
    let endpoints = format!("/generations/{generation}/preview/endpoints");
    let statics = expect_routes(&alice.get(&endpoints).await.body, "static");

    let warm = prime(&alice, server.data_dir(), me(), &generation).await;
    let launched = launch(&alice, &generation).await;
    let (took, lines) = expect_warm(&alice, &launched).await;
    assert_eq!(
        took, warm.spawned,
        "the launch took the ready warm process {warm:?}"
    );
    let system = system(&lines);
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.stream == "system" && l.line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}…` line: {system:#?}"))
    };
    let (warm_at, health_at) = (at("warm start: "), at("health check passed"));
    assert!(warm_at < health_at, "{system:#?}");
    at("started process ");
    let first_line = lines
        .iter()
        .position(|l| l.stream != "system" && l.line == app.first_line)
        .unwrap_or_else(|| panic!("the app's own line `{}` in {lines:#?}", app.first_line));
    assert!(
        warm_at < first_line,
        "the app's code ran after the hand-over"
    );

    let (status, body) = through_envelope(&alice, &launched, app.path).await;
    assert_eq!(status, 200, "envelope GET {}: {body}", app.path);
    assert!(body.contains(app.body), "envelope GET {}: {body}", app.path);
    let proxied = through_proxy(&server.base, &launched, reqwest::Method::GET, app.path).await;
    assert!(
        proxied
            .as_ref()
            .is_some_and(|(s, b)| *s == 200 && b.contains(app.body)),
        "proxy GET {}: {proxied:?}",
        app.path
    );
    let runtime = expect_routes(&alice.get(&endpoints).await.body, "runtime");
    assert_eq!(runtime, statics, "static routes equal the running app's");

    let status_path = format!("/generations/{generation}/preview/status");
    alice.get(&status_path).await;
    let status = alice.get(&status_path).await.body;
    assert_eq!(status["status"], "running", "{status}");
    assert!(
        status["memory_bytes"].as_u64().is_some_and(|m| m > 0),
        "memory: {status}"
    );
    assert!(
        status["cpu_percent"].as_f64().is_some_and(|c| c >= 0.0),
        "CPU: {status}"
    );

    let mut pids = spawned_tree(warm.launcher, me());
    pids.extend(marked_processes(&launched.preview_id));
    assert!(
        pids.contains(&warm.launcher) && pids.contains(&warm.spawned),
        "{warm:?} in {pids:?}"
    );
    stop(&alice, &generation).await;
    let left = survivors(&pids, KILL_LIMIT).await;
    assert!(left.is_empty(), "{left:?} of {pids:?} outlived the stop");
    assert_eq!(marked_processes(&launched.preview_id), Vec::<i32>::new());
    assert!(
        !port_in_use(launched.port),
        "port {} is free",
        launched.port
    );

    assert_eq!(value(&alice, WARM_LAUNCHES).await, 1.0);
    assert_eq!(value(&alice, COLD_LAUNCHES).await, 1.0);

    // A replacement was started when the warm process was taken.
    let replacement = ready_warm_process(&alice, server.data_dir(), me()).await;
    assert_ne!(replacement.launcher, warm.launcher, "a new warm process");
    server.stop().await;
}

/// FastAPI (uvicorn) on the `fastapi-app` fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_relaunch_goes_warm() {
    relaunch_goes_warm(App {
        fixture: fixture("fastapi-app"),
        framework: "fastapi",
        path: "/",
        body: "\"message\":\"hello\"",
        first_line: "todo api module imported",
    })
    .await;
}

/// Flask (waitress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_relaunch_goes_warm() {
    relaunch_goes_warm(App {
        fixture: fixture("warm-flask"),
        framework: "flask",
        path: "/items/1",
        body: "\"name\":\"first\"",
        first_line: "warm-flask app imported",
    })
    .await;
}

/// Django (waitress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_relaunch_goes_warm() {
    relaunch_goes_warm(App {
        fixture: fixture("warm-django"),
        framework: "django",
        path: "/items/1/",
        body: "\"name\": \"first\"",
        first_line: "warm-django settings imported",
    })
    .await;
}

/// Express on Node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_relaunch_goes_warm() {
    relaunch_goes_warm(App {
        fixture: fixture("warm-express"),
        framework: "express",
        path: "/items/1",
        body: "\"name\":\"first\"",
        first_line: "warm-express app loaded",
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2. The sandbox on the warm path.

/// `GET path?query` on a preview of [`SNOOP`]; the app's JSON.
async fn snoop_call(client: &Client, preview: &Launched, path: &str, query: Value) -> Value {
    fixture_runs::app_json(client, &preview.generation, &preview.session, path, query).await
}

async fn snoop_read(client: &Client, preview: &Launched, path: &str) -> Value {
    snoop_call(client, preview, "/read", json!({ "path": path })).await
}

async fn snoop_write(client: &Client, preview: &Launched, path: &str) -> Value {
    snoop_call(client, preview, "/write", json!({ "path": path })).await
}

/// A victim runs cold (and prepares a warm process); the snooping app, another generation on
/// the same environment, runs warm. The same facts as `isolation.rs` hold for it: the victim's
/// file, previewd's secret and database are out of sight, the system is read-only, its PID
/// namespace holds only its init and itself, it has no capabilities. And the project and the
/// scratch folder handed over at launch are its own: it reads its files from its working dir,
/// writes into its project folder (the host sees the file), its `/tmp`, its home and its
/// `TMPDIR` (the preview's scratch folder, not the warm process's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_previews_are_isolated() {
    let server = TestServer::start_with(|c| {
        c.isolation = Some(IsolationMode::Namespaces);
        c.jwt_secret = None;
    })
    .await;
    let alice = server.client("alice");
    let data_dir = server.data_dir();
    let victim = alice
        .upload_files(
            "victim",
            &[("app.py", SNOOP), ("secret.txt", "the victim's secret")],
        )
        .await;
    let victim = launch(&alice, &victim).await;
    expect_cold(&alice, &victim, NOT_YET).await;
    let warm = ready_warm_process(&alice, data_dir, me()).await;
    let snoop = alice
        .upload_files(
            "snoop",
            &[("app.py", SNOOP), ("own.txt", "the snoop's own file")],
        )
        .await;
    let snoop = launch(&alice, &snoop).await;
    assert_eq!(expect_warm(&alice, &snoop).await.0, warm.spawned);
    let client = &alice;
    let victim_secret = data_dir
        .join("generations")
        .join(&victim.generation)
        .join("secret.txt")
        .display()
        .to_string();

    // Out of sight: the other preview's file, previewd's secret and database.
    let own = snoop_read(client, &victim, &victim_secret).await;
    assert_eq!(own["value"], "the victim's secret", "{own}");
    let jwt_secret = data_dir.join("jwt-secret").display().to_string();
    for hidden in [&victim_secret, &jwt_secret] {
        let answer = snoop_read(client, &snoop, hidden).await;
        assert_eq!(answer["ok"], false, "{hidden} was readable: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("FileNotFoundError"),
            "{answer}"
        );
    }
    let db = data_dir.join("db").join("conf");
    assert_eq!(
        snoop_read(client, &snoop, db.to_str().unwrap()).await["ok"],
        false
    );

    // Its own project, working dir and scratch folder: readable and writable.
    let me = snoop_call(client, &snoop, "/self", json!({})).await;
    let project = me["project_root"].as_str().unwrap();
    assert_eq!(
        project,
        data_dir
            .join("generations")
            .join(&snoop.generation)
            .display()
            .to_string(),
        "{me}"
    );
    assert_eq!(me["cwd"], project, "{me}");
    let own_file = snoop_read(client, &snoop, "own.txt").await;
    assert_eq!(own_file["value"], "the snoop's own file", "{own_file}");
    let own_file = snoop_read(client, &snoop, &format!("{project}/own.txt")).await;
    assert_eq!(own_file["value"], "the snoop's own file", "{own_file}");
    assert_eq!(
        snoop_write(client, &snoop, &format!("{project}/out.txt")).await["ok"],
        true
    );
    let on_host = data_dir
        .join("generations")
        .join(&snoop.generation)
        .join("out.txt");
    assert_eq!(
        std::fs::read_to_string(&on_host).ok().as_deref(),
        Some("written"),
        "{} on the host",
        on_host.display()
    );
    assert_eq!(
        snoop_write(client, &snoop, "/tmp/out.txt").await["ok"],
        true
    );
    let home = me["home"].as_str().unwrap();
    assert_eq!(
        snoop_write(client, &snoop, &format!("{home}/.cache")).await["ok"],
        true
    );
    let scratch = data_dir.join("previews").join(&snoop.preview_id);
    let tmpdir = me["tmpdir"].as_str().expect("TMPDIR");
    assert!(
        tmpdir.starts_with(&scratch.display().to_string()),
        "TMPDIR is the preview's scratch folder {}: {me}",
        scratch.display()
    );
    assert_eq!(me["tempfile"], tmpdir, "tempfile follows TMPDIR: {me}");
    assert_eq!(
        snoop_write(client, &snoop, &format!("{tmpdir}/scratch.txt")).await["ok"],
        true
    );
    assert!(
        std::path::Path::new(tmpdir).join("scratch.txt").is_file(),
        "the scratch file is in the preview's folder on the host"
    );

    // The system is read-only; the neighbour's /tmp is its own.
    for system in ["/etc/previewd-test", "/usr/previewd-test"] {
        let answer = snoop_write(client, &snoop, system).await;
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("Read-only file system"),
            "{system}: {answer}"
        );
    }
    let theirs = snoop_read(client, &victim, "/tmp/out.txt").await;
    assert_eq!(theirs["ok"], false, "{theirs}");

    // Its own PID namespace, no capabilities, no way to unmount what hides the rest.
    assert_eq!(me["pid"], 2, "{me}");
    assert_eq!(me["pids"], json!([1, 2]), "{me}");
    assert_eq!(me["cap_eff"], "0000000000000000", "{me}");
    assert_eq!(me["umount"], -1, "{me}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. The limits on the warm path.

/// A warm preview allocating 1 GiB under a 256 MiB limit is killed by the kernel and fails with
/// the out-of-memory reason, in `/status` and in the log, and nothing of it is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_on_the_warm_path() {
    let server = TestServer::start_with(|c| c.memory_limit = ByteSize::mib(256)).await;
    let limited = server
        .state
        .supervisor
        .limits()
        .hierarchies()
        .iter()
        .any(|h| h.controllers.contains(&Controller::Memory));
    if !limited {
        eprintln!(
            "skipped: no writable memory cgroup here ({})",
            server.state.supervisor.limits().summary()
        );
        server.stop().await;
        return;
    }
    let alice = server.client("alice");
    let generation = alice.upload_files("hog", &[("main.py", HOG_APP)]).await;
    let warm = prime(&alice, server.data_dir(), me(), &generation).await;
    let launched = launch(&alice, &generation).await;
    assert_eq!(expect_warm(&alice, &launched).await.0, warm.spawned);
    let pids = spawned_tree(warm.launcher, me());

    let answer = through_proxy(&server.base, &launched, reqwest::Method::POST, "/hog").await;
    assert!(
        answer.as_ref().is_none_or(|(status, _)| *status >= 500),
        "the app cannot hold 1 GiB: {answer:?}"
    );
    let status_path = format!("/generations/{generation}/preview/status");
    let status = tokio::time::timeout(EVENTUALLY, async {
        loop {
            let status = alice.get(&status_path).await.body;
            if matches!(status["status"].as_str(), Some("failed" | "stopped")) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the preview ended");
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(
        status["error"], "killed: out of memory (limit 256 MiB)",
        "{status}"
    );
    assert_eq!(status["exit_code"], 137, "SIGKILL: {status}");
    let lines = lines_since(&alice, &launched).await;
    let system = system(&lines);
    assert!(
        system.contains(&"failed: killed: out of memory (limit 256 MiB)"),
        "{system:#?}"
    );
    let left = survivors(&pids, KILL_LIMIT).await;
    assert!(left.is_empty(), "{left:?} of {pids:?} outlived the failure");
    assert_eq!(marked_processes(&launched.preview_id), Vec::<i32>::new());
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Environments a warm process cannot take.

/// A launch with `PYTHONPATH` in its environment (which Python reads when it starts) goes cold
/// and says why, runs all the same, and leaves the ready warm process to the next launch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythonpath_launch_goes_cold() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = alice.upload_dir(&fixture("warm-flask")).await;
    let warm = prime(&alice, server.data_dir(), me(), &generation).await;

    let bypassed = launch_with(&alice, &generation, json!({"env": {"PYTHONPATH": "/x"}})).await;
    expect_cold(&alice, &bypassed, "PYTHONPATH").await;
    let (status, body) = through_envelope(&alice, &bypassed, "/items/1").await;
    assert_eq!(status, 200, "{body}");
    stop(&alice, &generation).await;

    assert_eq!(
        warm_processes(server.data_dir()),
        vec![warm.launcher],
        "left alone"
    );
    let next = launch(&alice, &generation).await;
    assert_eq!(expect_warm(&alice, &next).await.0, warm.spawned);
    stop(&alice, &generation).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. A dead warm process.

/// A warm process killed with SIGKILL is replaced by a new one (another pid), nothing of the old
/// one is left, and the next launch takes the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_warm_process_is_replaced() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let data_dir = server.data_dir();
    let generation = alice.upload_dir(&fixture("fastapi-app")).await;
    let dead = prime(&alice, data_dir, me(), &generation).await;
    let pids = spawned_tree(dead.launcher, me());
    println!("warm process {dead:?}, its tree {pids:?}");

    kill(Pid::from_raw(dead.launcher), Signal::SIGKILL).expect("SIGKILL");
    let left = survivors(&pids, KILL_LIMIT).await;
    assert!(
        left.is_empty(),
        "{left:?} of {pids:?} outlived the warm process"
    );
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    let replacement = loop {
        let now = warm_processes(data_dir);
        if let &[pid] = now.as_slice() {
            if pid != dead.launcher && value(&alice, READY).await == 1.0 {
                break Warm::of(pid, me());
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ready replacement: warm processes {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let launched = launch(&alice, &generation).await;
    assert_eq!(expect_warm(&alice, &launched).await.0, replacement.spawned);
    let answer = app_json(&alice, &launched, "/").await;
    assert_eq!(answer["message"], "hello", "{answer}");
    stop(&alice, &generation).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. A SIGKILLed previewd's warm processes.

/// The real binary with an idle warm process is SIGKILLed and started again on the same data
/// dir: the old warm process and everything around it (relay, init, children) is gone, and the
/// generation launches again (cold: warm processes start lazily).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_sigkill_ends_warm_processes() {
    let mut server = ExternalServer::start(previewd_under_test!(), &["--warm-pool", "1"]).await;
    let alice = server.client("alice");
    let generation = alice.upload_dir(&fixture("warm-flask")).await;
    let data_dir = server.data_dir().to_path_buf();
    let warm = prime(&alice, &data_dir, server.pid(), &generation).await;
    let pids = spawned_tree(warm.launcher, server.pid());
    assert!(
        pids.contains(&warm.launcher) && pids.contains(&warm.spawned),
        "{warm:?} in {pids:?}"
    );

    server.kill9();
    let outlived: Vec<i32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
    println!("warm process {warm:?}: tree {pids:?}, alive after the SIGKILL {outlived:?}");

    server.restart().await;
    let left = survivors(&pids, KILL_LIMIT).await;
    assert!(left.is_empty(), "{left:?} of {pids:?} survived the restart");
    let after = warm_processes(&data_dir);
    assert!(!after.contains(&warm.launcher), "{after:?}");

    let again = launch(&alice, &generation).await;
    expect_cold(&alice, &again, NOT_YET).await;
    let (status, body) = through_envelope(&alice, &again, "/").await;
    assert_eq!(status, 200, "{body}");
    stop(&alice, &generation).await;
}

// ---------------------------------------------------------------------------------------------
// 7. No state shared between previews of one environment.

/// A Flask app that marks the pre-imported `flask` module at import time and reports whether it
/// found a mark there already.
const FLASK_LEAK: &str = r#"
import os

import flask

WHO = open("who.txt").read().strip()
FOUND = getattr(flask, "_previewd_leak", None)
flask._previewd_leak = WHO
app = flask.Flask(__name__)


@app.get("/")
def index():
    return {
        "who": WHO,
        "found": FOUND,
        "now": flask._previewd_leak,
        "pid": os.getpid(),
        "pid_ns": os.readlink("/proc/self/ns/pid"),
    }
"#;

/// The same for Express.
const EXPRESS_LEAK: &str = r#"
const fs = require('fs');
const express = require('express');

const who = fs.readFileSync('who.txt', 'utf8').trim();
const found = express._previewdLeak === undefined ? null : express._previewdLeak;
express._previewdLeak = who;
const app = express();
app.get('/', (req, res) => res.json({
  who,
  found,
  now: express._previewdLeak,
  pid: process.pid,
  pid_ns: fs.readlinkSync('/proc/self/ns/pid'),
}));
app.listen(process.env.PORT);
"#;

/// Generations A and B of one environment, each marking its framework's module at import: A
/// runs warm, then B, warm too, in another process; neither finds a mark, each keeps its own.
async fn no_state_shared(files: impl Fn(&str) -> Vec<(&'static str, String)>) {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let data_dir = server.data_dir();
    let mut generations = Vec::new();
    for who in ["A", "B"] {
        let files = files(who);
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        generations.push(alice.upload_files(&format!("leak-{who}"), &files).await);
    }
    prime(&alice, data_dir, me(), &generations[0]).await;

    let a = launch(&alice, &generations[0]).await;
    let (a_pid, _) = expect_warm(&alice, &a).await;
    wait_ready(&alice, EVENTUALLY).await;
    let b = launch(&alice, &generations[1]).await;
    let (b_pid, _) = expect_warm(&alice, &b).await;
    assert_ne!(a_pid, b_pid, "two warm processes");
    assert!(process_alive(a_pid) && process_alive(b_pid), "both run");

    let a_says = app_json(&alice, &a, "/").await;
    let b_says = app_json(&alice, &b, "/").await;
    println!("A: {a_says}\nB: {b_says}");
    assert_eq!(a_says["found"], Value::Null, "{a_says}");
    assert_eq!(a_says["now"], "A", "{a_says}");
    assert_eq!(b_says["found"], Value::Null, "B saw A's mark: {b_says}");
    assert_eq!(b_says["now"], "B", "{b_says}");
    if server.state.supervisor.isolation().mechanism() != "none" {
        assert_ne!(a_says["pid_ns"], b_says["pid_ns"], "own PID namespaces");
    }
    stop(&alice, &generations[0]).await;
    stop(&alice, &generations[1]).await;
    server.stop().await;
}

/// Flask: a mark on the pre-imported `flask` module.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_previews_share_no_state() {
    no_state_shared(|who| {
        vec![
            ("app.py", FLASK_LEAK.to_string()),
            ("who.txt", who.to_string()),
        ]
    })
    .await;
}

/// Express: a mark on the pre-loaded `express` module.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_previews_share_no_state() {
    let fixture = plugin_fixture("express", "single_file");
    let read = |name: &str| std::fs::read_to_string(fixture.join(name)).expect("fixture file");
    let (package, lock) = (read("package.json"), read("package-lock.json"));
    no_state_shared(|who| {
        vec![
            ("package.json", package.clone()),
            ("package-lock.json", lock.clone()),
            ("server.js", EXPRESS_LEAK.to_string()),
            ("who.txt", who.to_string()),
        ]
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 8. Warm runtimes off.

/// With `--warm-pool 0` every launch is cold and says why, and no warm process is ever started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_pool_zero_is_always_cold() {
    let server = TestServer::start_with(|c| c.warm_pool = 0).await;
    let alice = server.client("alice");
    let generation = alice.upload_dir(&fixture("warm-flask")).await;
    for _ in 0..2 {
        let launched = launch(&alice, &generation).await;
        expect_cold(&alice, &launched, "warm runtimes are off").await;
        let (status, body) = through_envelope(&alice, &launched, "/items/1").await;
        assert_eq!(status, 200, "{body}");
        stop(&alice, &generation).await;
        assert_eq!(warm_processes(server.data_dir()), Vec::<i32>::new());
    }
    assert_eq!(value(&alice, READY).await, 0.0);
    assert_eq!(value(&alice, STARTING).await, 0.0);
    assert_eq!(value(&alice, WARM_LAUNCHES).await, 0.0);
    let cold = wait_metric(&alice, COLD_LAUNCHES, |v| v >= 2.0, EVENTUALLY).await;
    assert_eq!(cold, 2.0);
    assert_eq!(warm_processes(server.data_dir()), Vec::<i32>::new());
    server.stop().await;
}

/// A budget too small for one warm process: none is started, launches go cold and say so, and
/// `/metrics` shows the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_memory_budget_keeps_launches_cold() {
    let server = TestServer::start_with(|c| c.warm_memory = ByteSize(1 << 20)).await;
    let alice = server.client("alice");
    let generation = alice.upload_dir(&fixture("warm-flask")).await;
    for _ in 0..2 {
        let launched = launch(&alice, &generation).await;
        expect_cold(
            &alice,
            &launched,
            "the warm processes' memory budget (--warm-memory 1 MiB) is spent",
        )
        .await;
        stop(&alice, &generation).await;
        assert_eq!(warm_processes(server.data_dir()), Vec::<i32>::new());
    }
    assert_eq!(
        value(&alice, "previewd_warm_memory_budget_bytes").await,
        f64::from(1 << 20)
    );
    server.stop().await;
}

/// A Python project with a module of its own named like a pre-imported package would import
/// its own on a cold start: it starts cold, and the warm process waits for another launch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_module_named_like_a_preload_goes_cold() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let app = std::fs::read_to_string(fixture("warm-flask").join("app.py")).unwrap();
    let plain = alice.upload_files("plain", &[("app.py", &app)]).await;
    let launched = launch(&alice, &plain).await;
    expect_cold(&alice, &launched, NOT_YET).await;
    stop(&alice, &plain).await;
    wait_metric(&alice, READY, |v| v >= 1.0, EVENTUALLY).await;
    let shadowing = alice
        .upload_files(
            "shadowing",
            &[("app.py", &app), ("encodings/readme.txt", "not the codecs")],
        )
        .await;
    let launched = launch(&alice, &shadowing).await;
    expect_cold(
        &alice,
        &launched,
        "the project has a module `encodings` of its own",
    )
    .await;
    let (status, body) = through_envelope(&alice, &launched, "/items/1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(value(&alice, READY).await, 1.0, "the warm process is kept");
    stop(&alice, &shadowing).await;
    server.stop().await;
}
