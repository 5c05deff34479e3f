//! The test harness of previewd's end-to-end tests and benchmarks: a real server on a port of
//! its own with a fresh data dir, clients for its API, fixture projects as uploads, and an SSE
//! reader. Everything it starts is real: the server, the apps, the HTTP in between. The server
//! runs in-process ([`TestServer`]) or as the real binary in a child process
//! ([`external::ExternalServer`]).

pub mod external;
pub mod fixture_runs;
pub mod fleet;
pub mod log_lines;
pub mod mongo;
pub mod parity;
pub mod pids;
pub mod postgres;
pub mod setup;
pub mod sse;
pub mod warm;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use previewd::config::Config;
use previewd::state::AppState;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Ports handed to each test server: a block of its own, so servers in one test run never race
/// for a port.
const PORTS_PER_SERVER: u16 = 10;
static NEXT_PORT_BLOCK: AtomicU16 = AtomicU16::new(0);

/// The folder of a fixture project.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The cache shared by every test server (virtualenvs), kept across runs under `target/`.
pub fn shared_cache_dir() -> PathBuf {
    std::env::var_os("PREVIEWD_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-cache"))
}

/// Settings for a test server: a fresh data dir, the shared cache, a port block of its own and
/// short grace periods.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::with_data_dir(data_dir);
    config.cache_dir = Some(shared_cache_dir());
    let block = NEXT_PORT_BLOCK.fetch_add(1, Ordering::SeqCst);
    // 150 servers per process before a block comes round again; processes apart by pid. All
    // below 32768, where Linux starts handing out ephemeral ports for outgoing connections: an
    // app told to listen on a port some connection happens to hold fails to bind.
    let base = 20_000 + (std::process::id() % 8) as u16 * 1_500 + (block % 150) * PORTS_PER_SERVER;
    config.port_range = base..=base + PORTS_PER_SERVER - 1;
    config.stop_grace = Duration::from_secs(2);
    config.jwt_secret = Some("test-secret".into());
    config
}

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub state: Arc<AppState>,
    pub config: Config,
    data_dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A server with the test defaults.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server with the test defaults changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(data_dir.path());
        adjust(&mut config);
        let mut server = TestServer::start_on(config).await;
        server.data_dir = Some(data_dir);
        server
    }

    /// A server with exactly `config` (its data dir is the caller's).
    pub async fn start_on(config: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = AppState::open(config.clone()).await.expect("open state");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(previewd::server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let task = tokio::spawn(async move {
            task.await.expect("server task").expect("server");
        });
        TestServer {
            base,
            state,
            config,
            data_dir: None,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// A client acting as `user`.
    pub fn client(&self, user: &str) -> Client {
        Client::new(
            &self.base,
            self.state.auth.user_token(user, Duration::from_secs(3600)),
        )
    }

    /// Shuts the server down (stopping its previews) and waits for it.
    pub async fn stop(mut self) {
        self.shutdown_now().await;
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An API client with a user's token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

/// A response: status and JSON body (Null when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Client {
    /// A client of the server at `base` (`http://HOST:PORT`) sending `token`.
    pub fn new(base: &str, token: String) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.to_string(),
            token,
        }
    }

    /// `METHOD /api/v1{path}` with an optional JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("request")).await
    }

    /// `GET /api/v1{path}`.
    pub async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `POST /api/v1{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `DELETE /api/v1{path}`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Uploads raw archive bytes with a content type.
    pub async fn upload_archive(&self, bytes: Vec<u8>, content_type: &str) -> Answer {
        let response = self
            .http
            .post(format!(
                "{}/api/v1/generations/archive?name=archive",
                self.base
            ))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    /// Uploads a fixture as JSON; returns the generation id.
    pub async fn upload_fixture(&self, name: &str) -> String {
        let answer = self.post("/generations", fixture_upload(name)).await;
        assert_eq!(answer.status, 201, "upload of {name}: {:?}", answer.body);
        answer.body["id"].as_str().expect("id").to_string()
    }

    /// Uploads any project folder as JSON; returns the generation id.
    pub async fn upload_dir(&self, root: &Path) -> String {
        let name = root
            .file_name()
            .map_or("project".into(), |n| n.to_string_lossy().into_owned());
        let answer = self.post("/generations", dir_upload(root, &name)).await;
        assert_eq!(
            answer.status,
            201,
            "upload of {}: {:?}",
            root.display(),
            answer.body
        );
        answer.body["id"].as_str().expect("id").to_string()
    }

    /// Uploads a project given as `(path, content)` text files; returns the generation id.
    pub async fn upload_files(&self, name: &str, files: &[(&str, &str)]) -> String {
        let files: Vec<Value> = files
            .iter()
            .map(|(path, content)| json!({"path": path, "content": content}))
            .collect();
        let answer = self
            .post("/generations", json!({"name": name, "files": files}))
            .await;
        assert_eq!(answer.status, 201, "upload of {name}: {:?}", answer.body);
        answer.body["id"].as_str().expect("id").to_string()
    }

    /// Launches a generation and waits for it to run or fail.
    pub async fn launch_wait(&self, generation_id: &str) -> Answer {
        self.post(
            &format!("/generations/{generation_id}/preview/launch?wait=true"),
            json!({}),
        )
        .await
    }

    /// Stops a generation's preview.
    pub async fn stop_preview(&self, generation_id: &str) -> Answer {
        self.delete(&format!("/generations/{generation_id}/preview"))
            .await
    }

    /// Opens the SSE log stream of a generation with a query string (e.g. `after=3`).
    pub async fn log_stream(&self, generation_id: &str, query: &str) -> reqwest::Response {
        let response = self
            .http
            .get(format!(
                "{}/api/v1/generations/{generation_id}/preview/logs/stream?{query}",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("stream request");
        assert_eq!(response.status(), 200, "log stream");
        response
    }

    /// The last `n` stored log lines of a generation (the data of each `log` event), oldest
    /// first: the start of a log stream opened with `?tail=n`.
    pub async fn last_log_lines(&self, generation_id: &str, n: usize) -> Vec<Value> {
        let response = self.log_stream(generation_id, &format!("tail={n}")).await;
        let mut stream = sse::SseReader::new(response);
        let mut lines = Vec::with_capacity(n);
        // Stored lines come first; a short bound ends the read when fewer than `n` exist.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while lines.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match stream.next(left).await {
                Some(event) if event.event == "log" => lines.push(event.json()),
                Some(_) => {}
                None => break,
            }
        }
        lines
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// The JSON upload of a fixture of `tests/fixtures/`.
pub fn fixture_upload(name: &str) -> Value {
    dir_upload(&fixture(name), name)
}

/// Folders never uploaded: installed dependencies and caches, as a user's upload would skip.
const NOT_UPLOADED: &[&str] = &["__pycache__", "node_modules", ".venv", ".git"];

/// The JSON upload of any project folder: every file, text as utf8, anything else as base64.
pub fn dir_upload(root: &Path, name: &str) -> Value {
    let root = root.to_path_buf();
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixture dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| NOT_UPLOADED.iter().any(|skip| n == *skip))
                {
                    continue;
                }
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("read fixture");
            files.push(match String::from_utf8(bytes) {
                Ok(text) => json!({"path": rel, "content": text}),
                Err(err) => json!({
                    "path": rel,
                    "content": base64::engine::general_purpose::STANDARD.encode(err.as_bytes()),
                    "encoding": "base64",
                }),
            });
        }
    }
    json!({"name": name, "files": files})
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z")
        })
        .unwrap_or(false)
}

/// Whether something listens on `port` of the loopback address.
pub fn port_in_use(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// The names of the entries of a folder (empty when it does not exist).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
