//! Route report: for each project, the static route table against the table of the same app
//! launched for real, as precision, recall and F1, with the routes each side missed.
//!
//!     cargo run -p previewd-e2e --bin route-report                 # every plugin fixture
//!     cargo run -p previewd-e2e --bin route-report -- DIR [DIR...]  # your own projects

use std::path::{Path, PathBuf};

use previewd_e2e::parity::measure;
use previewd_e2e::TestServer;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs = plugin_fixtures();
    }
    let server = TestServer::start().await;
    let client = server.client("report");
    println!(
        "{:<44} {:<9} {:>6} {:>7} {:>6} {:>6} {:>6}",
        "project", "framework", "static", "runtime", "P", "R", "F1"
    );
    let (mut hits, mut statics, mut runtime) = (0, 0, 0);
    for dir in &dirs {
        let parity = measure(&client, dir).await;
        let name = display_name(dir);
        if let Some(error) = &parity.error {
            println!(
                "{name:<44} {:<9} launch failed: {}",
                parity.framework.as_deref().unwrap_or("-"),
                first_line(error)
            );
            continue;
        }
        println!(
            "{name:<44} {:<9} {:>6} {:>7} {:>6.2} {:>6.2} {:>6.2}",
            parity.framework.as_deref().unwrap_or("-"),
            parity.statics.len(),
            parity.runtime.len(),
            parity.precision(),
            parity.recall(),
            parity.f1()
        );
        for (method, path) in parity.missed() {
            println!("    missed {method} {path}");
        }
        for (method, path) in parity.extra() {
            println!("    extra  {method} {path}");
        }
        hits += parity.statics.intersection(&parity.runtime).count();
        statics += parity.statics.len();
        runtime += parity.runtime.len();
    }
    let (p, r) = (
        hits as f64 / statics.max(1) as f64,
        hits as f64 / runtime.max(1) as f64,
    );
    let f1 = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    println!(
        "{:<44} {:<9} {statics:>6} {runtime:>7} {p:>6.2} {r:>6.2} {f1:>6.2}",
        "all (micro average)", ""
    );
    server.stop().await;
}

/// Every `plugins/<plugin>/tests/fixtures/<case>` folder.
fn plugin_fixtures() -> Vec<PathBuf> {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut dirs = Vec::new();
    for plugin in read_dirs(&plugins) {
        dirs.extend(read_dirs(&plugin.join("tests/fixtures")));
    }
    dirs.sort();
    dirs
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

fn display_name(dir: &Path) -> String {
    let parts: Vec<_> = dir.components().rev().take(4).collect();
    match parts.as_slice() {
        [case, _, _, plugin] => format!(
            "{}/{}",
            plugin.as_os_str().to_string_lossy(),
            case.as_os_str().to_string_lossy()
        ),
        _ => dir.display().to_string(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
