//! Log pipeline benchmark, against the real server binary run out of process (release build):
//!
//! - write-to-client latency: an app prints `tick <time_ns>` every ~2 ms; one SSE client takes
//!   receive time minus the timestamp for each line (target p99 ≤ 5 ms). Baseline: the same
//!   Python loop run directly as a child, its stdout pipe read by the bench.
//! - ingestion: an app writes 1,000,000 short lines as fast as it can; lines/s until the last is
//!   stored (target ≥ 200,000 lines/s), and previewd's memory before and at peak. Baseline: the
//!   raw pipe read rate of the same loop run directly.
//! - fan-out: 1,000 SSE subscribers on one preview all receive the same lines; latency of each
//!   line to the last subscriber, and previewd's memory and open files with 0 and 1,000.
//!
//! Baselines are measured in the same run and printed as ratios. Run with
//! `cargo bench -p previewd-e2e --bench logs`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use previewd_e2e::external::ExternalServer;
use previewd_e2e::fixture_runs::envelope;
use previewd_e2e::sse::SseReader;
use previewd_e2e::{previewd_under_test, Client};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The requirements of the `fastapi-app` fixture, so the bench reuses its cached virtualenv.
const REQUIREMENTS: &str = "fastapi>=0.110\nuvicorn[standard]>=0.29\n";

/// The loops timed, run both inside the preview and directly by the baselines.
const LOOPS: &str = r#""""The loops the log benchmark times; each writes to stdout as an app would."""
import sys
import time


def say(line):
    """One write per line: `print` writes the text and the newline apart, and another thread's
    output (the server's access log) could land between them."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def tick(count, every):
    """`tick <time_ns>`, one line every `every` seconds."""
    for _ in range(count):
        say(f"tick {time.time_ns()}")
        time.sleep(every)


def fan(count, every):
    """`fan <i> <time_ns>`, one line every `every` seconds."""
    for i in range(count):
        say(f"fan {i} {time.time_ns()}")
        time.sleep(every)


def flood(count, per_chunk=10_000):
    """`count` short lines written in big chunks as fast as possible, then `flood done`."""
    out = sys.stdout.buffer
    for start in range(0, count, per_chunk):
        end = min(start + per_chunk, count)
        view = memoryview("".join(f"f {n}\n" for n in range(start, end)).encode())
        while view:
            view = view[out.write(view):]
    out.flush()
    say("flood done")
"#;

/// The app: each route starts one loop in a thread and answers at once.
const APP: &str = r#""""Starts the log benchmark's loops on request."""
import threading

from fastapi import FastAPI

import loops

app = FastAPI()


def start(target, *args):
    threading.Thread(target=target, args=args, daemon=True).start()
    return {"started": target.__name__}


@app.get("/tick")
def tick(count: int, every: float):
    return start(loops.tick, count, every)


@app.get("/fan")
def fan(count: int, every: float):
    return start(loops.fan, count, every)


@app.get("/flood")
def flood(count: int):
    return start(loops.flood, count)
"#;

/// Latency: lines and the pause between them.
const TICKS: usize = 2_500;
const TICK_EVERY: f64 = 0.002;
/// Ingestion: lines written.
const FLOOD_LINES: usize = 1_000_000;
/// Fan-out: subscribers, lines and the pause between them.
const SUBSCRIBERS: usize = 1_000;
const FAN_LINES: usize = 200;
const FAN_EVERY: f64 = 0.01;

/// Longest a stream is read for the lines of one measurement (heartbeats included), so a
/// broken server fails the bench instead of hanging it.
const READ_LIMIT: Duration = Duration::from_secs(60);

