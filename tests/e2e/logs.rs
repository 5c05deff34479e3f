use std::time::Duration;

use previewd_e2e::sse::SseReader;
use previewd_e2e::TestServer;
use serde_json::Value;

/// Stored lines page by seq and filter by stream and text; the SSE stream resumes exactly after
/// `Last-Event-ID` and starts with the last lines for `?tail=N`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_and_streams_resume_exactly() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = alice.upload_fixture("fastapi-app").await;
    assert_eq!(alice.launch_wait(&generation).await.status, 200);
    let logs = format!("/generations/{generation}/preview/logs");

    let first = alice.get(&format!("{logs}?limit=3")).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(seqs(&first.body), [1, 2, 3]);
    assert_eq!(
        (
            first.body["next_after"].as_u64(),
            first.body["has_more"].as_bool()
        ),
        (Some(3), Some(true))
    );
    let rest = alice.get(&format!("{logs}?after=3&limit=5000")).await;
    let all_after: Vec<u64> = seqs(&rest.body);
    assert_eq!(all_after.first(), Some(&4));
    assert!(all_after.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(rest.body["has_more"], false);
    let last = *all_after.last().unwrap();

    let stdout = alice
        .get(&format!("{logs}?stream=stdout&q=MODULE%20IMPORTED"))
        .await;
    let lines = stdout.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{:?}", stdout.body);
    assert_eq!(lines[0]["line"], "todo api module imported");
    assert_eq!(alice.get(&format!("{logs}?limit=0")).await.status, 400);

    // Resume after seq 3: the first line is 4, then every line in order, none twice.
    let response = alice
        .http
        .get(format!(
            "{}/api/v1/generations/{generation}/preview/logs/stream",
            alice.base
        ))
        .bearer_auth(&alice.token)
        .header("Last-Event-ID", "3")
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::new(response);
    let first_event = stream.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first_event.retry, Some(2000), "a retry hint comes first");
    let events = stream
        .until(Duration::from_secs(5), |e| {
            e.id.as_deref() == Some(&last.to_string())
        })
        .await;
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| e.id.as_ref()?.parse().ok())
        .collect();
    assert_eq!(ids, (4..=last).collect::<Vec<_>>());

    let mut tail = SseReader::new(alice.log_stream(&generation, "tail=2").await);
    let events = tail
        .until(Duration::from_secs(5), |e| {
            e.id.as_deref() == Some(&last.to_string())
        })
        .await;
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| e.id.as_ref()?.parse().ok())
        .collect();
    assert_eq!(ids, [last - 1, last]);

    alice.stop_preview(&generation).await;
    server.stop().await;
}

fn seqs(page: &Value) -> Vec<u64> {
    page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect()
}
