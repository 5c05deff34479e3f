//! The envelope request against a real Flask app: text and base64 bodies both ways, status and
//! headers passed back exactly (repeated `Set-Cookie` included), the size limits, and the
//! errors a frontend must tell apart.

use base64::Engine;
use previewd_e2e::fixture_runs::envelope_answer as envelope;
use previewd_e2e::TestServer;
use serde_json::{json, Value};

const APP: &str = r#"
from flask import Flask, Response, request

app = Flask(__name__)

@app.post("/mirror")
def mirror():
    body = request.get_data()
    response = Response(body, status=int(request.args.get("status", "200")),
                        content_type=request.content_type or "application/octet-stream")
    response.headers["X-Seen-Method"] = request.method
    response.headers["X-Seen-Header"] = request.headers.get("X-Custom", "")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response

@app.get("/big")
def big():
    return "x" * int(request.args["n"])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_status_and_headers_pass_exactly() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = alice.upload_files("mirror", &[("app.py", APP)]).await;
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let session = launched.body["session_token"].as_str().unwrap();

    // Text in, text out, with the app's own status and headers.
    let (code, answer) = envelope(
        &alice,
        &generation,
        session,
        json!({
            "method": "POST",
            "path": "/mirror",
            "query": {"status": "418"},
            "headers": {"Content-Type": "text/plain; charset=utf-8", "X-Custom": "yes"},
            "body": "héllo"
        }),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["status"], 418);
    assert_eq!(answer["body"], "héllo");
    assert_eq!(answer["body_base64"], Value::Null);
    assert_eq!(answer["headers"]["x-seen-method"], "POST");
    assert_eq!(answer["headers"]["x-seen-header"], "yes");
    let cookies: Vec<&str> = answer["headers"]["set-cookie"]
        .as_str()
        .unwrap()
        .split('\n')
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("a=1") && cookies[1].starts_with("b=2"));
    assert!(answer["elapsed_ms"].as_f64().unwrap() > 0.0);

    // Bytes that are not UTF-8 go and come back as base64.
    let bytes: Vec<u8> = (0..=255u8).rev().collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let (code, answer) = envelope(
        &alice,
        &generation,
        session,
        json!({"method": "POST", "path": "/mirror", "body_base64": encoded}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["body"], Value::Null);
    assert_eq!(answer["body_base64"], encoded.as_str());

    // Limits: 10 MB each way.
    let (code, answer) = envelope(
        &alice,
        &generation,
        session,
        json!({"path": "/big", "query": {"n": (11 << 20).to_string()}}),
    )
    .await;
    assert_eq!(
        (code, answer["code"].as_str()),
        (502, Some("response_too_large"))
    );
    let (code, answer) = envelope(
        &alice,
        &generation,
        session,
        json!({"path": "/big", "query": {"n": "1000"}}),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(answer["body"].as_str().unwrap().len(), 1000);

    // Malformed requests are 400s that say what is wrong.
    for (request, expected) in [
        (
            json!({"path": "/mirror", "method": "NOT A METHOD"}),
            "invalid_method",
        ),
        (
            json!({"path": "/mirror", "body": "a", "body_base64": "YQ=="}),
            "two_bodies",
        ),
        (
            json!({"path": "/mirror", "body_base64": "%%%"}),
            "invalid_base64",
        ),
        (
            json!({"path": "/mirror", "headers": {"bad header": "x"}}),
            "invalid_header",
        ),
    ] {
        let (code, answer) = envelope(&alice, &generation, session, request).await;
        assert_eq!(
            (code, answer["code"].as_str()),
            (400, Some(expected)),
            "{answer}"
        );
    }

    // A stopped preview is not called at all.
    alice.stop_preview(&generation).await;
    let (code, answer) = envelope(&alice, &generation, session, json!({"path": "/big?n=1"})).await;
    assert_eq!(
        (code, answer["code"].as_str()),
        (409, Some("preview_not_running"))
    );
    server.stop().await;
}
