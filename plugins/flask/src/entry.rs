//! Choosing the app to launch when a project has several candidates, the way `flask run`
//! would: what `FLASK_APP` in `.flaskenv`/`.env` names first, then module-level apps before
//! factories, conventional files (`wsgi.py`, `app.py`, ...) and names (`app`, `application`,
//! `create_app`, `make_app`) before others, shallow before deep.
//!
//! Where to start it from and as which module comes from
//! `previewd_plugin_python::import_root`, shared with the other Python plugins.

use previewd_plugin_api::Project;
use previewd_plugin_python::import_root::launch_module;
use previewd_plugin_python::modules::{is_identifier, join, module_name, parent_dir, slash_path};

use crate::model::{Entry, Model};

/// File names entrypoints conventionally have, in `flask run`'s order first.
const ENTRY_FILE_NAMES: &[&str] = &[
    "wsgi.py",
    "app.py",
    "application.py",
    "main.py",
    "server.py",
    "run.py",
    "__init__.py",
    "manage.py",
];
/// Attribute names `flask run` looks for: apps, then factories.
const APP_NAMES: &[&str] = &["app", "application"];
const FACTORY_NAMES: &[&str] = &["create_app", "make_app"];
/// The dotenv files `flask run` reads `FLASK_APP` from.
const ENV_FILES: &[&str] = &[".flaskenv", ".env"];
/// The variable naming the app.
const FLASK_APP: &str = "FLASK_APP";

/// An entry with where to start it from.
pub(crate) struct Launch<'m> {
    pub entry: &'m Entry,
    /// The working directory, relative to the project root (empty for the root).
    pub working_dir: String,
    /// The entry's dotted module, importable from `working_dir`.
    pub module: String,
    /// The `FLASK_APP` setting that named this entry, e.g. ".flaskenv sets FLASK_APP=flaskr".
    pub named_by: Option<String>,
}

/// `FLASK_APP=<target>` read from a dotenv file.
pub(crate) struct FlaskApp {
    /// The file it was read from, relative to the root.
    file: String,
    /// What it says, as written.
    value: String,
    /// The module part: a dotted module, or a `.py` path relative to `file`'s folder.
    module: String,
    /// The attribute, without call arguments (`create_app` in `app:create_app('dev')`).
    attr: Option<String>,
    /// Whether the attribute is called (`create_app()`): a factory.
    called: bool,
}

/// The target `FLASK_APP` names, for a project whose app the static reading did not find.
pub(crate) struct Named {
    /// The working directory: the folder of the dotenv file.
    pub working_dir: String,
    /// `module:attr`.
    pub app: String,
    /// Whether `attr` is a factory to call.
    pub factory: bool,
}

impl FlaskApp {
    /// The first `FLASK_APP` set in a `.flaskenv` or `.env` file, shallowest first.
    pub fn find(project: &Project) -> Option<FlaskApp> {
        let mut files: Vec<String> = project
            .files()
            .iter()
            .filter_map(|p| slash_path(p))
            .filter(|p| ENV_FILES.contains(&p.rsplit('/').next().unwrap_or("")))
            .collect();
        files.sort_by_key(|p| (p.matches('/').count(), p.clone()));
        files.into_iter().find_map(|file| {
            let text = project.read_to_string(&file).ok()?;
            let value = env_value(&text, FLASK_APP)?;
            let (module, attr) = match value.split_once(':') {
                Some((module, attr)) => {
                    let attr = attr.split('(').next().unwrap_or("").trim();
                    (module.trim(), (!attr.is_empty()).then(|| attr.to_string()))
                }
                None => (value.as_str(), None),
            };
            Some(FlaskApp {
                module: module.to_string(),
                called: value.contains('('),
                attr,
                value: value.clone(),
                file,
            })
        })
    }

    /// How well it names `entry`: 0 file and attribute, 1 the file only, 2 not at all.
    fn rank(&self, path: &str, entry: &Entry) -> u8 {
        let base = parent_dir(&self.file);
        let file_matches = if self.module.ends_with(".py") {
            join(base, &self.module) == path
        } else {
            module_name(path, base).is_some_and(|m| m == self.module)
        };
        match (file_matches, &self.attr) {
            (false, _) => 2,
            (true, Some(attr)) if *attr != entry.attr => 1,
            (true, _) => 0,
        }
    }

