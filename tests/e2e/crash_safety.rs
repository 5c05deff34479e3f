//! What only the real binary, run out of process, can show about logs: a SIGKILL of previewd loses
//! no line a client was already sent, and an app flooding its output cannot make previewd's
//! memory grow with it, even with a subscriber that never reads.

use std::collections::BTreeMap;
use std::time::Duration;

use previewd_e2e::external::ExternalServer;
use previewd_e2e::fixture_runs::envelope;
use previewd_e2e::log_lines::{history, LogLine};
use previewd_e2e::pids::app_host_pid;
use previewd_e2e::sse::SseReader;
use previewd_e2e::{previewd_under_test, process_alive};
use serde_json::json;

/// The requirements of the `fastapi-app` fixture, so the apps here reuse its cached virtualenv.
const REQUIREMENTS: &str = "fastapi>=0.110\nuvicorn[standard]>=0.29\n";

/// An app that prints `line N` on stdout every millisecond while it serves, and `err N` on
/// stderr for every tenth N.
const TICKER: &str = r#"
import os
import sys
import threading
import time

from fastapi import FastAPI


def tick():
    n = 0
    while True:
        n += 1
        print(f"line {n}", flush=True)
        if n % 10 == 0:
            print(f"err {n}", file=sys.stderr, flush=True)
        time.sleep(0.001)


print(f"ticker pid {os.getpid()}", flush=True)
threading.Thread(target=tick, daemon=True).start()
app = FastAPI()


@app.get("/")
def root():
    return {"ok": True}
"#;

/// Log events a client reads before previewd is killed.
const SEEN_BEFORE_KILL: usize = 2_000;

/// A SIGKILL of previewd while an app prints without pause: after a restart on the same data dir,
/// every line a client was sent is stored with the same seq, stream and text; the preview is no
/// longer reported running and its app was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_line_a_client_saw() {
    let mut server = ExternalServer::start(previewd_under_test!(), &[]).await;
    let alice = server.client("alice");
    let generation = alice
        .upload_files(
            "ticker",
            &[("requirements.txt", REQUIREMENTS), ("main.py", TICKER)],
        )
        .await;
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);

    let mut stream = SseReader::new(alice.log_stream(&generation, "after=0").await);
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < SEEN_BEFORE_KILL {
        let event = stream
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
            .expect("the ticker's lines keep coming");
        if event.event == "log" {
            let line = LogLine::from_json(&event.json());
            assert_eq!(event.id, Some(line.seq.to_string()), "id is the seq");
            seen.push(line);
        }
    }
    let app: i32 = seen
        .iter()
        .find_map(|l| l.line.strip_prefix("ticker pid "))
        .expect("the app printed its pid")
        .parse()
        .expect("pid");
    let app = app_host_pid(launched.body["preview_id"].as_str().unwrap(), app);
    server.kill9();
    drop(stream);
    assert!(
        seen.windows(2).all(|w| w[0].seq < w[1].seq),
        "seqs strictly increase"
    );

    server.restart().await;
    let stored: BTreeMap<u64, LogLine> = history(&alice, &generation)
        .await
        .into_iter()
        .map(|l| (l.seq, l))
        .collect();
    let missing: Vec<&LogLine> = seen
        .iter()
        .filter(|l| stored.get(&l.seq) != Some(l))
        .collect();
    let last_seen = seen.last().expect("lines").seq;
    println!(
        "sigkill: a client saw {} lines (last seq {last_seen}); after the restart {} are stored \
         (last seq {}), {} of the seen ones missing or different",
        seen.len(),
        stored.len(),
        stored.keys().next_back().copied().unwrap_or(0),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} lines a client saw are not stored as seen; the first: {:?}, stored as {:?}",
        missing.len(),
        seen.len(),
        missing[0],
        stored.get(&missing[0].seq)
    );

    let status = alice
        .get(&format!("/generations/{generation}/preview/status"))
        .await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert!(
        ["stopped", "failed"].contains(&status.body["status"].as_str().unwrap_or("")),
        "the preview is not reported running: {:?}",
        status.body
    );
    for _ in 0..500 {
        if !process_alive(app) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!process_alive(app), "the orphaned app {app} was killed");
}

