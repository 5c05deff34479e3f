//! The project's `package.json`: the shallowest one depending on a framework, and the file that
//! starts the app.
//!
//! The entry is, in order: the first file named in `scripts.start` (`node server.js`,
//! `nodemon src/index.js`, `ts-node src/app.ts`, `node ./bin/www`) that exists, `main` when it
//! exists, the first file named in the plugin's later scripts (`scripts.dev`, `scripts.serve`),
//! else the first of the plugin's conventional names that exists ([`EntryRules`]). Scripts
//! naming files that are not there (`node dist/index.js` before a build) are passed over.

use std::path::{Path, PathBuf};

use previewd_plugin_api::Project;

/// TypeScript loaders the Node launcher can use, in order of preference.
const LOADERS: &[&str] = &["tsx", "ts-node"];

/// A `package.json` depending on a framework.
#[derive(Debug, Clone)]
pub struct Package {
    /// Its path, relative to the project root.
    pub manifest: PathBuf,
    /// Its folder, relative to the project root (empty for the root): the app's working dir.
    pub dir: PathBuf,
    /// The dependency it was found by (`express`, `koa`), for detection reasons.
    pub dependency: &'static str,
    parsed: serde_json::Value,
}

/// Where a plugin looks for the entry, besides `scripts.start` and `main`.
#[derive(Debug, Clone, Copy)]
pub struct EntryRules {
    /// Scripts read after `scripts.start` and `main`, in order (`dev`, `serve`).
    pub later_scripts: &'static [&'static str],
    /// Conventional entry names, relative to the package folder, in order of preference.
    pub conventional: &'static [&'static str],
}

/// The entry and how it was chosen.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Relative to the package folder.
    pub path: PathBuf,
    /// Where it came from (`scripts.start`, `main`, `a conventional name`), for the detection
    /// reason.
    pub source: String,
}

impl Package {
    /// The shallowest `package.json` listing `dependency` in `dependencies` or
    /// `devDependencies`.
    pub fn find(project: &Project, dependency: &'static str) -> Option<Package> {
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
                dependency,
                parsed,
            };
            package.depends_on(dependency).then_some(package)
        })
    }

    /// Whether `name` is in `dependencies` or `devDependencies`.
    pub fn depends_on(&self, name: &str) -> bool {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|section| self.parsed.get(section).and_then(|d| d.get(name)).is_some())
    }

    /// The parsed `package.json`.
    pub fn manifest_json(&self) -> &serde_json::Value {
        &self.parsed
    }

    /// The TypeScript loader for a `.ts` entry: the project's `tsx` or `ts-node`, else `tsx`
    /// (the launcher then says that one is needed).
    pub fn loader(&self) -> &'static str {
        LOADERS
            .iter()
            .find(|l| self.depends_on(l))
            .copied()
            .unwrap_or(LOADERS[0])
    }

    /// The entry, by `rules` (see the module docs), if one exists.
    pub fn entry(&self, project: &Project, rules: &EntryRules) -> Option<Entry> {
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
        let entry = |path, source: &str| Entry {
            path,
            source: source.to_string(),
        };
        if let Some(path) = script("start") {
            return Some(entry(path, "scripts.start"));
        }
        if let Some(path) = main() {
            return Some(entry(path, "main"));
        }
        for name in rules.later_scripts {
            if let Some(path) = script(name) {
                return Some(entry(path, &format!("scripts.{name}")));
            }
        }
        rules
            .conventional
            .iter()
            .map(PathBuf::from)
            .find(|p| exists(p))
            .map(|path| entry(path, "a conventional name"))
    }
}

/// `./src/index.js` → `src/index.js`.
fn normalize(token: &str) -> PathBuf {
    PathBuf::from(token.trim_start_matches("./"))
}

/// Whether `path` is TypeScript (and needs a loader).
pub fn is_typescript(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "ts" | "mts" | "cts"))
}

#[cfg(test)]
mod tests {
    use previewd_plugin_api::testing::temp_project;

    use super::*;

    const RULES: EntryRules = EntryRules {
        later_scripts: &["dev"],
        conventional: &["index.js", "src/index.js"],
    };

    /// The start script wins over `main`, which wins over the later scripts, which win over
    /// conventional names; scripts naming missing files are passed over.
    #[test]
    fn entry_order() {
        let (_dir, p) = temp_project(&[
            (
                "package.json",
                br#"{"main": "app.js", "scripts": {"start": "NODE_ENV=x node ./src/server.js"}, "dependencies": {"koa": "^3"}}"#,
            ),
            ("app.js", b""),
            ("src/server.js", b""),
            ("index.js", b""),
        ]);
        let entry = Package::find(&p, "koa").unwrap().entry(&p, &RULES).unwrap();
        assert_eq!(entry.path, Path::new("src/server.js"));
        assert_eq!(entry.source, "scripts.start");

        let (_dir, p) = temp_project(&[
            (
                "package.json",
                br#"{"main": "app.js", "scripts": {"start": "node dist/x.js"}, "dependencies": {"koa": "^3"}}"#,
            ),
            ("app.js", b""),
            ("index.js", b""),
        ]);
        let entry = Package::find(&p, "koa").unwrap().entry(&p, &RULES).unwrap();
        assert_eq!(entry.source, "main");

        let (_dir, p) = temp_project(&[
            (
                "package.json",
                br#"{"scripts": {"dev": "tsx watch src/index.ts"}, "dependencies": {"express": "5"}}"#,
            ),
            ("src/index.ts", b""),
            ("index.js", b""),
        ]);
        let entry = Package::find(&p, "express")
            .unwrap()
            .entry(&p, &RULES)
            .unwrap();
        assert_eq!(entry.path, Path::new("src/index.ts"));
        assert_eq!(entry.source, "scripts.dev");

        let (_dir, p) = temp_project(&[
            ("api/package.json", br#"{"devDependencies": {"koa": "^2"}}"#),
            ("api/src/index.js", b""),
        ]);
        let package = Package::find(&p, "koa").unwrap();
        assert_eq!(package.dir, Path::new("api"));
        let entry = package.entry(&p, &RULES).unwrap();
        assert_eq!(entry.path, Path::new("src/index.js"));
        assert_eq!(entry.source, "a conventional name");
    }

    /// A package.json without the dependency (or a broken one) is not the framework's.
    #[test]
    fn other_dependencies_are_not_found() {
        let (_dir, p) =
            temp_project(&[("package.json", br#"{"dependencies": {"express": "^5"}}"#)]);
        assert!(Package::find(&p, "koa").is_none());
        let (_dir, p) = temp_project(&[("package.json", b"{ not json")]);
        assert!(Package::find(&p, "koa").is_none());
    }

    /// The project's own TypeScript loader, tsx first; tsx when it has none.
    #[test]
    fn loaders() {
        let (_dir, p) = temp_project(&[(
            "package.json",
            br#"{"dependencies": {"express": "5"}, "devDependencies": {"ts-node": "10"}}"#,
        )]);
        assert_eq!(Package::find(&p, "express").unwrap().loader(), "ts-node");
        let (_dir, p) = temp_project(&[("package.json", br#"{"dependencies": {"express": "5"}}"#)]);
        assert_eq!(Package::find(&p, "express").unwrap().loader(), "tsx");
        assert!(is_typescript(Path::new("src/app.mts")));
        assert!(!is_typescript(Path::new("bin/www")));
    }
}
