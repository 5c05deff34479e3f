//! The project's `package.json`: the shallowest one depending on koa, and the file that starts
//! the app.
//!
//! The entry is, in order: the first file named in `scripts.start` (`node server.js`,
//! `nodemon src/index.js`) that exists, `main` when it exists, else a conventional name
//! (`index.js`, `app.js`, `server.js`, then the same under `src/`, `.mjs` too).

use std::path::{Path, PathBuf};

use previewd_plugin_api::Project;

/// The dependency that makes a project Koa.
const KOA: &str = "koa";
/// Conventional entry names, relative to the package folder, in order of preference.
const CONVENTIONAL: &[&str] = &[
    "index.js",
    "app.js",
    "server.js",
    "main.js",
    "src/index.js",
    "src/app.js",
    "src/server.js",
    "src/main.js",
    "index.mjs",
    "app.mjs",
    "server.mjs",
    "src/index.mjs",
];

/// A `package.json` depending on koa.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// Its path, relative to the project root.
    pub(crate) manifest: PathBuf,
    /// Its folder, relative to the project root (empty for the root): the app's working dir.
    pub(crate) dir: PathBuf,
    parsed: serde_json::Value,
}

/// The entry and how it was chosen.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Relative to the package folder.
    pub(crate) path: PathBuf,
    /// Where it came from (`scripts.start`, `main`, `a conventional name`).
    pub(crate) source: &'static str,
}

impl Package {
    /// The shallowest `package.json` listing koa in `dependencies` or `devDependencies`.
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
            let depends = ["dependencies", "devDependencies"]
                .iter()
                .any(|section| parsed.get(section).and_then(|d| d.get(KOA)).is_some());
            depends.then(|| Package {
                manifest: manifest.clone(),
                dir: manifest.parent().unwrap_or(Path::new("")).to_path_buf(),
                parsed,
            })
        })
    }

    /// The entry (see the module docs), if one exists.
    pub(crate) fn entry(&self, project: &Project) -> Option<Entry> {
        let exists = |rel: &Path| project.has_file(self.dir.join(rel));
        let start = self
            .parsed
            .pointer("/scripts/start")
            .and_then(|s| s.as_str())
            .and_then(|command| {
                command
                    .split(|c: char| c.is_whitespace() || c == '&' || c == ';')
                    .map(|token| token.trim_matches(['"', '\'']))
                    .filter(|token| !token.starts_with('-') && !token.contains('='))
                    .map(normalize)
                    .find(|path| !path.as_os_str().is_empty() && exists(path))
            });
        if let Some(path) = start {
            return Some(Entry {
                path,
                source: "scripts.start",
            });
        }
        let main = self
            .parsed
            .get("main")
            .and_then(|m| m.as_str())
            .map(normalize)
            .filter(|main| exists(main));
        if let Some(path) = main {
            return Some(Entry {
                path,
                source: "main",
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        let project = Project::open(dir.path()).unwrap();
        (dir, project)
    }

    /// The start script wins over `main`, which wins over conventional names.
    #[test]
    fn entry_order() {
        let (_dir, p) = project(&[
            (
                "package.json",
                r#"{"main": "app.js", "scripts": {"start": "NODE_ENV=x node ./src/server.js"}, "dependencies": {"koa": "^3"}}"#,
            ),
            ("app.js", ""),
            ("src/server.js", ""),
            ("index.js", ""),
        ]);
        let entry = Package::find(&p).unwrap().entry(&p).unwrap();
        assert_eq!(entry.path, Path::new("src/server.js"));
        assert_eq!(entry.source, "scripts.start");

        let (_dir, p) = project(&[
            (
                "package.json",
                r#"{"main": "app.js", "scripts": {"start": "node dist/x.js"}, "dependencies": {"koa": "^3"}}"#,
            ),
            ("app.js", ""),
            ("index.js", ""),
        ]);
        assert_eq!(Package::find(&p).unwrap().entry(&p).unwrap().source, "main");

        let (_dir, p) = project(&[
            ("api/package.json", r#"{"devDependencies": {"koa": "^2"}}"#),
            ("api/src/index.js", ""),
        ]);
        let package = Package::find(&p).unwrap();
        assert_eq!(package.dir, Path::new("api"));
        assert_eq!(package.entry(&p).unwrap().path, Path::new("src/index.js"));
    }

    /// A package.json without koa (or a broken one) is not a Koa package.
    #[test]
    fn no_koa_no_package() {
        let (_dir, p) = project(&[("package.json", r#"{"dependencies": {"express": "^5"}}"#)]);
        assert!(Package::find(&p).is_none());
        let (_dir, p) = project(&[("package.json", "{ not json")]);
        assert!(Package::find(&p).is_none());
    }
}
