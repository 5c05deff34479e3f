//! Static extraction benchmark: a generated FastAPI project of 2,000 files (routers including
//! routers across packages, plus plain modules), extracted the way `/endpoints` does before a
//! launch. Prints files/s and MB/s, and the time for the first 1,000 files (target < 1 s on one
//! core).
//!
//! Run with `cargo bench -p previewd-e2e --bench extract`.

use std::path::Path;
use std::time::{Duration, Instant};

use previewd::registry::Registry;
use previewd_plugin_api::Project;

/// Routes per router module.
const ROUTES_PER_ROUTER: usize = 5;
/// One module in this many is a router; the rest are models and helpers.
const ROUTER_EVERY: usize = 4;

fn main() {
    let registry = Registry::builtin();
    let plugin = registry.get("fastapi").expect("the fastapi plugin");
    for files in [1_000, 2_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (bytes, routers) = generate(dir.path(), files);
        // Best of three: the figure of the code, not of the machine's other load.
        let mut best = Duration::MAX;
        let mut found = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let project = Project::open(dir.path()).expect("open");
            found = plugin.routes(&project).expect("routes").len();
            best = best.min(started.elapsed());
        }
        let seconds = best.as_secs_f64();
        println!(
            "fastapi, {files:>5} files ({:.1} MB, {routers} routers): {found} routes in {:>7.1} ms  {:>8.0} files/s  {:>6.2} MB/s",
            bytes as f64 / 1e6,
            seconds * 1000.0,
            files as f64 / seconds,
            bytes as f64 / 1e6 / seconds,
        );
        assert_eq!(
            found,
            routers * ROUTES_PER_ROUTER + 1,
            "every generated route is found"
        );
    }
}

/// Writes a project of `files` Python files; returns its size in bytes and its router count.
fn generate(root: &Path, files: usize) -> (u64, usize) {
    let mut bytes = 0u64;
    let mut write = |rel: &str, text: String| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        bytes += text.len() as u64;
        std::fs::write(path, text).expect("write");
    };
    let mut main = String::from("from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get(\"/\")\ndef root():\n    return {}\n\n");
    let mut routers = 0;
    write("app/__init__.py", String::new());
    for i in 0..files.saturating_sub(2) {
        let package = format!("app/area{}", i / 100);
        if i % 100 == 0 {
            write(&format!("{package}/__init__.py"), String::new());
        }
        let module = format!("{package}/module{i}.py");
        if i % ROUTER_EVERY == 0 {
            routers += 1;
            let mut text = format!("\"\"\"Router {i}.\"\"\"\nfrom fastapi import APIRouter\n\nrouter = APIRouter(prefix=\"/r{i}\", tags=[\"r{i}\"])\n\n");
            for r in 0..ROUTES_PER_ROUTER {
                text.push_str(&format!(
                    "\n@router.get(\"/items{r}/{{item_id}}\")\nasync def read_{i}_{r}(item_id: int):\n    \"\"\"Read item {r} of router {i}.\"\"\"\n    return {{\"id\": item_id}}\n\n"
                ));
            }
            write(&module, text);
            main = format!(
                "from app.area{}.module{i} import router as router_{i}\n{main}app.include_router(router_{i}, prefix=\"/v1\")\n",
                i / 100
            );
        } else {
            let text = format!(
                "\"\"\"Helpers {i}.\"\"\"\nfrom dataclasses import dataclass\n\n\n@dataclass\nclass Model{i}:\n    id: int\n    name: str\n\n    def describe(self) -> str:\n        return f\"{{self.id}}: {{self.name}}\"\n\n\ndef helper_{i}(x):\n    return [Model{i}(n, str(n)) for n in range(x)]\n"
            );
            write(&module, text);
        }
    }
    write("app/main.py", main);
    (bytes, routers)
}
