//! Route extraction across files. Every router is found (`new Router()` in any file) with its
//! own prefix (the constructor's `prefix` option, else the last `router.prefix()` call);
//! routers nested in another (`parent.use('/p', child.routes())`, across `require` and
//! `import` too) are listed under the parent's prefix and the mount path, the others (mounted
//! on the app with `app.use(router.routes())`, or not mounted at all) from the root.
//!
//! Paths are those @koa/router serves: parent prefix, mount path, router prefix and route path
//! joined by the path rule of Node routers (`previewd_plugin_api::routes::join_path`: repeated
//! slashes collapsed, no trailing slash, `:id`, `:id?`, `:id(\d+)` written `{id}`). A named
//! route's name is its summary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use previewd_plugin_api::project::normalize;
use previewd_plugin_api::routes::join_path;
use previewd_plugin_api::{Endpoint, PluginError, Project};

use crate::model::{Export, FileModel, Value};
use crate::queries;

/// How deep nesting is followed (and how long an import chain may be).
const MAX_DEPTH: usize = 16;
/// Extensions tried when a relative import leaves its extension out.
const RESOLVE_EXTENSIONS: &[&str] = &["js", "mjs", "cjs"];
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
];

/// The JavaScript files of a project, each with its model.
pub(crate) struct Program {
    files: Vec<(PathBuf, FileModel)>,
}

/// A router or app: the file declaring it and its name there.
type Owner = (usize, String);

/// `parent.use(path, child.routes())`, resolved.
struct Nesting {
    parent: Owner,
    child: Owner,
    paths: Vec<String>,
}

impl Program {
    /// Reads every JavaScript file under `base` (relative to the root).
    pub(crate) fn load(project: &Project, base: &Path) -> Result<Program, PluginError> {
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
            if !queries::is_source(path) {
                continue;
            }
            let text = project
                .read_to_string(path)
                .map_err(|source| PluginError::Io {
                    path: name.into_owned(),
                    source,
                })?;
            files.push((path.clone(), FileModel::read(&text)?));
        }
        Ok(Program { files })
    }

    /// The files creating a Koa app, in path order.
    pub(crate) fn app_files(&self) -> impl Iterator<Item = &Path> {
        self.files
            .iter()
            .filter(|(_, m)| m.creates_app())
            .map(|(p, _)| p.as_path())
    }

    /// Every route of every router.
    pub(crate) fn endpoints(&self) -> Vec<Endpoint> {
        let nestings = self.nestings();
        let mut found = Vec::new();
        for (index, (_, model)) in self.files.iter().enumerate() {
            for (name, value) in &model.names {
                let owner = (index, name.clone());
                let nested = nestings.iter().any(|n| n.child == owner);
                if matches!(value, Value::Router { .. }) && !nested {
                    self.walk(&owner, "", &nestings, &mut Vec::new(), &mut found);
                }
            }
        }
        let mut seen = BTreeSet::new();
        found.retain(|e: &Endpoint| seen.insert((e.method.clone(), e.path.clone())));
        found.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
        found
    }

    /// Every router mounted in another router.
    fn nestings(&self) -> Vec<Nesting> {
        let mut nestings = Vec::new();
        for (index, (_, model)) in self.files.iter().enumerate() {
            for mount in &model.mounts {
                let Some(parent) = self.resolve(index, &Value::Alias(mount.receiver.clone()))
                else {
                    continue;
                };
                if !self.is_router(&parent) {
                    continue;
                }
                if let Some(child) = self.resolve(index, &mount.child) {
                    if self.is_router(&child) {
                        nestings.push(Nesting {
                            parent,
                            child,
                            paths: mount.paths.clone(),
                        });
                    }
                }
            }
        }
        nestings
    }

    /// Lists the routes of `router` under `base`, then those of the routers nested in it.
    fn walk(
        &self,
        router: &Owner,
        base: &str,
        nestings: &[Nesting],
        stack: &mut Vec<Owner>,
        out: &mut Vec<Endpoint>,
    ) {
        if stack.len() > MAX_DEPTH || stack.contains(router) {
            return;
        }
        stack.push(router.clone());
        let prefix = format!("{base}/{}", self.prefix_of(router));
        for (index, (path, model)) in self.files.iter().enumerate() {
            for route in &model.routes {
                if self
                    .resolve(index, &Value::Alias(route.receiver.clone()))
                    .as_ref()
                    != Some(router)
                {
                    continue;
                }
                for route_path in &route.paths {
                    let full = join_path(&prefix, route_path);
                    out.push(Endpoint {
                        method: route.method.clone(),
                        path_params: Endpoint::params_of(&full),
                        path: full,
                        summary: route.name.clone(),
                        description: None,
                        tags: Vec::new(),
                        file: Some(path.to_string_lossy().into_owned()),
                        line: Some(route.line),
                    });
                }
            }
        }
        for nesting in nestings.iter().filter(|n| n.parent == *router) {
            let paths = match nesting.paths.as_slice() {
                [] => vec![String::new()],
                paths => paths.to_vec(),
            };
            for path in paths {
                let base = format!("{prefix}/{path}");
                self.walk(&nesting.child, &base, nestings, stack, out);
            }
        }
        stack.pop();
    }

    /// A router's own prefix: the last `prefix()` call on it, else its constructor's option.
    fn prefix_of(&self, router: &Owner) -> String {
        let mut prefix = match self.files[router.0].1.names.get(&router.1) {
            Some(Value::Router { prefix }) => prefix.clone(),
            _ => String::new(),
        };
        for (index, (_, model)) in self.files.iter().enumerate() {
            for call in &model.prefixes {
                if self
                    .resolve(index, &Value::Alias(call.receiver.clone()))
                    .as_ref()
                    == Some(router)
                {
                    prefix = call.prefix.clone();
                }
            }
        }
        prefix
    }

    fn is_router(&self, (index, name): &Owner) -> bool {
        matches!(
            self.files[*index].1.names.get(name),
            Some(Value::Router { .. })
        )
    }

    /// The app or router a value of file `index` refers to, across imports.
    fn resolve(&self, index: usize, value: &Value) -> Option<Owner> {
        let (mut index, mut value) = (index, value.clone());
        for _ in 0..MAX_DEPTH {
            let model = &self.files[index].1;
            match value {
                Value::Alias(ref name) => match model.names.get(name)? {
                    Value::App | Value::Router { .. } => return Some((index, name.clone())),
                    other => value = other.clone(),
                },
                Value::Import {
                    ref module,
                    ref export,
                } => {
                    index = self.module(index, module)?;
                    let exports = &self.files[index].1.exports;
                    value = match export {
                        Export::Whole | Export::Default => exports.get("default"),
                        Export::Named(name) => exports.get(name),
                    }?
                    .clone();
                }
                _ => return None,
            }
        }
        None
    }

    /// The file a relative module specifier of file `from` names.
    fn module(&self, from: usize, specifier: &str) -> Option<usize> {
        let dir = self.files[from].0.parent().unwrap_or(Path::new(""));
        let target = normalize(&dir.join(specifier))?;
        let mut candidates = vec![target.clone()];
        for ext in RESOLVE_EXTENSIONS {
            let mut with_ext = target.clone().into_os_string();
            with_ext.push(format!(".{ext}"));
            candidates.push(with_ext.into());
            candidates.push(target.join(format!("index.{ext}")));
        }
        candidates
            .iter()
            .find_map(|c| self.files.iter().position(|(p, _)| p == c))
    }
}
