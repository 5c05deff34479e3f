//! previewd's Flask plugin: recognises a Flask project, says how to start it, and lists the
//! URL rules its source declares, all without running it.
//!
//! The Python reading (parsing, imports, literals, the launch module) comes from
//! `previewd-plugin-python`; this crate adds what is Flask's: which calls create apps and
//! blueprints, how blueprints nest and join prefixes, class-based views, and the `flask run`
//! conventions for finding the app.
//!
//! # Layout
//! - this file: the plugin, detection and the launch plan.
//! - `model`: apps, blueprints, app factories and blueprint registrations, read from the code.
//! - `entry`: which app to launch (`FLASK_APP`, conventional files and names).
//! - `routes`: route extraction.
//! - `rules`: Flask's rule joining and Werkzeug's `<converter:name>` placeholders.
//! - `view_functions`: what `add_url_rule(view_func=...)` names.
//! - `views`: methods and handlers of class-based views (`MethodView`).
//! - `queries`: the tree-sitter queries (`queries/*.scm`).

mod entry;
mod model;
mod queries;
mod routes;
mod rules;
mod view_functions;
mod views;

use std::collections::BTreeMap;
use std::path::PathBuf;

use previewd_plugin_api::{
    Detection, Endpoint, LaunchPlan, PluginError, Project, Readiness, Runtime, RuntimePlugin,
};
use previewd_plugin_python::dependency_manifests::{manifest_listing, requirements};
use previewd_plugin_python::migrations::alembic_upgrade;
use previewd_plugin_python::modules::{is_test_path, parent_dir};
use previewd_plugin_python::Program;

use crate::entry::FlaskApp;
use crate::model::Model;

/// The plugin's name, also the `--framework` value of the launcher and the package looked for
/// in manifests.
const NAME: &str = "flask";

/// Where Flask-Migrate keeps its Alembic set-up, in the app's working dir.
const FLASK_MIGRATE_DIR: &str = "migrations";
/// The interpreter arguments applying Flask-Migrate's migrations from [`FLASK_MIGRATE_DIR`].
const FLASK_DB_UPGRADE: [&str; 6] = [
    "-m",
    "flask",
    "db",
    "upgrade",
    "--directory",
    FLASK_MIGRATE_DIR,
];
/// What a warm Python runtime imports before it is handed a project: Flask and waitress, the
/// server previewd serves it with.
const PRELOAD: &[&str] = &["flask", "waitress", "encodings.idna"];

/// What detection looks for, in words.
const LOOKS_FOR: &str = "a Python file that creates `app = Flask(__name__)` (wsgi.py, app.py, \
     application.py, a package's __init__.py, …) or an app factory such as `create_app()` \
     returning one, FLASK_APP in .flaskenv/.env, or flask in requirements.txt/pyproject.toml";

/// The strongest evidence detection found.
#[derive(Clone, Copy)]
enum Evidence {
    /// A module-level app (`app = Flask(__name__)`, `app = create_app()`).
    App,
    /// Only an app factory.
    Factory,
    /// Only `FLASK_APP` naming a module and an attribute.
    FlaskApp,
    /// Code imports flask, but no app was found.
    Import,
    /// Only a dependency manifest lists flask.
    Manifest,
}

/// How sure detection is, given its evidence and whether a manifest (or `FLASK_APP`) backs it.
fn confidence(evidence: Evidence, backed: bool) -> f32 {
    match (evidence, backed) {
        (Evidence::App, true) => 0.98,
        (Evidence::App, false) => 0.9,
        (Evidence::Factory, true) => 0.93,
        (Evidence::Factory, false) => 0.85,
        (Evidence::FlaskApp, true) => 0.8,
        (Evidence::FlaskApp, false) => 0.7,
        (Evidence::Import, true) => 0.4,
        (Evidence::Import, false) => 0.3,
        (Evidence::Manifest, _) => 0.25,
    }
}

