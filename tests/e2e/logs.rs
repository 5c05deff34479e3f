//! The log stream and the stored history against real apps: big outputs in order without a
//! gap, exact resumption, many subscribers at once, hostile output, relaunches on one
//! connection, and the stream's filters and query-string token.
//!
//! The apps are small Flask projects uploaded inline (no manifest, so they share the base
//! virtualenv of the test cache) that write their output at import time, before serving.

use std::collections::BTreeMap;
use std::time::Duration;

use previewd_e2e::log_lines::{history, LogLine};
use previewd_e2e::sse::{SseEvent, SseReader};
use previewd_e2e::{Client, TestServer};
use serde_json::{json, Value};

/// How long a test waits for a stream to deliver what it expects: far more than it needs, so a
/// loaded machine slows the test down instead of failing it.
const READ_LIMIT: Duration = Duration::from_secs(180);
/// How long a test waits for a preview's state to settle (a stop, a relaunch, quiet logs).
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

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

/// What an app writes before the module defines the Flask app: 20,000 numbered lines, every
/// tenth on stderr, then one end marker per pipe.
const TWENTY_THOUSAND: &str = r#"
for i in range(1, 20001):
    if i % 10 == 0:
        sys.stderr.write(f"err {i}\n")
        sys.stderr.flush()
    else:
        sys.stdout.write(f"out {i}\n")
        sys.stdout.flush()
sys.stderr.write("err done\n")
sys.stderr.flush()
print("all written", flush=True)
"#;

/// 20,000 lines written as fast as the app can on two pipes reach a subscriber that was
/// waiting before launch: every line exactly once and in order within its pipe, each event's id
/// its seq, and seqs without a gap across stdout, stderr and previewd's own lines. The order
/// between the two pipes is the order previewd read them in, which is not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_lines_in_order_without_gap() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "twenty-thousand", TWENTY_THOUSAND).await;

    let mut stream = open_stream(&alice, &generation, "", None).await;
    // Each pipe's marker comes after that pipe's lines; stdout's may overtake stderr's lines.
    let reader = tokio::spawn(async move {
        let (mut out_done, mut err_done) = (false, false);
        stream
            .until(READ_LIMIT, move |e| {
                out_done |= is_line(e, "stdout", "all written");
                err_done |= is_line(e, "stderr", "err done");
                out_done && err_done
            })
            .await
    });
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let lines = log_lines(&reader.await.expect("reader"));

    assert!(
        has_line(&lines, "stdout", "all written") && has_line(&lines, "stderr", "err done"),
        "the stream stopped before both markers: {} lines, the last {:?}",
        lines.len(),
        lines.last()
    );
    assert_contiguous(&lines, 1);
    assert_numbered(
        "stdout",
        &numbered(&lines, "stdout", "out "),
        &(1..=20_000).filter(|i| i % 10 != 0).collect::<Vec<_>>(),
    );
    assert_numbered(
        "stderr",
        &numbered(&lines, "stderr", "err "),
        &(1..=20_000).filter(|i| i % 10 == 0).collect::<Vec<_>>(),
    );
    // Each marker comes after its pipe's last numbered line.
    let position = |stream: &str, line: &str| {
        lines
            .iter()
            .position(|l| l.stream == stream && l.line == line)
            .unwrap()
    };
    assert!(position("stdout", "out 19999") < position("stdout", "all written"));
    assert!(position("stderr", "err 20000") < position("stderr", "err done"));

    alice.stop_preview(&generation).await;
    server.stop().await;
}

/// 5,000 lines, every seventh on stderr.
const FIVE_THOUSAND: &str = r#"
for i in range(1, 5001):
    if i % 7 == 0:
        print(f"err {i}", file=sys.stderr, flush=True)
    else:
        print(f"out {i}", flush=True)
print("five thousand written", flush=True)
"#;

