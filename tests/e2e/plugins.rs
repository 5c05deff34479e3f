//! Third-party plugins loaded at run time, end to end, with the real binary
//! (`previewd-under-test`) and real libraries: the Koa plugin (`plugins/koa`) and a plugin that
//! panics on purpose (`tests/fixtures-plugins/panicky`), both built here with Cargo into the
//! target dir of this test run, and libraries previewd must refuse, built with the C compiler
//! from source written by the test (another ABI version, no declaration) or not libraries at
//! all. Checked: the listing (`previewd plugins`), a real Koa app detected, launched (its npm
//! packages installed through previewd's node env cache), answering through the envelope with
//! its routes listed, and panics in a plugin's detection, launch plan and route extraction
//! reported while previewd and the other plugins carry on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use previewd_e2e::external::ExternalServer;
use previewd_e2e::fixture_runs::{envelope, expect_routes, plugin_fixture};
use previewd_e2e::{previewd_under_test, Client};
use serde_json::{json, Value};

use crate::LAUNCH_LIMIT;

/// The first port of this file's preview port blocks: below the harness's (20000–31999), the
/// load test's (32400–32699), the benches' (32000–32399, 32700–32767) and the client test's
/// (19000–19099): 18000–18099, a block of [`PORTS_PER_SERVER`] per server, test processes
/// set apart by pid.
const FIRST_PORT: u16 = 18_000;
const PORTS_PER_SERVER: u16 = 10;
/// Servers per test process (one per test of this file).
const SERVERS_PER_PROCESS: u16 = 2;

/// C source of a library declaring a plugin of another ABI version: the declaration's header
/// (the ABI version, then the `previewd-plugin-api` version as pointer and length), which keeps
/// its layout in every ABI version, and nothing after it.
const OTHER_ABI_SOURCE: &str = r#"
#include <stddef.h>
#include <stdint.h>
struct previewd_str { const char *ptr; size_t len; };
struct previewd_header { uint32_t abi_version; struct previewd_str api_version; };
const struct previewd_header PREVIEWD_PLUGIN = { 999, { "9.9.9", 5 } };
"#;

/// C source of a shared library that is no plugin: no `PREVIEWD_PLUGIN`.
const NO_DECLARATION_SOURCE: &str = r#"
int previewd_unrelated(void) { return 42; }
"#;

/// The preview ports of the `index`-th server of this file, as `--port-range` takes them.
fn port_range(index: u16) -> String {
    let block = (std::process::id() % 5) as u16 * SERVERS_PER_PROCESS + index;
    let first = FIRST_PORT + block * PORTS_PER_SERVER;
    format!("{first}-{}", first + PORTS_PER_SERVER - 1)
}

/// The plugin libraries built from this workspace.
struct Built {
    koa: PathBuf,
    panicky: PathBuf,
}

/// Builds the Koa and the panicky plugins once per test process, into the target dir of this
/// test binary (`CARGO_TARGET_DIR`, else the folder holding its profile folder), with its
/// profile.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // <target>/<profile>/deps/<test binary>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary sits in <target>/<profile>/deps");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| profile_dir.parent().expect("target dir").to_path_buf());
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("profile folder name");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut command = Command::new(cargo);
        command
            .current_dir(&workspace)
            .args(["build", "-p", "previewd-plugin-koa"])
            .args(["-p", "previewd-plugin-panicky"])
            .arg("--target-dir")
            .arg(&target_dir);
        match profile {
            "debug" => {}
            "release" => {
                command.arg("--release");
            }
            other => {
                command.args(["--profile", other]);
            }
        }
        let status = command.status().expect("running cargo build");
        assert!(status.success(), "cargo build of the plugins: {status}");
        let library = |crate_name: &str| {
            let path = profile_dir.join(format!(
                "{}{crate_name}{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ));
            assert!(path.is_file(), "{} was built", path.display());
            path
        };
        Built {
            koa: library("previewd_plugin_koa"),
            panicky: library("previewd_plugin_panicky"),
        }
    })
}

/// Compiles C `source` into the shared library `out`.
fn compile_c(source: &str, out: &Path) {
    let c_file = out.with_extension("c");
    std::fs::write(&c_file, source).expect("writing C source");
    let status = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()))
        .args(["-shared", "-fPIC", "-o"])
        .arg(out)
        .arg(&c_file)
        .status()
        .expect("running the C compiler (cc)");
    assert!(status.success(), "cc {}: {status}", c_file.display());
    std::fs::remove_file(&c_file).expect("removing C source");
}

