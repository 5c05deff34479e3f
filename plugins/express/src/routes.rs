//! Route extraction across files: every app is a root; its routes are listed and every router
//! mounted on it (`app.use('/prefix', router)`) is walked under its prefix, following
//! `require` and `import` to the module that exports the router. Routers nobody mounts are not
//! listed (the running app would not serve them either).
//!
//! Paths are written the way the Node launcher writes the running app's table, so the two can
//! be compared: prefix and path joined, repeated slashes collapsed, no trailing slash (except
//! `/`), `:id`, `:id?` and `:id(\d+)` as `{id}`. Tags: a router's routes are tagged with its
//! file's base name (the folder name for `index` files); routes on the app are untagged.

use std::path::Path;

use previewd_plugin_api::routes::join_path as join;
use previewd_plugin_api::{Endpoint, PluginError, Project};
use previewd_plugin_javascript::program::{endpoint, unique_sorted};
use previewd_plugin_javascript::{Grammar, Owner, Sources};

use crate::model::{Calls, Express, Value};

/// How deep mounts are followed.
const MAX_DEPTH: usize = 16;

/// The JavaScript and TypeScript sources of a project, each with its model.
pub(crate) type Program = previewd_plugin_javascript::Program<Calls>;

/// Reads every JavaScript/TypeScript source under `base` (relative to the root), plus `extra`
/// (an extensionless entry such as `bin/www`).
pub(crate) fn load(
    project: &Project,
    base: &Path,
    extra: Option<&Path>,
) -> Result<Program, PluginError> {
    let sources = Sources {
        base,
        grammars: &[Grammar::JavaScript, Grammar::TypeScript],
        extra,
    };
    Program::load(project, &sources)
}

/// The files calling `express()`, in path order.
pub(crate) fn app_files(program: &Program) -> impl Iterator<Item = &Path> {
    program
        .files()
        .iter()
        .filter(|(_, m)| m.calls.creates_app)
        .map(|(p, _)| p.as_path())
}

/// Every route reachable from an app.
pub(crate) fn endpoints(program: &Program) -> Vec<Endpoint> {
    let mut found = Vec::new();
    for (index, (_, model)) in program.files().iter().enumerate() {
        for (name, value) in &model.module.names {
            if *value == Value::Framework(Express::App) {
                let app = (index, name.clone());
                walk(program, &app, "", &mut Vec::new(), &mut found);
            }
        }
    }
    unique_sorted(found)
}

/// Lists the routes of `owner` under `prefix`, then walks what is mounted on it.
fn walk(
    program: &Program,
    owner: &Owner,
    prefix: &str,
    stack: &mut Vec<Owner>,
    out: &mut Vec<Endpoint>,
) {
    if stack.len() > MAX_DEPTH || stack.contains(owner) {
        return;
    }
    stack.push(owner.clone());
    let tags = tags_of(program, owner);
    for (index, route) in program.calls_on(owner, |c| &c.routes, |r| &r.receiver) {
        let file = &program.files()[index].0;
        out.push(Endpoint {
            summary: route.summary.clone(),
            description: route.description.clone(),
            tags: tags.clone(),
            ..endpoint(&route.method, join(prefix, &route.path), file, route.line)
        });
    }
    for (index, mount) in program.calls_on(owner, |c| &c.mounts, |m| &m.receiver) {
        if let Some(child) = program.resolve(index, &mount.child) {
            let prefix = format!("{prefix}/{}", mount.prefix);
            walk(program, &child, &prefix, stack, out);
        }
    }
    stack.pop();
}

/// A router's tags: its file's base name, or its folder's for `index` files; none for apps.
fn tags_of(program: &Program, owner: &Owner) -> Vec<String> {
    if program.holds(owner) == Some(&Express::App) {
        return Vec::new();
    }
    let path = &program.files()[owner.0].0;
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
