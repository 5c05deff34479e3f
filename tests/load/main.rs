//! The load test: 100 previews of a small Flask app launched at once on the real previewd
//! binary all reach `running`, answer, and stop, leaving no preview, port, process or file
//! descriptor behind. A test binary of its own, so it does not share the machine with the
//! end-to-end suite's parallel tests.

use std::time::Duration;

use previewd_e2e::external::ExternalServer;
use previewd_e2e::{fleet, previewd_under_test};

const PREVIEWS: usize = 100;
/// Far more than it needs: a loaded 2-core machine slows the test down instead of failing it.
const LIMIT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_previews_start_answer_and_stop_clean() {
    let server = ExternalServer::start(
        previewd_under_test!(),
        &[
            // Below the ephemeral ports (32768 and up) and the other tests' blocks.
            "--port-range",
            "32400-32699",
            "--max-previews-per-user",
            "1000",
            "--startup-timeout",
            "10m",
        ],
    )
    .await;
    let client = server.client("load");
    // One launch first, so the shared virtualenv exists before a hundred launches want it.
    let warm = fleet::launch(&client, 1).await;
    fleet::wait_running(&client, 1, LIMIT).await;
    fleet::stop_all(&client, &warm).await;
    let fds_before = server.fd_count();

    let members = fleet::launch(&client, PREVIEWS).await;
    let took = fleet::wait_running(&client, PREVIEWS, LIMIT).await;
    let (rss, fds) = (server.rss_bytes(), server.fd_count());
    println!(
        "{PREVIEWS} previews running after {took:.1?}; previewd RSS {:.1} MB, {fds} fds",
        rss as f64 / 1e6
    );
    assert_eq!(fleet::call_all(&client, &members).await, PREVIEWS);
    assert_eq!(
        fleet::metric(&client, "previewd_active_previews").await,
        Some(PREVIEWS as f64)
    );

    fleet::stop_all(&client, &members).await;
    // The test's own keep-alive connections to previewd (up to one per concurrent call) close
    // with its client; what remains open afterwards is previewd's.
    drop(client);
    let client = server.client("load");
    assert_eq!(
        fleet::metric(&client, "previewd_active_previews").await,
        Some(0.0)
    );
    assert_eq!(
        fleet::metric(&client, "previewd_leased_ports").await,
        Some(0.0)
    );
    let (ports, processes) = fleet::leftovers(&members);
    assert!(ports.is_empty(), "ports still in use: {ports:?}");
    assert!(processes.is_empty(), "processes left behind: {processes:?}");
    // Connections close as their peers go; give the last ones a moment.
    let mut fds_after = server.fd_count();
    for _ in 0..50 {
        if fds_after <= fds_before + 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        fds_after = server.fd_count();
    }
    assert!(
        fds_after <= fds_before + 4,
        "previewd holds {fds_after} fds after the stop, {fds_before} before the launch: {:?}",
        server.fd_targets()
    );
}
