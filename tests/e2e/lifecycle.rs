//! A preview's life after launch against a real Flask app: the idle timeout and what counts as
//! use, the maximum uptime, the per-user quota and its release, restart with the same options,
//! session renewal and expiry, the caller's list of previews, and the envelope's refusals.

use std::time::Duration;

use previewd_e2e::fixture_runs::envelope_answer as envelope;
use previewd_e2e::{Client, TestServer};
use serde_json::{json, Value};

/// Generous bound for anything that must happen eventually, so a loaded machine slows a test
/// down instead of failing it.
const EVENTUALLY: Duration = Duration::from_secs(120);

const APP: &str = r#"
import os, time
from flask import Flask, request

app = Flask(__name__)

@app.get("/")
def index():
    return {"greeting": os.environ.get("GREETING", "none"), "pid": os.getpid()}

@app.get("/slow")
def slow():
    time.sleep(float(request.args.get("s", "30")))
    return "late"

@app.route("/echo", methods=["GET", "POST"])
def echo():
    return {"path": request.path, "query": request.query_string.decode(), "host": request.host}
"#;

async fn upload_app(client: &Client, name: &str) -> String {
    client.upload_files(name, &[("app.py", APP)]).await
}

/// Launches and waits; returns the launch answer's body.
async fn launch(client: &Client, generation: &str, body: Value) -> Value {
    let answer = client
        .post(
            &format!("/generations/{generation}/preview/launch?wait=true"),
            body,
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

async fn status(client: &Client, generation: &str) -> Value {
    client
        .get(&format!("/generations/{generation}/preview/status"))
        .await
        .body
}

/// Polls the status until it is no longer active.
async fn until_ended(client: &Client, generation: &str) -> Value {
    tokio::time::timeout(EVENTUALLY, async {
        loop {
            let body = status(client, generation).await;
            if matches!(body["status"].as_str(), Some("stopped" | "failed")) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the preview ended")
}

/// Whether a system line of the generation's log contains `text`.
async fn logged(client: &Client, generation: &str, text: &str) -> bool {
    let page = client
        .get(&format!(
            "/generations/{generation}/preview/logs?stream=system&limit=5000"
        ))
        .await;
    page.body["lines"].as_array().is_some_and(|lines| {
        lines
            .iter()
            .any(|l| l["line"].as_str().unwrap_or("").contains(text))
    })
}

/// Requests, keepalives and an open log stream keep a preview alive past its idle timeout; once
/// nothing uses it, it is stopped and its log says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_counts_real_use() {
    let server = TestServer::start_with(|c| c.idle_timeout = Duration::from_secs(3)).await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "idle").await;
    let launched = launch(&alice, &generation, json!({})).await;
    let session = launched["session_token"].as_str().unwrap();
    assert!(status(&alice, &generation).await["idle_expires_at"].is_string());

    // Twice the timeout of envelope calls, then of keepalives, then of an open log stream.
    for _ in 0..12 {
        let (code, _) = envelope(&alice, &generation, session, json!({"path": "/"})).await;
        assert_eq!(code, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for _ in 0..12 {
        let kept = alice
            .post(
                &format!("/generations/{generation}/preview/keepalive"),
                json!({}),
            )
            .await;
        assert_eq!(kept.status, 200, "{:?}", kept.body);
        assert_eq!(kept.body["status"], "running");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stream = alice.log_stream(&generation, "tail=1").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(status(&alice, &generation).await["status"], "running");
    drop(stream);

    let ended = until_ended(&alice, &generation).await;
    assert_eq!(ended["status"], "stopped");
    assert!(
        ended["error"].as_str().unwrap().contains("without use"),
        "{ended}"
    );
    assert!(logged(&alice, &generation, "without use").await);
    let late = alice
        .post(
            &format!("/generations/{generation}/preview/keepalive"),
            json!({}),
        )
        .await;
    assert_eq!(late.status, 409);
    assert_eq!(late.body["code"], "preview_not_running");
    server.stop().await;
}

/// The maximum uptime stops a preview however busy it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_uptime_stops_a_busy_preview() {
    let server = TestServer::start_with(|c| c.max_uptime = Duration::from_secs(4)).await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "ttl").await;
    let launched = launch(&alice, &generation, json!({})).await;
    let session = launched["session_token"].as_str().unwrap().to_string();
    let busy = {
        let (alice, generation) = (alice.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                envelope(&alice, &generation, &session, json!({"path": "/"})).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let ended = until_ended(&alice, &generation).await;
    busy.abort();
    assert_eq!(ended["status"], "stopped");
    assert!(
        ended["error"].as_str().unwrap().contains("maximum uptime"),
        "{ended}"
    );
    assert!(logged(&alice, &generation, "maximum uptime").await);
    server.stop().await;
}

/// Over the quota a launch gets 429 with a clear message; a stop frees a place at once, and
/// other users have quotas of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refuses_then_releases() {
    let server = TestServer::start_with(|c| c.max_previews_per_user = 1).await;
    let (alice, bob) = (server.client("alice"), server.client("bob"));
    let first = upload_app(&alice, "first").await;
    let second = upload_app(&alice, "second").await;
    launch(&alice, &first, json!({})).await;

    let refused = alice
        .post(&format!("/generations/{second}/preview/launch"), json!({}))
        .await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    assert_eq!(refused.body["code"], "preview_quota_exceeded");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("limit of 1 active preview"),
        "{:?}",
        refused.body
    );

    let bobs = upload_app(&bob, "bob's").await;
    launch(&bob, &bobs, json!({})).await;

    assert_eq!(alice.stop_preview(&first).await.body["status"], "stopped");
    launch(&alice, &second, json!({})).await;
    server.stop().await;
}

/// Restart stops the preview and starts it again with the options of the last launch: a new
/// preview id and session, the same environment, log numbering going on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_launch_options() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "restart").await;
    let first = launch(&alice, &generation, json!({"env": {"GREETING": "hello"}})).await;
    let seq_before = alice
        .get(&format!(
            "/generations/{generation}/preview/logs?limit=5000"
        ))
        .await
        .body["next_after"]
        .as_u64()
        .unwrap();

    let restarted = alice
        .post(
            &format!("/generations/{generation}/preview/restart?wait=true"),
            json!(null),
        )
        .await;
    assert_eq!(restarted.status, 200, "{:?}", restarted.body);
    assert_ne!(restarted.body["preview_id"], first["preview_id"]);
    let session = restarted.body["session_token"].as_str().unwrap();
    let (code, answer) = envelope(&alice, &generation, session, json!({"path": "/"})).await;
    assert_eq!(code, 200, "{answer}");
    let app: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(app["greeting"], "hello");

    let after = alice
        .get(&format!(
            "/generations/{generation}/preview/logs?after={seq_before}&limit=1"
        ))
        .await;
    assert_eq!(after.body["lines"][0]["seq"], seq_before + 1);
    assert!(logged(&alice, &generation, "restarted by the user").await);

    // A body replaces the options.
    let replaced = alice
        .post(
            &format!("/generations/{generation}/preview/restart?wait=true"),
            json!({"env": {"GREETING": "again"}}),
        )
        .await;
    let session = replaced.body["session_token"].as_str().unwrap();
    let (_, answer) = envelope(&alice, &generation, session, json!({"path": "/"})).await;
    assert!(answer["body"].as_str().unwrap().contains("again"));
    server.stop().await;
}

/// Session tokens expire; a renewed one works, and a token of another preview never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_renew() {
    let server = TestServer::start_with(|c| c.session_timeout = Duration::from_secs(2)).await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "session").await;
    let other = upload_app(&alice, "other").await;
    let launched = launch(&alice, &generation, json!({})).await;
    let other_session = launch(&alice, &other, json!({})).await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let old = launched["session_token"].as_str().unwrap();

    let (code, body) = envelope(&alice, &generation, &other_session, json!({"path": "/"})).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (401, Some("invalid_session_token"))
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, body) = envelope(&alice, &generation, old, json!({"path": "/"})).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (401, Some("session_expired"))
    );

    let renewed = alice
        .post(
            &format!("/generations/{generation}/preview/session"),
            json!({}),
        )
        .await;
    assert_eq!(renewed.status, 200, "{:?}", renewed.body);
    assert_eq!(renewed.body["preview_id"], launched["preview_id"]);
    let fresh = renewed.body["session_token"].as_str().unwrap();
    assert_eq!(
        envelope(&alice, &generation, fresh, json!({"path": "/"}))
            .await
            .0,
        200
    );

    let bob = server.client("bob");
    let stolen = bob
        .post(
            &format!("/generations/{generation}/preview/session"),
            json!({}),
        )
        .await;
    assert_eq!(stolen.status, 404);
    server.stop().await;
}

