//! Finding a Django project in an upload: its settings module (from `manage.py`, else `wsgi.py`
//! / `asgi.py`, else a settings file defining `ROOT_URLCONF`), the folder it runs from, and
//! the root URLconf its settings name.

use previewd_plugin_api::PluginError;
use previewd_plugin_python::imports::ImportKind;
use previewd_plugin_python::modules::{is_identifier, is_test_path, join, module_name, parent_dir};
use previewd_plugin_python::program::assigned_value;
use previewd_plugin_python::query::matches;
use previewd_plugin_python::{FileId, Program};

use crate::queries::SETTINGS_MODULE;

/// The environment variable naming the settings module.
const SETTINGS_VARIABLE: &str = "DJANGO_SETTINGS_MODULE";

/// Files that set the settings module, most authoritative first.
const LAUNCH_FILES: &[&str] = &["manage.py", "wsgi.py", "asgi.py"];

/// How many `from .base import *` hops are followed to find a setting.
const MAX_STAR_HOPS: usize = 8;

/// A Django project as found in the upload.
pub(crate) struct Site {
    /// The working dir, relative to the root: the folder of `manage.py`.
    pub working_dir: String,
    /// The dotted settings module, e.g. `mysite.settings`.
    pub settings_module: String,
    /// The file that names the settings module (`manage.py`, `wsgi.py`), if one does.
    pub launcher_file: Option<String>,
    /// The settings file, when it is in the project.
    pub settings_file: Option<FileId>,
    /// `ROOT_URLCONF`, when static.
    pub root_urlconf: Option<String>,
}

impl Site {
    /// The project's Django site, if it has one.
    pub fn find(program: &Program) -> Result<Option<Site>, PluginError> {
        let mut launchers = Vec::new();
        for (id, source) in program.files() {
            let path = source.path();
            let name = path.rsplit('/').next().unwrap_or(path);
            if let Some(rank) = LAUNCH_FILES.iter().position(|n| *n == name) {
                if !is_test_path(path) {
                    launchers.push((rank, path.matches('/').count(), id));
                }
            }
        }
        launchers.sort();
        for (rank, _, file) in launchers {
            let Some(module) = settings_module_set_in(program, file)? else {
                continue;
            };
            let path = program.source(file).path();
            let working_dir = match rank {
                0 => parent_dir(path).to_string(),
                _ => base_for(program, parent_dir(path), &module),
            };
            return Ok(Some(Site::with_module(
                program,
                working_dir,
                module,
                Some(path.to_string()),
            )));
        }
        Ok(settings_file_alone(program))
    }

    fn with_module(
        program: &Program,
        working_dir: String,
        settings_module: String,
        launcher_file: Option<String>,
    ) -> Site {
        let settings_file =
            program.module_file(&join(&working_dir, &settings_module.replace('.', "/")));
        let root_urlconf = settings_file.and_then(|file| setting(program, file, "ROOT_URLCONF", 0));
        Site {
            working_dir,
            settings_module,
            launcher_file,
            settings_file,
            root_urlconf,
        }
    }

    /// The project file defining the dotted module, imported from the working dir.
    pub fn module_file(&self, program: &Program, dotted: &str) -> Option<FileId> {
        program.module_file(&join(&self.working_dir, &dotted.replace('.', "/")))
    }
}

/// The settings module a launch file sets, when it is a static string.
fn settings_module_set_in(program: &Program, file: FileId) -> Result<Option<String>, PluginError> {
    let source = program.source(file);
    for m in matches(SETTINGS_MODULE.get()?, source.root(), source.text()) {
        let (Some(environ), Some(key), Some(value)) =
            (m.get("environ"), m.get("key"), m.get("value"))
        else {
            continue;
        };
        if !source.text_of(environ).ends_with("environ") {
            continue;
        }
        if program.eval_str(file, key).as_deref() != Some(SETTINGS_VARIABLE) {
            continue;
        }
        if let Some(module) = program.eval_str(file, value).filter(|m| is_dotted(m)) {
            return Ok(Some(module));
        }
    }
    Ok(None)
}

/// The deepest folder at or above `dir` under which the dotted module exists (else `dir`).
fn base_for(program: &Program, dir: &str, dotted: &str) -> String {
    let relative = dotted.replace('.', "/");
    std::iter::successors(Some(dir), |d| (!d.is_empty()).then(|| parent_dir(d)))
        .find(|base| program.module_file(&join(base, &relative)).is_some())
        .unwrap_or(dir)
        .to_string()
}

/// Without `manage.py`/`wsgi.py`: the shallowest settings file (defining `ROOT_URLCONF` and
/// `INSTALLED_APPS`), run from the folder where its `ROOT_URLCONF` module resolves.
fn settings_file_alone(program: &Program) -> Option<Site> {
    let mut candidates: Vec<(usize, FileId)> = program
        .files()
        .filter(|(_, s)| !is_test_path(s.path()))
        .filter(|(id, _)| {
            program.definition(*id, "ROOT_URLCONF").is_some()
                && program.definition(*id, "INSTALLED_APPS").is_some()
        })
        .map(|(id, s)| (s.path().matches('/').count(), id))
        .collect();
    candidates.sort();
    candidates.into_iter().find_map(|(_, file)| {
        let path = program.source(file).path();
        let urlconf = setting(program, file, "ROOT_URLCONF", 0)?;
        let relative = urlconf.replace('.', "/");
        let dir = parent_dir(path);
        let base = std::iter::successors(Some(dir), |d| (!d.is_empty()).then(|| parent_dir(d)))
            .find(|base| program.module_file(&join(base, &relative)).is_some())
            .unwrap_or_else(|| parent_dir(dir));
        let module = module_name(path, base)?;
        Some(Site::with_module(program, base.to_string(), module, None))
    })
}

/// The static string value of a setting in a settings file, following `from .x import *`.
pub(crate) fn setting(program: &Program, file: FileId, name: &str, hops: usize) -> Option<String> {
    if hops > MAX_STAR_HOPS {
        return None;
    }
    if let Some(definition) = program.definition(file, name) {
        return program.eval_str(file, assigned_value(definition)?);
    }
    program
        .imports(file)
        .iter()
        .filter(|i| i.kind == ImportKind::Star)
        .rev()
        .filter_map(|i| program.import_target(file, i))
        .filter_map(|stem| program.module_file(&stem))
        .filter(|&f| f != file)
        .find_map(|f| setting(program, f, name, hops + 1))
}

/// Whether a text is a dotted Python module name (`mysite.settings`).
fn is_dotted(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(is_identifier)
}
