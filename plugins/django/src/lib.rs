//! previewd's Django plugin: recognises a Django project, says how to start it, and lists the
//! routes its URLconfs declare (Django REST framework routers included), all without running it.
//!
//! The Python reading (parsing, imports, literals, cross-module names) comes from
//! `previewd-plugin-python`; this crate adds what is Django's: where the settings module is
//! named, which URLconf is the root, how `include()` nests, which methods a view answers.
//!
//! Route listing rules shared with the runtime table (`runtimes/python/serve_django.py`):
//! - a function view without a method restriction answers any method; it is listed once, as
//!   GET. HEAD and OPTIONS are never listed (Django answers them by itself);
//! - the admin site (`admin.site.urls`) is collapsed into one `GET <prefix>` route tagged
//!   `admin`;
//! - DRF format-suffix variants and static/media file routes are left out.
//!
//! # Layout
//! - this file: the plugin, detection and the launch plan.
//! - `site`: the settings module, the working dir and `ROOT_URLCONF`.
//! - `urlconf`: walking `urlpatterns` and `include()`s into endpoints.
//! - `views`: the methods, location and docs of a view.
//! - `classes`: class-based views and ViewSets: handlers, actions, `@action`s, lookups.
//! - `routers`: DRF routers and the routes they make.
//! - `paths`: `path()` routes and `re_path()` regexes as `{param}` paths.
//! - `queries`: the tree-sitter queries (`queries/*.scm`).

mod classes;
mod paths;
mod queries;
mod routers;
mod site;
mod urlconf;
mod views;

use std::collections::BTreeMap;
use std::path::PathBuf;

use previewd_plugin_api::{
    Detection, Endpoint, LaunchPlan, PluginError, Project, Readiness, Runtime, RuntimePlugin,
};
use previewd_plugin_python::dependency_manifests::{manifest_listing, requirements};
use previewd_plugin_python::modules::is_test_path;
use previewd_plugin_python::Program;

use crate::site::Site;

/// The plugin's name, also the `--framework` value of the launcher.
const NAME: &str = "django";

/// The variable Django reads its settings module from.
const SETTINGS_VARIABLE: &str = "DJANGO_SETTINGS_MODULE";

/// What detection looks for, in words.
/// What a warm Python runtime imports before it is handed a project: the parts of Django a
/// default project loads that import without settings (models, forms, templates, generic
/// views, the default middleware, admin, the sqlite backend; not what needs the app registry,
/// such as `django.contrib.auth.models`), Django REST framework's serializers when installed,
/// and waitress, the server previewd serves it with.
const PRELOAD: &[&str] = &[
    "django",
    "django.conf",
    "django.conf.global_settings",
    "django.core.handlers.wsgi",
    "django.core.wsgi",
    "django.apps",
    "django.urls",
    "django.utils.log",
    "logging.config",
    "django.db.models",
    "django.forms",
    "django.template.defaulttags",
    "django.template.defaultfilters",
    "django.template.loader_tags",
    "django.template.backends.django",
    "django.templatetags.static",
    "django.views.generic",
    "django.views.decorators.http",
    "django.middleware.security",
    "django.middleware.common",
    "django.middleware.csrf",
    "django.middleware.clickjacking",
    "django.contrib.sessions.middleware",
    "django.contrib.sessions.backends.base",
    "django.contrib.messages.middleware",
    "django.contrib.messages.storage.fallback",
    "django.contrib.admin",
    "django.contrib.auth.checks",
    "django.contrib.auth.management",
    "django.contrib.auth.hashers",
    "django.contrib.auth.password_validation",
    "django.contrib.staticfiles.handlers",
    "django.contrib.staticfiles.checks",
    "django.db.backends.sqlite3.base",
    "django.utils.translation.reloader",
    "rest_framework.serializers",
    "waitress",
    "encodings.idna",
];

const LOOKS_FOR: &str = "a Django project: manage.py (or wsgi.py/asgi.py) setting \
     DJANGO_SETTINGS_MODULE, or a settings.py with ROOT_URLCONF and INSTALLED_APPS, \
     possibly in a subfolder (backend/manage.py); django in requirements.txt/pyproject.toml \
     raises confidence";

