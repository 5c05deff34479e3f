//! Proxy benchmark: requests per second and latency of one FastAPI preview (uvicorn) reached
//! three ways in the same run by the same load generator: straight to its port, through the
//! transparent proxy (`/preview/<id>/...`), and through the JSON envelope
//! (`POST .../preview/request`). Printed as a table and as ratios against direct
//! (targets: proxied throughput ≥ 0.90 of direct, added p50 latency ≤ 0.3 ms).
//!
//! The load generator is hyper's HTTP/1 client on a runtime and thread of its own: N keep-alive
//! connections, each sending its next request when the last answer has been read, for a fixed
//! time. Throughput is measured with `CONNECTIONS` connections, the added latency with one (an
//! unloaded app, so queueing does not hide the proxy's own cost). The modes run interleaved for
//! `ROUNDS` rounds, so drift in the machine's load hits all of them alike.
//!
//! Everything shares the machine's cores (load generator, previewd, the app), so on a small
//! machine the CPU the proxy uses is taken from the app, and throughput ratios measure the core
//! count as much as the proxy. So previewd's runtime has one worker fewer than there are cores,
//! and the app's access log is off (previewd storing a log line per request costs it more CPU
//! than proxying the request, in every mode). The CPU columns say what each request cost
//! previewd (its whole process but the load generator's thread) and the app, which depends
//! less on how busy the machine is.
//!
//! Run with `cargo bench -p previewd-e2e --bench proxy`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;
use previewd_e2e::TestServer;

/// Connections of the throughput phase.
const CONNECTIONS: usize = 16;
/// Length of the throughput phase, per mode and round.
const LOAD_FOR: Duration = Duration::from_secs(4);
/// Length of the latency phase (one connection), per mode and round.
const LATENCY_FOR: Duration = Duration::from_secs(2);
/// Unmeasured load before each phase.
const WARM_UP: Duration = Duration::from_millis(300);
/// Rounds over the three modes.
const ROUNDS: usize = 2;

/// The app. Its access log is switched off once uvicorn has set logging up: previewd storing
/// one log line per request costs every mode the same, but on a small machine it takes CPU
/// from the app and the proxy alike and blurs the comparison.
const APP: &str = r#"
import logging
from contextlib import asynccontextmanager
from fastapi import FastAPI

@asynccontextmanager
async def lifespan(app):
    logging.getLogger("uvicorn.access").disabled = True
    yield

app = FastAPI(lifespan=lifespan)

@app.get("/items/{item_id}")
async def read_item(item_id: int):
    return {"id": item_id, "name": "item"}
"#;

/// How a request reaches the app.
#[derive(Clone)]
struct Mode {
    name: &'static str,
    addr: SocketAddr,
    request: Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync>,
    /// What a good answer's body contains.
    expect: &'static [u8],
}

/// What one phase measured.
#[derive(Default)]
struct Sample {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time of previewd's process, the load generator's thread excepted.
    previewd_cpu: Duration,
    /// CPU time of the app's process.
    app_cpu: Duration,
}

impl Sample {
    fn add(&mut self, other: Sample) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.previewd_cpu += other.previewd_cpu;
        self.app_cpu += other.app_cpu;
    }

    /// Microseconds of `cpu` per request.
    fn per_request(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile in milliseconds.
    fn quantile(&mut self, q: f64) -> f64 {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies
            .get(index)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }
}

fn main() {
    // previewd's runtime leaves a core to the app (one uvicorn process) and the load generator:
    // on a small machine a worker more only adds context switches between them.
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let workers = cores.saturating_sub(1).max(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(cores, workers));
}

