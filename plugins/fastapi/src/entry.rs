//! Choosing the app to launch and how to import it: which entry wins when a project has
//! several, the working directory its absolute imports resolve from, and its dotted module.

use previewd_plugin_python::modules::{join, module_name, module_stem, parent_dir};
use previewd_plugin_python::{FileId, Program};

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
        let working_dir = import_root(program, entry.file);
        let module = module_name(program.source(entry.file).path(), &working_dir)?;
        Some(Launch {
            entry,
            working_dir,
            module,
        })
    })
}

/// The folder from which the entry file's own absolute imports resolve, as with
/// `cd <dir> && uvicorn <module>:app`:
/// 1. above every enclosing regular package (folders with `__init__.py`);
/// 2. higher still when the file imports project code by a longer path, as in
///    `from app.routers import users` from `app/main.py` with no `__init__.py` (namespace
///    packages);
/// 3. high enough for its relative imports (`from ..core import x` needs two package levels);
/// 4. but never above a folder whose name is not an identifier (`my-project/`).
fn import_root(program: &Program, file: FileId) -> String {
    let path = program.source(file).path();
    let dir = parent_dir(path);
    let mut root = dir;
    while !root.is_empty() && is_regular_package(program, root) {
        root = parent_dir(root);
    }
    let above: Vec<&str> =
        std::iter::successors(Some(root), |d| (!d.is_empty()).then(|| parent_dir(d))).collect();
    let imports = program.imports(file);
    let needed_by_imports = imports
        .iter()
        .filter(|i| i.level == 0)
        .filter_map(|i| {
            let top = i.module.split('.').next().unwrap_or("");
            above.iter().position(|d| program.has_module(&join(d, top)))
        })
        .max()
        .unwrap_or(0);
    let mut root = above.get(needed_by_imports).copied().unwrap_or(root);
    let relative_levels = imports.iter().map(|i| i.level).max().unwrap_or(0);
    while !root.is_empty() && package_depth(root, dir) < relative_levels {
        root = parent_dir(root);
    }
    // Walk back down towards the file until the module path is valid.
    let mut candidate = root.to_string();
    while module_name(path, &candidate).is_none() && candidate != dir {
        let rest = dir
            .strip_prefix(candidate.as_str())
            .unwrap_or(dir)
            .trim_start_matches('/');
        let next = rest.split('/').next().unwrap_or("");
        candidate = join(&candidate, next);
    }
    candidate
}

/// Whether `dir` has an `__init__.py` of its own.
fn is_regular_package(program: &Program, dir: &str) -> bool {
    program
        .module_file(dir)
        .and_then(|f| module_stem(program.source(f).path()))
        .is_some_and(|(_, package)| package)
}

/// How many folders `dir` is below `root` (the packages a module in `dir` is nested in).
fn package_depth(root: &str, dir: &str) -> usize {
    let rest = if root.is_empty() {
        dir
    } else {
        dir.strip_prefix(root)
            .map_or("", |r| r.trim_start_matches('/'))
    };
    rest.split('/').filter(|p| !p.is_empty()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use previewd_plugin_python::SourceFile;

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
