//! The JavaScript grammar and the plugin's tree-sitter queries. The queries are data, kept as
//! `.scm` files under `queries/`, compiled once on first use.

use std::path::Path;
use std::sync::OnceLock;

use previewd_plugin_api::{query, PluginError};
use tree_sitter::{Language, Query};

/// The query files, by name.
const SOURCES: [(&str, &str); 3] = [
    ("bindings.scm", include_str!("../queries/bindings.scm")),
    ("calls.scm", include_str!("../queries/calls.scm")),
    ("exports.scm", include_str!("../queries/exports.scm")),
];

/// The extensions of the JavaScript files the plugin reads.
const EXTENSIONS: &[&str] = &["js", "mjs", "cjs"];

/// The grammar.
pub(crate) fn language() -> Language {
    tree_sitter_javascript::LANGUAGE.into()
}

/// Whether `path` is a JavaScript source the plugin reads.
pub(crate) fn is_source(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

/// The compiled queries.
pub(crate) struct Queries {
    pub(crate) bindings: Query,
    pub(crate) calls: Query,
    pub(crate) exports: Query,
}

impl Queries {
    /// The queries, compiled once per process.
    pub(crate) fn get() -> Result<&'static Queries, PluginError> {
        static QUERIES: OnceLock<Result<Queries, (String, String)>> = OnceLock::new();
        QUERIES
            .get_or_init(Queries::compile)
            .as_ref()
            .map_err(|(name, message)| PluginError::Query {
                name: name.clone(),
                message: message.clone(),
            })
    }

    fn compile() -> Result<Queries, (String, String)> {
        let language = language();
        let [bindings, calls, exports] = SOURCES.map(|(name, source)| {
            query::compile(&language, name, source)
                .map_err(|err| (name.to_string(), err.to_string()))
        });
        Ok(Queries {
            bindings: bindings?,
            calls: calls?,
            exports: exports?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query compiles against the grammar.
    #[test]
    fn every_query_compiles() {
        for (name, source) in SOURCES {
            query::compile(&language(), name, source).unwrap();
        }
        Queries::get().unwrap();
    }

    /// JavaScript in all three module flavours; nothing else.
    #[test]
    fn sources_by_extension() {
        assert!(is_source(Path::new("src/app.js")));
        assert!(is_source(Path::new("server.mjs")));
        assert!(is_source(Path::new("a.cjs")));
        assert!(!is_source(Path::new("app.ts")));
        assert!(!is_source(Path::new("bin/www")));
    }
}
