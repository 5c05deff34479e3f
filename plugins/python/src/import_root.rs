//! Where to start a Python app from: the working directory from which an entry file's own
//! imports resolve, and the dotted module it is imported as from there (`cd <dir> && python -c
//! "import <module>"`). Framework-neutral: every Python plugin launches an entry this way.
//!
//! Moved here from the FastAPI plugin's `entry` module (same rules) so Flask and Django share
//! it.

use crate::modules::{join, module_name, module_stem, parent_dir};
use crate::{FileId, Program};

/// The working directory (relative to the project root, empty for the root) and the dotted
/// module of `file`, importable from it; `None` when no folder makes the path a valid module.
pub fn launch_module(program: &Program, file: FileId) -> Option<(String, String)> {
    let working_dir = import_root(program, file);
    let module = module_name(program.source(file).path(), &working_dir)?;
    Some((working_dir, module))
}

/// The folder from which the entry file's own absolute imports resolve, as with
/// `cd <dir> && uvicorn <module>:app`:
/// 1. above every enclosing regular package (folders with `__init__.py`);
/// 2. higher still when the file imports project code by a longer path, as in
///    `from app.routers import users` from `app/main.py` with no `__init__.py` (namespace
///    packages);
/// 3. high enough for its relative imports (`from ..core import x` needs two package levels);
/// 4. but never above a folder whose name is not an identifier (`my-project/`).
pub fn import_root(program: &Program, file: FileId) -> String {
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
    use crate::SourceFile;

    /// (working dir, module) of the last file given.
    fn launch(files: &[(&str, &str)]) -> (String, String) {
        let sources = files
            .iter()
            .map(|(p, t)| SourceFile::parse(*p, *t).unwrap())
            .collect();
        let program = Program::new(sources).unwrap();
        let (last, _) = program.files().last().unwrap();
        launch_module(&program, last).unwrap()
    }

    fn pair(dir: &str, module: &str) -> (String, String) {
        (dir.to_string(), module.to_string())
    }

    #[test]
    fn packages_and_plain_folders() {
        assert_eq!(launch(&[("app.py", "")]), pair("", "app"));
        assert_eq!(
            launch(&[("backend/app/__init__.py", ""), ("backend/app/main.py", "")]),
            pair("backend", "app.main")
        );
        assert_eq!(launch(&[("api/index.py", "")]), pair("api", "index"));
        assert_eq!(
            launch(&[("my-project/app/__init__.py", "")]),
            pair("my-project", "app")
        );
    }

    #[test]
    fn imports_decide_the_root() {
        let files = [
            ("app/routers/users.py", ""),
            ("app/main.py", "from app.routers import users\n"),
        ];
        assert_eq!(launch(&files), pair("", "app.main"));
        let files = [
            ("app/routers/users.py", ""),
            ("app/main.py", "from routers import users\n"),
        ];
        assert_eq!(launch(&files), pair("app", "main"));
        let files = [
            ("svc/app/routers/users.py", ""),
            ("svc/app/main.py", "from .routers import users\n"),
        ];
        assert_eq!(launch(&files), pair("svc", "app.main"));
    }
}
