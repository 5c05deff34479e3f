//! previewd's Koa plugin, a third-party plugin built as a shared library and loaded at run
//! time from previewd's plugins dir (`previewd serve --plugins-dir DIR`): it recognises a Koa
//! project, says how to start it on Node, and lists the routes its source declares with
//! @koa/router (or the older koa-router), all without running it. It is also the worked
//! example of `plugins/README.md`: everything previewd-specific is the `RuntimePlugin` impl
//! and the `export_plugin!` line at the bottom of this file.
//!
//! A project is Koa when a `package.json` depends on koa; the app's working dir is that
//! file's folder and its entry comes from `scripts.start`, `main` or a conventional name. The
//! plan runs previewd's Node launcher (`runtimes/node/launcher.js`), which forces the first
//! `listen` of an HTTP server onto the preview's port, so `app.listen(3000)` comes up where
//! previewd probes. The launcher reports running routes for Express only, so the endpoints of a
//! Koa preview are the static ones. Dependencies are installed by the host from `package.json`
//! and its lockfile.
//!
//! # Layout
//! - this file: the plugin, detection and the launch plan.
//! - `package`: the `package.json` depending on koa, and the entry.
//! - `model`: what one source file declares (classes, apps, routers, routes, prefixes, mounts,
//!   imports, exports).
//! - `routes`: route extraction across files and the path rule.
//! - `queries`: the grammar and the tree-sitter queries (`queries/*.scm`).

mod model;
mod package;
mod queries;
mod routes;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use previewd_plugin_api::{
    export_plugin, Detection, Endpoint, LaunchPlan, PluginError, Project, Readiness, Runtime,
    RuntimePlugin,
};

use crate::package::{Entry, Package};
use crate::routes::Program;

/// The plugin's name, also the `framework` value users pass at launch.
const NAME: &str = "koa";

/// What detection looks for, in words.
const LOOKS_FOR: &str = "a package.json that depends on koa, with an entry file (from \
     scripts.start or main, else index.js, app.js, server.js, main.js, the same under src/, \
     .mjs too)";

/// The Koa plugin.
pub struct KoaPlugin;

/// What detection and the launch plan both need.
struct Found {
    package: Package,
    /// Relative to the package folder.
    entry: Option<Entry>,
    /// The first file creating `new Koa()`, relative to the project root.
    app_file: Option<PathBuf>,
}

impl Found {
    fn read(project: &Project) -> Result<Option<Found>, PluginError> {
        let Some(package) = Package::find(project) else {
            return Ok(None);
        };
        let entry = package.entry(project);
        let program = Program::load(project, &package.dir)?;
        let app_file = program.app_files().next().map(Path::to_path_buf);
        Ok(Some(Found {
            package,
            entry,
            app_file,
        }))
    }
}

/// `path` as shown to users.
fn shown(path: &Path) -> String {
    path.to_string_lossy().into_owned()
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
        let found = Found::read(project).ok()??;
        let mut reason = format!("{} depends on koa", shown(&found.package.manifest));
        if let Some(file) = &found.app_file {
            reason.push_str(&format!("; {} creates `new Koa()`", shown(file)));
        }
        if let Some(entry) = &found.entry {
            let path = found.package.dir.join(&entry.path);
            if found.app_file.as_ref() != Some(&path) {
                reason.push_str(&format!("; {} starts it ({})", shown(&path), entry.source));
            }
        }
        let confidence = match (&found.app_file, &found.entry) {
            (Some(_), Some(_)) => 0.95,
            (None, Some(_)) => 0.7,
            _ => 0.5,
        };
        Some(Detection { confidence, reason })
    }

    fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError> {
        let no_entry = || PluginError::NoEntrypoint {
            looked_for: LOOKS_FOR.to_string(),
        };
        let found = Found::read(project)?.ok_or_else(no_entry)?;
        let entry = found.entry.ok_or_else(no_entry)?;
        Ok(LaunchPlan {
            runtime: Runtime::Node,
            args: vec![
                "--entry".to_string(),
                shown(&entry.path),
                "--port".to_string(),
                port.to_string(),
            ],
            env: BTreeMap::new(),
            working_dir: found.package.dir.clone(),
            requirements: vec![found.package.manifest.clone()],
            readiness: Readiness::default(),
        })
    }

    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        let base = Package::find(project).map(|p| p.dir).unwrap_or_default();
        Ok(Program::load(project, &base)?.endpoints())
    }
}

export_plugin!(KoaPlugin);
