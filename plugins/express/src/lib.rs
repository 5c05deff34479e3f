//! previewd's Express plugin: recognises an Express project, says how to start it on Node, and
//! lists the routes its source declares, all without running it.
//!
//! A project is Express when a `package.json` depends on express; the app's working dir is
//! that file's folder and its entry comes from the scripts, `main` or a conventional name.
//! The plan runs previewd's Node launcher (`runtimes/node/launcher.js`), which forces the port
//! and reports the running app's routes; `.ts` entries go through the project's `tsx` or
//! `ts-node`. Dependencies are installed by the host from `package.json` and its lockfile. A
//! package with Prisma migrations gets `prisma migrate deploy` as its plan's `migrate`.
//!
//! # Layout
//! - this file: the plugin, detection, the launch plan and where the entry is looked for.
//! - `model`: what one source file declares about Express (apps, routers, routes, mounts).
//! - `routes`: route extraction across files (the path rule, shared with the launcher and
//!   other Node plugins, is `previewd_plugin_api::routes::join_path`).
//! - `comments`: a route's summary and description from the comment above it.
//! - `queries/member_calls.scm`: the route and mount calls.
//!
//! Reading JavaScript and TypeScript that is not about Express (`package.json` and the entry,
//! the grammars, imports and exports, module resolution) is `previewd_plugin_javascript`'s.

mod comments;
mod model;
mod routes;

use std::path::Path;

use previewd_plugin_api::{Detection, Endpoint, LaunchPlan, PluginError, Project, RuntimePlugin};
use previewd_plugin_javascript::launch::no_entrypoint;
use previewd_plugin_javascript::package::is_typescript;
use previewd_plugin_javascript::{Entry, EntryRules, NodeApp, Package};

/// The plugin's name, also the `framework` value users pass at launch, and the dependency that
/// makes a package Express.
const NAME: &str = "express";

/// What detection looks for, in words.
const LOOKS_FOR: &str = "a package.json that depends on express, with an entry file \
     (from scripts.start, main or scripts.dev, else server.js, app.js, index.js, src/…, .ts \
     too) or a JavaScript/TypeScript file calling `express()`";

/// Where the entry is looked for: `scripts.start` (`node server.js`, `nodemon src/index.js`,
/// `ts-node src/app.ts`, `node ./bin/www`), `main`, `scripts.dev` or `scripts.serve`
/// (`tsx watch src/index.ts`), else a conventional name; else (see [`found`]) a file calling
/// `express()`.
/// What a warm Node runtime loads before it is handed a project.
const PRELOAD: &[&str] = &["express"];

const ENTRY_RULES: EntryRules = EntryRules {
    later_scripts: &["dev", "serve"],
    conventional: &[
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
    ],
};

/// The Express plugin.
pub struct ExpressPlugin;

/// What detection and the launch plan both need: the package depending on express, its entry
/// (else the file calling `express()`), and the first file calling `express()`.
fn found(project: &Project) -> Result<Option<NodeApp>, PluginError> {
    let Some(package) = Package::find(project, NAME) else {
        return Ok(None);
    };
    let entry = package.entry(project, &ENTRY_RULES);
    let entry_path = entry.as_ref().map(|e| package.dir.join(&e.path));
    let program = routes::load(project, &package.dir, entry_path.as_deref())?;
    let app_file = routes::app_files(&program).next().map(Path::to_path_buf);
    let entry = entry.or_else(|| {
        let path = app_file.as_ref()?.strip_prefix(&package.dir).ok()?;
        Some(Entry {
            path: path.to_path_buf(),
            source: "the file calling express()".to_string(),
        })
    });
    Ok(Some(NodeApp {
        package,
        entry,
        app_file,
    }))
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
        let Some(app) = found(project).ok()? else {
            let program = routes::load(project, Path::new(""), None).ok()?;
            let file = routes::app_files(&program).next()?;
            return Some(Detection {
                confidence: 0.3,
                reason: format!(
                    "{} calls express(), but no package.json depends on express",
                    file.display()
                ),
            });
        };
        Some(app.detection("calls express()"))
    }

    fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError> {
        let app = found(project)?.ok_or_else(|| no_entrypoint(LOOKS_FOR))?;
        let mut plan = app.launch_plan(project, port, LOOKS_FOR, PRELOAD)?;
        // A `.ts` entry runs through the project's TypeScript loader.
        if app.entry.as_ref().is_some_and(|e| is_typescript(&e.path)) {
            plan.args
                .extend(["--loader".to_string(), app.package.loader().to_string()]);
        }
        Ok(plan)
    }

    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        let program = match found(project)? {
            Some(app) => {
                let entry = app.entry.map(|e| app.package.dir.join(e.path));
                routes::load(project, &app.package.dir, entry.as_deref())?
            }
            None => routes::load(project, Path::new(""), None)?,
        };
        Ok(routes::endpoints(&program))
    }
}