async fn run(cores: usize, workers: usize) {
    let server = TestServer::start().await;
    let client = server.client("bench");
    let generation = client.upload_files("bench", &[("main.py", APP)]).await;
    let launched = client.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let port = launched.body["port"].as_u64().expect("port") as u16;
    let preview_id = launched.body["preview_id"]
        .as_str()
        .expect("id")
        .to_string();
    let session = launched.body["session_token"]
        .as_str()
        .expect("session")
        .to_string();
    let app_pid = server
        .state
        .store
        .preview(&preview_id)
        .expect("store")
        .and_then(|record| record.pid)
        .expect("the app's pid");
    let previewd: SocketAddr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let app: SocketAddr = ([127, 0, 0, 1], port).into();

    let get = |host: SocketAddr, path: String, session: Option<String>| {
        move || {
            let mut request = Request::get(path.as_str())
                .header("host", host.to_string())
                .body(Full::new(Bytes::new()))
                .expect("request");
            if let Some(session) = &session {
                request
                    .headers_mut()
                    .insert("x-preview-session", session.parse().expect("header value"));
            }
            request
        }
    };
    let envelope = {
        let path = format!("/api/v1/generations/{generation}/preview/request");
        let bearer = format!("Bearer {}", client.token);
        let session = session.clone();
        move || {
            Request::post(path.as_str())
                .header("host", previewd.to_string())
                .header("authorization", bearer.as_str())
                .header("x-preview-session", session.as_str())
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"method": "GET", "path": "/items/1"}"#,
                )))
                .expect("request")
        }
    };
    let modes = [
        Mode {
            name: "direct",
            addr: app,
            request: Arc::new(get(app, "/items/1".into(), None)),
            expect: br#""id":1"#,
        },
        Mode {
            name: "proxy",
            addr: previewd,
            request: Arc::new(get(
                previewd,
                format!("/preview/{preview_id}/items/1"),
                Some(session.clone()),
            )),
            expect: br#""id":1"#,
        },
        Mode {
            name: "envelope",
            addr: previewd,
            request: Arc::new(envelope),
            // The app's own answer, inside the envelope's.
            expect: br#""status":200"#,
        },
    ];

    let mut loaded: Vec<Sample> = modes.iter().map(|_| Sample::default()).collect();
    let mut single: Vec<Sample> = modes.iter().map(|_| Sample::default()).collect();
    for _ in 0..ROUNDS {
        for (i, mode) in modes.iter().enumerate() {
            loaded[i].add(generate(mode.clone(), CONNECTIONS, LOAD_FOR, app_pid).await);
            single[i].add(generate(mode.clone(), 1, LATENCY_FOR, app_pid).await);
        }
    }
    client.stop_preview(&generation).await;
    server.stop().await;

    println!();
    println!(
        "proxy benchmark: one FastAPI preview (uvicorn, one process); {CONNECTIONS} keep-alive \
         connections for {LOAD_FOR:?} and 1 for {LATENCY_FOR:?} per mode, {ROUNDS} rounds \
         interleaved; {cores} cores, previewd on {workers} worker thread(s)"
    );
    println!();
    println!(
        "| mode | req/s ({CONNECTIONS} conn) | p50 ms | p99 ms | req/s (1 conn) | p50 ms | p99 ms \
         | previewd CPU µs/req | app CPU µs/req | errors |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for ((mode, many), one) in modes.iter().zip(&mut loaded).zip(&mut single) {
        let row = (
            many.rate(),
            many.quantile(0.5),
            many.quantile(0.99),
            one.rate(),
            one.quantile(0.5),
            one.quantile(0.99),
            many.per_request(many.previewd_cpu),
        );
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.3} | {:.3} | {:.0} | {:.0} | {} |",
            mode.name,
            row.0,
            row.1,
            row.2,
            row.3,
            row.4,
            row.5,
            row.6,
            many.per_request(many.app_cpu),
            many.errors + one.errors
        );
        rows.push(row);
    }
    println!();
    let direct = rows[0];
    for (mode, row) in modes.iter().zip(&rows).skip(1) {
        println!(
            "{:>8} vs direct: throughput {:.3} ({CONNECTIONS} conn), added p50 {:+.3} ms (1 conn), \
             {:+.2} ms ({CONNECTIONS} conn), previewd CPU {:+.0} µs/req",
            mode.name,
            row.0 / direct.0,
            row.4 - direct.4,
            row.1 - direct.1,
            row.6 - direct.6,
        );
    }
    println!("targets for the proxy: throughput >= 0.90, added p50 <= 0.30 ms (1 conn)");
}

/// Runs `connections` keep-alive connections against `mode` for `duration` (after a warm-up),
/// on a thread and runtime of their own; CPU is counted over the measured part only.
async fn generate(mode: Mode, connections: usize, duration: Duration, app_pid: u32) -> Sample {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let warm_until = Instant::now() + WARM_UP;
    let stop_at = warm_until + duration;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("load generator runtime");
        let measured = runtime.block_on(async move {
            let tasks: Vec<_> = (0..connections)
                .map(|_| tokio::spawn(connection(mode.clone(), warm_until, stop_at)))
                .collect();
            tokio::time::sleep_until(warm_until.into()).await;
            let started = cpu(UsageWho::RUSAGE_THREAD);
            let mut total = Sample {
                elapsed: duration,
                ..Sample::default()
            };
            for task in tasks {
                let sample = task.await.expect("connection task");
                total.requests += sample.requests;
                total.errors += sample.errors;
                total.latencies.extend(sample.latencies);
            }
            (total, cpu(UsageWho::RUSAGE_THREAD).saturating_sub(started))
        });
        let _ = tx.send(measured);
    });
    tokio::time::sleep_until(warm_until.into()).await;
    let (process_started, app_started) = (cpu(UsageWho::RUSAGE_SELF), app_cpu(app_pid));
    let (mut sample, generator) = rx.await.expect("load generator");
    let (process_ended, app_ended) = (cpu(UsageWho::RUSAGE_SELF), app_cpu(app_pid));
    sample.previewd_cpu = process_ended
        .saturating_sub(process_started)
        .saturating_sub(generator);
    sample.app_cpu = app_ended.saturating_sub(app_started);
    sample
}

/// CPU time (user + system) of this process or thread.
fn cpu(who: UsageWho) -> Duration {
    let usage = getrusage(who).expect("getrusage");
    let time = |t: TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    time(usage.user_time()) + time(usage.system_time())
}

/// CPU time (user + system) of another process, from `/proc/<pid>/stat` (in Linux's clock
/// ticks, 100 a second).
fn app_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: state, ppid, ... utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(11) + field(12)) * 10)
}

/// One connection sending requests back to back until `stop_at`, counting those that start
/// after `warm_until`.
async fn connection(mode: Mode, warm_until: Instant, stop_at: Instant) -> Sample {
    let mut sample = Sample::default();
    let stream = tokio::net::TcpStream::connect(mode.addr)
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    loop {
        let started = Instant::now();
        if started >= stop_at {
            return sample;
        }
        let ok = match sender.send_request((mode.request)()).await {
            Ok(response) => {
                let status = response.status();
                match response.into_body().collect().await {
                    Ok(body) => {
                        let body = body.to_bytes();
                        status == 200 && body.windows(mode.expect.len()).any(|w| w == mode.expect)
                    }
                    Err(_) => false,
                }
            }
            Err(_) => false,
        };
        let finished = Instant::now();
        if started >= warm_until && finished <= stop_at {
            sample.requests += 1;
            sample.latencies.push(finished - started);
            if !ok {
                sample.errors += 1;
            }
        }
        if !ok {
            // A failed exchange may have closed the connection: start a new one.
            return sample;
        }
    }
}