/// Once a 5,000-line log is stored, a reconnect from its middle by `Last-Event-ID` or by
/// `?after=` gets exactly the lines after it, and `?tail=100` exactly the last hundred: each
/// continues without a gap to the end and equals the history endpoint's pages line for line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_from_the_middle_continues_exactly() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "five-thousand", FIVE_THOUSAND).await;
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    // Stopped, the log only grows by previewd's last few lines; then it is still.
    assert_eq!(alice.stop_preview(&generation).await.status, 200);
    let last = quiet_last_seq(&alice, &generation).await;

    let stored = history(&alice, &generation).await;
    assert_contiguous(&stored, 1);
    assert_eq!(stored.last().map(|l| l.seq), Some(last));
    assert!(has_line(&stored, "stdout", "five thousand written"));
    assert_eq!(numbered(&stored, "stdout", "out ").len(), 5_000 - 5_000 / 7);
    let middle = stored
        .iter()
        .find(|l| l.line == "out 2500")
        .expect("out 2500 stored")
        .seq;

    let after = format!("after={middle}");
    let resumptions: [(&str, &str, Option<u64>, u64); 3] = [
        ("Last-Event-ID", "", Some(middle), middle + 1),
        ("?after", &after, None, middle + 1),
        ("?tail=100", "tail=100", None, last - 99),
    ];
    for (how, query, last_event_id, first) in resumptions {
        let mut stream = open_stream(&alice, &generation, query, last_event_id).await;
        let events = stream
            .until(READ_LIMIT, |e| e.id.as_deref() == Some(&last.to_string()))
            .await;
        let lines = log_lines(&events);
        assert_eq!(
            lines.first().map(|l| l.seq),
            Some(first),
            "{how}: the first line"
        );
        assert_eq!(
            lines.last().map(|l| l.seq),
            Some(last),
            "{how}: the stream reached the end"
        );
        assert_contiguous(&lines, first);
        let want = &stored[(first - 1) as usize..];
        if let Some(i) = (0..want.len()).find(|&i| lines[i] != want[i]) {
            panic!(
                "{how}: line {} differs from the history: {:?} != {:?}",
                i, lines[i], want[i]
            );
        }
    }
    server.stop().await;
}

/// 3,000 lines over a second or two, so that subscribers can join while they are written.
const THREE_THOUSAND: &str = r#"
for i in range(1, 3001):
    print(f"line {i}", flush=True)
    if i % 100 == 0:
        time.sleep(0.05)
print("final marker", flush=True)
"#;

