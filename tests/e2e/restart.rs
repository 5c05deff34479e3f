use std::process::Stdio;
use std::time::Duration;

use previewd_e2e::sse::SseReader;
use previewd_e2e::{process_alive, test_config, Client};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The previewd binary of this build (`cargo test --workspace` builds it; a test run of this
/// package alone builds it here).
fn previewd_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().parent().unwrap().join("previewd");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "previewd", "--bin", "previewd"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building previewd");
    }
    binary
}

/// Starts `previewd serve` on `data_dir` and returns the child and its base URL.
async fn spawn_previewd(config: &previewd::config::Config) -> (tokio::process::Child, String) {
    let range = format!("{}-{}", config.port_range.start(), config.port_range.end());
    let mut child = tokio::process::Command::new(previewd_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--port-range", &range])
        // A relative data dir, as in the README's `serve`: apps run in other folders, so previewd
        // must hand them absolute paths.
        .current_dir(config.data_dir.parent().unwrap())
        .arg("--data-dir")
        .arg(config.data_dir.file_name().unwrap())
        .arg("--cache-dir")
        .arg(config.cache_dir())
        .env("PREVIEWD_JWT_SECRET", "test-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("previewd binary (built by cargo test)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("previewd printed its address");
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

/// After a SIGKILL of previewd, a restart on the same data dir keeps the generations, marks the
/// preview it no longer runs as stopped, and kills the process left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_generations_and_stops_orphans() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = test_config(&data_dir.path().join("data"));
    let token = previewd::auth::Authenticator::new(b"test-secret")
        .user_token("alice", Duration::from_secs(600));

    let (mut first, base) = spawn_previewd(&config).await;
    let alice = Client {
        http: reqwest::Client::new(),
        base,
        token: token.clone(),
    };
    let generation = alice.upload_fixture("fastapi-app").await;
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let status = alice
        .get(&format!("/generations/{generation}/preview/status"))
        .await;
    let port = status.body["port"].as_u64().unwrap() as u16;
    let app = app_pid(&alice, &generation).await;

    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert!(process_alive(app), "the app outlives a SIGKILLed previewd");

    let (mut second, base) = spawn_previewd(&config).await;
    let alice = Client {
        http: reqwest::Client::new(),
        base,
        token,
    };
    let info = alice.get(&format!("/generations/{generation}")).await;
    assert_eq!(info.status, 200, "generation kept: {:?}", info.body);
    let status = alice
        .get(&format!("/generations/{generation}/preview/status"))
        .await;
    assert_eq!(status.body["status"], "stopped", "{:?}", status.body);
    assert!(status.body["error"].as_str().unwrap().contains("restarted"));
    for _ in 0..100 {
        if !process_alive(app) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!process_alive(app), "the orphaned app was killed");
    assert!(!previewd_e2e::port_in_use(port));
    // And it can be launched again.
    let again = alice
        .post(
            &format!("/generations/{generation}/preview/launch?wait=true"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    // A graceful stop of previewd stops its previews.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    second.wait().await.unwrap();
    assert!(!previewd_e2e::port_in_use(port));
}

/// The app's pid, from the `started process N` system line of the log.
async fn app_pid(alice: &Client, generation: &str) -> i32 {
    let mut stream = SseReader::new(alice.log_stream(generation, "after=0").await);
    let events = stream
        .until(Duration::from_secs(10), |e| {
            e.json()["line"]
                .as_str()
                .is_some_and(|l| l.starts_with("started process "))
        })
        .await;
    let line = events
        .last()
        .and_then(|e| e.json()["line"].as_str().map(str::to_string))
        .expect("started line");
    line["started process ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
