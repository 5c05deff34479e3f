//! previewd's Express plugin: recognises an Express project, says how to start it on Node, and
//! lists the routes its source declares, all without running it.
//!
//! A project is Express when a `package.json` depends on express; the app's working dir is
//! that file's folder and its entry comes from the scripts, `main` or a conventional name.
//! The plan runs previewd's Node launcher (`runtimes/node/launcher.js`), which forces the port
//! and reports the running app's routes; `.ts` entries go through the project's `tsx` or
//! `ts-node`. Dependencies are installed by the host from `package.json` and its lockfile.
//!
//! # Layout
//! - this file: the plugin, detection and the launch plan.
//! - `package`: the `package.json` depending on express, the entry, the TypeScript loader.
//! - `model`: what one source file declares (apps, routers, imports, exports, routes, mounts).
//! - `routes`: route extraction across files (the path rule, shared with the launcher and
//!   other Node plugins, is `previewd_plugin_api::routes::join_path`).
//! - `comments`: a route's summary and description from the comment above it.
//! - `queries`: the grammars and the tree-sitter queries (`queries/*.scm`).

mod comments;
mod model;
mod package;
mod queries;
mod routes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use previewd_plugin_api::{
    Detection, Endpoint, LaunchPlan, PluginError, Project, Readiness, Runtime, RuntimePlugin,
};

use crate::package::{is_typescript, Entry, Package};
use crate::routes::Program;

/// The plugin's name, also the `framework` value users pass at launch.
const NAME: &str = "express";

/// What detection looks for, in words.
const LOOKS_FOR: &str = "a package.json that depends on express, with an entry file \
     (from scripts.start, main or scripts.dev, else server.js, app.js, index.js, src/…, .ts \
     too) or a JavaScript/TypeScript file calling `express()`";

/// The Express plugin.
pub struct ExpressPlugin;

/// What detection and the launch plan both need.
struct Found {
    package: Package,
    /// Relative to the package folder.
    entry: Option<Entry>,
    /// The first file calling `express()`, relative to the project root.
    app_file: Option<PathBuf>,
}

impl Found {
    fn read(project: &Project) -> Result<Option<Found>, PluginError> {
        let Some(package) = Package::find(project) else {
            return Ok(None);
        };
        let entry = package.entry(project);
        let entry_path = entry.as_ref().map(|e| package.dir.join(&e.path));
        let program = Program::load(project, &package.dir, entry_path.as_deref())?;
        let app_file = program.app_files().next().map(Path::to_path_buf);
        let entry = entry.or_else(|| {
            let path = app_file.as_ref()?.strip_prefix(&package.dir).ok()?;
            Some(Entry {
                path: path.to_path_buf(),
                source: "the file calling express()",
            })
        });
        Ok(Some(Found {
            package,
            entry,
            app_file,
        }))
    }
}

/// `path` as shown to users: relative to the root, `/`-separated.
fn shown(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

impl RuntimePlugin for ExpressPlugin {
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
        let Some(found) = Found::read(project).ok()? else {
            let program = Program::load(project, Path::new(""), None).ok()?;
            let file = program.app_files().next()?;
            return Some(Detection {
                confidence: 0.3,
                reason: format!(
                    "{} calls express(), but no package.json depends on express",
                    shown(file)
                ),
            });
        };
        let mut reason = format!("{} depends on express", shown(&found.package.manifest));
        if let Some(file) = &found.app_file {
            reason.push_str(&format!("; {} calls express()", shown(file)));
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
        let mut args = vec![
            "--entry".to_string(),
            shown(&entry.path),
            "--port".to_string(),
            port.to_string(),
        ];
        if is_typescript(&entry.path) {
            args.extend(["--loader".to_string(), found.package.loader().to_string()]);
        }
        Ok(LaunchPlan {
            runtime: Runtime::Node,
            args,
            env: BTreeMap::new(),
            working_dir: found.package.dir.clone(),
            requirements: vec![found.package.manifest.clone()],
            readiness: Readiness::default(),
        })
    }

    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        let program = match Found::read(project)? {
            Some(found) => {
                let entry = found.entry.map(|e| found.package.dir.join(e.path));
                Program::load(project, &found.package.dir, entry.as_deref())?
            }
            None => Program::load(project, Path::new(""), None)?,
        };
        Ok(program.endpoints())
    }
}
