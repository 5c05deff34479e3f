//! Loading and running tree-sitter queries. Plugins keep their queries as `.scm` files (data,
//! not Rust strings) and include them at build time; this compiles them with a useful error
//! ([`compile`]), once per process ([`LazyQuery`]), and runs one over a tree to plain values
//! ([`matches()`]: captures looked up by name), hiding tree-sitter's streaming iterator. The
//! language crates (`previewd-plugin-python`, `previewd-plugin-javascript`) build their shared
//! queries on these.

use std::sync::OnceLock;

use crate::PluginError;
use streaming_iterator::StreamingIterator;
use tree_sitter::{Language, Node, Query, QueryCursor};

/// Compiles `source` (the text of the query file `name`) against `language`.
pub fn compile(language: &Language, name: &str, source: &str) -> Result<Query, PluginError> {
    Query::new(language, source).map_err(|err| PluginError::Query {
        name: name.to_string(),
        message: err.to_string(),
    })
}

/// A query file compiled against one grammar the first time it is used, and shared afterwards
/// (also across threads).
pub struct LazyQuery {
    name: &'static str,
    source: &'static str,
    compiled: OnceLock<Result<Query, String>>,
}

impl LazyQuery {
    /// A query named `name` (its file name, for errors) with the text `source`.
    pub const fn new(name: &'static str, source: &'static str) -> LazyQuery {
        LazyQuery {
            name,
            source,
            compiled: OnceLock::new(),
        }
    }

    /// The query compiled against `language` (called on first use only: a `LazyQuery` serves
    /// one grammar), or why it does not compile.
    pub fn get(&self, language: impl FnOnce() -> Language) -> Result<&Query, PluginError> {
        let compiled = self.compiled.get_or_init(|| {
            compile(&language(), self.name, self.source).map_err(|err| match err {
                PluginError::Query { message, .. } => message,
                other => other.to_string(),
            })
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
