//! Import statements: which names a file binds to which modules or module members.
//!
//! Read with the `imports.scm` query, anywhere in the file (app factories often import their
//! routers inside the function). Turning a record into a file is [`crate::Program`]'s job; this
//! module only reads what the statements say, plus [`qualified_name`] for telling which library
//! object a name refers to (`FastAPI` → `fastapi.FastAPI`).

use previewd_plugin_api::PluginError;

use crate::query::{matches, SharedQuery};
use crate::source::SourceFile;

/// The query finding import statements.
pub static IMPORTS_QUERY: SharedQuery =
    SharedQuery::new("imports.scm", include_str!("../queries/imports.scm"));

/// One name bound by an import statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The name bound in the importing file (`x` in `import a.b as x`, `a` in `import a.b`).
    pub local: String,
    /// The number of leading dots of a `from` import; 0 for absolute imports.
    pub level: usize,
    /// The module, dotted, without the leading dots (empty in `from . import x`).
    pub module: String,
    /// What the name is bound to.
    pub kind: ImportKind,
}

/// What an [`Import`] binds its local name to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportKind {
    /// The module itself (`import a.b as x`; `import a.b` binds `a`, so `module` is `a`).
    Module,
    /// A member of the module (`from m import name`), which may itself be a submodule.
    Member(String),
    /// Every public name of the module (`from m import *`); `local` is `*`.
    Star,
}

/// Every import in `file`, in source order.
pub fn imports(file: &SourceFile) -> Result<Vec<Import>, PluginError> {
    let query = IMPORTS_QUERY.get()?;
    let text_of = |node| compact(file.text_of(node));
    let mut found = Vec::new();
    for m in matches(query, file.root(), file.text()) {
        let alias = m.get("alias").map(text_of);
        if let Some(module) = m.get("module").map(text_of) {
            let bound = match alias {
                Some(alias) => (alias, module),
                // `import a.b.c` binds the top-level package `a`.
                None => {
                    let top = module.split('.').next().unwrap_or("").to_string();
                    (top.clone(), top)
                }
            };
            found.push(Import {
                local: bound.0,
                level: 0,
                module: bound.1,
                kind: ImportKind::Module,
            });
            continue;
        }
        let Some(from) = m.get("from").map(text_of) else {
            continue;
        };
        let module = from.trim_start_matches('.');
        let level = from.len() - module.len();
        let (local, kind) = match (m.get("name").map(text_of), m.get("star")) {
            (Some(name), _) => (
                alias.unwrap_or_else(|| name.clone()),
                ImportKind::Member(name),
            ),
            (None, Some(_)) => ("*".to_string(), ImportKind::Star),
            (None, None) => continue,
        };
        if local.is_empty() {
            continue;
        }
        found.push(Import {
            local,
            level,
            module: module.to_string(),
            kind,
        });
    }
    Ok(found)
}

/// The fully qualified name a dotted expression refers to through absolute imports:
/// with `from fastapi import FastAPI as F`, `F` is `fastapi.FastAPI`; with `import fastapi as
/// fa`, `fa.routing.APIRouter` is `fastapi.routing.APIRouter`. `None` when the first part is
/// not imported (a local name) or comes from a relative import (project code).
pub fn qualified_name(imports: &[Import], dotted: &str) -> Option<String> {
    let (first, rest) = match dotted.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (dotted, None),
    };
    let import = imports
        .iter()
        .rev()
        .find(|i| i.local == first && i.level == 0)?;
    let base = match &import.kind {
        ImportKind::Module => import.module.clone(),
        ImportKind::Member(name) => format!("{}.{name}", import.module),
        ImportKind::Star => return None,
    };
    Some(match rest {
        Some(rest) => format!("{base}.{rest}"),
        None => base,
    })
}

/// A dotted name with the whitespace Python allows inside it removed
/// (`from . routers import x`).
fn compact(text: &str) -> String {
    text.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Vec<Import> {
        imports(&SourceFile::parse("app/main.py", src).unwrap()).unwrap()
    }

    fn import(local: &str, level: usize, module: &str, kind: ImportKind) -> Import {
        Import {
            local: local.into(),
            level,
            module: module.into(),
            kind,
        }
    }

    #[test]
    fn reads_every_form() {
        let src = "import os\nimport app.routers.users\nimport app.routers.users as users\n\
                   from fastapi import FastAPI, APIRouter as R\nfrom . import items\n\
                   from ..core.config import settings\nfrom .routers import *\n\
                   from app.api import (\n    login,  # comment\n    utils,\n)\n\
                   def f():\n    from .internal import admin\n";
        assert_eq!(
            parse(src),
            [
                import("os", 0, "os", ImportKind::Module),
                import("app", 0, "app", ImportKind::Module),
                import("users", 0, "app.routers.users", ImportKind::Module),
                import(
                    "FastAPI",
                    0,
                    "fastapi",
                    ImportKind::Member("FastAPI".into())
                ),
                import("R", 0, "fastapi", ImportKind::Member("APIRouter".into())),
                import("items", 1, "", ImportKind::Member("items".into())),
                import(
                    "settings",
                    2,
                    "core.config",
                    ImportKind::Member("settings".into())
                ),
                import("*", 1, "routers", ImportKind::Star),
                import("login", 0, "app.api", ImportKind::Member("login".into())),
                import("utils", 0, "app.api", ImportKind::Member("utils".into())),
                import("admin", 1, "internal", ImportKind::Member("admin".into())),
            ]
        );
    }

    #[test]
    fn qualifies_names() {
        let found =
            parse("import fastapi as fa\nfrom fastapi import FastAPI as F\nfrom .x import y\n");
        assert_eq!(
            qualified_name(&found, "F").as_deref(),
            Some("fastapi.FastAPI")
        );
        assert_eq!(
            qualified_name(&found, "fa.routing.APIRouter").as_deref(),
            Some("fastapi.routing.APIRouter")
        );
        assert_eq!(qualified_name(&found, "y"), None);
        assert_eq!(qualified_name(&found, "FastAPI"), None);
    }

    /// Half-written imports yield what is readable and never panic.
    #[test]
    fn broken_imports() {
        let found = parse("from . import\nimport\nfrom fastapi import FastAPI\n");
        assert!(found.contains(&import(
            "FastAPI",
            0,
            "fastapi",
            ImportKind::Member("FastAPI".into())
        )));
    }
}