/// Twenty subscribers from `after=0`, half opened before launch and half while the app writes,
/// all see the identical sequence of (seq, ts, stream, line) up to the app's last line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_subscribers_see_identical_sequences() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "three-thousand", THREE_THOUSAND).await;

    let subscribe = |stream: SseReader| {
        tokio::spawn(async move {
            let mut stream = stream;
            log_lines(
                &stream
                    .until(READ_LIMIT, |e| is_line(e, "stdout", "final marker"))
                    .await,
            )
        })
    };
    let mut readers = Vec::new();
    for _ in 0..10 {
        readers.push(subscribe(
            open_stream(&alice, &generation, "after=0", None).await,
        ));
    }
    let launch = alice
        .post(
            &format!("/generations/{generation}/preview/launch"),
            json!({}),
        )
        .await;
    assert_eq!(launch.status, 202, "{:?}", launch.body);
    wait_for_output(&alice, &generation).await;
    for _ in 0..10 {
        readers.push(subscribe(
            open_stream(&alice, &generation, "after=0", None).await,
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut sequences = Vec::new();
    for reader in readers {
        sequences.push(reader.await.expect("subscriber"));
    }
    let reference = &sequences[0];
    assert!(
        has_line(reference, "stdout", "final marker"),
        "the first subscriber stopped early at {:?}",
        reference.last()
    );
    assert_contiguous(reference, 1);
    assert_numbered(
        "stdout",
        &numbered(reference, "stdout", "line "),
        &(1..=3_000).collect::<Vec<_>>(),
    );
    for (n, sequence) in sequences.iter().enumerate().skip(1) {
        if let Some(i) =
            (0..reference.len().max(sequence.len())).find(|&i| reference.get(i) != sequence.get(i))
        {
            panic!(
                "subscriber {n} differs from subscriber 0 at position {i}: {:?} != {:?} \
                 ({} and {} lines)",
                sequence.get(i),
                reference.get(i),
                sequence.len(),
                reference.len()
            );
        }
    }
    alice.stop_preview(&generation).await;
    server.stop().await;
}

/// Invalid UTF-8, then a 10 MiB line without a newline, then a normal line.
const HOSTILE: &str = r#"
out = sys.stdout.buffer
out.write(b"bad \xff\xfe bytes\n")
out.flush()
megabyte = b"x" * (1024 * 1024)
for _ in range(10):
    out.write(megabyte)
out.write(b"\nafter the long line\n")
out.flush()
"#;
/// The length of the hostile app's long line.
const LONG_LINE_BYTES: usize = 10 * 1024 * 1024;
/// The longest line previewd keeps whole (`core/src/supervisor/line_reader.rs`).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Invalid bytes arrive as U+FFFD, a 10 MiB line arrives cut to the line limit with a marker
/// saying how much was skipped, the next line is intact, and previewd and the app still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_output_is_contained() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "hostile", HOSTILE).await;

    let mut stream = open_stream(&alice, &generation, "", None).await;
    let reader = tokio::spawn(async move {
        stream
            .until(READ_LIMIT, |e| is_line(e, "stdout", "after the long line"))
            .await
    });
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let lines = log_lines(&reader.await.expect("reader"));
    assert_contiguous(&lines, 1);
    let stdout: Vec<&LogLine> = lines.iter().filter(|l| l.stream == "stdout").collect();
    let bad = stdout
        .iter()
        .position(|l| l.line.starts_with("bad "))
        .unwrap_or_else(|| panic!("no `bad` line: {stdout:?}"));
    assert_eq!(stdout[bad].line, "bad \u{fffd}\u{fffd} bytes");

    let long = &stdout.get(bad + 1).expect("the long line").line;
    let kept = long.bytes().take_while(|b| *b == b'x').count();
    assert!(
        (1024..=MAX_LINE_BYTES).contains(&kept),
        "{kept} bytes of the long line kept"
    );
    assert_eq!(
        &long[kept..],
        format!(" … [line cut: {} more bytes]", LONG_LINE_BYTES - kept),
        "the cut marker"
    );
    assert_eq!(
        stdout.get(bad + 2).map(|l| l.line.as_str()),
        Some("after the long line")
    );

    // previewd and the app still answer, and the history holds the same cut line.
    let health = alice
        .http
        .get(format!("{}/healthz", alice.base))
        .send()
        .await;
    assert_eq!(health.expect("healthz").status(), 200);
    let status = alice
        .get(&format!("/generations/{generation}/preview/status"))
        .await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(status.body["status"], "running", "{:?}", status.body);
    let session = launched.body["session_token"].as_str().expect("session");
    let answer = alice
        .http
        .post(format!(
            "{}/api/v1/generations/{generation}/preview/request",
            alice.base
        ))
        .bearer_auth(&alice.token)
        .header("X-Preview-Session", session)
        .json(&json!({"method": "GET", "path": "/"}))
        .send()
        .await
        .expect("envelope request");
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.expect("envelope JSON");
    assert_eq!(
        (&answer["status"], &answer["body"]),
        (&json!(200), &json!("ok"))
    );
    let stored = history(&alice, &generation).await;
    assert!(stored.iter().any(|l| l == stdout[bad + 1]));

    alice.stop_preview(&generation).await;
    server.stop().await;
}

/// One line naming the run, from the launch's environment.
const RELAUNCHED: &str = r#"
print(f"hello from run {os.environ.get('RUN', '?')}", flush=True)
"#;

/// One connection, left open, follows a launch, a stop and a second launch: the status changes
/// of both previews and the lines of both runs, numbered on without starting over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_follows_a_relaunch() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "relaunched", RELAUNCHED).await;

    let mut stream = open_stream(&alice, &generation, "", None).await;
    let reader = tokio::spawn(async move {
        let (mut running, mut second_line) = (Vec::<String>::new(), false);
        stream
            .until(READ_LIMIT, move |e| {
                let data = e.json();
                if e.event == "status" && data["status"] == "running" {
                    let id = data["preview_id"].as_str().unwrap_or_default().to_string();
                    if !running.contains(&id) {
                        running.push(id);
                    }
                }
                second_line |= is_line(e, "stdout", "hello from run 2");
                running.len() >= 2 && second_line
            })
            .await
    });

    let first = launch_with_env(&alice, &generation, json!({"RUN": "1"})).await;
    let stopped = alice.stop_preview(&generation).await;
    assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    let second = launch_with_env(&alice, &generation, json!({"RUN": "2"})).await;
    assert_ne!(first, second, "a relaunch is a new preview");
    let events = reader.await.expect("reader");

    let statuses: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.event == "status")
        .map(|e| {
            let data = e.json();
            (
                data["preview_id"].as_str().unwrap_or_default().to_string(),
                data["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        (first.clone(), "running"),
        (first.clone(), "stopped"),
        (second.clone(), "running"),
    ];
    let mut remaining = statuses.iter();
    for (preview, status) in &expected {
        assert!(
            remaining.any(|(p, s)| p == preview && s == status),
            "no `{status}` of {preview} in order among {statuses:?}"
        );
    }

    let lines = log_lines(&events);
    assert_contiguous(&lines, 1);
    let seq_of = |text: &str| {
        let found: Vec<u64> = lines
            .iter()
            .filter(|l| l.stream == "stdout" && l.line == text)
            .map(|l| l.seq)
            .collect();
        assert_eq!(found.len(), 1, "`{text}` once: {lines:?}");
        found[0]
    };
    assert!(seq_of("hello from run 1") < seq_of("hello from run 2"));

    alice.stop_preview(&generation).await;
    server.stop().await;
}

/// A few lines on each pipe, some with `apple` in one case or another.
const FILTERED: &str = r#"
for i in range(1, 201):
    print(f"stdout {i} apple" if i % 3 == 0 else f"stdout {i}", flush=True)
    if i % 5 == 0:
        print(f"stderr {i} APPLE" if i % 2 == 0 else f"stderr {i}", file=sys.stderr, flush=True)
print("stderr done", file=sys.stderr, flush=True)
print("stdout done", flush=True)
"#;

/// `?stream=` keeps one stream's lines (live and stored), `?q=` the lines containing a text
/// in any case, each event still carrying its line's seq as id; `?access_token=` opens the
/// stream without an Authorization header, as a browser's EventSource must, and a wrong one is
/// a 401 in the API's error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_filters_and_query_token() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = upload_app(&alice, "filtered", FILTERED).await;

    // stderr only, opened before launch: the lines come live.
    let mut stderr = open_stream(&alice, &generation, "stream=stderr", None).await;
    let reader = tokio::spawn(async move {
        stderr
            .until(READ_LIMIT, |e| is_line(e, "stderr", "stderr done"))
            .await
    });
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let got = log_lines(&reader.await.expect("reader"));
    let stored = history(&alice, &generation).await;
    let done = stored
        .iter()
        .find(|l| l.stream == "stderr" && l.line == "stderr done")
        .expect("stderr done stored")
        .seq;
    let want: Vec<LogLine> = stored
        .iter()
        .filter(|l| l.stream == "stderr" && l.seq <= done)
        .cloned()
        .collect();
    assert_eq!(want.len(), 41, "the app's stderr lines: {want:?}");
    assert_same("?stream=stderr", &got, &want);

    // system only, from the store.
    let want: Vec<LogLine> = stored
        .iter()
        .filter(|l| l.stream == "system")
        .cloned()
        .collect();
    assert!(!want.is_empty());
    let got = read_through(
        &alice,
        &generation,
        "stream=system",
        want.last().unwrap().seq,
    )
    .await;
    assert_same("?stream=system", &got, &want);

    // Lines containing `apple` in any case, from both pipes, from the store.
    let want: Vec<LogLine> = stored
        .iter()
        .filter(|l| l.line.to_lowercase().contains("apple"))
        .cloned()
        .collect();
    assert!(want.iter().any(|l| l.stream == "stdout") && want.iter().any(|l| l.stream == "stderr"));
    let got = read_through(&alice, &generation, "q=ApPlE", want.last().unwrap().seq).await;
    assert_same("?q=ApPlE", &got, &want);

    // The token in the query, no Authorization header (a client without default headers).
    let browser = reqwest::Client::new();
    let url = |token: &str| {
        format!(
            "{}/api/v1/generations/{generation}/preview/logs/stream?access_token={token}",
            alice.base
        )
    };
    let response = browser.get(url(&alice.token)).send().await.expect("stream");
    assert_eq!(response.status(), 200, "the stream with ?access_token=");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut stream = SseReader::new(response);
    let first_line = stream
        .until(READ_LIMIT, |e| e.event == "log")
        .await
        .pop()
        .expect("a log event");
    assert_eq!(first_line.id.as_deref(), Some("1"));

    let wrong = browser
        .get(url("not-a-token"))
        .send()
        .await
        .expect("stream");
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.expect("a JSON error");
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty())
            && body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body:?}"
    );

    alice.stop_preview(&generation).await;
    server.stop().await;
}

