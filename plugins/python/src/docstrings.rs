//! Docstrings: finding the one a function, class or module declares, and cleaning it the way
//! Python's `inspect.cleandoc` does (frameworks show docstrings through it, e.g. FastAPI's
//! operation descriptions).

use tree_sitter::Node;

use crate::literals::{is_fstring, string_value};

/// The docstring of a `function_definition`, `class_definition` or `module` node, as written
/// (decoded, not yet cleaned). f-strings are not docstrings in Python and give `None`.
pub fn docstring(definition: Node<'_>, text: &str) -> Option<String> {
    let body = match definition.kind() {
        "module" => definition,
        "function_definition" | "class_definition" => definition.child_by_field_name("body")?,
        _ => return None,
    };
    let mut cursor = body.walk();
    let first = body
        .named_children(&mut cursor)
        .find(|n| n.kind() != "comment")?;
    if first.kind() != "expression_statement" || first.named_child_count() != 1 {
        return None;
    }
    let literal = first.named_child(0)?;
    if is_fstring(literal, text) {
        return None;
    }
    string_value(literal, text)
}

/// `inspect.cleandoc`: tabs expanded, the first line's leading spaces and every later line's
/// common indentation removed, blank lines at both ends dropped.
pub fn clean_docstring(doc: &str) -> String {
    let mut lines: Vec<String> = doc.split('\n').map(expand_tabs).collect();
    let margin = lines
        .iter()
        .skip(1)
        .filter_map(|line| {
            let content = line.trim_start_matches(' ');
            (!content.is_empty()).then(|| line.len() - content.len())
        })
        .min();
    if let Some(first) = lines.first_mut() {
        *first = first.trim_start_matches(' ').to_string();
    }
    if let Some(margin) = margin {
        for line in lines.iter_mut().skip(1) {
            // Only spaces were counted, so `margin` is a char boundary or past the end.
            *line = line.get(margin..).unwrap_or("").to_string();
        }
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let leading_blank = lines.iter().take_while(|l| l.is_empty()).count();
    lines.drain(..leading_blank);
    lines.join("\n")
}

/// `str.expandtabs()` with Python's default tab size of 8.
fn expand_tabs(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut column = 0;
    for c in line.chars() {
        if c == '\t' {
            let spaces = 8 - column % 8;
            out.extend(std::iter::repeat_n(' ', spaces));
            column += spaces;
        } else {
            out.push(c);
            column += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    #[test]
    fn cleans_like_inspect_cleandoc() {
        assert_eq!(
            clean_docstring("\n    Read items.\n\n      - indented\n    end\n    "),
            "Read items.\n\n  - indented\nend"
        );
        assert_eq!(clean_docstring("  One line.  "), "One line.  ");
        assert_eq!(
            clean_docstring("First.\n\tTabbed\n        spaced"),
            "First.\nTabbed\nspaced"
        );
        assert_eq!(clean_docstring("\n\n"), "");
        assert_eq!(clean_docstring("A\n   \n  B"), "A\n \nB");
    }

    #[test]
    fn finds_docstrings() {
        let src =
            "\"\"\"Module.\"\"\"\n\ndef f():\n    # note\n    '''Doc of f.'''\n    return 1\n\n\
                   def g():\n    x = 1\n    'not a docstring'\n\nclass C:\n    f\"nope {x}\"\n";
        let file = SourceFile::parse("m.py", src).unwrap();
        let root = file.root();
        let defs: Vec<_> = (0..root.named_child_count())
            .filter_map(|i| root.named_child(i))
            .collect();
        assert_eq!(docstring(root, file.text()).as_deref(), Some("Module."));
        assert_eq!(
            docstring(defs[1], file.text()).as_deref(),
            Some("Doc of f.")
        );
        assert_eq!(docstring(defs[2], file.text()), None);
        assert_eq!(docstring(defs[3], file.text()), None);
    }
}