/// `GET /api/v1/previews` lists the caller's previews with their status, filtered on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_callers_previews() {
    let server = TestServer::start().await;
    let (alice, bob) = (server.client("alice"), server.client("bob"));
    let running = upload_app(&alice, "running").await;
    let stopped = upload_app(&alice, "stopped").await;
    upload_app(&alice, "never launched").await;
    launch(&alice, &running, json!({})).await;
    launch(&alice, &stopped, json!({})).await;
    alice.stop_preview(&stopped).await;

    let all = alice.get("/previews").await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let listed: Vec<(String, String)> = all.body["previews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["generation_id"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (stopped.clone(), "stopped".to_string()),
            (running.clone(), "running".to_string())
        ]
    );
    let only_running = alice.get("/previews?status=running").await;
    assert_eq!(only_running.body["previews"].as_array().unwrap().len(), 1);
    assert_eq!(
        only_running.body["previews"][0]["generation_id"],
        running.as_str()
    );
    assert_eq!(bob.get("/previews").await.body["previews"], json!([]));
    server.stop().await;
}

/// The envelope reaches only the preview's own port: every way of naming another host, port or
/// scheme is refused with 400 before anything is sent; a hanging app is a 504.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_refuses_ssrf_and_times_out() {
    let server = TestServer::start_with(|c| c.request_timeout = Duration::from_secs(2)).await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "envelope").await;
    let launched = launch(&alice, &generation, json!({})).await;
    let session = launched["session_token"].as_str().unwrap();

    let hostile = [
        "http://169.254.169.254/latest/meta-data",
        "//evil.example/x",
        "///evil.example/x",
        "/\\evil.example",
        "\\\\evil.example\\x",
        "@evil.example/x",
        "evil.example/x",
        ":8080/x",
        "/x@evil.example",
        "https:/evil.example",
        "/x#fragment",
        "/echo\r\nHost: evil.example",
        "",
    ];
    for path in hostile {
        let (code, body) = envelope(&alice, &generation, session, json!({"path": path})).await;
        assert_eq!(code, 400, "{path:?} was not refused: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    // Whatever the headers say, the request goes to the app's own port.
    let (code, body) = envelope(
        &alice,
        &generation,
        session,
        json!({"path": "/echo", "query": {"a": "1"}, "headers": {"Host": "evil.example:1"}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let echoed: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["query"], "a=1");

    let (code, body) = envelope(&alice, &generation, session, json!({"path": "/slow?s=30"})).await;
    assert_eq!(code, 504, "{body}");
    server.stop().await;
}
