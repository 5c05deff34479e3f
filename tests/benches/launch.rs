//! Launch benchmark: for FastAPI, Flask, Django and Express, launch-to-running of a small fixture
//! project through previewd beside the bare cold start of the same project with the same
//! interpreter and dependencies, in one run, printed as a table with the ratio (target ≤ 1.10
//! with dependencies warm). These are the cold and bare baselines of warm runtimes.
//!
//! Per framework, one untimed first launch provisions the environment; FastAPI's, the first of
//! the run, has an empty cache and is printed as the cold provisioning figure. Then, `--runs`
//! times, interleaved so drift in the machine's load hits every side alike: previewd's launch to
//! `running` (a stop after each), and the bare server, run with the interpreter, working dir and
//! app of previewd's own launch and timed to its first HTTP answer (any status). The bare
//! servers are the ones previewd's launchers serve with:
//! - FastAPI: `python -m uvicorn <module:app>` (serve_fastapi.py's uvicorn);
//! - Flask: `python -m waitress <module:app>` (serve_flask.py's waitress);
//! - Django: `python -m waitress --threads=4 --call django.core.wsgi:get_wsgi_application` with
//!   `DJANGO_SETTINGS_MODULE` set (serve_django.py's waitress; the URLconf loads on the first
//!   request rather than before serving);
//! - Express: `node <entry>` with `PORT` set, on the `node_modules` previewd linked into the
//!   project.
//!
//! FastAPI is also launched by a second server with `--isolation none`, so the cost of the
//! default sandbox (namespaces) shows.
//!
//! Run with `cargo bench -p previewd-e2e --bench launch` (`-- --runs N` to change the count).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use previewd::log_store::LogStream;
use previewd::supervisor::isolation::IsolationMode;
use previewd_e2e::{Client, TestServer};

const DEFAULT_RUNS: usize = 11;

/// The framework also launched with `--isolation none`.
const ISOLATION_COMPARED: &str = "fastapi";

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
    },
    Framework {
        name: "flask",
        fixture: "plugins/flask/tests/fixtures/single_file",
        bare_args: &["-m", "waitress", "--listen=127.0.0.1:{port}", "{app}"],
        bare_env: &[],
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
    },
    Framework {
        name: "express",
        fixture: "plugins/express/tests/fixtures/single_file",
        bare_args: &["{app}"],
        bare_env: &[("PORT", "{port}")],
    },
];

/// One way of starting a project, timed until it answers.
enum Start {
    /// previewd's launch to `running`, then a stop.
    Previewd { client: Client, generation: String },
    /// A bare server, timed to its first HTTP answer on `port`, then killed.
    Bare {
        command: tokio::process::Command,
        port: u16,
    },
}

impl Start {
    async fn time(&mut self) -> Duration {
        let started = Instant::now();
        match self {
            Start::Previewd { client, generation } => {
                let answer = client.launch_wait(generation).await;
                assert_eq!(answer.body["status"], "running", "{:?}", answer.body);
                let elapsed = started.elapsed();
                client.stop_preview(generation).await;
                elapsed
            }
            Start::Bare { command, port } => {
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
}

/// What previewd ran, from its `started process PID in DIR: COMMAND` log line.
struct Launch {
    interpreter: String,
    dir: PathBuf,
    /// The value of the launcher's `--app` or `--entry`.
    app: String,
}

/// Uploads `fixture` to `server` and launches it once (that launch provisions its environment).
/// Returns previewd's side of the benchmark, how long the first launch took, and what it ran.
async fn first_launch(server: &TestServer, fixture: &str) -> (Start, Duration, Launch) {
    let client = server.client("bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(fixture);
    let generation = client.upload_dir(&root).await;
    let mut previewd = Start::Previewd {
        client,
        generation: generation.clone(),
    };
    let first = previewd.time().await;
    let line = server
        .state
        .logs
        .read_after(&generation, 0, 10_000)
        .expect("logs")
        .into_iter()
        .filter(|l| l.stream == LogStream::System)
        .map(|l| l.into_line().line)
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    // One empty cache for both servers: FastAPI's first launch is cold, later ones reuse it.
    let cache = tempfile::tempdir().expect("cache dir");
    let server = TestServer::start_with(|c| c.cache_dir = Some(cache.path().to_path_buf())).await;
    let unisolated = TestServer::start_with(|c| {
        c.cache_dir = Some(cache.path().to_path_buf());
        c.isolation = Some(IsolationMode::None);
    })
    .await;
    let port = *server.config.port_range.end();

    let isolation = server.state.supervisor.isolation().mechanism();

    let mut rows = Vec::new();
    for framework in FRAMEWORKS {
        let (previewd, first, launch) = first_launch(&server, framework.fixture).await;
        let (bare, shown) = bare(framework, &launch, port);
        let mut starts = vec![bare, previewd];
        if framework.name == ISOLATION_COMPARED {
            starts.push(first_launch(&unisolated, framework.fixture).await.0);
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
            shown,
        });
    }
    unisolated.stop().await;
    server.stop().await;

    println!("launch benchmark ({runs} runs each, medians; dependencies warm after one untimed first launch)");
    println!(
        "  cold provisioning + launch, {} (empty cache): {:.1} ms  (includes installing uv when it is not on PATH)",
        rows[0].framework.fixture,
        ms(rows[0].first)
    );
    println!();
    println!(
        "  {:<9} {:>9} {:>12} {:>7}   bare server (in previewd's working dir)",
        "framework", "bare ms", "previewd ms", "ratio"
    );
    for row in &rows {
        println!(
            "  {:<9} {:>9.1} {:>12.1} {:>7.2}   {}",
            row.framework.name,
            ms(row.medians[0]),
            ms(row.medians[1]),
            ratio(row.medians[1], row.medians[0]),
            row.shown
        );
    }
    println!("  target ratio ≤ 1.10");
    for row in rows.iter().filter(|r| r.medians.len() > 2) {
        println!();
        println!(
            "  {} sandbox cost: previewd with --isolation none {:.1} ms, default ({isolation}) {:.1} ms, ratio {:.2}",
            row.framework.name,
            ms(row.medians[2]),
            ms(row.medians[1]),
            ratio(row.medians[1], row.medians[2])
        );
    }
}

/// One framework's figures: the first launch and the medians of bare, previewd and (for
/// [`ISOLATION_COMPARED`]) previewd with `--isolation none`.
struct Row {
    framework: &'static Framework,
    first: Duration,
    medians: Vec<Duration>,
    /// The bare server's command line.
    shown: String,
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
