//! The grammars the plugin parses with and its tree-sitter queries. The queries are data, kept
//! as `.scm` files under `queries/`, and compiled once per grammar on first use: the same
//! queries serve JavaScript and TypeScript, whose grammar extends JavaScript's.

use std::path::Path;
use std::sync::OnceLock;

use previewd_plugin_api::{query, PluginError};
use tree_sitter::{Language, Query};

/// The query files, by name.
const SOURCES: [(&str, &str); 5] = [
    (
        "member_calls.scm",
        include_str!("../queries/member_calls.scm"),
    ),
    (
        "declarations.scm",
        include_str!("../queries/declarations.scm"),
    ),
    (
        "assignments.scm",
        include_str!("../queries/assignments.scm"),
    ),
    ("imports.scm", include_str!("../queries/imports.scm")),
    ("exports.scm", include_str!("../queries/exports.scm")),
];

/// Which grammar a source file is parsed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grammar {
    JavaScript,
    TypeScript,
}

impl Grammar {
    /// The grammar for `path`, or `None` when the plugin does not read such files. `.tsx` is
    /// skipped (JSX in TypeScript is frontend code); extensionless files are read as JavaScript
    /// only when asked for by name (an entry like `bin/www`).
    pub(crate) fn for_path(path: &Path) -> Option<Grammar> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".d.ts") {
            return None;
        }
        match path.extension()?.to_str()? {
            "js" | "mjs" | "cjs" => Some(Grammar::JavaScript),
            "ts" | "mts" | "cts" => Some(Grammar::TypeScript),
            _ => None,
        }
    }

    pub(crate) fn language(self) -> Language {
        match self {
            Grammar::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Grammar::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        }
    }
}

/// The compiled queries of one grammar.
pub(crate) struct Queries {
    pub(crate) member_calls: Query,
    pub(crate) declarations: Query,
    pub(crate) assignments: Query,
    pub(crate) imports: Query,
    pub(crate) exports: Query,
}

impl Queries {
    /// The queries compiled for `grammar` (once per process).
    pub(crate) fn get(grammar: Grammar) -> Result<&'static Queries, PluginError> {
        static JS: OnceLock<Result<Queries, (String, String)>> = OnceLock::new();
        static TS: OnceLock<Result<Queries, (String, String)>> = OnceLock::new();
        let cell = match grammar {
            Grammar::JavaScript => &JS,
            Grammar::TypeScript => &TS,
        };
        cell.get_or_init(|| Queries::compile(grammar))
            .as_ref()
            .map_err(|(name, message)| PluginError::Query {
                name: name.clone(),
                message: message.clone(),
            })
    }

    fn compile(grammar: Grammar) -> Result<Queries, (String, String)> {
        let language = grammar.language();
        let [calls, declarations, assignments, imports, exports] = SOURCES.map(|(name, source)| {
            query::compile(&language, name, source).map_err(|err| match err {
                PluginError::Query { name, message } => (name, message),
                other => (name.to_string(), other.to_string()),
            })
        });
        Ok(Queries {
            member_calls: calls?,
            declarations: declarations?,
            assignments: assignments?,
            imports: imports?,
            exports: exports?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query compiles against both the JavaScript and the TypeScript grammar.
    #[test]
    fn every_query_compiles_for_both_grammars() {
        for grammar in [Grammar::JavaScript, Grammar::TypeScript] {
            for (name, source) in SOURCES {
                query::compile(&grammar.language(), name, source).unwrap();
            }
            Queries::get(grammar).unwrap();
        }
    }

    /// Grammars by extension; declaration files and TSX are not read.
    #[test]
    fn grammar_by_extension() {
        assert_eq!(
            Grammar::for_path(Path::new("a/b.mjs")),
            Some(Grammar::JavaScript)
        );
        assert_eq!(
            Grammar::for_path(Path::new("src/x.ts")),
            Some(Grammar::TypeScript)
        );
        assert_eq!(Grammar::for_path(Path::new("types.d.ts")), None);
        assert_eq!(Grammar::for_path(Path::new("App.tsx")), None);
        assert_eq!(Grammar::for_path(Path::new("bin/www")), None);
    }
}
