//! Django previews end to end: every fixture project of the Django plugin
//! (`plugins/django/tests/fixtures/`) uploaded as JSON, detected as Django, its static routes
//! listed, launched for real (waitress through `serve_django.py`, no migrations), asked one
//! database-free request through the envelope, and its static route table compared with the
//! one the running app reports: the (method, path) sets must be equal. Then it is stopped.
//!
//! One server runs the fixtures one after the other, so they share its virtualenv cache.

use previewd_e2e::fixture_runs::{run_every_fixture, Probe};
use previewd_e2e::TestServer;

/// The database-free request each fixture answers, and the body expected back (JSON compared
/// as values, anything else as text).
const PROBES: &[Probe] = &[
    ("api_variants", "/shop/webhook/", r#"{"received": true}"#),
    (
        "drf_api",
        "/api/ping/",
        r#"{"pong": true, "method": "GET"}"#,
    ),
    ("nested_backend", "/status/", r#"{"status": "ok"}"#),
    (
        "polls",
        "/polls/hello/",
        "Hello, world. You're at the polls index.",
    ),
];

/// Every Django fixture is detected, runs, answers, and its static routes are exactly the
/// routes the running app's URL resolver has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_runs_with_matching_routes() {
    let server = TestServer::start().await;
    let client = server.client("django");
    let failures = run_every_fixture(&client, "django", PROBES).await;
    server.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
