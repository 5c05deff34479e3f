//! Flask previews end to end: every fixture project of the Flask plugin
//! (`plugins/flask/tests/fixtures/`) uploaded, detected as Flask, launched for real (waitress,
//! through `serve_flask.py`), asked one request through the envelope, and its static route
//! table compared with the one the running app reports: the (method, path) sets must be equal.
//!
//! One server runs the fixtures one after the other (a user may run only a few previews at
//! once), so they share its virtualenv cache.

use previewd_e2e::fixture_runs::{run_every_fixture, Probe};
use previewd_e2e::TestServer;

/// The request each fixture answers, and the body expected back (JSON compared as values).
const PROBES: &[Probe] = &[
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
    let failures = run_every_fixture(&client, "flask", PROBES).await;
    server.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
