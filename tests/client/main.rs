//! The TypeScript client of `openapi/client/` and the Swagger UI, checked from `cargo test`:
//! the client's types regenerated from the committed spec must type-check its own code and
//! tests (and a breaking spec change must not), its Node test drives the real previewd binary
//! through the client only, and a headless Chromium authorizes and executes a call in the
//! Swagger UI at `/docs`.
//!
//! What a fresh machine lacks is installed on first use, under file locks so parallel tests
//! (or nextest's processes) do it once: the npm packages (`npm ci` when `node_modules` is
//! missing or older than `package-lock.json`) and Debian's `chromium`. Needs Node 20+ and npm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use previewd_e2e::external::ExternalServer;
use previewd_e2e::previewd_under_test;
use previewd_e2e::setup::{apt_install, file_lock, run};
use serde_json::Value;

/// Preview ports of the client test's server: below the ephemeral ports (32768 and up) and
/// apart from every other block (test servers 20000-31999, benches 32000-32399 and
/// 32700-32767, the load test 32400-32699).
const CLIENT_PORTS: &str = "19000-19049";
/// The Swagger UI test's server launches nothing, but gets a block of its own all the same.
const DOCS_PORTS: &str = "19050-19059";
/// Debian's Chromium; `CHROMIUM_PATH` names another.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

/// `openapi/client/`.
fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/client")
}

/// Cargo's scratch folder for this package's tests (`target/tmp`): lock files, temp copies.
fn scratch_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).expect("CARGO_TARGET_TMPDIR");
    dir
}

fn npm(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("npm");
    command.args(args).current_dir(dir);
    command
}

/// Installs the client's npm packages if `node_modules` is missing or older than
/// `package-lock.json` (npm writes `node_modules/.package-lock.json` last, after a complete
/// install), once per machine; returns the client's folder.
fn npm_packages() -> PathBuf {
    static READY: OnceLock<()> = OnceLock::new();
    let dir = client_dir();
    READY.get_or_init(|| {
        let _lock = file_lock("client-npm");
        let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let lock = modified(dir.join("package-lock.json")).expect("package-lock.json");
        let installed = modified(dir.join("node_modules/.package-lock.json"));
        if installed.is_none_or(|installed| installed < lock) {
            run(npm(&dir, &["ci", "--no-audit", "--no-fund"]), "npm ci");
        }
    });
    dir
}

/// A copy of the client beside `spec` (as `../openapi.json`, as in the repository), sharing the
/// real `node_modules`, so `npm run generate` there leaves the committed files be.
fn client_copy(spec: &str) -> tempfile::TempDir {
    let source = npm_packages();
    let root = tempfile::Builder::new()
        .prefix("client-")
        .tempdir_in(scratch_dir())
        .expect("temp dir");
    std::fs::write(root.path().join("openapi.json"), spec).expect("write spec");
    let copy = root.path().join("client");
    for entry in ["package.json", "tsconfig.json", "src", "test"] {
        copy_tree(&source.join(entry), &copy.join(entry));
    }
    std::os::unix::fs::symlink(source.join("node_modules"), copy.join("node_modules"))
        .expect("link node_modules");
    root
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::copy(from, to).expect("copy");
    }
}

/// The committed spec, `openapi/openapi.json`, as it is (the generated types follow its order).
fn committed_spec() -> String {
    std::fs::read_to_string(client_dir().join("../openapi.json")).expect("openapi/openapi.json")
}

/// Regenerates the types from `spec` in a copy of the client and type-checks the client's
/// code and tests against them; the generated types and the type check's outcome.
fn generate_and_typecheck(spec: &str) -> (String, Result<(), String>) {
    let root = client_copy(spec);
    let copy = root.path().join("client");
    run(npm(&copy, &["run", "generate"]), "npm run generate");
    let types = std::fs::read_to_string(copy.join("src/schema.d.ts")).expect("schema.d.ts");
    let output = npm(&copy, &["run", "typecheck"])
        .output()
        .expect("npm run typecheck");
    let checked = if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    };
    (types, checked)
}

/// The client's code and tests type-check against types generated from the committed spec,
/// and the committed `schema.d.ts` is those types.
#[test]
fn client_typechecks_against_the_committed_spec() {
    let started = Instant::now();
    let (types, checked) = generate_and_typecheck(&committed_spec());
    if let Err(output) = checked {
        panic!("the client does not type-check against openapi/openapi.json:\n{output}");
    }
    let committed = std::fs::read_to_string(client_dir().join("src/schema.d.ts"))
        .expect("openapi/client/src/schema.d.ts");
    assert!(
        committed == types,
        "openapi/client/src/schema.d.ts is not what openapi/openapi.json generates: \
         run `npm run generate` in openapi/client"
    );
    eprintln!("generate + typecheck: {:.1?}", started.elapsed());
}

/// A spec change that breaks the client's usage (a field of the launch answer renamed) fails
/// the type check, naming the field: the check guards something.
#[test]
fn a_breaking_spec_change_fails_the_typecheck() {
    let mut spec: Value = serde_json::from_str(&committed_spec()).expect("spec is JSON");
    let launched = &mut spec["components"]["schemas"]["Launched"];
    let properties = launched["properties"].as_object_mut().expect("properties");
    let field = properties.remove("session_token").expect("session_token");
    properties.insert("session".into(), field);
    for name in launched["required"].as_array_mut().expect("required") {
        if name == "session_token" {
            *name = "session".into();
        }
    }
    let (_, checked) = generate_and_typecheck(&spec.to_string());
    let output = checked.expect_err("the type check fails");
    assert!(output.contains("session_token"), "{output}");
}

/// Runs one of the client's Node test files against `server` as `user`.
fn node_test(server: &ExternalServer, user: &str, script: &str) {
    let dir = npm_packages();
    let mut command = npm(&dir, &["run", script]);
    command
        .env("PREVIEWD_URL", &server.base)
        .env("PREVIEWD_TOKEN", server.client(user).token);
    let output = run(command, &format!("npm run {script}"));
    eprintln!("{output}");
}

/// The generated client drives the real server: upload, launch, log stream, endpoints,
/// envelope request, stop (`openapi/client/test/flow.test.ts`).
#[tokio::test]
async fn client_drives_a_real_server() {
    npm_packages();
    let server =
        ExternalServer::start(previewd_under_test!(), &["--port-range", CLIENT_PORTS]).await;
    node_test(&server, "client-test", "test");
}

/// The Swagger UI in headless Chromium: Authorize with a token, Try it out, Execute, 200
/// (`openapi/client/test/swagger-ui.test.ts`).
#[tokio::test]
async fn swagger_ui_authorizes_and_executes_a_call() {
    npm_packages();
    chromium();
    let server = ExternalServer::start(previewd_under_test!(), &["--port-range", DOCS_PORTS]).await;
    node_test(&server, "swagger-test", "test:browser");
}

/// Makes sure a Chromium is there: `CHROMIUM_PATH` if set, else Debian's, installed with apt
/// (after `apt-get update` if the package lists lack it) when missing.
fn chromium() {
    if let Some(path) = std::env::var_os("CHROMIUM_PATH") {
        assert!(
            Path::new(&path).exists(),
            "CHROMIUM_PATH {path:?} does not exist"
        );
        return;
    }
    apt_install("chromium", || Path::new(DEBIAN_CHROMIUM).exists());
}