/// Latency percentiles, in milliseconds.
struct Percentiles {
    p50: f64,
    p99: f64,
    max: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    raise_open_files_limit(4 * SUBSCRIBERS as u64 + 256);
    let server = ExternalServer::start(previewd_under_test!(), &[]).await;
    let client = server.client("bench");
    let generation = client
        .upload_files(
            "log-bench",
            &[
                ("requirements.txt", REQUIREMENTS),
                ("loops.py", LOOPS),
                ("main.py", APP),
            ],
        )
        .await;
    let launched = client.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let session = launched.body["session_token"]
        .as_str()
        .expect("session")
        .to_string();
    let run = Run {
        client,
        generation,
        session,
    };
    let python = run.interpreter().await;
    let loops_dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(loops_dir.path().join("loops.py"), LOOPS).expect("loops.py");
    let direct = Direct {
        python,
        dir: loops_dir.path(),
    };

    let pipe_latency = direct.tick_latency().await;
    let sse_latency = run.tick_latency().await;

    let fan = run.fan_out(&server).await;

    let pipe_rate = direct.flood_rate().await;
    let before = server.rss_bytes();
    let sampler = server.sample_rss(Duration::from_millis(100));
    let stored_rate = run.flood_rate().await;
    let flood_peak = sampler.stop().into_iter().max().unwrap_or(before);
    run.client.stop_preview(&run.generation).await;

    println!();
    println!("log benchmark: previewd out of process, one FastAPI preview");
    println!();
    header(&format!(
        "write-to-client latency, {TICKS} lines every {} ms",
        TICK_EVERY * 1000.0
    ));
    latency_row("app's stdout pipe read directly (baseline)", &pipe_latency);
    latency_row("previewd SSE, one subscriber", &sse_latency);
    row(
        "ratio of p99, previewd / pipe",
        format!(
            "{:.1}x   (previewd p99 {:.2} ms; target ≤ 5 ms: {})",
            sse_latency.p99 / pipe_latency.p99,
            sse_latency.p99,
            verdict(sse_latency.p99 <= 5.0)
        ),
    );
    println!();
    println!(
        "ingestion, {} short lines written as fast as the app can",
        grouped(FLOOD_LINES as f64)
    );
    row(
        "app's stdout pipe read directly (baseline)",
        format!("{} lines/s", grouped(pipe_rate)),
    );
    row(
        "previewd, until the last line is stored",
        format!("{} lines/s", grouped(stored_rate)),
    );
    row(
        "ratio previewd / pipe",
        format!(
            "{:.2}   (target ≥ 200,000 lines/s: {})",
            stored_rate / pipe_rate,
            verdict(stored_rate >= 200_000.0)
        ),
    );
    row(
        "previewd RSS before / peak during",
        format!("{:.1} MB / {:.1} MB", mb(before), mb(flood_peak)),
    );
    println!();
    header(&format!(
        "fan-out, {} SSE subscribers, {FAN_LINES} lines every {} ms",
        grouped(SUBSCRIBERS as f64),
        FAN_EVERY * 1000.0
    ));
    latency_row("each line to its last subscriber", &fan.to_last);
    row(
        "ratio of p99, last subscriber / one subscriber",
        format!("{:.1}x", fan.to_last.p99 / sse_latency.p99),
    );
    row(
        "previewd RSS, 0 / all subscribers (peak)",
        format!(
            "{:.1} MB / {:.1} MB ({:.1} MB)",
            mb(fan.rss_idle),
            mb(fan.rss_subscribed),
            mb(fan.rss_peak)
        ),
    );
    row(
        "previewd open files, 0 / all subscribers",
        format!("{} / {}", fan.fds_idle, fan.fds_subscribed),
    );
    row(
        "CPU used meanwhile, previewd / bench",
        format!(
            "{:.1} s / {:.1} s in {:.1} s, {} CPUs shared",
            fan.cpu_previewd.as_secs_f64(),
            fan.cpu_subscribers.as_secs_f64(),
            fan.wall.as_secs_f64(),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
    );
}

/// The preview under test.
struct Run {
    client: Client,
    generation: String,
    session: String,
}

/// What the fan-out measured.
struct FanOut {
    to_last: Percentiles,
    rss_idle: u64,
    rss_subscribed: u64,
    rss_peak: u64,
    fds_idle: usize,
    fds_subscribed: usize,
    /// From asking for the lines until the last subscriber has them all.
    wall: Duration,
    /// CPU used meanwhile by previewd and by this process's subscribers, which share the
    /// machine.
    cpu_previewd: Duration,
    cpu_subscribers: Duration,
}

impl Run {
    /// The preview's Python interpreter (its virtualenv's), from its launch command.
    async fn interpreter(&self) -> String {
        let config = self
            .client
            .get(&format!("/generations/{}/preview/config", self.generation))
            .await;
        config.body["launch_command"]
            .as_str()
            .and_then(|c| c.split_whitespace().next())
            .expect("launch command")
            .to_string()
    }