/// A plugins dir holding the Koa and panicky plugins, and four libraries to refuse: another
/// ABI version, no declaration, not a library at all, and a second copy of the Koa plugin
/// (its name is taken by the first, which sorts before it).
fn plugins_dir() -> tempfile::TempDir {
    let built = built();
    let dir = tempfile::tempdir().expect("temp dir");
    let put = |from: &Path, name: &str| {
        std::fs::copy(from, dir.path().join(name)).expect("copying a plugin");
    };
    put(&built.koa, "libpreviewd_plugin_koa.so");
    put(&built.panicky, "libpreviewd_plugin_panicky.so");
    put(&built.koa, "zz-koa-again.so");
    compile_c(OTHER_ABI_SOURCE, &dir.path().join("other-abi.so"));
    compile_c(NO_DECLARATION_SOURCE, &dir.path().join("no-declaration.so"));
    std::fs::write(dir.path().join("garbage.so"), b"not a shared library").expect("garbage");
    std::fs::write(dir.path().join("README.txt"), b"not looked at").expect("readme");
    dir
}

/// The refusal reason of the library named `file` in a listing.
fn refusal<'a>(listing: &'a Value, file: &str) -> &'a str {
    listing["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(file)))
        .and_then(|r| r["reason"].as_str())
        .unwrap_or_else(|| panic!("{file} is refused: {listing:#}"))
}

/// Starts previewd with `plugins` as its plugins dir and the `index`-th port block.
async fn server(plugins: &Path, index: u16) -> ExternalServer {
    let dir = plugins.display().to_string();
    let ports = port_range(index);
    ExternalServer::start(
        previewd_under_test!(),
        &["--plugins-dir", &dir, "--port-range", &ports],
    )
    .await
}

/// `previewd plugins --json` and the table list the built-ins, then the Koa and panicky
/// plugins by file name, and every refused library with a reason that says why: both ABI
/// versions, the missing symbol, the loader's error, the name already taken.
#[test]
fn listing_shows_loaded_and_refused_libraries() {
    let dir = plugins_dir();
    let run = |extra: &[&str]| {
        let mut command = Command::new(previewd_under_test!());
        command.arg("plugins").arg("--plugins-dir").arg(dir.path());
        command.args(extra);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PREVIEWD_") {
                command.env_remove(name);
            }
        }
        let output = command.output().expect("previewd plugins");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).expect("UTF-8 listing")
    };

    let listing: Value = serde_json::from_str(&run(&["--json"])).expect("JSON listing");
    let plugins = listing["plugins"].as_array().expect("plugins");
    let names: Vec<&str> = plugins.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        ["fastapi", "flask", "django", "express", "koa", "panicky"]
    );
    let koa = &plugins[4];
    assert_eq!(koa["builtin"], false);
    assert_eq!(koa["frameworks"], json!(["koa"]));
    assert_eq!(koa["version"], env!("CARGO_PKG_VERSION"));
    assert!(koa["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("libpreviewd_plugin_koa.so")));
    assert!(koa["looks_for"].as_str().unwrap().contains("koa"));
    assert!(plugins[..4]
        .iter()
        .all(|p| p["builtin"] == true && p["path"].is_null()));

    assert_eq!(
        listing["refused"].as_array().unwrap().len(),
        4,
        "{listing:#}"
    );
    let other_abi = refusal(&listing, "other-abi.so");
    assert!(
        other_abi.contains("plugin ABI 999 (previewd-plugin-api 9.9.9)")
            && other_abi.contains(&format!(
                "speaks plugin ABI {} (previewd-plugin-api {})",
                previewd_plugin_api::abi::ABI_VERSION,
                previewd_plugin_api::abi::API_VERSION
            )),
        "{other_abi}"
    );
    assert!(
        refusal(&listing, "no-declaration.so").contains("no `PREVIEWD_PLUGIN` symbol"),
        "{listing:#}"
    );
    assert!(
        refusal(&listing, "garbage.so").starts_with("it cannot be loaded"),
        "{listing:#}"
    );
    let again = refusal(&listing, "zz-koa-again.so");
    assert!(
        again.contains("name `koa` is already taken by")
            && again.contains("libpreviewd_plugin_koa.so"),
        "{again}"
    );

    let table = run(&[]);
    let koa_row = table
        .lines()
        .find(|l| l.starts_with("koa "))
        .unwrap_or_else(|| panic!("a koa row: {table}"));
    assert!(koa_row.contains("libpreviewd_plugin_koa.so"), "{table}");
    assert!(table
        .lines()
        .any(|l| l.starts_with("express ") && l.ends_with("built-in")));
    assert!(table.contains("refused libraries:"), "{table}");
    assert!(
        table.contains("other-abi.so: it was built for plugin ABI 999"),
        "{table}"
    );
}

/// A real Koa app (Koa 3 and @koa/router from npm, through previewd's node env cache) is
/// detected by the loaded Koa plugin while the panicky plugin panics in detection on every
/// upload, lists its routes before launch, launches, answers through the envelope and stops;
/// the listing refusals do not stop the server from starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn koa_app_runs_on_a_loaded_plugin() {
    let dir = plugins_dir();
    let server = server(dir.path(), 0).await;
    let alice = server.client("alice");
    let generation = alice
        .upload_dir(&plugin_fixture("koa", "single_file"))
        .await;

    let info = alice.get(&format!("/generations/{generation}")).await;
    assert_eq!(info.body["framework"], "koa", "{:#}", info.body);

    let endpoints = format!("/generations/{generation}/preview/endpoints");
    let before = alice.get(&endpoints).await;
    assert_eq!(before.status, 200, "{:#}", before.body);
    let statics = expect_routes(&before.body, "static");
    for route in [
        ("GET", "/todos/{id}"),
        ("DELETE", "/todos/{id}"),
        ("ALL", "/livez"),
    ] {
        assert!(
            statics.contains(&(route.0.to_string(), route.1.to_string())),
            "{route:?} in {statics:?}"
        );
    }
    let named = before.body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == "GET" && e["path"] == "/todos/{id}")
        .unwrap();
    assert_eq!(named["summary"], "todo");
    assert_eq!(named["file"], "server.js");
    assert_eq!(named["path_params"], json!(["id"]));

    let launched = tokio::time::timeout(LAUNCH_LIMIT, alice.launch_wait(&generation))
        .await
        .expect("launched in time");
    assert_eq!(launched.status, 200, "{:#}", launched.body);
    assert_eq!(launched.body["status"], "running");
    assert_eq!(launched.body["framework"], "koa");
    let session = launched.body["session_token"].as_str().unwrap().to_string();

    let config = alice
        .get(&format!("/generations/{generation}/preview/config"))
        .await;
    assert_eq!(config.body["framework"], "koa", "{:#}", config.body);
    assert_eq!(config.body["plugin"]["name"], "koa", "{:#}", config.body);
    assert_eq!(config.body["runtime"], "node", "{:#}", config.body);

    let answer = envelope(
        &alice,
        &generation,
        &session,
        &json!({"method": "GET", "path": "/todos/1"}),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.expect("envelope answer");
    assert_eq!(answer["status"], 200, "{answer:#}");
    assert!(
        answer["body"]
            .as_str()
            .is_some_and(|b| b.contains("\"title\":\"first\"")),
        "{answer:#}"
    );

    let after = alice.get(&endpoints).await;
    assert_eq!(after.status, 200, "{:#}", after.body);
    assert_eq!(expect_routes(&after.body, "static"), statics);

    let stopped = alice.stop_preview(&generation).await;
    assert_eq!(stopped.body["status"], "stopped", "{:#}", stopped.body);
}

