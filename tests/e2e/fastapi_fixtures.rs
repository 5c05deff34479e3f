//! The FastAPI plugin's fixture projects (`plugins/fastapi/tests/fixtures/`), launched for real:
//! each one runs, and the routes read from its source are exactly the routes the running app
//! has.

use previewd_e2e::fixture_runs::plugin_fixtures;
use previewd_e2e::parity::measure;
use previewd_e2e::TestServer;

/// The fixture that has syntax errors on purpose and is not meant to run.
const NOT_RUNNABLE: &[&str] = &["broken"];

/// Every fixture but `broken` launches, and its static (method, path) set equals the runtime
/// one: no route missed, none made up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_routes_match_the_running_apps() {
    let server = TestServer::start().await;
    let client = server.client("fixtures");
    let mut failures = Vec::new();
    for dir in plugin_fixtures("fastapi", NOT_RUNNABLE) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let parity = measure(&client, &dir).await;
        if let Some(error) = &parity.error {
            failures.push(format!("{name}: launch failed: {error}"));
        } else if parity.statics != parity.runtime {
            failures.push(format!(
                "{name}: missed {:?}, extra {:?}",
                parity.missed(),
                parity.extra()
            ));
        }
    }
    server.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