/// The Flask app every test app serves once its output is written.
const FLASK_APP: &str = r#"
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "ok"
"#;

/// Uploads a one-file Flask app that runs `output` at import time; returns the generation id.
async fn upload_app(client: &Client, name: &str, output: &str) -> String {
    let source = format!("import os\nimport sys\nimport time\n{output}{FLASK_APP}");
    let files = json!([{"path": "app.py", "content": source}]);
    let answer = client
        .post("/generations", json!({"name": name, "files": files}))
        .await;
    assert_eq!(answer.status, 201, "upload of {name}: {:?}", answer.body);
    assert_eq!(answer.body["framework"], "flask", "{:?}", answer.body);
    answer.body["id"].as_str().expect("id").to_string()
}

/// Launches with `env` and waits until it runs; returns the preview id. Retries while the
/// previous preview of the generation is still winding down (409).
async fn launch_with_env(client: &Client, generation: &str, env: Value) -> String {
    let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
    loop {
        let answer = client
            .post(
                &format!("/generations/{generation}/preview/launch?wait=true"),
                json!({"env": env}),
            )
            .await;
        if answer.status == 409 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        return answer.body["preview_id"]
            .as_str()
            .expect("preview_id")
            .to_string();
    }
}

/// Opens the log stream of a generation with `query` and, when given, a `Last-Event-ID`.
async fn open_stream(
    client: &Client,
    generation: &str,
    query: &str,
    last_event_id: Option<u64>,
) -> SseReader {
    let mut request = client
        .http
        .get(format!(
            "{}/api/v1/generations/{generation}/preview/logs/stream?{query}",
            client.base
        ))
        .bearer_auth(&client.token);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = request.send().await.expect("stream request");
    assert_eq!(response.status(), 200, "log stream ?{query}");
    SseReader::new(response)
}

