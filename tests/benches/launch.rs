//! Launch benchmark: launch-to-running of a FastAPI project through previewd, beside the bare
//! `uvicorn` cold start of the same app in the same virtualenv, measured in the same run and
//! printed as a ratio (target ≤ 1.10 with dependencies warm). Also prints the cold (first)
//! provisioning time, with an empty virtualenv cache.
//!
//! Run with `cargo bench -p previewd-e2e --bench launch` (`-- --runs N` to change the count).

use std::time::{Duration, Instant};

use previewd_e2e::TestServer;

const DEFAULT_RUNS: usize = 11;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    let cache = tempfile::tempdir().expect("cache dir");
    let server = TestServer::start_with(|c| c.cache_dir = Some(cache.path().to_path_buf())).await;
    let client = server.client("bench");
    let generation = client.upload_fixture("fastapi-app").await;

    // Cold: an empty virtualenv cache (the installer's own download cache may be warm).
    let started = Instant::now();
    let first = client.launch_wait(&generation).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let cold = started.elapsed();
    let config = client
        .get(&format!("/generations/{generation}/preview/config"))
        .await;
    let command = config.body["launch_command"]
        .as_str()
        .expect("launch command")
        .to_string();
    let python = command
        .split_whitespace()
        .next()
        .expect("interpreter")
        .to_string();
    client.stop_preview(&generation).await;

    // Interleaved, so drift in the machine's load hits both sides alike.
    let project = server.data_dir().join("generations").join(&generation);
    let port = *server.config.port_range.end();
    let (mut previewd, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let answer = client.launch_wait(&generation).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        previewd.push(started.elapsed());
        client.stop_preview(&generation).await;
        bare.push(bare_uvicorn(&python, &project, port).await);
    }
    server.stop().await;

    let (p, b) = (median(&mut previewd), median(&mut bare));
    println!(
        "launch benchmark: fastapi-app ({} runs each, medians)",
        runs
    );
    println!(
        "  cold provisioning + launch (empty cache):     {:>8.1} ms  (includes installing uv when it is not on PATH)",
        ms(cold)
    );
    println!(
        "  bare uvicorn cold start to first answer:      {:>8.1} ms",
        ms(b)
    );
    println!(
        "  previewd launch to running (deps warm):       {:>8.1} ms",
        ms(p)
    );
    println!(
        "  ratio previewd / bare:                        {:>8.2}   (target ≤ 1.10)",
        p.as_secs_f64() / b.as_secs_f64()
    );
}

/// Starts `python -m uvicorn app.main:app` in `project` and times it to its first HTTP answer.
async fn bare_uvicorn(python: &str, project: &std::path::Path, port: u16) -> Duration {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(python)
        .args([
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .current_dir(project)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("uvicorn");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let elapsed = loop {
        if client.get(&url).send().await.is_ok() {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "uvicorn did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    elapsed
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
