//! previewd's Koa plugin, a third-party plugin built as a shared library and loaded at run
//! time from previewd's plugins dir (`previewd serve --plugins-dir DIR`): it recognises a Koa
//! project, says how to start it on Node, and lists the routes its source declares with
//! @koa/router (or the older koa-router), all without running it. It is also the worked
//! example of `plugins/README.md`: all the host sees is the `RuntimePlugin` impl and the
//! `export_plugin!` line at the bottom of this file.
//!
//! A project is Koa when a `package.json` depends on koa; the app's working dir is that
//! file's folder and its entry comes from `scripts.start`, `main` or a conventional name. The
//! plan runs previewd's Node launcher (`runtimes/node/launcher.js`), which forces the first
//! `listen` of an HTTP server onto the preview's port, so `app.listen(3000)` comes up where
//! previewd probes. The launcher reports running routes for Express only, so the endpoints of a
//! Koa preview are the static ones. Dependencies are installed by the host from `package.json`
//! and its lockfile. A package with Prisma migrations gets `prisma migrate deploy` as its plan's
//! `migrate`.
//!
//! # Layout
//! - this file: the plugin, detection, the launch plan and where the entry is looked for.
//! - `model`: what one source file declares about Koa (classes, apps, routers, routes,
//!   prefixes, mounts).
//! - `routes`: route extraction across files: how routers nest, and their prefixes.
//! - `queries/calls.scm`: the route, prefix and mount calls.
//!
//! Reading JavaScript that is not about Koa is `previewd-plugin-javascript`'s, a library crate
//! the plugin links in like any other dependency: the `package.json` and its entry, parsing,
//! imports and exports, module resolution across files.

mod model;
mod routes;
#[cfg(test)]
mod tests;

use std::path::Path;

use previewd_plugin_api::{
    export_plugin, Detection, Endpoint, LaunchPlan, PluginError, Project, RuntimePlugin,
};
use previewd_plugin_javascript::launch::no_entrypoint;
use previewd_plugin_javascript::{EntryRules, NodeApp, Package};

/// The plugin's name, also the `framework` value users pass at launch, and the dependency that
/// makes a package Koa.
const NAME: &str = "koa";

/// What detection looks for, in words.
const LOOKS_FOR: &str = "a package.json that depends on koa, with an entry file (from \
     scripts.start or main, else index.js, app.js, server.js, main.js, the same under src/, \
     .mjs too)";

/// Where the entry is looked for: `scripts.start` (`node server.js`, `nodemon src/index.js`),
/// `main`, else a conventional name.
/// What a warm Node runtime loads before it is handed a project.
const PRELOAD: &[&str] = &[
    "koa",
    "@koa/router",
    "koa-router",
    "koa-bodyparser",
    "@koa/bodyparser",
];

const ENTRY_RULES: EntryRules = EntryRules {
    later_scripts: &[],
    conventional: &[
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
    ],
};

/// The Koa plugin.
pub struct KoaPlugin;

/// What detection and the launch plan both need: the package depending on koa, its entry, and
/// the first file creating `new Koa()`.
fn found(project: &Project) -> Result<Option<NodeApp>, PluginError> {
    let Some(package) = Package::find(project, NAME) else {
        return Ok(None);
    };
    let program = routes::load(project, &package.dir)?;
    let app_file = routes::app_files(&program).next().map(Path::to_path_buf);
    Ok(Some(NodeApp {
        entry: package.entry(project, &ENTRY_RULES),
        app_file,
        package,
    }))
}

impl RuntimePlugin for KoaPlugin {
    fn name(&self) -> &str {
        NAME
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn looks_for(&self) -> &str {
        LOOKS_FOR
    }

    fn detect(&self, project: &Project) -> Option<Detection> {
        Some(found(project).ok()??.detection("creates `new Koa()`"))
    }

    fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError> {
        let app = found(project)?.ok_or_else(|| no_entrypoint(LOOKS_FOR))?;
        app.launch_plan(project, port, LOOKS_FOR, PRELOAD)
    }

    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        let base = Package::find(project, NAME)
            .map(|p| p.dir)
            .unwrap_or_default();
        Ok(routes::endpoints(&routes::load(project, &base)?))
    }
}

export_plugin!(KoaPlugin);
