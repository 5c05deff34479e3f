//! Fleet benchmark: what running many previews at once costs, on the real previewd binary run
//! out of process (release build). Fleets of 100, then 200, copies of a small Flask app
//! ([`fleet::APP`]) are launched all at once; for each the bench prints
//!
//! - launch to all running: from the first launch request until every preview is `running`.
//!   Baseline, measured in the same run just before: the same number of bare Flask apps (the
//!   same `app.py`, each in a folder of its own, run with `python -m flask run` by the very
//!   interpreter of previewd's cached virtualenv) started all at once, each polled every 15 ms
//!   (previewd's readiness step) until it answers `GET /` with 200. The ratio is previewd's
//!   overhead over starting the apps by hand: uploads are done beforehand and not timed.
//! - previewd's own resident memory and open files: fresh, idle after one preview, with every
//!   preview of each fleet running, and after all stopped; the increment per preview, and that
//!   increment as a share of one bare Flask app's own memory.
//! - that every preview stopped clean: no active preview or leased port in `/metrics`, no member
//!   port still bound, no process carrying a preview's id, and previewd's file count back to idle.
//!
//! Why: a preview host runs many previews for many users; what it adds per preview, in start
//! time, memory and file descriptors, decides how many one machine holds, and a leak shows only
//! at scale. Previews run with previewd's defaults (resource limits and isolation where the host
//! allows), so their overhead is in the figure; the bare apps run unconfined.
//!
//! Run with `cargo bench -p previewd-e2e --bench fleet` (several minutes).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use previewd_e2e::external::{rss_bytes_of, ExternalServer};
use previewd_e2e::{fleet, port_in_use, previewd_under_test, process_alive, Client};

/// The fleet sizes, in the order they run.
const FLEETS: [usize; 2] = [100, 200];
/// Preview ports: below the ephemeral ports (32768 and up), above every block the test servers
/// take (20000-31999, see `test_config`) and apart from the load test's (32400-32699).
const PREVIEW_PORTS: &str = "32000-32267";
/// Ports of the bare apps, the rest of what is free below 32768: 200 in two runs.
const BARE_PORTS: [(u16, u16); 2] = [(32268, 32399), (32700, 32767)];
/// How often the bench lists the previews while it waits for a fleet to run.
const LIST_EVERY: Duration = Duration::from_millis(100);
/// How often each bare app is polled: previewd's own readiness step.
const PROBE_EVERY: Duration = Duration::from_millis(15);
/// Far more than a fleet needs, so a loaded machine slows the bench down instead of failing it.
const LIMIT: Duration = Duration::from_secs(600);

/// previewd's resident memory and open files at one moment.
#[derive(Clone, Copy)]
struct Footprint {
    rss: u64,
    fds: usize,
}

/// One fleet size, both ways.
struct FleetRun {
    size: usize,
    bare: BareRun,
    previewd: Duration,
    running: Footprint,
}

/// Bare Flask apps started at once.
struct BareRun {
    took: Duration,
    /// The median resident memory of one app, all running.
    app_rss: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = ExternalServer::start(
        previewd_under_test!(),
        &[
            "--port-range",
            PREVIEW_PORTS,
            "--max-previews-per-user",
            "1000",
            "--startup-timeout",
            "10m",
        ],
    )
    .await;
    let fresh = footprint(&server).await;

    // One preview first: it builds (or finds) the shared virtualenv and names its interpreter.
    let client = server.client("bench");
    let warm = fleet::launch(&client, 1).await;
    fleet::wait_running(&client, 1, LIMIT).await;
    let python = interpreter(&client, &warm[0].generation_id).await;
    let limits = limits_mechanism(&client, &warm[0].generation_id).await;
    fleet::stop_all(&client, &warm).await;
    drop(client);
    let idle = footprint(&server).await;

    let bare_ports: Vec<u16> = BARE_PORTS
        .iter()
        .flat_map(|(first, last)| *first..=*last)
        .collect();
    let bare_root = tempfile::tempdir().expect("temp dir");
    let mut members = warm;
    let mut runs = Vec::new();
    for size in FLEETS {
        assert!(bare_ports.len() >= size, "too few bare ports");
        let generations = fleet::upload(&server.client("bench"), size).await;
        let bare = bare_fleet(
            &python,
            &bare_root.path().join(format!("fleet-{size}")),
            &bare_ports[..size],
        )
        .await;
        let (fleet_members, previewd, running) = previewd_fleet(&server, &generations).await;
        members.extend(fleet_members);
        runs.push(FleetRun {
            size,
            bare,
            previewd,
            running,
        });
    }

