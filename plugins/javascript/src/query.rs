//! Tree-sitter queries over JavaScript and TypeScript trees. Queries are data: each lives in a
//! `.scm` file, is included at build time and compiled once per grammar, on first use, by
//! [`SharedQuery`]; the same query serves both grammars, TypeScript's extending JavaScript's.
//! [`matches()`] (the plugin API's) runs one.

use previewd_plugin_api::query::LazyQuery;
use previewd_plugin_api::PluginError;
use tree_sitter::Query;

pub use previewd_plugin_api::query::{matches, Match};

use crate::Grammar;

/// A query shipped with a plugin, compiled against a grammar the first time it is used with it
/// and shared afterwards (also across threads).
pub struct SharedQuery {
    javascript: LazyQuery,
    typescript: LazyQuery,
}

impl SharedQuery {
    /// A query named `name` (its file name, for errors) with the text `source`.
    pub const fn new(name: &'static str, source: &'static str) -> SharedQuery {
        SharedQuery {
            javascript: LazyQuery::new(name, source),
            typescript: LazyQuery::new(name, source),
        }
    }

    /// The query compiled for `grammar`, or why it does not compile.
    pub fn get(&self, grammar: Grammar) -> Result<&Query, PluginError> {
        let compiled = match grammar {
            Grammar::JavaScript => &self.javascript,
            Grammar::TypeScript => &self.typescript,
        };
        compiled.get(|| grammar.language())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CALLS: SharedQuery = SharedQuery::new(
        "test.scm",
        r#"(call_expression function: (identifier) @f (#eq? @f "listen")) @call"#,
    );

    /// The same query runs on both grammars; predicates filter matches and captures are found
    /// by name.
    #[test]
    fn runs_on_both_grammars() {
        let text = "listen(1);\nclose(2);\nlisten(3 as number);\n";
        for grammar in [Grammar::JavaScript, Grammar::TypeScript] {
            let tree = grammar.parse(text).unwrap().unwrap();
            let found = matches(CALLS.get(grammar).unwrap(), tree.root_node(), text);
            let lines: Vec<_> = found
                .iter()
                .map(|m| m.get("call").unwrap().start_position().row)
                .collect();
            assert_eq!(lines, [0, 2], "{grammar:?}");
            assert!(found[0].get("missing").is_none());
        }
    }

    /// A broken query reports its name.
    #[test]
    fn reports_bad_queries() {
        static BAD: SharedQuery = SharedQuery::new("bad.scm", "(call_expression");
        let err = BAD.get(Grammar::JavaScript).unwrap_err();
        assert!(err.to_string().contains("bad.scm"), "{err}");
    }
}
