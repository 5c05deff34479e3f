//! A route's summary and description, from the comment right above the statement that
//! registers it.
//!
//! The rule: the comment must end on the line just above the statement (a blank line breaks
//! the link). A block comment (`/** ... */`, JSDoc) is used alone; `//` comments are used as the
//! run of consecutive line comments. Leading `*`s are stripped and the text stops at the first
//! JSDoc tag (`@param`, `@returns`). The first paragraph, joined into one line, is the summary;
//! the remaining lines are the description. Tool directives (`eslint-`, `@ts-`,
//! `prettier-ignore`) are not documentation and are ignored.

use tree_sitter::Node;

/// How deep below the root the statement holding a call is looked for.
const MAX_DESCENT: usize = 10_000;
/// Comment prefixes that are directives to tools, not documentation.
const DIRECTIVES: &[&str] = &["eslint-", "@ts-", "prettier-ignore", "istanbul ", "global "];

/// The summary and description documenting the statement holding `call` (`root` is the
/// file's root node).
pub(crate) fn for_statement(
    call: Node,
    root: Node,
    src: &[u8],
) -> (Option<String>, Option<String>) {
    let Some(statement) = statement_of(call, root) else {
        return (None, None);
    };
    let mut lines = Vec::new();
    let mut next_row = statement.start_position().row;
    let mut node = statement.prev_sibling();
    while let Some(comment) = node.filter(|n| n.kind() == "comment") {
        if comment.end_position().row + 1 != next_row {
            break;
        }
        let text = comment.utf8_text(src).unwrap_or_default();
        if text.starts_with("/*") {
            if lines.is_empty() {
                lines = block_lines(text);
            }
            break;
        }
        let line = text.trim_start_matches('/').trim().to_string();
        lines.insert(0, line);
        next_row = comment.start_position().row;
        node = comment.prev_sibling();
    }
    split(&lines)
}

/// The innermost statement (a child of the program or of a block) that holds `call`. Found
/// going down from the root: tree-sitter's `parent()` walks down from the root itself, so
/// climbing a long `.route().get().post()` chain link by link would be quadratic per link.
fn statement_of<'t>(call: Node<'t>, root: Node<'t>) -> Option<Node<'t>> {
    let (start, end) = (call.start_byte(), call.end_byte());
    let mut node = root;
    let mut statement = None;
    for _ in 0..MAX_DESCENT {
        if node.id() == call.id() {
            return statement;
        }
        let child = node
            .first_child_for_byte(start)
            .filter(|c| c.start_byte() <= start && c.end_byte() >= end)?;
        if matches!(node.kind(), "program" | "statement_block") {
            statement = Some(child);
        }
        node = child;
    }
    None
}

/// The lines of a block comment without its delimiters and leading `*`s.
fn block_lines(text: &str) -> Vec<String> {
    let inner = text
        .trim_start_matches('/')
        .trim_start_matches('*')
        .trim_end_matches('/')
        .trim_end_matches('*');
    inner
        .lines()
        .map(|line| line.trim().trim_start_matches('*').trim().to_string())
        .collect()
}

/// Summary (first paragraph) and description (the rest), up to the first JSDoc tag.
fn split(lines: &[String]) -> (Option<String>, Option<String>) {
    if lines
        .first()
        .is_some_and(|l| DIRECTIVES.iter().any(|d| l.starts_with(d)))
    {
        return (None, None);
    }
    let lines: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.starts_with('@'))
        .skip_while(|l| l.is_empty())
        .collect();
    let summary_len = lines
        .iter()
        .position(|l| l.is_empty())
        .unwrap_or(lines.len());
    let summary = lines[..summary_len].join(" ");
    let rest: Vec<&str> = lines[summary_len..]
        .iter()
        .copied()
        .skip_while(|l| l.is_empty())
        .collect();
    let description = rest.join("\n").trim_end().to_string();
    let some = |s: String| (!s.is_empty()).then_some(s);
    (some(summary), some(description))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| s.to_string()).collect()
    }

    /// JSDoc: summary, description, tags cut off.
    #[test]
    fn jsdoc() {
        let block =
            block_lines("/**\n * Creates a todo.\n *\n * The body is JSON.\n * @returns x\n */");
        assert_eq!(
            split(&block),
            (
                Some("Creates a todo.".into()),
                Some("The body is JSON.".into())
            )
        );
        assert_eq!(
            split(&block_lines("/** One. */")),
            (Some("One.".into()), None)
        );
    }

    /// Line comments; tool directives are not documentation.
    #[test]
    fn line_comments() {
        assert_eq!(
            split(&lines(&["Reads one", "todo."])),
            (Some("Reads one todo.".into()), None)
        );
        assert_eq!(split(&lines(&["eslint-disable-next-line"])), (None, None));
        assert_eq!(split(&[]), (None, None));
    }
}