/// A plugin panicking in detection, launch planning and route extraction: each panic is
/// caught at the library boundary and reported with the plugin, its library and the panic's
/// message; previewd keeps answering and the other plugins keep detecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_in_a_plugin_are_contained() {
    let dir = plugins_dir();
    let server = server(dir.path(), 1).await;
    let bob: Client = server.client("bob");

    // Claimed by the panicky plugin, which then panics in everything else.
    let claimed = bob
        .upload_files(
            "claimed",
            &[("panicky.claim", "yes"), ("main.py", "print(1)\n")],
        )
        .await;
    let info = bob.get(&format!("/generations/{claimed}")).await;
    assert_eq!(info.body["framework"], "panicky", "{:#}", info.body);

    let routes = bob
        .get(&format!("/generations/{claimed}/preview/endpoints"))
        .await;
    assert_eq!(routes.status, 422, "{:#}", routes.body);
    let message = routes.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("plugin `panicky`")
            && message.contains("libpreviewd_plugin_panicky.so")
            && message.contains("panicked while extracting routes")
            && message.contains("panicky panics in routes, on purpose"),
        "{message}"
    );

    let launch = bob.launch_wait(&claimed).await;
    assert_eq!(launch.status, 422, "{:#}", launch.body);
    let message = launch.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("panicked while making the launch plan")
            && message.contains("panicky panics in launch_plan, on purpose"),
        "{message}"
    );

    // Every other upload makes the panicky plugin panic in detection; the others still detect.
    let koa = bob.upload_dir(&plugin_fixture("koa", "esm")).await;
    let info = bob.get(&format!("/generations/{koa}")).await;
    assert_eq!(info.body["framework"], "koa", "{:#}", info.body);
    let express = bob
        .upload_dir(&plugin_fixture("express", "single_file"))
        .await;
    let info = bob.get(&format!("/generations/{express}")).await;
    assert_eq!(info.body["framework"], "express", "{:#}", info.body);
    let routes = bob
        .get(&format!("/generations/{koa}/preview/endpoints"))
        .await;
    assert_eq!(routes.status, 200, "{:#}", routes.body);
    assert!(expect_routes(&routes.body, "static")
        .contains(&("GET".to_string(), "/notes/{id}".to_string())));

    // The server is still up.
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}
