//! Decoding Python string literals from the syntax tree into the text they denote.
//!
//! Handles every quoting form (`'…'`, `"…"`, triple quotes), the `r`/`u`/`f` prefixes in any
//! case and order, escape sequences, implicit concatenation (`"a" "b"`, also in parentheses) and
//! f-strings whose interpolations a caller can evaluate. Anything that is not a `str` at runtime
//! (bytes, t-strings) or that cannot be decoded faithfully (`\N{…}`, bytes that were not
//! UTF-8) gives `None`: callers skip such values instead of reporting something that is not in
//! the program.

use tree_sitter::Node;

use crate::source::{node_text, strip_parentheses};

/// The text of a string literal without interpolations (`"a"`, `r'\d'`, `"a" "b"`, `f"{{x}}"`).
pub fn string_value(node: Node<'_>, text: &str) -> Option<String> {
    string_value_with(node, text, &mut |_| None)
}

/// Like [`string_value`], but f-string interpolations are replaced by what `interpolate` makes
/// of their expression; an interpolation it cannot evaluate, or one with a conversion (`!r`) or a
/// format spec, makes the whole literal `None`.
pub fn string_value_with<'t>(
    node: Node<'t>,
    text: &str,
    interpolate: &mut dyn FnMut(Node<'t>) -> Option<String>,
) -> Option<String> {
    let node = strip_parentheses(node);
    match node.kind() {
        "string" => decode_string(node, text, interpolate),
        "concatenated_string" => {
            let mut out = String::new();
            let mut cursor = node.walk();
            for part in node.named_children(&mut cursor) {
                if part.kind() != "comment" {
                    out.push_str(&decode_string(part, text, interpolate)?);
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// Whether `node` is an f-string (or a concatenation containing one).
pub fn is_fstring(node: Node<'_>, text: &str) -> bool {
    let mut cursor = node.walk();
    let parts: Vec<_> = match node.kind() {
        "string" => vec![node],
        _ => node.named_children(&mut cursor).collect(),
    };
    parts.iter().any(|part| {
        part.named_child(0)
            .filter(|start| start.kind() == "string_start")
            .is_some_and(|start| node_text(start, text).contains(['f', 'F']))
    })
}

/// The element nodes of a list, tuple or set display (`["GET", "POST"]`); `None` for anything
/// else, or when an element is unpacked (`[*methods]`) so the elements are not all known.
pub fn sequence_elements(node: Node<'_>) -> Option<Vec<Node<'_>>> {
    // `("GET")` is a plain string in parentheses, not a tuple.
    let node = strip_parentheses(node);
    if !matches!(node.kind(), "list" | "tuple" | "set") {
        return None;
    }
    let mut cursor = node.walk();
    let elements: Vec<_> = node
        .named_children(&mut cursor)
        .filter(|n| n.kind() != "comment")
        .collect();
    let unpacked = elements
        .iter()
        .any(|n| matches!(n.kind(), "list_splat" | "parenthesized_list_splat"));
    (!unpacked).then_some(elements)
}

/// The flags a string prefix (`r`, `f`, `rb`, …) sets.
struct Prefix {
    raw: bool,
    format: bool,
}

/// Decodes one `string` node (no concatenation).
fn decode_string<'t>(
    node: Node<'t>,
    text: &str,
    interpolate: &mut dyn FnMut(Node<'t>) -> Option<String>,
) -> Option<String> {
    if node.kind() != "string" || node.has_error() {
        return None;
    }
    let mut prefix = None;
    let mut out = String::new();
    // Byte offset where the literal's next undecoded piece of body starts.
    let mut body_start = None;
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        match child.kind() {
            "string_start" => {
                prefix = Some(parse_prefix(node_text(child, text))?);
                body_start = Some(child.end_byte());
            }
            "string_content" => {}
            "interpolation" => {
                let flags = prefix.as_ref()?;
                decode_piece(text.get(body_start?..child.start_byte())?, flags, &mut out)?;
                out.push_str(&interpolation_value(child, interpolate)?);
                body_start = Some(child.end_byte());
            }
            "string_end" => {
                let flags = prefix.as_ref()?;
                decode_piece(text.get(body_start?..child.start_byte())?, flags, &mut out)?;
                return Some(out);
            }
            _ => return None,
        }
    }
    None
}

/// Reads the prefix letters of a `string_start` token (`rb"""` → raw bytes). `None` for
/// literals that are not `str` at runtime: bytes and template strings.
fn parse_prefix(start: &str) -> Option<Prefix> {
    let letters = start.trim_end_matches(['"', '\'']).to_ascii_lowercase();
    if letters.contains(['b', 't']) || !letters.chars().all(|c| matches!(c, 'r' | 'u' | 'f')) {
        return None;
    }
    Some(Prefix {
        raw: letters.contains('r'),
        format: letters.contains('f'),
    })
}

/// The value of one `{expr}` of an f-string.
fn interpolation_value<'t>(
    node: Node<'t>,
    interpolate: &mut dyn FnMut(Node<'t>) -> Option<String>,
) -> Option<String> {
    let mut cursor = node.walk();
    let decorated = node
        .named_children(&mut cursor)
        .any(|n| matches!(n.kind(), "type_conversion" | "format_specifier"));
    if decorated {
        return None;
    }
    interpolate(node.child_by_field_name("expression")?)
}

/// Appends the value of a piece of literal body (the source between the quotes, or between two
/// interpolations) to `out`.
fn decode_piece(piece: &str, prefix: &Prefix, out: &mut String) -> Option<()> {
    // U+FFFD stands for bytes that were not UTF-8 when the file was read: Python would reject
    // the file, and the text they meant is unknown.
    if piece.contains(char::REPLACEMENT_CHARACTER) {
        return None;
    }
    // Python reads source with universal newlines before tokenizing.
    let piece = piece.replace("\r\n", "\n").replace('\r', "\n");
    let piece = if prefix.format {
        piece.replace("{{", "{").replace("}}", "}")
    } else {
        piece
    };
    if prefix.raw {
        out.push_str(&piece);
        return Some(());
    }
    unescape(&piece, out)
}

/// Applies Python's backslash escapes for `str` literals. Unknown escapes stay as written, as
/// in Python; `\N{name}` cannot be decoded without the Unicode name table and gives `None`.
fn unescape(body: &str, out: &mut String) -> Option<()> {
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(escape) = chars.next() else {
            out.push('\\');
            break;
        };
        match escape {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(escape),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '0'..='7' => {
                let mut value = escape.to_digit(8)?;
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(digit) => {
                            value = value * 8 + digit;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(value)?);
            }
            'x' => out.push(hex_char(&mut chars, 2)?),
            'u' => out.push(hex_char(&mut chars, 4)?),
            'U' => out.push(hex_char(&mut chars, 8)?),
            'N' => return None,
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(())
}

/// Reads exactly `digits` hex digits and returns the character they number.
fn hex_char(chars: &mut impl Iterator<Item = char>, digits: usize) -> Option<char> {
    let mut value = 0u32;
    for _ in 0..digits {
        value = value * 16 + chars.next()?.to_digit(16)?;
    }
    char::from_u32(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    /// Parses `x = <literal>` and decodes the right-hand side.
    fn value(literal: &str) -> Option<String> {
        let file = SourceFile::parse("t.py", format!("x = {literal}\n")).unwrap();
        let assignment = file.root().named_child(0)?.named_child(0)?;
        let right = assignment.child_by_field_name("right")?;
        string_value(right, file.text())
    }

    #[test]
    fn quotes() {
        assert_eq!(value(r#""/users""#).as_deref(), Some("/users"));
        assert_eq!(value("'/items'").as_deref(), Some("/items"));
        assert_eq!(value(r#""""a "b" c""""#).as_deref(), Some(r#"a "b" c"#));
        assert_eq!(value("'''x\ny'''").as_deref(), Some("x\ny"));
        assert_eq!(value(r#""""#).as_deref(), Some(""));
        assert_eq!(value("\"it's\"").as_deref(), Some("it's"));
    }

    #[test]
    fn prefixes() {
        assert_eq!(value(r#"r"\d+\n""#).as_deref(), Some(r"\d+\n"));
        assert_eq!(value(r#"R'\w'"#).as_deref(), Some(r"\w"));
        assert_eq!(value(r#"u"caf\u00e9""#).as_deref(), Some("café"));
        assert_eq!(value(r#"Rf"\{{x}}""#).as_deref(), Some(r"\{x}"));
        assert_eq!(value(r#"f"/a/{{id}}""#).as_deref(), Some("/a/{id}"));
        assert_eq!(value(r#"b"bytes""#), None);
        assert_eq!(value(r#"rb"bytes""#), None);
        assert_eq!(value(r#"f"/{name}""#), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(value(r#""a\tb\\c\"d""#).as_deref(), Some("a\tb\\c\"d"));
        assert_eq!(value(r#""\x41\101\U0001F600""#).as_deref(), Some("AA😀"));
        assert_eq!(value(r#""keep \d""#).as_deref(), Some(r"keep \d"));
        assert_eq!(value("\"one \\\ntwo\"").as_deref(), Some("one two"));
        assert_eq!(value(r#""\N{BULLET}""#), None);
        assert_eq!(value("'caf\u{FFFD}'"), None);
        assert_eq!(value("'''a\r\nb'''").as_deref(), Some("a\nb"));
    }

    #[test]
    fn concatenation() {
        assert_eq!(value(r#""/api" '/v1'"#).as_deref(), Some("/api/v1"));
        assert_eq!(
            value("(\n  \"/a\"  # c\n  r\"/b\"\n)").as_deref(),
            Some("/a/b")
        );
        assert_eq!(value(r#""/a" b"/b""#), None);
        assert_eq!(value("\"/a\" + \"/b\""), None);
    }

    /// Interpolations go through the caller's evaluator; conversions and specs do not.
    #[test]
    fn interpolation() {
        let file =
            SourceFile::parse("t.py", "x = f\"{P}/users/{{id}}\"\ny = f\"{P!r}\"\n").unwrap();
        let right = |i| {
            file.root()
                .named_child(i)
                .and_then(|s| s.named_child(0))
                .and_then(|a| a.child_by_field_name("right"))
                .unwrap()
        };
        let mut eval = |n: Node<'_>| (file.text_of(n) == "P").then(|| "/api".to_string());
        assert_eq!(
            string_value_with(right(0), file.text(), &mut eval).as_deref(),
            Some("/api/users/{id}")
        );
        assert_eq!(string_value_with(right(1), file.text(), &mut eval), None);
        assert!(is_fstring(right(0), file.text()));
    }

    #[test]
    fn sequences() {
        let file = SourceFile::parse(
            "t.py",
            "a = ['GET', \"post\"]\nb = ('X',)\nc = [*m]\nd = ('X')\n",
        )
        .unwrap();
        let right = |i| {
            file.root()
                .named_child(i)
                .and_then(|s| s.named_child(0))
                .and_then(|a| a.child_by_field_name("right"))
                .unwrap()
        };
        let texts = |i| {
            sequence_elements(right(i)).map(|items| {
                items
                    .iter()
                    .filter_map(|n| string_value(*n, file.text()))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(texts(0), Some(vec!["GET".to_string(), "post".to_string()]));
        assert_eq!(texts(1), Some(vec!["X".to_string()]));
        assert_eq!(texts(2), None);
        assert_eq!(texts(3), None);
    }
}