/// The Flask plugin.
pub struct FlaskPlugin;

impl RuntimePlugin for FlaskPlugin {
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
        let flask_app = FlaskApp::find(project);
        let manifest = manifest_listing(project, NAME);
        let mut backing: Vec<String> = manifest
            .iter()
            .map(|m| format!("{m} lists flask"))
            .collect();
        if let Some(launch) = entry::choose(&model, flask_app.as_ref()) {
            let path = program.source(launch.entry.file).path();
            let evidence = match launch.entry.factory {
                true => Evidence::Factory,
                false => Evidence::App,
            };
            backing.splice(0..0, launch.named_by);
            let backed = !backing.is_empty();
            let mut reason = format!("{path} {}", launch.entry.how);
            for extra in backing {
                reason.push_str("; ");
                reason.push_str(&extra);
            }
            return Some(Detection {
                confidence: confidence(evidence, backed),
                reason,
            });
        }
        if let Some(flask_app) = flask_app.filter(|f| f.target().is_some()) {
            return Some(Detection {
                confidence: confidence(Evidence::FlaskApp, manifest.is_some()),
                reason: format!(
                    "{}, but no file was seen creating `Flask(__name__)`",
                    flask_app.describe()
                ),
            });
        }
        let importer = program.files().find(|(id, source)| {
            !is_test_path(source.path())
                && program
                    .imports(*id)
                    .iter()
                    .any(|i| i.level == 0 && i.module.split('.').next() == Some(NAME))
        });
        let listed_by = manifest
            .as_deref()
            .map(|m| format!("; {m} lists flask"))
            .unwrap_or_default();
        let (evidence, found) = match (importer, &manifest) {
            (Some((_, source)), _) => (
                Evidence::Import,
                format!("{} imports flask{listed_by}", source.path()),
            ),
            (None, Some(manifest)) => (Evidence::Manifest, format!("{manifest} lists flask")),
            (None, None) => return None,
        };
        Some(Detection {
            confidence: confidence(evidence, manifest.is_some()),
            reason: format!("{found}, but no file creates `Flask(__name__)`"),
        })
    }

    fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError> {
        let program = Program::load(project)?;
        let model = Model::build(&program)?;
        let flask_app = FlaskApp::find(project);
        let Some(launch) = entry::choose(&model, flask_app.as_ref()) else {
            let named = flask_app
                .as_ref()
                .and_then(FlaskApp::target)
                .ok_or_else(|| PluginError::NoEntrypoint {
                    looked_for: LOOKS_FOR.to_string(),
                })?;
            return Ok(plan(
                project,
                &named.working_dir,
                &named.app,
                named.factory,
                &named.working_dir,
                port,
            ));
        };
        let entry_dir = parent_dir(program.source(launch.entry.file).path());
        let app = format!("{}:{}", launch.module, launch.entry.attr);
        Ok(plan(
            project,
            &launch.working_dir,
            &app,
            launch.entry.factory,
            entry_dir,
            port,
        ))
    }

    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        let program = Program::load(project)?;
        let model = Model::build(&program)?;
        routes::extract(&model)
    }
}

/// The launch plan for `app` (`module:attr`) imported from `working_dir`; requirements are
/// looked up from `entry_dir` (the entry file's folder) upwards.
fn plan(
    project: &Project,
    working_dir: &str,
    app: &str,
    factory: bool,
    entry_dir: &str,
    port: u16,
) -> LaunchPlan {
    let mut args: Vec<String> = [
        "--framework",
        NAME,
        "--app",
        app,
        "--port",
        &port.to_string(),
    ]
    .map(String::from)
    .into();
    if factory {
        args.push("--factory".to_string());
    }
    let (migrate, env) = match uses_flask_migrate(project, working_dir) {
        // `flask db upgrade` finds the app through FLASK_APP, as in every Flask version.
        true => {
            let call = if factory { "()" } else { "" };
            (
                FLASK_DB_UPGRADE.map(String::from).into(),
                BTreeMap::from([("FLASK_APP".to_string(), format!("{app}{call}"))]),
            )
        }
        false => (alembic_upgrade(project, working_dir), BTreeMap::new()),
    };
    LaunchPlan {
        runtime: Runtime::Python,
        args,
        env,
        working_dir: PathBuf::from(working_dir),
        requirements: requirements(project, entry_dir),
        readiness: Readiness::default(),
        preload: PRELOAD.iter().map(|m| m.to_string()).collect(),
        migrate,
    }
}

