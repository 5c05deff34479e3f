//! Launch benchmark: for FastAPI, Flask, Django and Express, launch-to-running of a small fixture
//! project through previewd on the warm path and on the cold path, beside the bare cold start
//! of the same project with the same interpreter and dependencies, in one run, printed as a
//! table with the ratios warm/bare and cold/bare and their targets, met or missed: warm ≤ 0.25×
//! bare for FastAPI and Django, ≤ 0.5× for Flask and Express; cold ≤ 1.10× (dependencies warm).
//!
//! Two servers share one cache: one with warm runtimes on (`--warm-pool 1`, the default) and one
//! with them off (`--warm-pool 0`). Per framework, one untimed first launch on each provisions
//! the environment (on the warm server it is cold too, and starts the warm process of the next
//! launch); FastAPI's, the first of the run, has an empty cache and is printed as the cold
//! provisioning figure. Then, `--runs` times, interleaved so drift in the machine's load hits
//! every side alike:
//! - cold: the `--warm-pool 0` server's launch to `running` (a stop after each);
//! - warm: the warm server's launch to `running` (a stop after each). Before it, untimed, the
//!   bench waits until `/metrics` shows a ready warm process; after the stop, untimed too, until
//!   the replacement started by that launch is ready, so its pre-imports never overlap another
//!   side's timing. A warm run that still went cold (its log says `cold start`) is counted and
//!   reported under the table;
//! - bare: the bare server, run with the interpreter, working dir and app of previewd's own
//!   launch and timed to its first HTTP answer (any status). The bare servers are the ones
//!   previewd's launchers serve with:
//!   - FastAPI: `python -m uvicorn <module:app>` (serve_fastapi.py's uvicorn);
//!   - Flask: `python -m waitress <module:app>` (serve_flask.py's waitress);
//!   - Django: `python -m waitress --threads=4 --call django.core.wsgi:get_wsgi_application`
//!     with `DJANGO_SETTINGS_MODULE` set (serve_django.py's waitress; the URLconf loads on the
//!     first request rather than before serving);
//!   - Express: `node <entry>` with `PORT` set, on the `node_modules` previewd linked into the
//!     project.
//!
//! FastAPI is also launched by a third server with `--isolation none` (and `--warm-pool 0`), so
//! the cost of the default sandbox (namespaces) on the cold path shows.
//!
//! Run with `cargo bench -p previewd-e2e --bench launch` (`-- --runs N` to change the count).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use previewd::log_store::LogStream;
use previewd::state::AppState;
use previewd::supervisor::isolation::IsolationMode;
use previewd_e2e::warm::wait_ready;
use previewd_e2e::{Client, TestServer};

const DEFAULT_RUNS: usize = 11;

/// The framework also launched with `--isolation none`.
const ISOLATION_COMPARED: &str = "fastapi";

/// The most previewd's cold launch may take over the bare cold start.
const COLD_TARGET: f64 = 1.10;

/// How long the untimed wait for a ready warm process may take.
const READY_LIMIT: Duration = Duration::from_secs(300);

/// A row of the table: a fixture and the bare server that runs it as previewd's launcher would.
struct Framework {
    name: &'static str,
    /// The fixture project, relative to the workspace root.
    fixture: &'static str,
    /// The bare command's arguments after the interpreter. `{app}` is what previewd's launcher
    /// was given as `--app` (Python) or `--entry` (Node), `{port}` the port.
    bare_args: &'static [&'static str],
    /// The bare command's environment, with the same placeholders.
    bare_env: &'static [(&'static str, &'static str)],
    /// The most a warm launch may take, as a fraction of the bare cold start.
    warm_target: f64,
}

