//! What every plugin's tests share (behind the `testing` feature, which the plugins enable in
//! their dev-dependencies): opening a fixture project and the launch snapshot's contents;
//! throwaway projects and the (method, path) pairs of their routes, for edge cases; mangled
//! sources, for inputs that must not panic. The `insta` assertions stay in each plugin's tests,
//! so the snapshots keep their names and folders.

use std::path::Path;

use crate::{Detection, LaunchPlan, Project, RuntimePlugin};

/// The port every launch plan is asked for.
pub const PORT: u16 = 3001;

/// Opens `<manifest_dir>/tests/fixtures/<name>` (pass `env!("CARGO_MANIFEST_DIR")`).
pub fn fixture(manifest_dir: &str, name: &str) -> Project {
    let root = Path::new(manifest_dir).join("tests/fixtures").join(name);
    Project::open(root).unwrap()
}

/// What the launch snapshot holds. A struct rather than a `json!` value so the `f32`
/// confidence prints as written (`0.98`), not widened to `f64`.
#[derive(serde::Serialize)]
pub struct Launch {
    pub detection: Option<Detection>,
    pub launch_plan: Result<LaunchPlan, String>,
}

impl Launch {
    /// `plugin`'s detection of `project` and its launch plan on [`PORT`] (errors as text).
    pub fn of<P: RuntimePlugin + ?Sized>(plugin: &P, project: &Project) -> Launch {
        Launch {
            detection: plugin.detect(project),
            launch_plan: plugin.launch_plan(project, PORT).map_err(|e| e.to_string()),
        }
    }
}

/// A project made of `files` (path, content) in a temporary folder, which lives as long as the
/// returned `TempDir`.
pub fn temp_project(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    let project = Project::open(dir.path()).unwrap();
    (dir, project)
}

/// (method, path) of every route `plugin` extracts from `project`.
pub fn routes_of<P: RuntimePlugin + ?Sized>(
    plugin: &P,
    project: &Project,
) -> Vec<(String, String)> {
    plugin
        .routes(project)
        .unwrap()
        .into_iter()
        .map(|e| (e.method, e.path))
        .collect()
}

/// A source file as hostile or broken input: arbitrary bytes, or `seed` (a real app's source)
/// with bytes overwritten, deleted or inserted, brackets and quotes among them.
pub fn mangled(seed: &'static [u8]) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::collection::vec;
    use proptest::prelude::*;
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"()[]{}<>:;,.='\"`\\@\n".to_vec())
    ];
    let edits = vec((any::<prop::sample::Index>(), 0u8..3, byte), 0..24).prop_map(move |edits| {
        let mut bytes = seed.to_vec();
        for (at, edit, byte) in edits {
            let at = at.index(bytes.len() + 1);
            match edit {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        bytes
    });
    prop_oneof![1 => vec(any::<u8>(), 0..512), 3 => edits]
}
