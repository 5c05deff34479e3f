//! schemathesis against the live server's own spec: every operation of `/api/v1/openapi.json`
//! gets generated valid and invalid requests (paths, queries, headers, bodies, content types),
//! with a real bearer token and real ids, and every answer must be free of 5xx, carry a status
//! code the operation declares and a body that matches the schema it declares for that status.
//!
//! The ids come from a small world set up first: a running FastAPI app (status, endpoints,
//! logs, the SSE stream, keepalive, session, envelope requests with its session token and real
//! app paths), a second app for launch, restart and stop (bounded to a few examples each,
//! since every one of them starts or stops a real app), and a throwaway upload for delete.
//! Each id is used most of the time, a generated one the rest, so the 404 paths are fuzzed too.
//!
//! schemathesis [`SCHEMATHESIS_VERSION`] is installed once into a virtualenv in the shared test
//! cache (with the cache's uv when previewd bootstrapped one, else `venv` + pip), under a file
//! lock so parallel test processes build it once. The seed is random unless
//! `PREVIEWD_FUZZ_SEED` is set; a failure prints schemathesis's report, seed included.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use previewd_e2e::{shared_cache_dir, TestServer};

use crate::LAUNCH_LIMIT;

/// The schemathesis release the test runs (from PyPI).
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// Generated requests per operation and phase.
const MAX_EXAMPLES: u32 = 25;
/// Generated requests per phase for launch, restart and stop, each of which runs or stops a
/// real app.
const LIFECYCLE_EXAMPLES: u32 = 5;
/// The longest the schemathesis run may take before the test fails (it takes about 30 s).
const RUN_LIMIT: Duration = Duration::from_secs(100);
/// The checks every answer must pass.
const CHECKS: &str = "not_a_server_error,status_code_conformance,\
                      response_schema_conformance,content_type_conformance";
/// Paths of the fixture app the envelope requests are sent to (besides generated ones).
const APP_PATHS: &[&str] = &["/", "/health", "/items/1", "/items/", "/openapi.json"];

/// schemathesis finds no server error and no answer outside the declared status codes, content
/// types and schemas, on any operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_keeps_to_the_spec() {
    let schemathesis = tokio::task::spawn_blocking(install_schemathesis)
        .await
        .expect("installing schemathesis");
    let server = TestServer::start().await;
    let client = server.client("fuzzer");

    let running = client.upload_fixture("fastapi-app").await;
    let launched = tokio::time::timeout(LAUNCH_LIMIT, client.launch_wait(&running))
        .await
        .expect("launch within the limit");
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let session = launched.body["session_token"].as_str().expect("session");
    let lifecycle = client.upload_fixture("fastapi-app").await;
    let doomed = client
        .upload_files("doomed", &[("main.py", "print('bye')\n")])
        .await;

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("schemathesis.toml");
    let world = World {
        token: &client.token,
        running: &running,
        session,
        lifecycle: &lifecycle,
        doomed: &doomed,
    };
    std::fs::write(&config, world.config()).expect("config");
    let spec = format!("{}/api/v1/openapi.json", server.base);
    let (passed, report, took) =
        tokio::task::spawn_blocking(move || run_schemathesis(&schemathesis, &config, &spec))
            .await
            .expect("running schemathesis");
    println!("{report}");
    assert!(
        passed,
        "schemathesis failed after {took:.0?}; its report is above"
    );
    server.stop().await;
}

/// The ids and tokens the run uses.
struct World<'a> {
    token: &'a str,
    running: &'a str,
    session: &'a str,
    lifecycle: &'a str,
    doomed: &'a str,
}