/// Lines the flood app writes, about 1 KB each.
const FLOOD_LINES: u64 = 300_000;
/// The log cap of the flood test's server, far below the flood.
const FLOOD_CAP: &str = "20000";
/// Most previewd's memory may grow while the app writes ~300 MB.
const MAX_GROWTH: u64 = 200 << 20;

/// An app that, when asked (`GET /flood`), writes [`FLOOD_LINES`] lines of about 1 KB to stdout
/// as fast as it can in big chunks, then prints `flood done`.
const FLOOD: &str = r#"
import sys
import threading

from fastapi import FastAPI

LINES = 300_000
PAD = "x" * 1000


def write_all(out, data):
    view = memoryview(data)
    while view:
        view = view[out.write(view):]


def flood():
    out = sys.stdout.buffer
    for start in range(0, LINES, 256):
        end = min(start + 256, LINES)
        chunk = "".join(f"flood {n:06d} {PAD}\n" for n in range(start, end))
        write_all(out, chunk.encode())
    out.flush()
    print("flood done", flush=True)


app = FastAPI()


@app.get("/flood")
def start_flood():
    threading.Thread(target=flood, daemon=True).start()
    return {"started": True}
"#;

/// An app writes ~300 MB of output as fast as it can while one subscriber never reads: previewd's
/// memory stays flat (it grows far less than what was written), the stored log ends with the
/// app's last line, keeps the newest lines in order with none missing, and says that it dropped
/// the oldest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_keeps_memory_flat() {
    let server =
        ExternalServer::start(previewd_under_test!(), &["--max-log-lines", FLOOD_CAP]).await;
    let alice = server.client("alice");
    let generation = alice
        .upload_files(
            "flood",
            &[("requirements.txt", REQUIREMENTS), ("main.py", FLOOD)],
        )
        .await;
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let session = launched.body["session_token"].as_str().expect("session");
    // Connected, never read: whatever previewd queues for it must stay bounded.
    let slow_subscriber = alice.log_stream(&generation, "after=0").await;

    let before = server.rss_bytes();
    let sampler = server.sample_rss(Duration::from_millis(100));
    let started = envelope(
        &alice,
        &generation,
        session,
        &json!({"method": "GET", "path": "/flood"}),
    )
    .await;
    assert_eq!(started.status(), 200);
    // A bound so a broken server fails the test instead of hanging it; not a speed requirement.
    let mut polls = 0;
    while !alice
        .last_log_lines(&generation, 5)
        .await
        .iter()
        .any(|l| l["line"] == "flood done")
    {
        polls += 1;
        assert!(polls < 600, "`flood done` reached the stored log");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let samples = sampler.stop();
    drop(slow_subscriber);

    let peak = samples.iter().copied().max().unwrap_or(before);
    let growth = peak.saturating_sub(before);
    let stored = history(&alice, &generation).await;
    println!(
        "flood: {FLOOD_LINES} lines (~{} MB) written; previewd RSS before {:.1} MB, peak {:.1} MB, \
         growth {:.1} MB ({} samples); {} lines stored (cap {FLOOD_CAP})",
        (FLOOD_LINES * 1014) >> 20,
        mb(before),
        mb(peak),
        mb(growth),
        samples.len(),
        stored.len()
    );
    assert!(
        growth < MAX_GROWTH,
        "previewd grew by {:.1} MB while the app wrote ~300 MB",
        mb(growth)
    );
    let last_stdout = stored.iter().rev().find(|l| l.stream == "stdout");
    assert_eq!(
        last_stdout.map(|l| l.line.as_str()),
        Some("flood done"),
        "the stored log ends with the app's last line"
    );
    let numbers: Vec<u64> = stored
        .iter()
        .filter_map(|l| {
            l.line
                .strip_prefix("flood ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        numbers.last(),
        Some(&(FLOOD_LINES - 1)),
        "the last flood line"
    );
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "the kept flood lines are in order with none missing"
    );
    assert!(
        stored
            .iter()
            .any(|l| l.stream == "system" && l.line.to_lowercase().contains("dropped")),
        "a system line says old lines were dropped"
    );
    alice.stop_preview(&generation).await;
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