/// Whether the project keeps Flask-Migrate's folder in `working_dir`: `migrations/alembic.ini`
/// beside an `env.py` that works in the app's context (`current_app`), which plain Alembic
/// cannot give it.
fn uses_flask_migrate(project: &Project, working_dir: &str) -> bool {
    let dir = PathBuf::from(working_dir).join(FLASK_MIGRATE_DIR);
    project.has_file(dir.join("alembic.ini"))
        && project
            .read_to_string(dir.join("env.py"))
            .is_ok_and(|env| env.contains("current_app"))
}

#[cfg(test)]
mod tests {
    use previewd_plugin_api::testing::temp_project;

    use super::*;

    const APP: &[u8] = b"from flask import Flask\nfrom flask_migrate import Migrate\n\
        from flask_sqlalchemy import SQLAlchemy\n\ndb = SQLAlchemy()\nmigrate = Migrate()\n\n\
        def create_app():\n    app = Flask(__name__)\n    db.init_app(app)\n    \
        migrate.init_app(app, db)\n    return app\n";
    /// Flask-Migrate's `env.py`, as `flask db init` writes it (abridged).
    const FLASK_MIGRATE_ENV: &[u8] =
        b"from flask import current_app\nfrom alembic import context\n\
        config = context.config\ntarget_db = current_app.extensions['migrate'].db\n";

    /// Flask-Migrate's folder: `flask db upgrade`, with FLASK_APP calling the factory.
    #[test]
    fn flask_migrate_upgrades_through_the_flask_cli() {
        let (_dir, project) = temp_project(&[
            ("requirements.txt", b"flask\nflask-migrate\n"),
            ("app/__init__.py", APP),
            ("migrations/alembic.ini", b"[alembic]\n"),
            ("migrations/env.py", FLASK_MIGRATE_ENV),
            ("migrations/versions/1a2b_items.py", b"revision = '1a2b'\n"),
        ]);
        let plan = FlaskPlugin.launch_plan(&project, 3001).expect("plan");
        assert_eq!(
            plan.migrate,
            ["-m", "flask", "db", "upgrade", "--directory", "migrations"]
        );
        assert_eq!(plan.env["FLASK_APP"], "app:create_app()");
    }

    /// A plain Alembic set-up (its `env.py` needs no app) keeps `alembic upgrade head`; no
    /// migrations, no command.
    #[test]
    fn plain_alembic_and_none() {
        let plain_env = b"from alembic import context\nfrom app import Base\n";
        let (_dir, project) = temp_project(&[
            (
                "app.py",
                b"from flask import Flask\napp = Flask(__name__)\n",
            ),
            ("alembic.ini", b"[alembic]\n"),
            ("migrations/alembic.ini", b"[alembic]\n"),
            ("migrations/env.py", plain_env),
        ]);
        let plan = FlaskPlugin.launch_plan(&project, 3001).expect("plan");
        assert_eq!(plan.migrate, ["-m", "alembic", "upgrade", "head"]);
        assert!(plan.env.is_empty());

        let (_dir, project) = temp_project(&[(
            "app.py",
            b"from flask import Flask\napp = Flask(__name__)\n",
        )]);
        let plan = FlaskPlugin.launch_plan(&project, 3001).expect("plan");
        assert!(plan.migrate.is_empty() && plan.env.is_empty());
    }
}
