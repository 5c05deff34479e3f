//! Reading calls: their arguments by position or keyword, and dotted callee names.
//!
//! Framework APIs are calls (`FastAPI(...)`, `APIRouter(prefix=...)`, `@app.get("/x")`), so
//! every plugin reads arguments the same way Python binds them: positionals in order until the
//! first `*args`, keywords by name.

use tree_sitter::Node;

use crate::source::node_text;

/// How deep an attribute chain [`dotted_path`] follows (`a.b.c…`).
const MAX_DOTTED_DEPTH: usize = 32;

/// The value of keyword argument `name` in an `argument_list` node.
pub fn keyword_argument<'t>(arguments: Node<'t>, name: &str, text: &str) -> Option<Node<'t>> {
    let mut cursor = arguments.walk();
    let found = arguments
        .named_children(&mut cursor)
        .filter(|n| n.kind() == "keyword_argument")
        .find(|n| {
            n.child_by_field_name("name")
                .is_some_and(|k| node_text(k, text) == name)
        });
    found.and_then(|n| n.child_by_field_name("value"))
}

/// The positional arguments of an `argument_list`, in order, up to the first `*args` (after
/// which positions are unknown).
pub fn positional_arguments(arguments: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = arguments.walk();
    arguments
        .named_children(&mut cursor)
        .filter(|n| {
            !matches!(
                n.kind(),
                "comment" | "keyword_argument" | "dictionary_splat"
            )
        })
        .take_while(|n| n.kind() != "list_splat")
        .collect()
}

/// The argument bound to a parameter that can be passed at position `index` or as keyword
/// `name` (e.g. a route's `path`).
pub fn argument<'t>(arguments: Node<'t>, index: usize, name: &str, text: &str) -> Option<Node<'t>> {
    keyword_argument(arguments, name, text)
        .or_else(|| positional_arguments(arguments).get(index).copied())
}

/// The dotted name an `identifier` or a chain of attribute accesses spells (`fastapi.FastAPI`);
/// `None` for any other expression (calls, subscripts, …).
pub fn dotted_path(node: Node<'_>, text: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut current = node;
    for _ in 0..MAX_DOTTED_DEPTH {
        match current.kind() {
            "identifier" => {
                parts.push(node_text(current, text));
                parts.reverse();
                return Some(parts.join("."));
            }
            "attribute" => {
                parts.push(node_text(current.child_by_field_name("attribute")?, text));
                current = current.child_by_field_name("object")?;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    /// The argument list of the call on the first line of `src`.
    fn with_call(src: &str, check: impl Fn(Node<'_>, Node<'_>, &str)) {
        let file = SourceFile::parse("t.py", src).unwrap();
        let call = file.root().named_child(0).unwrap().named_child(0).unwrap();
        assert_eq!(call.kind(), "call");
        let args = call.child_by_field_name("arguments").unwrap();
        check(
            call.child_by_field_name("function").unwrap(),
            args,
            file.text(),
        );
    }

    #[test]
    fn reads_arguments() {
        with_call(
            "r.add('/p', # c\n handler, methods=['GET'], **extra)\n",
            |callee, args, text| {
                assert_eq!(dotted_path(callee, text).as_deref(), Some("r.add"));
                let positional: Vec<_> = positional_arguments(args)
                    .iter()
                    .map(|n| node_text(*n, text))
                    .collect();
                assert_eq!(positional, ["'/p'", "handler"]);
                assert_eq!(
                    keyword_argument(args, "methods", text).map(|n| node_text(n, text)),
                    Some("['GET']")
                );
                assert!(keyword_argument(args, "tags", text).is_none());
                assert_eq!(
                    argument(args, 1, "endpoint", text).map(|n| node_text(n, text)),
                    Some("handler")
                );
                assert_eq!(
                    argument(args, 0, "path", text).map(|n| node_text(n, text)),
                    Some("'/p'")
                );
            },
        );
        with_call("f(*a, 'x', path='/k')\n", |callee, args, text| {
            assert_eq!(dotted_path(callee, text).as_deref(), Some("f"));
            assert!(positional_arguments(args).is_empty());
            assert_eq!(
                argument(args, 0, "path", text).map(|n| node_text(n, text)),
                Some("'/k'")
            );
        });
        with_call("make()()\n", |callee, _, text| {
            assert_eq!(dotted_path(callee, text), None)
        });
    }
}
