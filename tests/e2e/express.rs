//! Express previews end to end: every fixture of the Express plugin
//! (`plugins/express/tests/fixtures/`) uploaded, detected, launched on Node with its
//! `node_modules` installed by `npm ci` into a fresh cache, answering through the envelope,
//! with the routes read from the source equal to the routes the running app reports; and an
//! app hard-coding `app.listen(3000)` coming up on its assigned port all the same.

use std::path::PathBuf;

use previewd::log_store::LogStream;
use previewd_e2e::fixture_runs::{self, expect_routes, plugin_fixture};
use previewd_e2e::{port_in_use, Client, TestServer};
use serde_json::{json, Value};

/// A fixture of the Express plugin.
fn express_fixture(name: &str) -> PathBuf {
    plugin_fixture("express", name)
}

/// Sends `request` through the envelope of a running preview; returns the app's answer.
async fn envelope(client: &Client, generation: &str, session: &str, request: Value) -> Value {
    let response = fixture_runs::envelope(client, generation, session, &request).await;
    assert_eq!(response.status(), 200, "envelope");
    response.json().await.expect("envelope answer")
}

/// The system lines of a generation's log.
fn system_lines(server: &TestServer, generation: &str) -> Vec<String> {
    server
        .state
        .logs
        .read_after(generation, 0, 10_000)
        .expect("logs")
        .into_iter()
        .filter(|l| l.stream == LogStream::System)
        .map(|l| l.into_line().line)
        .collect()
}

/// Upload → detection → static routes → launch (npm ci into an empty cache, progress in the
/// log) → one request through the envelope → runtime routes equal to the static ones → stop.
async fn check_fixture(name: &str, request: Value, expected_body: &str) {
    let cache = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(|c| c.cache_dir = Some(cache.path().to_path_buf())).await;
    let alice = server.client("alice");
    let generation = alice.upload_dir(&express_fixture(name)).await;

    let info = alice.get(&format!("/generations/{generation}")).await;
    assert_eq!(info.body["framework"], "express", "{name}: {:?}", info.body);

    let endpoints = format!("/generations/{generation}/preview/endpoints");
    let statics = expect_routes(&alice.get(&endpoints).await.body, "static");
    assert!(!statics.is_empty(), "{name}: no static routes");

    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{name}: {:?}", launched.body);
    assert_eq!(launched.body["status"], "running", "{name}");
    let session = launched.body["session_token"].as_str().unwrap().to_string();
    let port = launched.body["port"].as_u64().unwrap() as u16;

    let system = system_lines(&server, &generation);
    let installing = system.iter().find(|l| l.starts_with("installing "));
    assert!(
        installing.is_some_and(|l| l.contains("npm packages") && l.contains("npm ci")),
        "{name}: {system:?}"
    );
    assert!(
        system
            .iter()
            .any(|l| l.starts_with("node_modules ready in")),
        "{name}: {system:?}"
    );
    assert!(
        system.iter().any(|l| l.starts_with("added ")),
        "npm's own output is in the log: {system:?}"
    );

    let answer = envelope(&alice, &generation, &session, request).await;
    assert_eq!(answer["status"], 200, "{name}: {answer:?}");
    let body = answer["body"].as_str().unwrap_or_default();
    assert!(body.contains(expected_body), "{name}: {answer:?}");

    let runtime = expect_routes(&alice.get(&endpoints).await.body, "runtime");
    assert_eq!(
        runtime, statics,
        "{name}: static routes equal the running app's"
    );

    let stopped = alice.stop_preview(&generation).await;
    assert_eq!(
        stopped.body["status"], "stopped",
        "{name}: {:?}",
        stopped.body
    );
    assert!(!port_in_use(port), "{name}: port {port} released");
    server.stop().await;
}

/// One `server.js`, Express 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file() {
    check_fixture(
        "single_file",
        json!({"method": "GET", "path": "/todos/1"}),
        "\"title\":\"first\"",
    )
    .await;
}

/// `bin/www` + `app.js` + nested routers and `route()` chains, Express 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realworld() {
    check_fixture(
        "realworld",
        json!({"method": "GET", "path": "/api/articles/hello"}),
        "\"slug\":\"hello\"",
    )
    .await;
}

/// ES modules, Express 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esm() {
    check_fixture(
        "esm",
        json!({"method": "GET", "path": "/notes/1"}),
        "\"text\":\"hello\"",
    )
    .await;
}

/// TypeScript through the project's tsx, Express 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript() {
    check_fixture(
        "typescript",
        json!({"method": "GET", "path": "/api/products/1"}),
        "\"name\":\"lamp\"",
    )
    .await;
}

/// `app.listen(3000)` hard-coded: the launcher moves the listen to the assigned port, says so,
/// and the app answers there (the shared cache: a second launch reuses its install).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_coded_port_is_forced() {
    let server = TestServer::start().await;
    let bob = server.client("bob");
    let generation = bob.upload_dir(&express_fixture("hardcoded_port")).await;
    let launched = bob.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    assert_eq!(launched.body["status"], "running");
    let port = launched.body["port"].as_u64().unwrap() as u16;
    assert_ne!(port, 3000);
    assert!(server.config.port_range.contains(&port));
    let session = launched.body["session_token"].as_str().unwrap().to_string();
    let answer = envelope(&bob, &generation, &session, json!({"path": "/"})).await;
    assert_eq!(answer["status"], 200, "{answer:?}");
    assert!(answer["body"]
        .as_str()
        .unwrap()
        .contains("hello from port 3000"));
    let stderr: Vec<String> = server
        .state
        .logs
        .read_after(&generation, 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|l| l.stream == LogStream::Stderr)
        .map(|l| l.into_line().line)
        .collect();
    assert!(
        stderr.iter().any(|l| l.contains(&format!(
            "asked to listen on 3000; listening on 127.0.0.1:{port}"
        ))),
        "{stderr:?}"
    );
    assert_eq!(
        bob.stop_preview(&generation).await.body["status"],
        "stopped"
    );

    // Relaunched: the install is reused from the cache.
    let again = bob.launch_wait(&generation).await;
    assert_eq!(again.body["status"], "running", "{:?}", again.body);
    assert!(system_lines(&server, &generation)
        .iter()
        .any(|l| l.contains("reusing the cached install")));
    bob.stop_preview(&generation).await;
    server.stop().await;
}
