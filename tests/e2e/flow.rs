use std::time::Duration;

use previewd_e2e::sse::SseReader;
use previewd_e2e::{port_in_use, TestServer};
use serde_json::{json, Value};

/// The whole product path for a real FastAPI project: upload, static routes, live logs from the
/// first step, launch, status, envelope requests, runtime routes, config, stop, relaunch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_project_end_to_end() {
    let server = TestServer::start().await;
    let alice = server.client("alice");

    let generation = alice.upload_fixture("fastapi-app").await;
    let info = alice.get(&format!("/generations/{generation}")).await;
    assert_eq!(info.body["framework"], "fastapi", "{:?}", info.body);
    assert!(info.body["detection_reason"]
        .as_str()
        .unwrap()
        .contains("app/main.py"));

    // Routes are known before launch, from the source.
    let statics = alice
        .get(&format!("/generations/{generation}/preview/endpoints"))
        .await;
    assert_eq!(statics.status, 200, "{:?}", statics.body);
    let static_routes = route_set(&statics.body);
    assert!(
        static_routes.contains(&("GET".into(), "/items/{item_id}".into())),
        "{static_routes:?}"
    );
    assert!(
        static_routes.contains(&("DELETE".into(), "/users/{user_id}".into())),
        "{static_routes:?}"
    );
    assert!(statics.body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["source"] == "static"));

    // Follow the logs before launching: start-up must be visible from its first step.
    let mut stream = SseReader::new(alice.log_stream(&generation, "").await);

    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    assert_eq!(launched.body["status"], "running");
    let preview_id = launched.body["preview_id"].as_str().unwrap().to_string();
    assert_eq!(launched.body["base_url"], format!("/preview/{preview_id}/"));
    let session = launched.body["session_token"].as_str().unwrap().to_string();
    let port = launched.body["port"].as_u64().unwrap() as u16;
    assert!(server.config.port_range.contains(&port));

    let events = stream
        .until(Duration::from_secs(30), |e| {
            e.event == "status" && e.json()["status"] == "running"
        })
        .await;
    let lines: Vec<Value> = events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| e.json())
        .collect();
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seq strictly increasing without gaps: {seqs:?}"
    );
    for event in events.iter().filter(|e| e.event == "log") {
        assert_eq!(
            event.id.as_deref(),
            Some(event.json()["seq"].to_string().as_str())
        );
    }
    let text = |stream: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["stream"] == stream)
            .map(|l| l["line"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        text("system")
            .iter()
            .any(|l| l.starts_with("launching fastapi preview")),
        "{lines:?}"
    );
    assert!(
        text("system")
            .iter()
            .any(|l| l.starts_with("health check passed")),
        "{lines:?}"
    );
    assert!(
        text("stdout").contains(&"todo api module imported".to_string()),
        "{lines:?}"
    );
    assert!(
        text("stderr").contains(&"a line on stderr".to_string()),
        "{lines:?}"
    );

    let status = alice
        .get(&format!("/generations/{generation}/preview/status"))
        .await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["status"], "running");
    assert_eq!(status.body["healthy"], true);
    assert!(
        status.body["memory_bytes"].as_u64().unwrap() > 1_000_000,
        "{:?}",
        status.body
    );
    assert!(status.body["endpoint_count"].as_u64().unwrap() >= 6);

    // The envelope reaches the app and returns its answer exactly.
    let request = |body: Value| {
        let alice = alice.clone();
        let session = session.clone();
        let generation = generation.clone();
        async move {
            let response = alice
                .http
                .post(format!(
                    "{}/api/v1/generations/{generation}/preview/request",
                    alice.base
                ))
                .bearer_auth(&alice.token)
                .header("X-Preview-Session", session)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (code, answer) = request(json!({"method": "GET", "path": "/items/1"})).await;
    assert_eq!(code, 200, "{answer:?}");
    assert_eq!(answer["status"], 200);
    assert_eq!(
        serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap(),
        json!({"id": 1, "name": "first"})
    );
    assert!(answer["headers"]["content-type"]
        .as_str()
        .unwrap()
        .contains("application/json"));
    let (_, created) = request(json!({
        "method": "POST", "path": "/items/",
        "headers": {"content-type": "application/json"},
        "body": "{\"name\": \"second\"}"
    }))
    .await;
    assert_eq!(created["status"], 200, "{created:?}");
    assert!(created["body"].as_str().unwrap().contains("second"));
    let (_, missing) = request(json!({"path": "/nope"})).await;
    assert_eq!(missing["status"], 404);
    let (code, refused) = request(json!({"path": "http://169.254.169.254/"})).await;
    assert_eq!(
        (code, refused["code"].as_str()),
        (400, Some("invalid_path"))
    );

    // Once running, the routes come from the app itself.
    let runtime = alice
        .get(&format!("/generations/{generation}/preview/endpoints"))
        .await;
    let endpoints = runtime.body["endpoints"].as_array().unwrap();
    assert!(
        endpoints.iter().all(|e| e["source"] == "runtime"),
        "{runtime:?}"
    );
    assert_eq!(
        route_set(&runtime.body),
        static_routes,
        "static extraction matches the running app"
    );

    let config = alice
        .get(&format!("/generations/{generation}/preview/config"))
        .await;
    assert_eq!(config.body["framework"], "fastapi");
    assert_eq!(config.body["runtime"], "python");
    assert!(
        config.body["launch_command"]
            .as_str()
            .unwrap()
            .contains("--app app.main:app"),
        "{config:?}"
    );

    // One preview per generation at a time.
    let again = alice
        .post(
            &format!("/generations/{generation}/preview/launch"),
            json!({}),
        )
        .await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (409, Some("preview_already_running"))
    );

    let stopped = alice.stop_preview(&generation).await;
    assert_eq!(stopped.status, 200);
    assert_eq!(stopped.body["status"], "stopped");
    assert!(!port_in_use(port), "port {port} released");
    let events = stream
        .until(Duration::from_secs(10), |e| {
            e.event == "status" && e.json()["status"] == "stopped"
        })
        .await;
    assert!(events
        .iter()
        .any(|e| e.event == "log" && e.json()["line"].as_str().unwrap().contains("released")));
    // Stopping again is harmless.
    assert_eq!(alice.stop_preview(&generation).await.status, 200);

    // A relaunch gets a new preview id; log numbering goes on.
    let relaunched = alice.launch_wait(&generation).await;
    assert_eq!(relaunched.status, 200, "{:?}", relaunched.body);
    assert_ne!(relaunched.body["preview_id"], preview_id.as_str());
    alice.stop_preview(&generation).await;

    let deleted = alice.delete(&format!("/generations/{generation}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        alice
            .get(&format!("/generations/{generation}"))
            .await
            .status,
        404
    );
    server.stop().await;
}

/// A launch without a body works (curl -X POST), and the answer is 202 `starting` at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_without_body_answers_202() {
    let server = TestServer::start().await;
    let bob = server.client("bob");
    let generation = bob.upload_fixture("fastapi-app").await;
    let response = bob
        .http
        .post(format!(
            "{}/api/v1/generations/{generation}/preview/launch",
            bob.base
        ))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "starting");
    server.stop().await;
}

fn route_set(body: &Value) -> std::collections::BTreeSet<(String, String)> {
    body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
