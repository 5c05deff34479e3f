//! Running a framework plugin's fixture projects (`plugins/<plugin>/tests/fixtures/`) for real:
//! upload, framework check, static endpoints, launch, one request through the preview envelope,
//! runtime endpoints equal to the static ones, stop. The e2e files of each framework say which
//! request each fixture answers and what comes back; the steps are here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::parity::Route;
use crate::Client;

/// A fixture's request: `(fixture, path, expected body)`; `GET path` is sent and the body
/// compared as JSON values when both parse, else as text.
pub type Probe<'a> = (&'a str, &'a str, &'a str);

/// A fixture folder of a plugin (`plugins/<plugin>/tests/fixtures/<name>`).
pub fn plugin_fixture(plugin: &str, name: &str) -> PathBuf {
    plugin_fixtures_root(plugin).join(name)
}

/// The fixture folders of a plugin, sorted, without the ones named in `skip`.
pub fn plugin_fixtures(plugin: &str, skip: &[&str]) -> Vec<PathBuf> {
    let root = plugin_fixtures_root(plugin);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_dir())
        .filter(|path| !skip.iter().any(|n| path.ends_with(n)))
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures under {}", root.display());
    dirs
}

fn plugin_fixtures_root(plugin: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(plugin)
        .join("tests/fixtures")
}

/// Runs every fixture of `plugin` one after the other with `client` (so they share its
/// server's virtualenv cache), each through [`run_fixture`] with its probe from `probes`.
/// Returns the failures, one `"<fixture>: <why>"` line each.
pub async fn run_every_fixture(client: &Client, plugin: &str, probes: &[Probe<'_>]) -> Vec<String> {
    let mut failures = Vec::new();
    for dir in plugin_fixtures(plugin, &[]) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = match probes.iter().find(|(fixture, _, _)| *fixture == name) {
            Some((_, path, expected)) => run_fixture(client, &dir, plugin, path, expected).await,
            None => Err("no probe request in PROBES for this fixture".to_string()),
        };
        if let Err(failure) = outcome {
            failures.push(format!("{name}: {failure}"));
        }
    }
    failures
}

/// Upload → detected as `framework` → static routes → launch → `GET path` answers 200 with
/// `expected` → runtime routes equal the static ones → stop.
pub async fn run_fixture(
    client: &Client,
    dir: &Path,
    framework: &str,
    path: &str,
    expected: &str,
) -> Result<(), String> {
    let generation = client.upload_dir(dir).await;
    let info = client.get(&format!("/generations/{generation}")).await;
    if info.body["framework"] != framework {
        return Err(format!("detected as {:?}", info.body));
    }
    let endpoints = format!("/generations/{generation}/preview/endpoints");
    let statics = route_table(&client.get(&endpoints).await.body, "static")?;

    let launched = client.launch_wait(&generation).await;
    if launched.status != 200 || launched.body["status"] != "running" {
        return Err(format!("launch: {} {:?}", launched.status, launched.body));
    }
    let session = launched.body["session_token"].as_str().unwrap_or_default();
    let outcome = async {
        let request = json!({"method": "GET", "path": path});
        let answer = envelope(client, &generation, session, &request).await;
        let answer: Value = answer.json().await.unwrap_or(Value::Null);
        if answer["status"] != 200 || !same_body(answer["body"].as_str(), expected) {
            return Err(format!("GET {path} answered {answer:?}"));
        }
        let runtime = route_table(&client.get(&endpoints).await.body, "runtime")?;
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

/// Sends `request` through the envelope of a running preview; the envelope's HTTP response.
pub async fn envelope(
    client: &Client,
    generation: &str,
    session: &str,
    request: &Value,
) -> reqwest::Response {
    client
        .http
        .post(format!(
            "{}/api/v1/generations/{generation}/preview/request",
            client.base
        ))
        .bearer_auth(&client.token)
        .header("X-Preview-Session", session)
        .json(request)
        .send()
        .await
        .expect("envelope request")
}

/// Sends `request` through the envelope; the envelope's status and JSON body (null when the
/// body is not JSON).
pub async fn envelope_answer(
    client: &Client,
    generation: &str,
    session: &str,
    request: Value,
) -> (u16, Value) {
    let response = envelope(client, generation, session, &request).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET path?query` through the envelope, which the app must answer 200 with JSON; that JSON.
pub async fn app_json(
    client: &Client,
    generation: &str,
    session: &str,
    path: &str,
    query: Value,
) -> Value {
    let request = json!({"path": path, "query": query});
    let (code, answer) = envelope_answer(client, generation, session, request).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["status"], 200, "{answer}");
    serde_json::from_str(answer["body"].as_str().expect("text body")).expect("app JSON")
}

/// Sends `method path` through the transparent proxy (`base` is previewd's address); the
/// status and body, or `None` when the app died on the way.
pub async fn through_proxy(
    base: &str,
    preview_id: &str,
    session: &str,
    method: reqwest::Method,
    path: &str,
) -> Option<(u16, String)> {
    let response = reqwest::Client::new()
        .request(method, format!("{base}/preview/{preview_id}{path}"))
        .header("X-Preview-Session", session)
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
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

/// The (method, path) set of an `/endpoints` answer; an error unless it lists endpoints and
/// every one has the given `source`.
pub fn route_table(body: &Value, source: &str) -> Result<BTreeSet<Route>, String> {
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

/// The [`route_table`] of an answer that must list endpoints from `source`.
pub fn expect_routes(body: &Value, source: &str) -> BTreeSet<Route> {
    route_table(body, source).unwrap_or_else(|err| panic!("{err}"))
}