const FRAMEWORKS: &[Framework] = &[
    Framework {
        name: "fastapi",
        fixture: "tests/fixtures/fastapi-app",
        bare_args: &[
            "-m",
            "uvicorn",
            "{app}",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
        bare_env: &[],
        warm_target: 0.25,
    },
    Framework {
        name: "flask",
        fixture: "plugins/flask/tests/fixtures/single_file",
        bare_args: &["-m", "waitress", "--listen=127.0.0.1:{port}", "{app}"],
        bare_env: &[],
        warm_target: 0.5,
    },
    Framework {
        name: "django",
        fixture: "plugins/django/tests/fixtures/polls",
        bare_args: &[
            "-m",
            "waitress",
            "--listen=127.0.0.1:{port}",
            "--threads=4",
            "--call",
            "django.core.wsgi:get_wsgi_application",
        ],
        bare_env: &[("DJANGO_SETTINGS_MODULE", "{app}")],
        warm_target: 0.25,
    },
    Framework {
        name: "express",
        fixture: "plugins/express/tests/fixtures/single_file",
        bare_args: &["{app}"],
        bare_env: &[("PORT", "{port}")],
        warm_target: 0.5,
    },
];

/// One way of starting a project, timed until it answers.
enum Start {
    /// previewd's launch to `running`, then a stop.
    Previewd {
        client: Client,
        state: Arc<AppState>,
        generation: String,
        /// Whether each launch is meant to take a ready warm process: one is waited for
        /// (untimed) before the launch, and its replacement after the stop.
        warm: bool,
        /// Warm launches that went cold all the same.
        went_cold: usize,
    },
    /// A bare server, timed to its first HTTP answer on `port`, then killed.
    Bare {
        command: tokio::process::Command,
        port: u16,
    },
}

impl Start {
    async fn time(&mut self) -> Duration {
        match self {
            Start::Previewd {
                client,
                state,
                generation,
                warm,
                went_cold,
            } => {
                if *warm {
                    wait_ready(client, READY_LIMIT).await;
                }
                let started = Instant::now();
                let answer = client.launch_wait(generation).await;
                assert_eq!(answer.body["status"], "running", "{:?}", answer.body);
                let elapsed = started.elapsed();
                if *warm && !started_warm(state, generation) {
                    *went_cold += 1;
                }
                client.stop_preview(generation).await;
                if *warm {
                    wait_ready(client, READY_LIMIT).await;
                }
                elapsed
            }
            Start::Bare { command, port } => {
                let started = Instant::now();
                let mut child = command.spawn().expect("bare server");
                let http = reqwest::Client::new();
                let url = format!("http://127.0.0.1:{port}/");
                let elapsed = loop {
                    if http.get(&url).send().await.is_ok() {
                        break started.elapsed();
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "{command:?} did not answer"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                let _ = child.start_kill();
                let _ = child.wait().await;
                elapsed
            }
        }
    }

    /// Warm launches that went cold, for a warm [`Start::Previewd`].
    fn went_cold(&self) -> usize {
        match self {
            Start::Previewd { went_cold, .. } => *went_cold,
            Start::Bare { .. } => 0,
        }
    }
}

/// The system lines of a generation's log, oldest first.
fn system_lines(state: &AppState, generation: &str) -> Vec<String> {
    state
        .logs
        .read_after(generation, 0, 100_000)
        .expect("logs")
        .into_iter()
        .filter(|l| l.stream == LogStream::System)
        .map(|l| l.into_line().line)
        .collect()
}

/// Whether the last launch of `generation` took a warm process (its last `warm start` or `cold
/// start` line is a `warm start`).
fn started_warm(state: &AppState, generation: &str) -> bool {
    system_lines(state, generation)
        .iter()
        .rfind(|l| l.starts_with("warm start: ") || l.starts_with("cold start: "))
        .is_some_and(|l| l.starts_with("warm start: "))
}

/// What previewd ran, from its `started process PID in DIR: COMMAND` log line.
struct Launch {
    interpreter: String,
    dir: PathBuf,
    /// The value of the launcher's `--app` or `--entry`.
    app: String,
}

/// Uploads `fixture` to `server` and launches it once (that launch provisions its environment,
/// and on a server with warm runtimes starts the warm process of the next launch). Returns
/// previewd's side of the benchmark (`warm`: on the warm path from then on), how long the first
/// launch took, and what it ran.
async fn first_launch(server: &TestServer, fixture: &str, warm: bool) -> (Start, Duration, Launch) {
    let client = server.client("bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(fixture);
    let generation = client.upload_dir(&root).await;
    let mut previewd = Start::Previewd {
        client,
        state: server.state.clone(),
        generation: generation.clone(),
        warm: false,
        went_cold: 0,
    };
    let first = previewd.time().await;
    if let Start::Previewd { warm: path, .. } = &mut previewd {
        *path = warm;
    }
    let line = system_lines(&server.state, &generation)
        .into_iter()
        .rfind(|l| l.starts_with("started process "))
        .expect("launch line");
    let (dir, command) = line
        .split_once(" in ")
        .and_then(|(_, rest)| rest.split_once(": "))
        .expect("launch line shape");
    let words: Vec<&str> = command.split_whitespace().collect();
    let app = words
        .windows(2)
        .find(|w| w[0] == "--app" || w[0] == "--entry")
        .map(|w| w[1].to_string())
        .expect("--app or --entry");
    let launch = Launch {
        interpreter: words[0].to_string(),
        dir: PathBuf::from(dir),
        app,
    };
    (previewd, first, launch)
}

/// The bare server of `framework` for what previewd ran, on `port`; and its command line.
fn bare(framework: &Framework, launch: &Launch, port: u16) -> (Start, String) {
    let fill = |s: &str| {
        s.replace("{app}", &launch.app)
            .replace("{port}", &port.to_string())
    };
    let args: Vec<String> = framework.bare_args.iter().map(|a| fill(a)).collect();
    let env: Vec<(&str, String)> = framework
        .bare_env
        .iter()
        .map(|(k, v)| (*k, fill(v)))
        .collect();
    let program = Path::new(&launch.interpreter)
        .file_name()
        .map_or(launch.interpreter.clone(), |n| {
            n.to_string_lossy().into_owned()
        });
    let shown = env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain([program])
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = tokio::process::Command::new(&launch.interpreter);
    command
        .args(&args)
        .envs(env)
        .current_dir(&launch.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    (Start::Bare { command, port }, shown)
}

/// The index of each side in a row's medians.
const BARE: usize = 0;
const COLD: usize = 1;
const WARM: usize = 2;
const UNISOLATED: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    // One empty cache for every server: FastAPI's first launch is cold, later ones reuse it.
    let cache = tempfile::tempdir().expect("cache dir");
    let cold_server = TestServer::start_with(|c| {
        c.cache_dir = Some(cache.path().to_path_buf());
        c.warm_pool = 0;
    })
    .await;
    let warm_server = TestServer::start_with(|c| {
        c.cache_dir = Some(cache.path().to_path_buf());
        c.warm_pool = 1;
    })
    .await;
    let unisolated = TestServer::start_with(|c| {
        c.cache_dir = Some(cache.path().to_path_buf());
        c.warm_pool = 0;
        c.isolation = Some(IsolationMode::None);
    })
    .await;
    let port = *cold_server.config.port_range.end();

    let isolation = cold_server.state.supervisor.isolation().mechanism();

    let mut rows = Vec::new();
    for framework in FRAMEWORKS {
        let (cold, first, launch) = first_launch(&cold_server, framework.fixture, false).await;
        let (warm, _, _) = first_launch(&warm_server, framework.fixture, true).await;
        let (bare, shown) = bare(framework, &launch, port);
        let mut starts = vec![bare, cold, warm];
        if framework.name == ISOLATION_COMPARED {
            starts.push(first_launch(&unisolated, framework.fixture, false).await.0);
        }
        let mut samples = vec![Vec::with_capacity(runs); starts.len()];
        for _ in 0..runs {
            for (start, samples) in starts.iter_mut().zip(&mut samples) {
                samples.push(start.time().await);
            }
        }
        let medians: Vec<Duration> = samples.iter_mut().map(|s| median(s)).collect();
        rows.push(Row {
            framework,
            first,
            medians,
            warm_went_cold: starts[WARM].went_cold(),
            shown,
        });
    }
    unisolated.stop().await;
    warm_server.stop().await;
    cold_server.stop().await;

    println!("launch benchmark ({runs} runs each, medians; dependencies warm after one untimed first launch)");
    println!(
        "  cold provisioning + launch, {} (empty cache): {:.1} ms  (includes installing uv when it is not on PATH)",
        rows[0].framework.fixture,
        ms(rows[0].first)
    );
    println!();
    println!(
        "  {:<9} {:>9} {:>9} {:>9}  {:<15} {:>9} {:>9}  target",
        "framework", "bare ms", "cold ms", "cold/bare", "target", "warm ms", "warm/bare"
    );
    for row in &rows {
        let (bare, cold, warm) = (row.medians[BARE], row.medians[COLD], row.medians[WARM]);
        let (cold_ratio, warm_ratio) = (ratio(cold, bare), ratio(warm, bare));
        println!(
            "  {:<9} {:>9.1} {:>9.1} {:>9.3}  {:<15} {:>9.1} {:>9.3}  {}",
            row.framework.name,
            ms(bare),
            ms(cold),
            cold_ratio,
            verdict(cold_ratio, COLD_TARGET),
            ms(warm),
            warm_ratio,
            verdict(warm_ratio, row.framework.warm_target),
        );
    }
    println!("  cold: previewd with --warm-pool 0; warm: previewd with a ready warm process (waited for, untimed)");
    for row in rows.iter().filter(|r| r.warm_went_cold > 0) {
        println!(
            "  warning: {}: {} of {runs} warm runs started cold (no warm process taken)",
            row.framework.name, row.warm_went_cold
        );
    }
    println!();
    println!("  bare servers (in previewd's working dir):");
    for row in &rows {
        println!("  {:<9} {}", row.framework.name, row.shown);
    }
    for row in rows.iter().filter(|r| r.medians.len() > UNISOLATED) {
        println!();
        println!(
            "  {} sandbox cost (cold path): previewd with --isolation none {:.1} ms, default ({isolation}) {:.1} ms, ratio {:.2}",
            row.framework.name,
            ms(row.medians[UNISOLATED]),
            ms(row.medians[COLD]),
            ratio(row.medians[COLD], row.medians[UNISOLATED])
        );
    }
}

/// One framework's figures: the first launch (cold provisioning) and the medians of bare, cold,
/// warm and (for [`ISOLATION_COMPARED`]) cold with `--isolation none`.
struct Row {
    framework: &'static Framework,
    first: Duration,
    medians: Vec<Duration>,
    /// Timed warm launches that went cold.
    warm_went_cold: usize,
    /// The bare server's command line.
    shown: String,
}

/// `≤ target met` or `≤ target missed`, for the ratio as measured (not as rounded in the table).
fn verdict(ratio: f64, target: f64) -> String {
    let outcome = if ratio <= target { "met" } else { "missed" };
    format!("≤ {target:.2} {outcome}")
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
