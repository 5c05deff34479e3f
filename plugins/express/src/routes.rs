//! Route extraction across files: every app is a root; its routes are listed and every router
//! mounted on it (`app.use('/prefix', router)`) is walked under its prefix, following
//! `require` and `import` to the module that exports the router. Routers nobody mounts are not
//! listed (the running app would not serve them either).
//!
//! Paths are written the way the Node launcher writes the running app's table, so the two can
//! be compared: prefix and path joined, repeated slashes collapsed, no trailing slash (except
//! `/`), `:id`, `:id?` and `:id(\d+)` as `{id}`. Tags: a router's routes are tagged with its
//! file's base name (the folder name for `index` files); routes on the app are untagged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use previewd_plugin_api::project::normalize;
use previewd_plugin_api::routes::join_path as join;
use previewd_plugin_api::{Endpoint, PluginError, Project};

use crate::model::{Export, FileModel, Value};
use crate::queries::Grammar;

/// How deep mounts are followed (and how long an import chain may be).
const MAX_DEPTH: usize = 16;
/// Extensions tried when a relative import leaves its extension out.
const RESOLVE_EXTENSIONS: &[&str] = &["js", "ts", "mjs", "cjs", "mts", "cts"];
/// Folders holding build output, tests or frontend assets: never read as the app's source.
const SKIPPED_DIRS: &[&str] = &[
    "dist",
    "build",
    "out",
    "coverage",
    "public",
    "test",
    "tests",
    "__tests__",
    "e2e",
];

/// The source files of a project, each with its model.
pub(crate) struct Program {
    files: Vec<(PathBuf, FileModel)>,
}

/// An app or router: the file declaring it and its name there.
type Owner = (usize, String);

impl Program {
    /// Reads every JavaScript/TypeScript source under `base` (relative to the root), plus
    /// `extra` (an extensionless entry such as `bin/www`).
    pub(crate) fn load(
        project: &Project,
        base: &Path,
        extra: Option<&Path>,
    ) -> Result<Program, PluginError> {
        let mut files = Vec::new();
        for path in project.files() {
            let Ok(inside) = path.strip_prefix(base) else {
                continue;
            };
            let skipped = inside.components().any(|c| {
                c.as_os_str()
                    .to_str()
                    .is_some_and(|c| SKIPPED_DIRS.contains(&c))
            });
            let name = path.to_string_lossy();
            if skipped || name.contains(".test.") || name.contains(".spec.") {
                continue;
            }
            let grammar = match Grammar::for_path(path) {
                Some(grammar) => grammar,
                None if Some(path.as_path()) == extra => Grammar::JavaScript,
                None => continue,
            };
            let text = project
                .read_to_string(path)
                .map_err(|source| PluginError::Io {
                    path: path.to_string_lossy().into_owned(),
                    source,
                })?;
            files.push((path.clone(), FileModel::read(&text, grammar)?));
        }
        Ok(Program { files })
    }

    /// The files calling `express()`, in path order.
    pub(crate) fn app_files(&self) -> impl Iterator<Item = &Path> {
        self.files
            .iter()
            .filter(|(_, m)| m.creates_app)
            .map(|(p, _)| p.as_path())
    }

    /// Every route reachable from an app.
    pub(crate) fn endpoints(&self) -> Vec<Endpoint> {
        let mut found = Vec::new();
        for (index, (_, model)) in self.files.iter().enumerate() {
            for (name, value) in &model.names {
                if *value == Value::App {
                    self.walk(&(index, name.clone()), "", &mut Vec::new(), &mut found);
                }
            }
        }
        let mut seen = BTreeSet::new();
        found.retain(|e: &Endpoint| seen.insert((e.method.clone(), e.path.clone())));
        found.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
        found
    }

    /// Lists the routes of `owner` under `prefix`, then walks what is mounted on it.
    fn walk(&self, owner: &Owner, prefix: &str, stack: &mut Vec<Owner>, out: &mut Vec<Endpoint>) {
        if stack.len() > MAX_DEPTH || stack.contains(owner) {
            return;
        }
        stack.push(owner.clone());
        let tags = self.tags_of(owner);
        for (index, (path, model)) in self.files.iter().enumerate() {
            for route in &model.routes {
                if self
                    .resolve(index, &Value::Alias(route.receiver.clone()))
                    .as_ref()
                    != Some(owner)
                {
                    continue;
                }
                let full = join(prefix, &route.path);
                out.push(Endpoint {
                    method: route.method.clone(),
                    path_params: Endpoint::params_of(&full),
                    path: full,
                    summary: route.summary.clone(),
                    description: route.description.clone(),
                    tags: tags.clone(),
                    file: Some(path.to_string_lossy().into_owned()),
                    line: Some(route.line),
                });
            }
        }
        for (index, (_, model)) in self.files.iter().enumerate() {
            for mount in &model.mounts {
                if self
                    .resolve(index, &Value::Alias(mount.receiver.clone()))
                    .as_ref()
                    != Some(owner)
                {
                    continue;
                }
                if let Some(child) = self.resolve(index, &mount.child) {
                    let prefix = format!("{prefix}/{}", mount.prefix);
                    self.walk(&child, &prefix, stack, out);
                }
            }
        }
        stack.pop();
    }

    /// The app or router a value of file `index` refers to, across imports.
    fn resolve(&self, index: usize, value: &Value) -> Option<Owner> {
        let (mut index, mut value) = (index, value.clone());
        for _ in 0..MAX_DEPTH {
            let model = &self.files[index].1;
            match value {
                Value::Alias(ref name) => match model.names.get(name)? {
                    Value::App | Value::Router => return Some((index, name.clone())),
                    other => value = other.clone(),
                },
                Value::Import {
                    ref module,
                    ref export,
                } => {
                    index = self.module(index, module)?;
                    let exports = &self.files[index].1.exports;
                    let exported = match export {
                        Export::Whole | Export::Default => exports.get("default"),
                        Export::Named(name) => exports.get(name),
                    };
                    value = exported?.clone();
                }
                Value::App | Value::Router | Value::Text(_) => return None,
            }
        }
        None
    }

    /// The file a relative module specifier of file `from` names.
    fn module(&self, from: usize, specifier: &str) -> Option<usize> {
        if !specifier.starts_with('.') {
            return None;
        }
        let dir = self.files[from].0.parent().unwrap_or(Path::new(""));
        let target = normalize(&dir.join(specifier))?;
        let stem = target.with_extension("");
        let mut candidates = vec![target.clone()];
        for ext in RESOLVE_EXTENSIONS {
            // `./users.js` in TypeScript sources names `users.ts`.
            candidates.push(stem.with_extension(ext));
            let mut with_ext = target.clone().into_os_string();
            with_ext.push(format!(".{ext}"));
            candidates.push(with_ext.into());
            candidates.push(target.join(format!("index.{ext}")));
        }
        candidates
            .iter()
            .find_map(|c| self.files.iter().position(|(p, _)| p == c))
    }

    /// A router's tags: its file's base name, or its folder's for `index` files; none for apps.
    fn tags_of(&self, (index, name): &Owner) -> Vec<String> {
        let (path, model) = &self.files[*index];
        if model.names.get(name) == Some(&Value::App) {
            return Vec::new();
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let tag = match stem {
            "index" => path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or(stem),
            _ => stem,
        };
        vec![tag.to_string()]
    }
}
