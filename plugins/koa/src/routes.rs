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

use std::path::Path;

use previewd_plugin_api::routes::join_path;
use previewd_plugin_api::{Endpoint, PluginError, Project};
use previewd_plugin_javascript::program::{endpoint, unique_sorted};
use previewd_plugin_javascript::{Grammar, Owner, Sources};

use crate::model::{Calls, Koa, Value};

/// How deep nesting is followed.
const MAX_DEPTH: usize = 16;

/// The JavaScript files of a project, each with its model.
pub(crate) type Program = previewd_plugin_javascript::Program<Calls>;

/// `parent.use(path, child.routes())`, resolved.
struct Nesting {
    parent: Owner,
    child: Owner,
    paths: Vec<String>,
}

/// Reads every JavaScript file (`.js`, `.mjs`, `.cjs`) under `base` (relative to the root).
pub(crate) fn load(project: &Project, base: &Path) -> Result<Program, PluginError> {
    let sources = Sources {
        base,
        grammars: &[Grammar::JavaScript],
        extra: None,
    };
    Program::load(project, &sources)
}

/// The files creating a Koa app, in path order.
pub(crate) fn app_files(program: &Program) -> impl Iterator<Item = &Path> {
    let app = Value::Framework(Koa::App);
    program
        .files()
        .iter()
        .filter(move |(_, m)| m.module.names.values().any(|v| *v == app))
        .map(|(p, _)| p.as_path())
}

/// Every route of every router.
pub(crate) fn endpoints(program: &Program) -> Vec<Endpoint> {
    let nestings = nestings(program);
    let mut found = Vec::new();
    for (index, (_, model)) in program.files().iter().enumerate() {
        for (name, value) in &model.module.names {
            let owner = (index, name.clone());
            let nested = nestings.iter().any(|n| n.child == owner);
            if matches!(value, Value::Framework(Koa::Router { .. })) && !nested {
                walk(program, &owner, "", &nestings, &mut Vec::new(), &mut found);
            }
        }
    }
    unique_sorted(found)
}

/// Every router mounted in another router.
fn nestings(program: &Program) -> Vec<Nesting> {
    let mut nestings = Vec::new();
    for (index, (_, model)) in program.files().iter().enumerate() {
        for mount in &model.calls.mounts {
            let Some(parent) = program.receiver(index, &mount.receiver) else {
                continue;
            };
            if !is_router(program, &parent) {
                continue;
            }
            if let Some(child) = program.resolve(index, &mount.child) {
                if is_router(program, &child) {
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
    program: &Program,
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
    let prefix = format!("{base}/{}", prefix_of(program, router));
    for (index, route) in program.calls_on(router, |c| &c.routes, |r| &r.receiver) {
        let file = &program.files()[index].0;
        for route_path in &route.paths {
            let full = join_path(&prefix, route_path);
            out.push(Endpoint {
                summary: route.name.clone(),
                ..endpoint(&route.method, full, file, route.line)
            });
        }
    }
    for nesting in nestings.iter().filter(|n| n.parent == *router) {
        let paths = match nesting.paths.as_slice() {
            [] => vec![String::new()],
            paths => paths.to_vec(),
        };
        for path in paths {
            let base = format!("{prefix}/{path}");
            walk(program, &nesting.child, &base, nestings, stack, out);
        }
    }
    stack.pop();
}

/// A router's own prefix: the last `prefix()` call on it, else its constructor's option.
fn prefix_of(program: &Program, router: &Owner) -> String {
    let called = program.calls_on(router, |c| &c.prefixes, |p| &p.receiver);
    match (called.last(), program.holds(router)) {
        (Some((_, call)), _) => call.prefix.clone(),
        (None, Some(Koa::Router { prefix })) => prefix.clone(),
        (None, _) => String::new(),
    }
}

fn is_router(program: &Program, router: &Owner) -> bool {
    matches!(program.holds(router), Some(Koa::Router { .. }))
}
