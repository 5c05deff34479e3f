//! Running tree-sitter queries over Python trees.
//!
//! Queries are data: each lives in a `.scm` file, is included at build time and compiled once,
//! on first use, by [`SharedQuery`]. [`matches()`] runs one and hands back plain values (captures
//! looked up by name), hiding tree-sitter's streaming iterator.

use std::sync::OnceLock;

use previewd_plugin_api::{query, PluginError};
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Query, QueryCursor};

use crate::source::language;

/// A query shipped with a plugin, compiled against the Python grammar the first time it is used
/// and shared afterwards (also across threads).
pub struct SharedQuery {
    name: &'static str,
    source: &'static str,
    compiled: OnceLock<Result<Query, String>>,
}

impl SharedQuery {
    /// A query named `name` (its file name, for errors) with the text `source`.
    pub const fn new(name: &'static str, source: &'static str) -> SharedQuery {
        SharedQuery {
            name,
            source,
            compiled: OnceLock::new(),
        }
    }

    /// The compiled query, or why it does not compile.
    pub fn get(&self) -> Result<&Query, PluginError> {
        let compiled = self.compiled.get_or_init(|| {
            query::compile(&language(), self.name, self.source).map_err(|err| err.to_string())
        });
        compiled.as_ref().map_err(|message| PluginError::Query {
            name: self.name.to_string(),
            message: message.clone(),
        })
    }
}

/// One match of a query: the pattern that matched and its captures, by capture name.
pub struct Match<'q, 't> {
    /// The index of the matching pattern in the query file.
    pub pattern: usize,
    captures: Vec<(&'q str, Node<'t>)>,
}

impl<'t> Match<'_, 't> {
    /// The node captured as `@name`, if the pattern captured one.
    pub fn get(&self, name: &str) -> Option<Node<'t>> {
        self.captures
            .iter()
            .find(|(capture, _)| *capture == name)
            .map(|(_, node)| *node)
    }
}

/// Every match of `query` in the subtree under `node`, in document order. `text` is the source
/// the tree was parsed from (the query's `#eq?`/`#any-of?` predicates read it).
pub fn matches<'q, 't>(query: &'q Query, node: Node<'t>, text: &'t str) -> Vec<Match<'q, 't>> {
    let names = query.capture_names();
    let mut cursor = QueryCursor::new();
    let mut found = Vec::new();
    let mut iter = cursor.matches(query, node, text.as_bytes());
    while let Some(m) = iter.next() {
        let captures = m
            .captures
            .iter()
            .filter_map(|c| {
                let name = names.get(usize::try_from(c.index).ok()?)?;
                Some((*name, c.node))
            })
            .collect();
        found.push(Match {
            pattern: m.pattern_index,
            captures,
        });
    }
    found
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
