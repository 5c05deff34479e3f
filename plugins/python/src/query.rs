//! Running tree-sitter queries over Python trees.
//!
//! Queries are data: each lives in a `.scm` file, is included at build time and compiled once,
//! on first use, by [`SharedQuery`] (against the Python grammar). [`matches()`] runs one and hands
//! back plain values (captures looked up by name), hiding tree-sitter's streaming iterator; it
//! and [`Match`] are the plugin API's (`previewd_plugin_api::query`), which every language's
//! plugins share.

use previewd_plugin_api::query::LazyQuery;
use previewd_plugin_api::PluginError;
use tree_sitter::Query;

pub use previewd_plugin_api::query::{matches, Match};

use crate::source::language;

/// A query shipped with a plugin, compiled against the Python grammar the first time it is used
/// and shared afterwards (also across threads).
pub struct SharedQuery(LazyQuery);

impl SharedQuery {
    /// A query named `name` (its file name, for errors) with the text `source`.
    pub const fn new(name: &'static str, source: &'static str) -> SharedQuery {
        SharedQuery(LazyQuery::new(name, source))
    }

    /// The compiled query, or why it does not compile.
    pub fn get(&self) -> Result<&Query, PluginError> {
        self.0.get(language)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    static CALLS: SharedQuery = SharedQuery::new(
        "test.scm",
        r#"(call function: (identifier) @f (#eq? @f "print")) @call"#,
    );

    /// Predicates filter matches and captures are found by name.
    #[test]
    fn runs_a_query() {
        let file = SourceFile::parse("m.py", "print(1)\nlen(2)\nprint(3)\n").unwrap();
        let found = matches(CALLS.get().unwrap(), file.root(), file.text());
        let calls: Vec<_> = found
            .iter()
            .map(|m| file.text_of(m.get("call").unwrap()))
            .collect();
        assert_eq!(calls, ["print(1)", "print(3)"]);
        assert!(found[0].get("missing").is_none());
    }

    /// A broken query reports its name.
    #[test]
    fn reports_bad_queries() {
        static BAD: SharedQuery = SharedQuery::new("bad.scm", "(call");
        let err = BAD.get().unwrap_err();
        assert!(err.to_string().contains("bad.scm"), "{err}");
    }
}