    // Fresh connections: the bench's own keep-alive ones closed with the clients above.
    let client = server.client("bench");
    let active = fleet::metric(&client, "previewd_active_previews").await;
    let leased = fleet::metric(&client, "previewd_leased_ports").await;
    drop(client);
    let (ports, processes) = fleet::leftovers(&members);
    let stopped = footprint(&server).await;
    let fds_back = stopped.fds <= idle.fds + 4;
    let clean = active == Some(0.0)
        && leased == Some(0.0)
        && ports.is_empty()
        && processes.is_empty()
        && fds_back;

    println!();
    println!("fleet benchmark: previewd out of process, fleets of small Flask previews at once");
    println!(
        "  previews: limits {limits}; bare apps: `python -m flask run`, unconfined; {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "{:<w$} {:>10} {:>10} {:>10}",
        "launch to all running",
        "bare",
        "previewd",
        "ratio",
        w = LABEL + 2
    );
    for run in &runs {
        println!(
            "  {:<LABEL$} {:>8.1} s {:>8.1} s {:>9.2}x",
            format!("{} apps", run.size),
            run.bare.took.as_secs_f64(),
            run.previewd.as_secs_f64(),
            run.previewd.as_secs_f64() / run.bare.took.as_secs_f64()
        );
    }
    println!();
    println!(
        "{:<w$} {:>10} {:>10}   per preview over idle",
        "previewd process",
        "RSS",
        "fds",
        w = LABEL + 2
    );
    footprint_row("fresh start", fresh, None);
    footprint_row("idle, after one preview", idle, None);
    for run in &runs {
        footprint_row(
            &format!("{} previews running", run.size),
            run.running,
            Some((idle, run.size)),
        );
    }
    footprint_row("all stopped", stopped, None);
    println!();
    println!("memory previewd adds per preview, vs one bare Flask app's own RSS");
    for run in &runs {
        let per_preview = run.running.rss.saturating_sub(idle.rss) as f64 / run.size as f64;
        println!(
            "  {:<LABEL$} {:.1} kB / {:.1} MB = {:.2}%",
            format!("{} previews", run.size),
            per_preview / 1e3,
            mb(run.bare.app_rss),
            100.0 * per_preview / run.bare.app_rss as f64
        );
    }
    println!();
    println!(
        "stopped clean: {}  ({} active and {} leased ports in /metrics; {} member ports bound; \
         {} processes left; {} fds, {} idle)",
        if clean { "yes" } else { "NO" },
        shown(active),
        shown(leased),
        ports.len(),
        processes.len(),
        stopped.fds,
        idle.fds
    );
    assert!(
        clean,
        "left behind: ports {ports:?}, processes {processes:?}, fds {:?}",
        server.fd_targets()
    );
}

/// Launches one preview of each of `generations` at once and times them to all running; then
/// reads previewd's footprint, calls every preview, and stops them all.
async fn previewd_fleet(
    server: &ExternalServer,
    generations: &[String],
) -> (Vec<fleet::Member>, Duration, Footprint) {
    let client = server.client("bench");
    let started = Instant::now();
    let members = fleet::launch_uploaded(&client, generations).await;
    fleet::wait_running_polled(&client, generations.len(), LIMIT, LIST_EVERY).await;
    let took = started.elapsed();
    // The launch requests' connections go with their client, so the count is previewd's own.
    drop(client);
    let running = footprint(server).await;
    let client = server.client("bench");
    assert_eq!(
        fleet::call_all(&client, &members).await,
        members.len(),
        "every preview answers"
    );
    fleet::stop_all(&client, &members).await;
    (members, took, running)
}