impl World<'_> {
    /// The `schemathesis.toml` of the run.
    fn config(&self) -> String {
        let list = |values: &[&str]| {
            let quoted: Vec<String> = values.iter().map(|v| toml_string(v)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let running = r#""path.generation_id" = { dictionary = "running", probability = 0.8 }"#;
        let session =
            r#""header.X-Preview-Session" = { dictionary = "session", probability = 0.8 }"#;
        let own_ids_only = "phases = { coverage = { extra-data-sources = { responses = false } }, \
                            fuzzing = { extra-data-sources = { responses = false } } }";
        format!(
            r#"headers = {{ Authorization = {auth} }}
request-timeout = 30
# The log stream stays open: read one event, or what came within a second.
max-stream-events = 1
workers = 2

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

[dictionaries]
running = {{ values = {running_id} }}
session = {{ values = {session_token} }}
lifecycle = {{ values = {lifecycle_id} }}
doomed = {{ values = {doomed_id} }}
app_paths = {{ values = {app_paths} }}
app_methods = {{ values = ["GET", "POST", "DELETE"] }}

[parameters]
{running}
{session}

[[operations]]
include-operation-id = "sendPreviewRequest"
[operations.parameters]
{running}
{session}
"body.path" = {{ dictionary = "app_paths", probability = 0.6 }}
"body.method" = {{ dictionary = "app_methods", probability = 0.6 }}

# Ids seen in earlier answers are not tried here before the stateful phase, which comes last:
# restarting, stopping or deleting the running app would cut the other operations short.
[[operations]]
include-operation-id = ["launchPreview", "restartPreview", "stopPreview"]
parameters = {{ "path.generation_id" = {{ dictionary = "lifecycle", probability = 0.8 }} }}
generation = {{ max-examples = {LIFECYCLE_EXAMPLES} }}
{own_ids_only}

[[operations]]
include-operation-id = "deleteGeneration"
parameters = {{ "path.generation_id" = {{ dictionary = "doomed", probability = 0.5 }} }}
{own_ids_only}

[[operations]]
include-operation-id = "streamPreviewLogs"
request-timeout = 1
"#,
            auth = toml_string(&format!("Bearer {}", self.token)),
            running_id = list(&[self.running]),
            session_token = list(&[self.session]),
            lifecycle_id = list(&[self.lifecycle]),
            doomed_id = list(&[self.doomed]),
            app_paths = list(APP_PATHS),
        )
    }
}

/// `value` as a TOML basic string (JSON's escapes are TOML's).
fn toml_string(value: &str) -> String {
    serde_json::to_string(value).expect("a string serialises")
}

/// Runs schemathesis against `spec` with `config`: whether it passed, its report, the time
/// taken. A run past [`RUN_LIMIT`] is killed and fails.
fn run_schemathesis(program: &Path, config: &Path, spec: &str) -> (bool, String, Duration) {
    let dir = config.parent().expect("config dir");
    let output = dir.join("report.txt");
    let file = File::create(&output).expect("report file");
    let mut command = Command::new(program);
    command
        .arg("--config-file")
        .arg(config)
        .args(["run", spec, "--checks", CHECKS, "--no-color"])
        .current_dir(dir)
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("report file"))
        .stderr(file);
    if let Ok(seed) = std::env::var("PREVIEWD_FUZZ_SEED") {
        command.args(["--seed", &seed]);
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("starting schemathesis");
    let passed = loop {
        if let Some(status) = child.try_wait().expect("waiting for schemathesis") {
            break status.success();
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = started.elapsed();
    let mut report = std::fs::read_to_string(&output).unwrap_or_default();
    if took > RUN_LIMIT {
        report.push_str(&format!("\n(killed: still running after {RUN_LIMIT:?})\n"));
    }
    (passed, report, took)
}

/// `<cache>/tools/schemathesis-<version>/bin/schemathesis`, installed on first use. An
/// exclusive lock on a file next to it makes other test processes wait for the install and
/// then reuse it; a venv without its ready marker (an install that was interrupted) is
/// installed again.
fn install_schemathesis() -> PathBuf {
    let tools = shared_cache_dir().join("tools");
    std::fs::create_dir_all(&tools).expect("tools dir");
    let name = format!("schemathesis-{SCHEMATHESIS_VERSION}");
    let venv = tools.join(&name);
    let program = venv.join("bin/schemathesis");
    let ready = venv.join(".ready");
    let lock = File::create(tools.join(format!("{name}.lock"))).expect("lock file");
    let _lock = Flock::lock(lock, FlockArg::LockExclusive).expect("locking the install");
    if ready.is_file() && program.is_file() {
        return program;
    }
    let requirement = format!("schemathesis=={SCHEMATHESIS_VERSION}");
    let uv = tools.join("uv-venv/bin/uv");
    let with_uv = uv.is_file() && {
        let _ = std::fs::remove_dir_all(&venv);
        let python = venv.join("bin/python");
        step(
            Command::new(&uv)
                .args(["venv", "--quiet", "--python", "python3"])
                .arg(&venv),
        )
        .and_then(|()| {
            step(
                Command::new(&uv)
                    .args(["pip", "install", "--quiet", "--python"])
                    .arg(&python)
                    .arg(&requirement),
            )
        })
        .inspect_err(|err| eprintln!("installing schemathesis with uv failed: {err}"))
        .is_ok()
    };
    if !with_uv {
        let _ = std::fs::remove_dir_all(&venv);
        step(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .and_then(|()| {
                step(
                    Command::new(venv.join("bin/python"))
                        .args([
                            "-m",
                            "pip",
                            "install",
                            "--quiet",
                            "--disable-pip-version-check",
                        ])
                        .arg(&requirement),
                )
            })
            .unwrap_or_else(|err| panic!("installing {requirement} into {venv:?}: {err}"));
    }
    std::fs::write(&ready, "").expect("ready marker");
    program
}

/// Runs one install step; its output when it fails.
fn step(command: &mut Command) -> Result<(), String> {
    // Never let uv download a Python of its own: the tests use the machine's.
    let output = command
        .env("UV_PYTHON_DOWNLOADS", "never")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("{command:?}: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}