/// The strongest evidence detection found.
#[derive(Clone, Copy)]
enum Evidence {
    /// A launch file names a settings module whose file sets `ROOT_URLCONF`.
    Complete,
    /// A settings file with `ROOT_URLCONF` and `INSTALLED_APPS`, no launch file.
    SettingsOnly,
    /// A launch file names a settings module that is missing or has no `ROOT_URLCONF`.
    LaunchFileOnly,
    /// Code imports django, nothing more.
    Import,
    /// Only a dependency manifest lists django.
    Manifest,
}

/// How sure detection is, given its evidence and whether a manifest lists django too.
fn confidence(evidence: Evidence, listed: bool) -> f32 {
    match (evidence, listed) {
        (Evidence::Complete, true) => 0.98,
        (Evidence::Complete, false) => 0.95,
        (Evidence::SettingsOnly, true) => 0.9,
        (Evidence::SettingsOnly, false) => 0.85,
        (Evidence::LaunchFileOnly, true) => 0.8,
        (Evidence::LaunchFileOnly, false) => 0.7,
        (Evidence::Import, true) => 0.4,
        (Evidence::Import, false) => 0.3,
        (Evidence::Manifest, _) => 0.25,
    }
}

/// The Django plugin.
pub struct DjangoPlugin;

impl RuntimePlugin for DjangoPlugin {
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
        let manifest = manifest_listing(project, NAME);
        let listed = manifest.is_some();
        let listed_by = manifest
            .as_deref()
            .map(|m| format!("; {m} lists django"))
            .unwrap_or_default();
        if let Some(site) = Site::find(&program).ok()? {
            let (evidence, reason) = site_evidence(&program, &site);
            return Some(Detection {
                confidence: confidence(evidence, listed),
                reason: format!("{reason}{listed_by}"),
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
                format!("{} imports django{listed_by}", source.path()),
            ),
            (None, Some(manifest)) => (Evidence::Manifest, format!("{manifest} lists django")),
            (None, None) => return None,
        };
        Some(Detection {
            confidence: confidence(evidence, listed),
            reason: format!("{found}, but no manage.py or settings module was found"),
        })
    }

    fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError> {
        let program = Program::load(project)?;
        let site = Site::find(&program)?.ok_or_else(|| PluginError::NoEntrypoint {
            looked_for: LOOKS_FOR.to_string(),
        })?;
        let args = [
            "--framework",
            NAME,
            "--app",
            &site.settings_module,
            "--port",
            &port.to_string(),
        ]
        .map(String::from)
        .into();
        Ok(LaunchPlan {
            runtime: Runtime::Python,
            args,
            env: BTreeMap::from([(SETTINGS_VARIABLE.to_string(), site.settings_module.clone())]),
            working_dir: PathBuf::from(&site.working_dir),
            requirements: requirements(project, &site.working_dir),
            readiness: Readiness::default(),
            preload: PRELOAD.iter().map(|m| m.to_string()).collect(),
            migrate: ["-m", "django", "migrate", "--noinput"]
                .map(String::from)
                .into(),
        })
    }

    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        let program = Program::load(project)?;
        match Site::find(&program)? {
            Some(site) => urlconf::extract(&program, &site),
            None => Ok(Vec::new()),
        }
    }
}

/// How strong a found site is, and the sentence saying why, e.g.
/// "manage.py + mysite/settings.py with ROOT_URLCONF = \"mysite.urls\"".
fn site_evidence(program: &Program, site: &Site) -> (Evidence, String) {
    let settings_path = site
        .settings_file
        .map(|f| program.source(f).path().to_string());
    match (&site.launcher_file, settings_path, &site.root_urlconf) {
        (Some(launcher), Some(settings), Some(urlconf)) => (
            Evidence::Complete,
            format!("{launcher} + {settings} with ROOT_URLCONF = \"{urlconf}\""),
        ),
        (None, Some(settings), Some(urlconf)) => (
            Evidence::SettingsOnly,
            format!("{settings} with ROOT_URLCONF = \"{urlconf}\" (no manage.py)"),
        ),
        (launcher, settings, _) => {
            let launcher = launcher.as_deref().unwrap_or("a launch file");
            let problem = match settings {
                Some(settings) => format!("{settings} sets no static ROOT_URLCONF"),
                None => format!("{} is not in the project", site.settings_module),
            };
            (
                Evidence::LaunchFileOnly,
                format!(
                    "{launcher} sets {SETTINGS_VARIABLE} = \"{}\", but {problem}",
                    site.settings_module
                ),
            )
        }
    }
}