/// Starts one bare Flask app per port, all at once, each in a new folder of `root` holding
/// [`fleet::APP`], run by `python`; times them until every one answers `GET /` with 200, reads
/// their memory, and kills them.
async fn bare_fleet(python: &Path, root: &Path, ports: &[u16]) -> BareRun {
    let busy: Vec<u16> = ports.iter().copied().filter(|p| port_in_use(*p)).collect();
    assert!(busy.is_empty(), "ports of the bare apps in use: {busy:?}");
    let dirs: Vec<PathBuf> = (0..ports.len())
        .map(|i| {
            let dir = root.join(format!("app-{i}"));
            std::fs::create_dir_all(&dir).expect("app folder");
            std::fs::write(dir.join("app.py"), fleet::APP).expect("app.py");
            dir
        })
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");

    let started = Instant::now();
    let mut children: Vec<tokio::process::Child> = dirs
        .iter()
        .zip(ports)
        .map(|(dir, port)| {
            tokio::process::Command::new(python)
                .args(["-m", "flask", "--app", "app", "run", "--host", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("flask run")
        })
        .collect();
    let pids: Vec<i32> = children
        .iter()
        .map(|c| c.id().expect("pid") as i32)
        .collect();
    let probes = pids
        .iter()
        .zip(ports)
        .map(|(pid, port)| answers(&http, *pid, *port, started));
    join_all(probes).await;
    let took = started.elapsed();

    let mut rss: Vec<u64> = pids.iter().filter_map(|pid| rss_bytes_of(*pid)).collect();
    rss.sort_unstable();
    for child in &mut children {
        let _ = child.start_kill();
    }
    for child in &mut children {
        let _ = child.wait().await;
    }
    BareRun {
        took,
        app_rss: rss[rss.len() / 2],
    }
}

/// Polls the bare app `pid` on `port` until it answers `GET /` with 200; panics if it exits or
/// [`LIMIT`] passes.
async fn answers(http: &reqwest::Client, pid: i32, port: u16, started: Instant) {
    let url = format!("http://127.0.0.1:{port}/");
    loop {
        let answer = http.get(&url).send().await;
        if answer.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(process_alive(pid), "the bare app on port {port} exited");
        assert!(
            started.elapsed() < LIMIT,
            "the bare app on port {port} did not answer"
        );
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// The interpreter previewd ran `generation`'s app with: the shortest leading part of the
/// preview's `launch_command` that is a file (its path may hold spaces); it must import Flask.
async fn interpreter(client: &Client, generation: &str) -> PathBuf {
    let config = client
        .get(&format!("/generations/{generation}/preview/config"))
        .await;
    let command = config.body["launch_command"]
        .as_str()
        .unwrap_or_else(|| panic!("no launch command: {:?}", config.body));
    let python = command
        .match_indices(' ')
        .map(|(end, _)| &command[..end])
        .chain([command])
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("no interpreter in `{command}`"));
    let imports = std::process::Command::new(&python)
        .args(["-c", "import flask"])
        .status()
        .expect("the preview's interpreter runs");
    assert!(
        imports.success(),
        "{} cannot import flask",
        python.display()
    );
    python
}

/// How previewd applies resource limits to previews (`cgroup v2`, `rlimit`, ...).
async fn limits_mechanism(client: &Client, generation: &str) -> String {
    let config = client
        .get(&format!("/generations/{generation}/preview/config"))
        .await;
    config.body["limits"]["mechanism"]
        .as_str()
        .unwrap_or("unknown")
        .to_string()
}

/// previewd's memory and open files once its file count settles (connections close as their
/// peers go).
async fn footprint(server: &ExternalServer) -> Footprint {
    let mut fds = server.fd_count();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = server.fd_count();
        if now == fds {
            break;
        }
        fds = now;
    }
    Footprint {
        rss: server.rss_bytes(),
        fds,
    }
}

/// Width of the label column.
const LABEL: usize = 30;

/// A footprint row; with `(idle, n)`, also the increment over `idle` per preview of `n`.
fn footprint_row(label: &str, at: Footprint, over: Option<(Footprint, usize)>) {
    let per_preview = over.map_or(String::new(), |(idle, n)| {
        format!(
            "{:+.1} kB, {:+.2} fds",
            (at.rss as f64 - idle.rss as f64) / n as f64 / 1e3,
            (at.fds as f64 - idle.fds as f64) / n as f64
        )
    });
    let line = format!(
        "  {label:<LABEL$} {:>7.1} MB {:>10}   {per_preview}",
        mb(at.rss),
        at.fds
    );
    println!("{}", line.trim_end());
}

fn shown(metric: Option<f64>) -> String {
    metric.map_or("no".into(), |v| format!("{v}"))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
