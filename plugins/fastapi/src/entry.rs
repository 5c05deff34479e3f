//! Choosing the app to launch and how to import it: which entry wins when a project has
//! several, the working directory its absolute imports resolve from, and its dotted module.
//! The import rules themselves are `previewd_plugin_python::import_root`, shared with the
//! other Python plugins.

use previewd_plugin_python::import_root::launch_module;

use crate::model::{Entry, Model};

/// File names entrypoints conventionally have, most conventional first.
const ENTRY_FILE_NAMES: &[&str] = &[
    "main.py",
    "app.py",
    "server.py",
    "api.py",
    "asgi.py",
    "index.py",
    "application.py",
    "__init__.py",
];

/// An entry with where to start it from.
pub(crate) struct Launch<'m> {
    pub entry: &'m Entry,
    /// The working directory, relative to the project root (empty for the root).
    pub working_dir: String,
    /// The entry's dotted module, importable from `working_dir`.
    pub module: String,
}

/// The entry to launch: the best ranked one that can be imported as a module.
pub(crate) fn choose<'m>(model: &'m Model<'_>) -> Option<Launch<'m>> {
    let program = model.program;
    let mounted: Vec<usize> = model.includes.iter().map(|i| i.child).collect();
    let mut entries: Vec<&Entry> = model.entries.iter().collect();
    entries.sort_by_key(|e| {
        let path = program.source(e.file).path();
        let name = path.rsplit('/').next().unwrap_or(path);
        let name_rank = ENTRY_FILE_NAMES.iter().position(|n| *n == name);
        (
            // A sub-app mounted into another app is not the one to serve.
            mounted.contains(&e.object),
            e.factory,
            name_rank.is_none(),
            path.matches('/').count(),
            name_rank,
            e.attr != "app",
            path,
            e.line,
        )
    });
    entries.into_iter().find_map(|entry| {
        let (working_dir, module) = launch_module(program, entry.file)?;
        Some(Launch {
            entry,
            working_dir,
            module,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use previewd_plugin_python::{Program, SourceFile};

    /// The working dir and module for the app in `entry`, given the project's files.
    fn launch(files: &[(&str, &str)]) -> (String, String, String) {
        let sources = files
            .iter()
            .map(|(p, t)| SourceFile::parse(*p, *t).unwrap())
            .collect();
        let program = Program::new(sources).unwrap();
        let model = Model::build(&program).unwrap();
        let launch = choose(&model).unwrap();
        (
            launch.working_dir,
            launch.module,
            format!(
                "{}:{}",
                program.source(launch.entry.file).path(),
                launch.entry.attr
            ),
        )
    }

    const APP: &str = "from fastapi import FastAPI\napp = FastAPI()\n";

    #[test]
    fn packages_and_plain_folders() {
        assert_eq!(
            launch(&[("main.py", APP)]),
            ("".into(), "main".into(), "main.py:app".into())
        );
        assert_eq!(
            launch(&[
                ("backend/app/__init__.py", ""),
                ("backend/app/main.py", APP)
            ]),
            (
                "backend".into(),
                "app.main".into(),
                "backend/app/main.py:app".into()
            )
        );
        assert_eq!(
            launch(&[("api/index.py", APP)]),
            ("api".into(), "index".into(), "api/index.py:app".into())
        );
    }

    #[test]
    fn namespace_packages_follow_imports() {
        let main = format!("from app.routers import users\n{APP}");
        let files = [("app/main.py", main.as_str()), ("app/routers/users.py", "")];
        assert_eq!(launch(&files).0, "");
        assert_eq!(launch(&files).1, "app.main");
        let main = "from routers import users\nfrom fastapi import FastAPI\napp = FastAPI()\n";
        let files = [("app/main.py", main), ("app/routers/users.py", "")];
        assert_eq!(
            (launch(&files).0, launch(&files).1),
            ("app".into(), "main".into())
        );
    }

    #[test]
    fn relative_imports_and_bad_names() {
        let main = format!("from .routers import users\n{APP}");
        let files = [
            ("svc/app/main.py", main.as_str()),
            ("svc/app/routers/users.py", ""),
        ];
        assert_eq!(
            (launch(&files).0, launch(&files).1),
            ("svc".into(), "app.main".into())
        );
        let files = [
            ("my-project/app/__init__.py", ""),
            ("my-project/app/main.py", APP),
        ];
        assert_eq!(
            (launch(&files).0, launch(&files).1),
            ("my-project".into(), "app.main".into())
        );
    }

    #[test]
    fn ranking() {
        let files = [
            ("tools/app.py", APP),
            ("service/main.py", APP),
            ("main.py", "print('no app here')\n"),
            ("tests/test_app.py", APP),
        ];
        assert_eq!(launch(&files).2, "service/main.py:app");
        let files = [
            (
                "factory.py",
                "from fastapi import FastAPI\ndef create_app():\n    return FastAPI()\n",
            ),
            ("deep/er/server.py", APP),
        ];
        assert_eq!(launch(&files).2, "deep/er/server.py:app");
        let mounted = "from fastapi import FastAPI\nfrom sub import api\napp = FastAPI()\napp.mount('/v2', api)\n";
        let files = [
            ("main.py", mounted),
            ("sub.py", "from fastapi import FastAPI\napi = FastAPI()\n"),
            ("app.py", APP),
        ];
        assert_eq!(launch(&files).2, "main.py:app");
    }
}
