//! The spec the running server serves at `/api/v1/openapi.json`, and shows at `/docs`, is the
//! committed `openapi/openapi.json`, byte for byte: what the frontend's client is generated
//! from is what answers. (The spec's own completeness is checked in `core/tests/openapi_spec.rs`.)

use std::path::Path;

use previewd_e2e::TestServer;

/// The command that rewrites the committed spec.
const REGENERATE: &str = "cargo run -q -p previewd -- openapi > openapi/openapi.json";

/// The served spec is the committed file (which `previewd openapi` writes with a final newline),
/// served as JSON without a token; Swagger UI shows the same document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_spec_is_the_committed_one() {
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    let server = TestServer::start().await;
    let http = reqwest::Client::new();

    let response = http
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .expect("spec request");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let served = response.text().await.expect("spec body");
    assert!(
        committed == format!("{served}\n"),
        "openapi/openapi.json differs from the spec the server serves at /api/v1/openapi.json; \
         regenerate it, from the workspace root, with:\n\n    {REGENERATE}\n"
    );

    let docs = http
        .get(format!("{}/docs", server.base))
        .send()
        .await
        .expect("docs request");
    assert_eq!(docs.status().as_u16(), 200);
    let html = docs.text().await.expect("docs body");
    let operations = serde_json::from_str::<serde_json::Value>(&served).expect("JSON spec")
        ["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("path item").values())
        .filter_map(|operation| operation["operationId"].as_str().map(str::to_string))
        .collect::<Vec<_>>();
    for id in operations {
        assert!(html.contains(&format!("\"{id}\"")), "/docs lacks {id}");
    }
    server.stop().await;
}