    /// Asks the app for `path`, which starts a loop.
    async fn start(&self, path: &str) {
        let answer = envelope(
            &self.client,
            &self.generation,
            &self.session,
            &json!({"method": "GET", "path": path}),
        )
        .await;
        assert_eq!(answer.status(), 200, "{path}");
        let body: serde_json::Value = answer.json().await.expect("envelope JSON");
        assert_eq!(body["status"], 200, "{path}: {body:?}");
    }

    /// A subscriber to the lines from now on.
    async fn subscribe(&self) -> SseReader {
        SseReader::new(self.client.log_stream(&self.generation, "tail=0").await)
    }

    async fn tick_latency(&self) -> Percentiles {
        let mut stream = self.subscribe().await;
        self.start(&format!("/tick?count={TICKS}&every={TICK_EVERY}"))
            .await;
        let mut latencies = Vec::with_capacity(TICKS);
        let deadline = Instant::now() + READ_LIMIT;
        while latencies.len() < TICKS {
            let event = stream
                .next(deadline.saturating_duration_since(Instant::now()))
                .await
                .expect("every tick line in time");
            let now = now_ns();
            let stamp = event.json()["line"]
                .as_str()
                .and_then(|l| l.strip_prefix("tick "))
                .and_then(|t| t.parse::<i128>().ok());
            latencies.extend(stamp.map(|stamp| ms(now - stamp)));
        }
        percentiles(latencies)
    }

    /// Lines per second from asking for the flood until its last line is stored.
    async fn flood_rate(&self) -> f64 {
        let started = Instant::now();
        self.start(&format!("/flood?count={FLOOD_LINES}")).await;
        while !self
            .client
            .last_log_lines(&self.generation, 5)
            .await
            .iter()
            .any(|l| l["line"] == "flood done")
        {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the flood reached the store"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (FLOOD_LINES + 1) as f64 / started.elapsed().as_secs_f64()
    }

    async fn fan_out(&self, server: &ExternalServer) -> FanOut {
        let (rss_idle, fds_idle) = (server.rss_bytes(), server.fd_count());
        let streams: Vec<SseReader> = futures_util::stream::iter(0..SUBSCRIBERS)
            .map(|_| self.subscribe())
            .buffer_unordered(64)
            .collect()
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss_subscribed, fds_subscribed) = (server.rss_bytes(), server.fd_count());
        let followers: Vec<_> = streams
            .into_iter()
            .map(|stream| tokio::spawn(follow_fan(stream)))
            .collect();
        let sampler = server.sample_rss(Duration::from_millis(100));
        let (started, cpu_previewd, cpu_self) = (Instant::now(), server.cpu_time(), own_cpu_time());
        self.start(&format!("/fan?count={FAN_LINES}&every={FAN_EVERY}"))
            .await;
        let mut to_last = vec![f64::MIN; FAN_LINES];
        for follower in followers {
            let latencies = follower.await.expect("subscriber task");
            assert_eq!(
                latencies.len(),
                FAN_LINES,
                "every subscriber gets every line"
            );
            for (last, latency) in to_last.iter_mut().zip(latencies) {
                *last = last.max(latency);
            }
        }
        let (wall, cpu_previewd, cpu_subscribers) = (
            started.elapsed(),
            server.cpu_time() - cpu_previewd,
            own_cpu_time() - cpu_self,
        );
        let rss_peak = sampler.stop().into_iter().max().unwrap_or(rss_subscribed);
        FanOut {
            to_last: percentiles(to_last),
            rss_idle,
            rss_subscribed,
            rss_peak,
            fds_idle,
            fds_subscribed,
            wall,
            cpu_previewd,
            cpu_subscribers,
        }
    }
}

/// Reads `fan <i> <time_ns>` lines until all arrived; their latencies in ms, by `i`.
async fn follow_fan(mut stream: SseReader) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(FAN_LINES);
    let deadline = Instant::now() + READ_LIMIT;
    while latencies.len() < FAN_LINES {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(event) = stream.next(left).await else {
            break;
        };
        let now = now_ns();
        let data = event.json();
        let Some((i, stamp)) = data["line"]
            .as_str()
            .and_then(|l| l.strip_prefix("fan "))
            .and_then(|l| l.split_once(' '))
        else {
            continue;
        };
        assert_eq!(i.parse::<usize>().ok(), Some(latencies.len()), "in order");
        latencies.push(ms(now - stamp.parse::<i128>().expect("timestamp")));
    }
    latencies
}

