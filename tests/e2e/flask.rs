//! Flask previews end to end: every fixture project of the Flask plugin
//! (`plugins/flask/tests/fixtures/`) uploaded, detected as Flask, launched for real (waitress,
//! through `serve_flask.py`), asked one request through the envelope, and its static route
//! table compared with the one the running app reports: the (method, path) sets must be equal.
//!
//! One server runs the fixtures one after the other (a user may run only a few previews at
//! once), so they share its virtualenv cache.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use previewd_e2e::{Client, TestServer};
use serde_json::{json, Value};

/// The request each fixture answers, and the body expected back (JSON compared as values).
const PROBES: &[(&str, &str, &str)] = &[
    (
        "blueprints",
        "/api/v1/items/1",
        r#"{"id": 1, "name": "apple"}"#,
    ),
    ("edge_cases", "/p/c/gc/2.5", r#"{"x": 2.5}"#),
    ("flaskr", "/hello", "Hello, World!"),
    ("single_file", "/todos/1", r#"{"id": 1, "title": "first"}"#),
    (
        "wsgi_package",
        "/api/v1/users/7",
        r#"{"id": 7, "username": "user7"}"#,
    ),
];

/// Every Flask fixture is detected, runs, answers, and its static routes are exactly the
/// routes the running app has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_runs_with_matching_routes() {
    let server = TestServer::start().await;
    let client = server.client("flask");
    let mut failures = Vec::new();
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(failure) = check(&client, &dir, &name).await {
            failures.push(format!("{name}: {failure}"));
        }
    }
    server.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Upload → detection → static routes → launch → one request → runtime routes → stop.
async fn check(client: &Client, dir: &Path, name: &str) -> Result<(), String> {
    let (_, path, expected) = PROBES
        .iter()
        .find(|(fixture, _, _)| *fixture == name)
        .ok_or("no probe request in PROBES for this fixture")?;
    let generation = client.upload_dir(dir).await;
    let info = client.get(&format!("/generations/{generation}")).await;
    if info.body["framework"] != "flask" {
        return Err(format!("detected as {:?}", info.body));
    }
    let endpoints = format!("/generations/{generation}/preview/endpoints");
    let statics = routes(&client.get(&endpoints).await.body, "static")?;

    let launched = client.launch_wait(&generation).await;
    if launched.status != 200 || launched.body["status"] != "running" {
        return Err(format!("launch: {} {:?}", launched.status, launched.body));
    }
    let session = launched.body["session_token"].as_str().unwrap_or_default();
    let outcome = async {
        let answer = request(client, &generation, session, path).await;
        if answer["status"] != 200 || !same_body(answer["body"].as_str(), expected) {
            return Err(format!("GET {path} answered {answer:?}"));
        }
        let runtime = routes(&client.get(&endpoints).await.body, "runtime")?;
        if runtime != statics {
            return Err(format!(
                "static and runtime routes differ: only static {:?}, only runtime {:?}",
                statics.difference(&runtime).collect::<Vec<_>>(),
                runtime.difference(&statics).collect::<Vec<_>>()
            ));
        }
        Ok(())
    }
    .await;
    let stopped = client.stop_preview(&generation).await;
    outcome?;
    if stopped.status != 200 || stopped.body["status"] != "stopped" {
        return Err(format!("stop: {} {:?}", stopped.status, stopped.body));
    }
    Ok(())
}

/// `GET path` through the preview envelope; the envelope's answer.
async fn request(client: &Client, generation: &str, session: &str, path: &str) -> Value {
    let response = client
        .http
        .post(format!(
            "{}/api/v1/generations/{generation}/preview/request",
            client.base
        ))
        .bearer_auth(&client.token)
        .header("X-Preview-Session", session)
        .json(&json!({"method": "GET", "path": path}))
        .send()
        .await
        .expect("envelope request");
    response.json().await.unwrap_or(Value::Null)
}

/// Whether a response body is the expected one: equal JSON values, else equal text.
fn same_body(body: Option<&str>, expected: &str) -> bool {
    let Some(body) = body else {
        return false;
    };
    match (
        serde_json::from_str::<Value>(body),
        serde_json::from_str::<Value>(expected),
    ) {
        (Ok(body), Ok(expected)) => body == expected,
        _ => body == expected,
    }
}

/// The (method, path) set of an `/endpoints` answer, every entry of the given `source`.
fn routes(body: &Value, source: &str) -> Result<BTreeSet<(String, String)>, String> {
    let endpoints = body["endpoints"]
        .as_array()
        .ok_or_else(|| format!("no endpoints in {body:?}"))?;
    if endpoints.is_empty() || endpoints.iter().any(|e| e["source"] != source) {
        return Err(format!("expected {source} endpoints, got {body:?}"));
    }
    Ok(endpoints
        .iter()
        .filter_map(|e| Some((e["method"].as_str()?.into(), e["path"].as_str()?.into())))
        .collect())
}

/// The fixture folders, sorted.
fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/flask/tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("plugins/flask/tests/fixtures")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures under {}", root.display());
    dirs
}
