//! The project's `package.json`: which one depends on express, and which file starts the app.
//!
//! The entry is, in order: the first file named in `scripts.start` (`node server.js`,
//! `nodemon src/index.js`, `ts-node src/app.ts`, `node ./bin/www`), in `main`, in `scripts.dev`
//! or `scripts.serve` (`tsx watch src/index.ts`), that exists; else a conventional name
//! (`server.js`, `app.js`, `index.js`, `src/…`, `.ts` too); else (decided by the caller) a
//! file calling `express()`. Scripts naming files that are not there (`node dist/index.js`
//! before a build) are passed over.

use std::path::{Path, PathBuf};

use previewd_plugin_api::Project;

/// Conventional entry names, relative to the package folder, in order of preference.
const CONVENTIONAL: &[&str] = &[
    "server.js",
    "app.js",
    "index.js",
    "main.js",
    "server.ts",
    "app.ts",
    "index.ts",
    "main.ts",
    "src/server.js",
    "src/app.js",
    "src/index.js",
    "src/main.js",
    "src/server.ts",
    "src/app.ts",
    "src/index.ts",
    "src/main.ts",
    "server.mjs",
    "app.mjs",
    "index.mjs",
    "src/index.mjs",
];
/// The scripts read for an entry, after `start` and `main`.
const LATER_SCRIPTS: &[&str] = &["dev", "serve"];
/// TypeScript loaders the launcher can use, in order of preference.
const LOADERS: &[&str] = &["tsx", "ts-node"];

/// A `package.json` depending on express.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// Its path, relative to the project root.
    pub(crate) manifest: PathBuf,
    /// Its folder, relative to the project root (empty for the root): the app's working dir.
    pub(crate) dir: PathBuf,
    parsed: serde_json::Value,
}

/// How the entry was chosen.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Relative to the package folder.
    pub(crate) path: PathBuf,
    /// Where it came from, e.g. `scripts.start`, for the detection reason.
    pub(crate) source: &'static str,
}

impl Package {
    /// The shallowest `package.json` listing express in `dependencies` or `devDependencies`.
    pub(crate) fn find(project: &Project) -> Option<Package> {
        let mut manifests: Vec<&PathBuf> = project
            .files()
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "package.json"))
            .collect();
        manifests.sort_by_key(|p| p.components().count());
        manifests.into_iter().find_map(|manifest| {
            let text = project.read_to_string(manifest).ok()?;
            let parsed: serde_json::Value = serde_json::from_str(&text).ok()?;
            let package = Package {
                manifest: manifest.clone(),
                dir: manifest.parent().unwrap_or(Path::new("")).to_path_buf(),
                parsed,
            };
            package.depends_on("express").then_some(package)
        })
    }

    /// Whether `name` is in `dependencies` or `devDependencies`.
    pub(crate) fn depends_on(&self, name: &str) -> bool {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|section| self.parsed.get(section).and_then(|d| d.get(name)).is_some())
    }

    /// The TypeScript loader for a `.ts` entry: the project's `tsx` or `ts-node`, else `tsx`
    /// (the launcher then says that one is needed).
    pub(crate) fn loader(&self) -> &'static str {
        LOADERS
            .iter()
            .find(|l| self.depends_on(l))
            .copied()
            .unwrap_or(LOADERS[0])
    }

    /// The entry, from the scripts, `main` or a conventional name (see the module docs).
    pub(crate) fn entry(&self, project: &Project) -> Option<Entry> {
        let exists = |rel: &Path| project.has_file(self.dir.join(rel));
        let script = |name: &str| -> Option<PathBuf> {
            let command = self.parsed.get("scripts")?.get(name)?.as_str()?;
            command
                .split(|c: char| c.is_whitespace() || c == '&' || c == ';')
                .map(|token| token.trim_matches(['"', '\'']))
                .filter(|token| !token.starts_with('-') && !token.contains('='))
                .map(normalize)
                .find(|path| !path.as_os_str().is_empty() && exists(path))
        };
        let main = || {
            let main = normalize(self.parsed.get("main")?.as_str()?);
            exists(&main).then_some(main)
        };
        if let Some(path) = script("start") {
            return Some(Entry {
                path,
                source: "scripts.start",
            });
        }
        if let Some(path) = main() {
            return Some(Entry {
                path,
                source: "main",
            });
        }
        for name in LATER_SCRIPTS {
            if let Some(path) = script(name) {
                let source = if *name == "dev" {
                    "scripts.dev"
                } else {
                    "scripts.serve"
                };
                return Some(Entry { path, source });
            }
        }
        CONVENTIONAL
            .iter()
            .map(PathBuf::from)
            .find(|p| exists(p))
            .map(|path| Entry {
                path,
                source: "a conventional name",
            })
    }
}

/// `./src/index.js` → `src/index.js`.
fn normalize(token: &str) -> PathBuf {
    PathBuf::from(token.trim_start_matches("./"))
}

/// Whether `path` is TypeScript (and needs a loader).
pub(crate) fn is_typescript(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "ts" | "mts" | "cts"))
}