/// The loops run directly by the bench, stdout piped to it.
struct Direct<'a> {
    python: String,
    dir: &'a Path,
}

impl Direct<'_> {
    fn spawn(&self, call: &str) -> tokio::process::Child {
        tokio::process::Command::new(&self.python)
            .args(["-u", "-c", &format!("import loops; loops.{call}")])
            .current_dir(self.dir)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python")
    }

    async fn tick_latency(&self) -> Percentiles {
        let mut child = self.spawn(&format!("tick({TICKS}, {TICK_EVERY})"));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut latencies = Vec::with_capacity(TICKS);
        while let Some(line) = lines.next_line().await.expect("read pipe") {
            let now = now_ns();
            let stamp = line.strip_prefix("tick ").expect("a tick line");
            latencies.push(ms(now - stamp.parse::<i128>().expect("timestamp")));
        }
        child.wait().await.expect("python");
        assert_eq!(latencies.len(), TICKS);
        percentiles(latencies)
    }

    /// Lines per second from the first byte read to the end of the pipe.
    async fn flood_rate(&self) -> f64 {
        let mut child = self.spawn(&format!("flood({FLOOD_LINES})"));
        let mut stdout = child.stdout.take().expect("stdout");
        let mut buffer = vec![0u8; 1 << 16];
        let (mut lines, mut first) = (0usize, None);
        loop {
            let n = stdout.read(&mut buffer).await.expect("read pipe");
            if n == 0 {
                break;
            }
            first.get_or_insert_with(Instant::now);
            lines += buffer[..n].iter().filter(|b| **b == b'\n').count();
        }
        let elapsed = first.expect("output").elapsed();
        child.wait().await.expect("python");
        assert_eq!(lines, FLOOD_LINES + 1);
        lines as f64 / elapsed.as_secs_f64()
    }
}

/// Lets this process, and the server it starts (which inherits the limit), hold a connection
/// per subscriber.
fn raise_open_files_limit(needed: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < needed {
        setrlimit(Resource::RLIMIT_NOFILE, needed.min(hard), hard).expect("setrlimit");
    }
}

/// The CPU time (user and system) this process has used.
fn own_cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Duration::from_micros(micros(usage.user_time()) + micros(usage.system_time()))
}

fn percentiles(mut samples: Vec<f64>) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    Percentiles {
        p50: at(50),
        p99: at(99),
        max: at(100),
    }
}

/// Width of the label column.
const LABEL: usize = 48;

fn header(title: &str) {
    println!(
        "{title:<w$} {:>10} {:>10} {:>10}",
        "p50",
        "p99",
        "max",
        w = LABEL + 2
    );
}

fn latency_row(label: &str, p: &Percentiles) {
    println!(
        "  {label:<LABEL$} {:>7.2} ms {:>7.2} ms {:>7.2} ms",
        p.p50, p.p99, p.max
    );
}

fn row(label: &str, value: String) {
    println!("  {label:<LABEL$} {value}");
}

/// `1234567.8` as `1,234,568`.
fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i128
}

fn ms(ns: i128) -> f64 {
    ns as f64 / 1e6
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
