//! Loading tree-sitter queries. Plugins keep their queries as `.scm` files (data, not Rust
//! strings) and include them at build time; this compiles them with a useful error.

use crate::PluginError;
use tree_sitter::{Language, Query};

/// Compiles `source` (the text of the query file `name`) against `language`.
pub fn compile(language: &Language, name: &str, source: &str) -> Result<Query, PluginError> {
    Query::new(language, source).map_err(|err| PluginError::Query {
        name: name.to_string(),
        message: err.to_string(),
    })
}
