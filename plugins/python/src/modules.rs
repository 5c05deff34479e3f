//! Where Python modules live: the mapping between files and dotted module names, relative
//! imports, and which files are tests.
//!
//! Paths here are project-relative strings with `/` separators. A module's *stem* is its path
//! without `.py` (`app/main` for `app/main.py`); a package's stem is its folder (`app` for
//! `app/__init__.py`, or for a namespace package without one).

use std::path::{Component, Path};

/// The stem of a Python file and whether the file is a package's `__init__.py`:
/// `app/main.py` → (`app/main`, false), `app/__init__.py` → (`app`, true).
pub fn module_stem(file: &str) -> Option<(&str, bool)> {
    let stem = file.strip_suffix(".py")?;
    match stem.strip_suffix("__init__") {
        Some(dir) if dir.is_empty() || dir.ends_with('/') => {
            Some((dir.trim_end_matches('/'), true))
        }
        _ => Some((stem, false)),
    }
}

/// The dotted module name of `file` when `base` (a folder, empty for the root) is on
/// `sys.path`: `app/main.py` under the root is `app.main`, `src/pkg/__init__.py` under `src` is
/// `pkg`. `None` when the file is not under `base` or a path part is not an identifier.
pub fn module_name(file: &str, base: &str) -> Option<String> {
    let (stem, _) = module_stem(file)?;
    let inner = if base.is_empty() {
        stem
    } else {
        stem.strip_prefix(base)?.strip_prefix('/')?
    };
    let parts: Vec<&str> = inner.split('/').collect();
    parts
        .iter()
        .all(|p| is_identifier(p))
        .then(|| parts.join("."))
}

/// The stem a relative import in `importer` names: `from ..core import x` in
/// `app/api/routes.py` is level 2, module `core` → `app/core`. `None` when the dots climb above
/// the project root.
pub fn resolve_relative(importer: &str, level: usize, module: &str) -> Option<String> {
    let mut dir = parent_dir(importer);
    for _ in 1..level {
        if dir.is_empty() {
            return None;
        }
        dir = parent_dir(dir);
    }
    Some(join(dir, &module.replace('.', "/")))
}

/// Whether `name` is a Python identifier (ASCII letters, digits and `_`, or any non-ASCII
/// letter; not starting with a digit).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// The folder of a path (`""` for a file at the root).
pub fn parent_dir(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `dir/name`, or `name` when `dir` is the root.
pub fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (false, true) => dir.to_string(),
        (false, false) => format!("{dir}/{name}"),
    }
}

/// Whether `dir` is `path` itself or one of its ancestors (the root is everyone's).
pub fn is_ancestor_or_self(dir: &str, path: &str) -> bool {
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a file is part of a test suite (`tests/`, `test_*.py`, `*_test.py`, `conftest.py`):
/// test modules build throwaway apps that are not the project's entrypoint.
pub fn is_test_path(file: &str) -> bool {
    let mut parts = file.split('/');
    let name = parts.next_back().unwrap_or("");
    let in_test_dir = parts.any(|dir| matches!(dir, "test" | "tests" | "testing"));
    in_test_dir || name == "conftest.py" || name.starts_with("test_") || name.ends_with("_test.py")
}

/// A project-relative path as a `/`-separated string; `None` for paths that are not plain
/// UTF-8 relative paths.
pub fn slash_path(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_names() {
        assert_eq!(module_stem("app/main.py"), Some(("app/main", false)));
        assert_eq!(module_stem("app/__init__.py"), Some(("app", true)));
        assert_eq!(module_stem("__init__.py"), Some(("", true)));
        assert_eq!(module_stem("my__init__.py"), Some(("my__init__", false)));
        assert_eq!(module_stem("README.md"), None);
        assert_eq!(module_name("app/main.py", "").as_deref(), Some("app.main"));
        assert_eq!(
            module_name("backend/app/main.py", "backend").as_deref(),
            Some("app.main")
        );
        assert_eq!(
            module_name("src/pkg/__init__.py", "src").as_deref(),
            Some("pkg")
        );
        assert_eq!(module_name("my-app/main.py", ""), None);
        assert_eq!(module_name("backend2/main.py", "backend"), None);
    }

    #[test]
    fn relative_imports() {
        assert_eq!(
            resolve_relative("app/main.py", 1, "routers.items").as_deref(),
            Some("app/routers/items")
        );
        assert_eq!(
            resolve_relative("app/main.py", 1, "").as_deref(),
            Some("app")
        );
        assert_eq!(
            resolve_relative("app/__init__.py", 1, "users").as_deref(),
            Some("app/users")
        );
        assert_eq!(
            resolve_relative("app/api/routes.py", 2, "core").as_deref(),
            Some("app/core")
        );
        assert_eq!(
            resolve_relative("app/api/v1/x.py", 3, "").as_deref(),
            Some("app")
        );
        assert_eq!(
            resolve_relative("app/main.py", 2, "x").as_deref(),
            Some("x")
        );
        assert_eq!(resolve_relative("app/main.py", 3, "x"), None);
    }

    #[test]
    fn paths() {
        assert!(is_identifier("_private2") && is_identifier("café"));
        assert!(!is_identifier("2x") && !is_identifier("my-app") && !is_identifier(""));
        assert_eq!(parent_dir("a/b/c.py"), "a/b");
        assert_eq!(parent_dir("c.py"), "");
        assert!(is_ancestor_or_self("", "a") && is_ancestor_or_self("a", "a/b"));
        assert!(!is_ancestor_or_self("a", "ab/c"));
        assert!(is_test_path("tests/test_main.py") && is_test_path("app/conftest.py"));
        assert!(is_test_path("app/test_users.py") && is_test_path("users_test.py"));
        assert!(!is_test_path("app/main.py") && !is_test_path("app/testimonials.py"));
        assert_eq!(slash_path(Path::new("a/b.py")).as_deref(), Some("a/b.py"));
        assert_eq!(slash_path(Path::new("/abs")), None);
    }
}
