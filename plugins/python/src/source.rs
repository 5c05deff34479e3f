//! One parsed Python file: its project-relative path, its text and its tree-sitter tree, with
//! the small node helpers every analysis needs (text of a node, its line, its scope).
//!
//! Parsing never fails on bad input: tree-sitter recovers from syntax errors and marks them with
//! `ERROR` nodes, so a half-written file still yields the parts that are well formed.

use tree_sitter::{Language, Node, Parser, Tree};

/// The tree-sitter grammar for Python.
pub fn language() -> Language {
    tree_sitter_python::LANGUAGE.into()
}

/// A Python file and its syntax tree.
pub struct SourceFile {
    path: String,
    text: String,
    tree: Tree,
}

impl SourceFile {
    /// Parses `text`, the content of the file at `path` (relative to the project root, with `/`
    /// separators). `None` only when the parser itself cannot run, never for bad Python.
    pub fn parse(path: impl Into<String>, text: impl Into<String>) -> Option<SourceFile> {
        let text = text.into();
        let mut parser = Parser::new();
        parser.set_language(&language()).ok()?;
        let tree = parser.parse(&text, None)?;
        Some(SourceFile {
            path: path.into(),
            text,
            tree,
        })
    }

    /// The path relative to the project root, with `/` separators.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The `module` node at the root of the tree.
    pub fn root(&self) -> Node<'_> {
        self.tree.root_node()
    }

    /// The source text a node spans (empty if the node does not belong to this file).
    pub fn text_of(&self, node: Node<'_>) -> &str {
        node_text(node, &self.text)
    }
}

/// The text `node` spans in `text`; empty when the range does not fit (a node of another file).
pub fn node_text<'t>(node: Node<'_>, text: &'t str) -> &'t str {
    text.get(node.byte_range()).unwrap_or("")
}

/// The 1-based line a node starts on.
pub fn line_of(node: Node<'_>) -> u32 {
    u32::try_from(node.start_position().row)
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}

/// The expression inside any number of parentheses: `((x))` → `x`. A parenthesized tuple or
/// generator is returned as is. Iterative, so absurd nesting cannot exhaust the stack.
pub fn strip_parentheses(node: Node<'_>) -> Node<'_> {
    let mut current = node;
    while current.kind() == "parenthesized_expression" {
        let mut cursor = current.walk();
        let mut inner = current
            .named_children(&mut cursor)
            .filter(|n| n.kind() != "comment");
        match (inner.next(), inner.next()) {
            (Some(only), None) => current = only,
            _ => break,
        }
    }
    current
}

/// The innermost `def` (sync or async) that contains `node`, if any.
pub fn enclosing_function(node: Node<'_>) -> Option<Node<'_>> {
    let mut current = node.parent();
    while let Some(parent) = current {
        if parent.kind() == "function_definition" {
            return Some(parent);
        }
        current = parent.parent();
    }
    None
}

/// Whether a definition statement sits directly in the module body (not in a class, a function
/// or a block), looking through decorators.
pub fn is_top_level(definition: Node<'_>) -> bool {
    let mut parent = definition.parent();
    if parent.is_some_and(|p| p.kind() == "decorated_definition") {
        parent = parent.and_then(|p| p.parent());
    }
    parent.is_some_and(|p| p.kind() == "module")
}

/// The `def name` directly in `function`'s body (decorated or not); `source` is its file.
pub fn local_function<'t>(source: &SourceFile, function: Node<'t>, name: &str) -> Option<Node<'t>> {
    let body = function.child_by_field_name("body")?;
    let mut cursor = body.walk();
    let statements: Vec<_> = body.named_children(&mut cursor).collect();
    statements
        .into_iter()
        .filter_map(|s| match s.kind() {
            "function_definition" => Some(s),
            "decorated_definition" => s.child_by_field_name("definition"),
            _ => None,
        })
        .filter(|d| d.kind() == "function_definition")
        .find(|d| {
            d.child_by_field_name("name")
                .is_some_and(|n| source.text_of(n) == name)
        })
}

/// Whether `decorator` is well formed and really applies to `handler`: when code between them
/// is broken, tree-sitter's recovery can attach a decorator to the next function that parses,
/// which is not the one it was written for.
pub fn decorates_cleanly(decorator: Node<'_>, handler: Node<'_>) -> bool {
    let mut next = decorator.next_sibling();
    while let Some(node) = next {
        if node.id() == handler.id() {
            return !decorator.has_error();
        }
        if node.is_error() || node.is_missing() {
            return false;
        }
        next = node.next_sibling();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Broken code still parses, and nodes report their text, line and scope.
    #[test]
    fn parses_and_locates() {
        let file = SourceFile::parse("m.py", "x = 1\n\nasync def f(:\n    y = 2\n").unwrap();
        assert_eq!(file.path(), "m.py");
        let root = file.root();
        assert!(root.has_error());
        let first = root.named_child(0).unwrap();
        assert_eq!(file.text_of(first), "x = 1");
        assert_eq!(line_of(first), 1);
        assert!(enclosing_function(first).is_none());
    }

    /// Parentheses come off, however deep; a tuple keeps its own.
    #[test]
    fn parentheses() {
        let file = SourceFile::parse("m.py", "((  # c\n 'a' ))\n((1, 2))\n").unwrap();
        let expr = |i| {
            file.root()
                .named_child(i)
                .and_then(|s| s.named_child(0))
                .unwrap()
        };
        assert_eq!(strip_parentheses(expr(0)).kind(), "string");
        assert_eq!(strip_parentheses(expr(1)).kind(), "tuple");
    }

    /// A statement inside a function knows its function; only module-level defs are top level.
    #[test]
    fn scopes() {
        let src = "def outer():\n    def inner():\n        pass\n\n@dec\ndef top():\n    pass\n";
        let file = SourceFile::parse("m.py", src).unwrap();
        let root = file.root();
        let outer = root.named_child(0).unwrap();
        assert!(is_top_level(outer));
        let inner = outer
            .child_by_field_name("body")
            .unwrap()
            .named_child(0)
            .unwrap();
        assert_eq!(inner.kind(), "function_definition");
        assert!(!is_top_level(inner));
        assert_eq!(enclosing_function(inner).map(|n| n.id()), Some(outer.id()));
        let top = root
            .named_child(1)
            .unwrap()
            .child_by_field_name("definition")
            .unwrap();
        assert!(is_top_level(top));
        assert_eq!(line_of(top), 6);
    }
}
