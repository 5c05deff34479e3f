//! The real previewd binary run out of process, for what an in-process server cannot show: a
//! SIGKILL in the middle of a write followed by a restart on the same data dir and port, and the
//! server's own memory and open files read from `/proc`.
//!
//! The binary is this package's `previewd-under-test` (it runs `previewd::cli::main`, exactly
//! what `previewd` runs). Cargo gives its path to this package's integration tests and benches
//! only, as `CARGO_BIN_EXE_previewd-under-test` at compile time, so callers name it with
//! [`previewd_under_test!`](crate::previewd_under_test) and hand it to [`ExternalServer::start`].

use std::io::BufRead;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{test_config, Client};

/// How long a start may take: opening the data dir (sled recovers its log after a SIGKILL) and
/// binding.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a graceful stop (SIGTERM: previewd stops its previews first) may take before SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// The unit of CPU times in `/proc` (`USER_HZ`), 100 on every Linux architecture.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The path of this package's `previewd-under-test` binary; only valid in this package's
/// integration tests and benches, where Cargo sets it.
#[macro_export]
macro_rules! previewd_under_test {
    () => {
        std::path::Path::new(env!("CARGO_BIN_EXE_previewd-under-test"))
    };
}

/// A `previewd serve` child process with a fresh data dir (removed on drop), the shared test
/// cache, and a block of preview ports of its own. Dropping it stops the server gracefully (its
/// previews with it), then kills it if it does not exit.
///
/// The first start listens on port 0 and reads the address the server prints, so no other test
/// can take the port in between; restarts listen on that same port. No secret is configured: the
/// server keeps the one it creates in its data dir, as in production, and [`Self::client`] signs
/// with it. Linux signals the child when the *thread* that spawned it exits, so start and restart
/// it from the test's (or bench's) own thread or a runtime worker, not a short-lived thread.
pub struct ExternalServer {
    /// `http://127.0.0.1:PORT`, the same across restarts.
    pub base: String,
    binary: PathBuf,
    /// Every `serve` flag but `--listen`.
    args: Vec<String>,
    /// Environment variables the server is started with, besides the test run's own.
    env: Vec<(String, String)>,
    addr: SocketAddr,
    data_dir: tempfile::TempDir,
    child: Option<Child>,
}

impl ExternalServer {
    /// Starts `binary serve` on a port the system picks, with the test defaults (see
    /// [`test_config`]) and `extra` flags (e.g. `["--max-log-lines", "20000"]`), which replace
    /// the defaults they name.
    pub async fn start(binary: &Path, extra: &[&str]) -> ExternalServer {
        ExternalServer::start_with_env(binary, extra, &[]).await
    }

    /// [`Self::start`] with `env` added to the server's environment (e.g. the `PRISMA_*`
    /// variables operators set for Prisma), at every start.
    pub async fn start_with_env(
        binary: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ExternalServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = test_config(data_dir.path());
        let defaults = [
            ("--data-dir", config.data_dir.display().to_string()),
            ("--cache-dir", config.cache_dir().display().to_string()),
            (
                "--port-range",
                format!("{}-{}", config.port_range.start(), config.port_range.end()),
            ),
            (
                "--stop-grace",
                format!("{}ms", config.stop_grace.as_millis()),
            ),
        ];
        // A flag in `extra` replaces its default (clap refuses a flag given twice).
        let mut args: Vec<String> = defaults
            .into_iter()
            .filter(|(flag, _)| !extra.contains(flag))
            .flat_map(|(flag, value)| [flag.to_string(), value])
            .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut server = ExternalServer {
            base: String::new(),
            binary: binary.to_path_buf(),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            child: None,
        };
        server.spawn().await;
        server
    }

    /// Starts the server again on the same data dir and port, after stopping it gracefully if
    /// it still runs.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    /// Kills the server with SIGKILL (its previews are left running, as after a crash) and
    /// reaps it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// A client acting as `user`, with a token signed by the secret the server keeps in its
    /// data dir (so it stays valid across restarts).
    pub fn client(&self, user: &str) -> Client {
        let auth = previewd::auth::Authenticator::load_or_create(None, self.data_dir())
            .expect("the server's secret");
        Client::new(&self.base, auth.user_token(user, Duration::from_secs(3600)))
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The server's pid.
    pub fn pid(&self) -> i32 {
        let child = self.child.as_ref().expect("the server is running");
        i32::try_from(child.id()).expect("pid")
    }

    /// The server's resident memory, from `VmRSS` in `/proc/<pid>/status`.
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes_of(self.pid()).expect("VmRSS of the server")
    }

    /// Samples the server's resident memory every `every` on a thread of its own, until
    /// [`RssSampler::stop`].
    pub fn sample_rss(&self, every: Duration) -> RssSampler {
        let pid = self.pid();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                samples.extend(rss_bytes_of(pid));
                std::thread::sleep(every);
            }
            samples.extend(rss_bytes_of(pid));
            samples
        });
        RssSampler { stop, thread }
    }

    /// The CPU time (user and system) the server has used, from `/proc/<pid>/stat`.
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("proc stat");
        // After the `(comm)` field: state is the first; utime and stime the 12th and 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("proc stat")
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SECOND)
    }

    /// How many files the server has open, from `/proc/<pid>/fd`.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("proc fd")
            .count()
    }

    /// What the server's file descriptors point at (`socket:[…]`, `pipe:[…]`, paths), for the
    /// message of a failed leak check.
    pub fn fd_targets(&self) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .map(|target| target.display().to_string())
            .collect()
    }

    /// Starts the child on `self.addr` (port 0 the first time, then the port it got) and waits
    /// until it prints its address and answers `/healthz`.
    async fn spawn(&mut self) {
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Only the flags above configure it, whatever the environment of the test run says.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PREVIEWD_") {
                command.env_remove(name);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        // Warnings only (a line per request drowns a benchmark's table), unless asked otherwise.
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        // Should the test process die without dropping this (killed by pid), the server is told
        // to stop too, and stops its previews, instead of running on as an orphan.
        // SAFETY: prctl is async-signal-safe, and nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        let mut child = command.spawn().expect("previewd-under-test");
        let stdout = child.stdout.take().expect("piped stdout");
        let pid = child.id();
        self.child = Some(child);

        // Its stdout (the banner, then tracing) is read to the end, so it never blocks on a full
        // pipe, and shown with the test's output.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[previewd {pid}] {line}");
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    if let (Some(tx), Ok(addr)) = (tx.take(), addr.trim().parse::<SocketAddr>()) {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = tokio::time::timeout(START_LIMIT, rx)
            .await
            .expect("previewd printed its address in time")
            .expect("previewd printed its address before exiting");
        self.addr = addr;
        self.base = format!("http://{addr}");

        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            let health = http.get(format!("{}/healthz", self.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "previewd answers /healthz"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after [`STOP_LIMIT`]; reaps it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = std::time::Instant::now() + STOP_LIMIT;
        while std::time::Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ExternalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Resident memory samples of a process, taken on a thread until stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<u64>>,
}

impl RssSampler {
    /// Stops sampling; every sample taken, in bytes, oldest first (one last sample included).
    pub fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("RSS sampler thread")
    }
}

/// A process's resident memory in bytes, from `VmRSS` in `/proc/<pid>/status`; `None` once it
/// is gone.
pub fn rss_bytes_of(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}