    /// What to launch when `FLASK_APP` names both a module and an attribute (`flask run` would
    /// search a module without one for its app, which only the static reading can do).
    pub fn target(&self) -> Option<Named> {
        let working_dir = parent_dir(&self.file);
        let module = match self.module.strip_suffix(".py") {
            Some(path) => module_name(&join(working_dir, &format!("{path}.py")), working_dir)?,
            None => self.module.clone(),
        };
        let valid = !module.is_empty() && module.split('.').all(is_identifier);
        let attr = self
            .attr
            .as_ref()
            .filter(|a| a.split('.').all(is_identifier))?;
        valid.then(|| Named {
            working_dir: working_dir.to_string(),
            app: format!("{module}:{attr}"),
            factory: self.called,
        })
    }

    /// "`.flaskenv` sets FLASK_APP=flaskr".
    pub fn describe(&self) -> String {
        format!("{} sets {FLASK_APP}={}", self.file, self.value)
    }
}

/// The entry to launch: the best ranked one that can be imported as a module.
pub(crate) fn choose<'m>(model: &'m Model<'_>, flask_app: Option<&FlaskApp>) -> Option<Launch<'m>> {
    let program = model.program;
    let mut entries: Vec<&Entry> = model.entries.iter().collect();
    entries.sort_by_key(|e| {
        let path = program.source(e.file).path();
        let name = path.rsplit('/').next().unwrap_or(path);
        let name_rank = ENTRY_FILE_NAMES.iter().position(|n| *n == name);
        let conventional = match e.factory {
            false => APP_NAMES.contains(&e.attr.as_str()),
            true => FACTORY_NAMES.contains(&e.attr.as_str()),
        };
        (
            flask_app.map_or(2, |f| f.rank(path, e)),
            e.factory,
            name_rank.is_none(),
            path.matches('/').count(),
            name_rank,
            !conventional,
            path,
            e.line,
        )
    });
    entries.into_iter().find_map(|entry| {
        let (working_dir, module) = launch_module(program, entry.file)?;
        let path = program.source(entry.file).path();
        let named_by = flask_app
            .filter(|f| f.rank(path, entry) < 2)
            .map(FlaskApp::describe);
        Some(Launch {
            entry,
            working_dir,
            module,
            named_by,
        })
    })
}

/// The value of `name` in a dotenv text (`NAME=value`, `export NAME="value"`, comments).
fn env_value(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = line.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let value = value.trim();
        let value = match value.chars().next() {
            Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or(""),
            _ => value.split(" #").next().unwrap_or("").trim(),
        };
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dotenv_values() {
        let text = "# settings\nFLASK_DEBUG=1\nexport FLASK_APP = \"flaskr:create_app('dev')\"\n";
        assert_eq!(
            env_value(text, FLASK_APP).as_deref(),
            Some("flaskr:create_app('dev')")
        );
        assert_eq!(
            env_value("FLASK_APP=hello.py # the app\n", FLASK_APP).as_deref(),
            Some("hello.py")
        );
        assert_eq!(env_value("FLASK_APP=\n", FLASK_APP), None);
        assert_eq!(env_value("FLASK_APPS=x\n", FLASK_APP), None);
    }

    /// `FLASK_APP` alone is enough to launch when it names an attribute.
    #[test]
    fn targets() {
        let flask_app = |file: &str, value: &str| {
            let (module, attr) = value.split_once(':').unwrap_or((value, ""));
            FlaskApp {
                file: file.into(),
                value: value.into(),
                module: module.into(),
                attr: (!attr.is_empty()).then(|| attr.split('(').next().unwrap().into()),
                called: value.contains('('),
            }
        };
        let named = flask_app("svc/.flaskenv", "pkg/hello.py:make()")
            .target()
            .unwrap();
        assert_eq!(
            (
                named.working_dir.as_str(),
                named.app.as_str(),
                named.factory
            ),
            ("svc", "pkg.hello:make", true)
        );
        assert!(flask_app(".env", "flaskr").target().is_none());
        assert!(flask_app(".env", "my-app:app").target().is_none());
    }
}
