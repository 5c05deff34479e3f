//! previewd's FastAPI plugin: recognises a FastAPI project, says how to start it, and lists
//! the routes its source declares, all without running it.
//!
//! The Python reading (parsing, imports, literals) comes from `previewd-plugin-python`; this
//! crate adds what is FastAPI's: which calls create apps and routers, how routers nest, what a
//! route's summary and description default to.
//!
//! # Layout
//! - this file: the plugin, detection and the launch plan.
//! - `model`: apps, routers, app factories and includes, read from the code.
//! - `entry`: which app to launch and from which folder, as which module.
//! - `manifests`: the manifest that lists fastapi and the FastAPI version it pins.
//! - `routes`: route extraction.
//! - `queries`: the tree-sitter queries (`queries/*.scm`).

mod entry;
mod manifests;
mod model;
mod queries;
mod routes;

use std::collections::BTreeMap;
use std::path::PathBuf;

use previewd_plugin_api::{
    Detection, Endpoint, LaunchPlan, PluginError, Project, Readiness, Runtime, RuntimePlugin,
};
use previewd_plugin_python::dependency_manifests::requirements;
use previewd_plugin_python::migrations::alembic_upgrade;
use previewd_plugin_python::modules::{is_test_path, parent_dir};
use previewd_plugin_python::Program;

use crate::model::Model;

/// The plugin's name, also the `--framework` value of the launcher.
const NAME: &str = "fastapi";

/// What detection looks for, in words.
/// What a warm Python runtime imports before it is handed a project: FastAPI and uvicorn (the
/// server previewd serves it with), with what uvicorn picks at start-up (protocols, loop,
/// lifespan) and what FastAPI imports on its first body model (`pydantic.v1`). Together they
/// are nearly all of a cold start.
const PRELOAD: &[&str] = &[
    "fastapi",
    "uvicorn",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvloop",
    "anyio._backends._asyncio",
    "encodings.idna",
    "pydantic.v1",
];

const LOOKS_FOR: &str = "a Python file that creates `FastAPI()` (main.py, app/main.py, src/…) \
     or an app factory returning one, or fastapi in requirements.txt/pyproject.toml";

/// The strongest evidence detection found.
#[derive(Clone, Copy)]
enum Evidence {
    /// A module-level app (`app = FastAPI()`, `app = create_app()`).
    App,
    /// Only an app factory.
    Factory,
    /// Code imports fastapi, but no app was found.
    Import,
    /// Only a dependency manifest lists fastapi.
    Manifest,
}

/// How sure detection is, given its evidence and whether a manifest lists fastapi too.
fn confidence(evidence: Evidence, listed: bool) -> f32 {
    match (evidence, listed) {
        (Evidence::App, true) => 0.98,
        (Evidence::App, false) => 0.9,
        (Evidence::Factory, true) => 0.93,
        (Evidence::Factory, false) => 0.85,
        (Evidence::Import, true) => 0.4,
        (Evidence::Import, false) => 0.3,
        (Evidence::Manifest, _) => 0.25,
    }
}

/// The FastAPI plugin.
pub struct FastApiPlugin;

impl RuntimePlugin for FastApiPlugin {
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
        let program = Program::load(project).ok()?;
        let model = Model::build(&program).ok()?;
        let manifest = manifests::listing_fastapi(project);
        let listed = manifest.is_some();
        let listed_by = manifest
            .as_deref()
            .map(|m| format!("; {m} lists fastapi"))
            .unwrap_or_default();
        if let Some(launch) = entry::choose(&model) {
            let path = program.source(launch.entry.file).path();
            let evidence = match launch.entry.factory {
                true => Evidence::Factory,
                false => Evidence::App,
            };
            return Some(Detection {
                confidence: confidence(evidence, listed),
                reason: format!("{path} {}{listed_by}", launch.entry.how),
            });
        }
        let importer = program.files().find(|(id, source)| {
            !is_test_path(source.path())
                && program
                    .imports(*id)
                    .iter()
                    .any(|i| i.level == 0 && i.module.split('.').next() == Some(NAME))
        });
        let (evidence, found) = match (importer, manifest) {
            (Some((_, source)), _) => (
                Evidence::Import,
                format!("{} imports fastapi{listed_by}", source.path()),
            ),
            (None, Some(manifest)) => (Evidence::Manifest, format!("{manifest} lists fastapi")),
            (None, None) => return None,
        };
        Some(Detection {
            confidence: confidence(evidence, listed),
            reason: format!("{found}, but no file creates `FastAPI()`"),
        })
    }

    fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError> {
        let program = Program::load(project)?;
        let model = Model::build(&program)?;
        let launch = entry::choose(&model).ok_or_else(|| PluginError::NoEntrypoint {
            looked_for: LOOKS_FOR.to_string(),
        })?;
        let entry_dir = parent_dir(program.source(launch.entry.file).path());
        let mut args: Vec<String> = [
            "--framework",
            NAME,
            "--app",
            &format!("{}:{}", launch.module, launch.entry.attr),
            "--port",
            &port.to_string(),
        ]
        .map(String::from)
        .into();
        if launch.entry.factory {
            args.push("--factory".to_string());
        }
        Ok(LaunchPlan {
            runtime: Runtime::Python,
            args,
            env: BTreeMap::new(),
            working_dir: PathBuf::from(&launch.working_dir),
            requirements: requirements(project, entry_dir),
            readiness: Readiness::default(),
            preload: PRELOAD.iter().map(|m| m.to_string()).collect(),
            migrate: alembic_upgrade(project, &launch.working_dir),
        })
    }

    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        let program = Program::load(project)?;
        let model = Model::build(&program)?;
        // The FastAPI version comes from the manifest installed for the app that launches.
        let entry_dir = entry::choose(&model).map_or("", |launch| {
            parent_dir(program.source(launch.entry.file).path())
        });
        routes::extract(&model, manifests::includes_copy_routes(project, entry_dir))
    }
}
