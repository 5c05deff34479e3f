//! Many previews at once, for the load test and the load benchmark: launch a fleet of small
//! Flask apps together, wait until all run, call each, stop them all, and look for anything
//! left behind (previews, ports, processes).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::{port_in_use, Client};

/// The app every member of the fleet runs.
pub const APP: &str = r#"
import os
from flask import Flask

app = Flask(__name__)

@app.get("/")
def index():
    return {"pid": os.getpid()}
"#;

/// One launched preview.
#[derive(Debug, Clone)]
pub struct Member {
    pub generation_id: String,
    pub preview_id: String,
    pub session_token: String,
    pub port: u16,
}

/// Uploads `n` copies of [`APP`] and launches them all at once (without waiting); returns them
/// once every launch was accepted.
pub async fn launch(client: &Client, n: usize) -> Vec<Member> {
    let generations = upload(client, n).await;
    launch_uploaded(client, &generations).await
}

/// Uploads `n` copies of [`APP`] (`fleet-0`, `fleet-1`, ...); returns their generation ids.
pub async fn upload(client: &Client, n: usize) -> Vec<String> {
    let uploads = (0..n).map(|i| async move {
        client
            .upload_files(&format!("fleet-{i}"), &[("app.py", APP)])
            .await
    });
    join_all(uploads).await
}

/// Launches the previews of `generations` all at once (without waiting); returns them once
/// every launch was accepted.
pub async fn launch_uploaded(client: &Client, generations: &[String]) -> Vec<Member> {
    let launches = generations.iter().map(|generation| async move {
        let answer = client
            .post(
                &format!("/generations/{generation}/preview/launch"),
                json!({}),
            )
            .await;
        assert_eq!(
            answer.status, 202,
            "launch of {generation}: {:?}",
            answer.body
        );
        Member {
            generation_id: generation.clone(),
            preview_id: text(&answer.body, "preview_id"),
            session_token: text(&answer.body, "session_token"),
            port: answer.body["port"].as_u64().expect("port") as u16,
        }
    });
    join_all(launches).await
}

/// Waits until `n` of the caller's previews run; panics on the first that failed (with its
/// reason) or after `limit`. Returns how long it took.
pub async fn wait_running(client: &Client, n: usize, limit: Duration) -> Duration {
    wait_running_polled(client, n, limit, Duration::from_millis(250)).await
}

/// [`wait_running`], listing the previews every `every` (a benchmark timing the wait wants a
/// finer step than a test).
pub async fn wait_running_polled(
    client: &Client,
    n: usize,
    limit: Duration,
    every: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let listed = client.get("/previews").await;
        let previews = listed.body["previews"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(failed) = previews.iter().find(|p| p["status"] == "failed") {
            panic!("a preview failed: {failed}");
        }
        let running = previews.iter().filter(|p| p["status"] == "running").count();
        if running >= n {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{running} of {n} previews running after {limit:?}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Sends `GET /` to every member through the envelope; returns how many answered 200.
pub async fn call_all(client: &Client, fleet: &[Member]) -> usize {
    let calls = fleet.iter().map(|member| async move {
        let response = client
            .http
            .post(format!(
                "{}/api/v1/generations/{}/preview/request",
                client.base, member.generation_id
            ))
            .bearer_auth(&client.token)
            .header("X-Preview-Session", &member.session_token)
            .json(&json!({"path": "/"}))
            .send()
            .await;
        match response {
            Ok(response) => response
                .json::<Value>()
                .await
                .is_ok_and(|body| body["status"] == 200),
            Err(_) => false,
        }
    });
    join_all(calls).await.into_iter().filter(|ok| *ok).count()
}

/// Stops every member at once; each stop answers `stopped`.
pub async fn stop_all(client: &Client, fleet: &[Member]) {
    let stops = fleet
        .iter()
        .map(|member| client.stop_preview(&member.generation_id));
    for (member, answer) in fleet.iter().zip(join_all(stops).await) {
        assert_eq!(
            answer.body["status"], "stopped",
            "stop of {}: {:?}",
            member.generation_id, answer.body
        );
    }
}

/// What is left of the fleet after its stop: member ports still in use, and processes still
/// carrying a member's preview id in their environment (previewd marks every process it starts).
pub fn leftovers(fleet: &[Member]) -> (Vec<u16>, Vec<i32>) {
    let ports = fleet
        .iter()
        .map(|m| m.port)
        .filter(|port| port_in_use(*port))
        .collect();
    let markers: Vec<String> = fleet
        .iter()
        .map(|m| format!("PREVIEWD_PREVIEW_ID={}", m.preview_id))
        .collect();
    let mut processes = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let marked = environ
            .split(|b| *b == 0)
            .any(|var| markers.iter().any(|m| var == m.as_bytes()));
        if marked {
            processes.push(pid);
        }
    }
    (ports, processes)
}

/// The value of a Prometheus gauge of `/metrics`.
pub async fn metric(client: &Client, name: &str) -> Option<f64> {
    let text = client
        .http
        .get(format!("{}/metrics", client.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

fn text(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_string()
}
