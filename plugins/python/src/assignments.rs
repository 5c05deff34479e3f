//! `name = callee(...)` statements: where Python code names what a call creates. The
//! framework plugins decide which callees matter (`FastAPI()`, `Blueprint(...)`, an app
//! factory); finding the statements is the same for all of them.

use previewd_plugin_api::PluginError;
use tree_sitter::Node;

use crate::query::{matches, SharedQuery};
use crate::{FileId, Program};

/// `name = callee(...)` and `name: T = callee(...)`, anywhere.
pub static ASSIGNMENTS_QUERY: SharedQuery = SharedQuery::new(
    "assignments.scm",
    include_str!("../queries/assignments.scm"),
);

/// A `name = callee(args)` statement found by [`ASSIGNMENTS_QUERY`].
pub struct Assignment<'p> {
    pub file: FileId,
    pub statement: Node<'p>,
    pub target: Node<'p>,
    pub callee: Node<'p>,
    pub arguments: Node<'p>,
}

/// Every `name = callee(...)` in `files`, in file and source order.
pub fn find_assignments<'p>(
    program: &'p Program,
    files: &[FileId],
) -> Result<Vec<Assignment<'p>>, PluginError> {
    let query = ASSIGNMENTS_QUERY.get()?;
    let mut found = Vec::new();
    for &file in files {
        let source = program.source(file);
        for m in matches(query, source.root(), source.text()) {
            if let (Some(statement), Some(target), Some(callee), Some(arguments)) = (
                m.get("assignment"),
                m.get("target"),
                m.get("callee"),
                m.get("arguments"),
            ) {
                found.push(Assignment {
                    file,
                    statement,
                    target,
                    callee,
                    arguments,
                });
            }
        }
    }
    Ok(found)
}
