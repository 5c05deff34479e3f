use std::time::Duration;

use previewd_e2e::pids::app_host_pid;
use previewd_e2e::{port_in_use, process_alive, TestServer};

/// An app that raises at import fails with its own error text as the reason, and its port is
/// released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_import_fails_with_the_apps_error() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = alice.upload_fixture("crash-at-import").await;
    let answer = alice.launch_wait(&generation).await;
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    assert_eq!(answer.body["code"], "launch_failed");
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("boom: DATABASE_URL is not set"),
        "{:?}",
        answer.body
    );
    let last_lines = answer.body["last_lines"].as_array().unwrap();
    assert!(
        last_lines
            .iter()
            .any(|l| l.as_str().unwrap().contains("RuntimeError")),
        "{last_lines:?}"
    );

    let status = alice
        .get(&format!("/generations/{generation}/preview/status"))
        .await;
    assert_eq!(status.body["status"], "failed");
    assert_eq!(status.body["exit_code"], 1);
    assert!(!port_in_use(status.body["port"].as_u64().unwrap() as u16));
    server.stop().await;
}

/// An app that never binds fails at the start-up deadline, and the port is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_binding_app_fails_at_the_deadline() {
    let server = TestServer::start_with(|c| c.startup_timeout = Duration::from_secs(3)).await;
    let alice = server.client("alice");
    let generation = alice.upload_fixture("never-binds").await;
    let answer = alice.launch_wait(&generation).await;
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    let message = answer.body["message"].as_str().unwrap();
    assert!(message.contains("did not answer HTTP"), "{message}");
    assert!(
        message.contains("connecting to a database"),
        "the app's own output is shown: {message}"
    );
    let status = alice
        .get(&format!("/generations/{generation}/preview/status"))
        .await;
    assert_eq!(status.body["status"], "failed");
    let port = status.body["port"].as_u64().unwrap() as u16;
    assert!(!port_in_use(port), "port {port} released");
    assert_eq!(server.state.supervisor.leased_ports(), 0);
    server.stop().await;
}

/// Stop kills a child the app started in a session of its own that ignores SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_a_stubborn_forked_child() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = alice.upload_fixture("forks-stubborn-child").await;
    let answer = alice.launch_wait(&generation).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let logs = server.state.logs.read_after(&generation, 0, 1000).unwrap();
    let child: i32 = logs
        .iter()
        .find_map(|l| l.line.strip_prefix("stubborn child pid "))
        .expect("the app printed its child's pid")
        .parse()
        .unwrap();
    let child = app_host_pid(answer.body["preview_id"].as_str().unwrap(), child);
    assert!(process_alive(child));
    let stopped = alice.stop_preview(&generation).await;
    assert_eq!(stopped.body["status"], "stopped");
    assert!(!process_alive(child), "child {child} survived the stop");
    server.stop().await;
}