/// The log lines of a stream opened with `query`, up to the one numbered `last`.
async fn read_through(client: &Client, generation: &str, query: &str, last: u64) -> Vec<LogLine> {
    let mut stream = open_stream(client, generation, query, None).await;
    let last = last.to_string();
    log_lines(
        &stream
            .until(READ_LIMIT, |e| e.id.as_deref() == Some(last.as_str()))
            .await,
    )
}

/// Waits until the generation's log has stopped growing (no new line for a second); returns
/// its last seq.
async fn quiet_last_seq(client: &Client, generation: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
    let logs = format!("/generations/{generation}/preview/logs");
    let mut last = 0;
    loop {
        let before = last;
        loop {
            let page = client.get(&format!("{logs}?after={last}&limit=5000")).await;
            assert_eq!(page.status, 200, "{:?}", page.body);
            last = last.max(page.body["next_after"].as_u64().expect("next_after"));
            if page.body["has_more"] != true {
                break;
            }
        }
        if last == before && last > 0 {
            return last;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log kept growing"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until the app has written its first stdout line.
async fn wait_for_output(client: &Client, generation: &str) {
    let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
    loop {
        let page = client
            .get(&format!(
                "/generations/{generation}/preview/logs?stream=stdout&limit=1"
            ))
            .await;
        if page.body["lines"].as_array().is_some_and(|l| !l.is_empty()) {
            return;
        }
        let status = client
            .get(&format!("/generations/{generation}/preview/status"))
            .await;
        assert_ne!(status.body["status"], "failed", "{:?}", status.body);
        assert!(
            tokio::time::Instant::now() < deadline,
            "no output: {:?}",
            status.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log lines among `events`, each checked to carry its seq as its SSE id.
fn log_lines(events: &[SseEvent]) -> Vec<LogLine> {
    events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| {
            let line = LogLine::from_json(&e.json());
            assert_eq!(
                e.id.as_deref(),
                Some(line.seq.to_string().as_str()),
                "the id of a log event is its seq: {e:?}"
            );
            line
        })
        .collect()
}

/// Whether `event` is the log line `text` on `stream`.
fn is_line(event: &SseEvent, stream: &str, text: &str) -> bool {
    event.event == "log" && {
        let data = event.json();
        data["stream"] == stream && data["line"] == text
    }
}

/// Whether `lines` hold `text` on `stream`.
fn has_line(lines: &[LogLine], stream: &str, text: &str) -> bool {
    lines.iter().any(|l| l.stream == stream && l.line == text)
}

/// The numbers of the lines `<prefix><n>` of one stream, in the order they came (a mangled
/// line is left out, and shows as a difference from the numbers due).
fn numbered(lines: &[LogLine], stream: &str, prefix: &str) -> Vec<u64> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .filter_map(|l| l.line.strip_prefix(prefix)?.parse().ok())
        .collect()
}

/// Asserts that the seqs of `lines` go up by exactly one from `first`.
fn assert_contiguous(lines: &[LogLine], first: u64) {
    if let Some(i) = (0..lines.len()).find(|&i| lines[i].seq != first + i as u64) {
        panic!(
            "seq {} at position {i} where {} was due; around it: {:?}",
            lines[i].seq,
            first + i as u64,
            &lines[i.saturating_sub(2)..(i + 3).min(lines.len())]
        );
    }
}

/// Asserts that a stream's numbered lines are exactly `want`, in order, naming the first
/// difference instead of printing thousands of numbers.
fn assert_numbered(stream: &str, got: &[u64], want: &[u64]) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        let counts = got.iter().fold(BTreeMap::<u64, usize>::new(), |mut m, n| {
            *m.entry(*n).or_default() += 1;
            m
        });
        let twice: Vec<_> = counts
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(n, _)| n)
            .collect();
        panic!(
            "{stream}: {} numbered lines, {} due; first difference at position {i}: {:?} where \
             {:?} was due; duplicated: {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i),
            &twice[..twice.len().min(10)]
        );
    }
}

/// Asserts that a filtered stream delivered exactly the lines `want`.
fn assert_same(what: &str, got: &[LogLine], want: &[LogLine]) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "{what}: {} lines where {} were due; first difference at position {i}: {:?} where \
             {:?} was due",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}
