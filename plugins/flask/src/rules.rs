//! Flask URL rules as strings: how a blueprint's `url_prefix` and a rule are joined, how
//! prefixes of nested blueprints combine, and how Werkzeug's `<converter(args):name>`
//! placeholders become `{name}`. Each function mirrors the Flask or Werkzeug code named in its
//! doc, so the static table and the running app's agree character for character.

/// `BlueprintSetupState.add_url_rule`: `"/".join((url_prefix.rstrip("/"), rule.lstrip("/")))`,
/// or the prefix alone for an empty rule.
pub(crate) fn join(url_prefix: Option<&str>, rule: &str) -> String {
    match url_prefix {
        None => rule.to_string(),
        Some(prefix) if rule.is_empty() => prefix.to_string(),
        Some(prefix) => format!(
            "{}/{}",
            prefix.trim_end_matches('/'),
            rule.trim_start_matches('/')
        ),
    }
}

/// `Blueprint.register` for a nested blueprint: the parent's effective prefix and the child's
/// (its registration's `url_prefix=`, else its own) combine into the child's effective prefix.
pub(crate) fn nest(parent: Option<&str>, child: Option<&str>) -> Option<String> {
    match (parent, child) {
        (Some(parent), Some(child)) => Some(format!(
            "{}/{}",
            parent.trim_end_matches('/'),
            child.trim_start_matches('/')
        )),
        (None, Some(only)) | (Some(only), None) => Some(only.to_string()),
        (None, None) => None,
    }
}

/// A rule with its variables as `{name}`: `/users/<int:id>/files/<path:p>` →
/// `/users/{id}/files/{p}`. What is not a Werkzeug variable (`<3`, `<a-b>`) stays as written.
pub(crate) fn openapi_path(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len());
    let mut rest = rule;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        match variable(rest) {
            Some((length, name)) => {
                out.push('{');
                out.push_str(name);
                out.push('}');
                rest = &rest[length..];
            }
            None => {
                out.push('<');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Matches Werkzeug's variable pattern at the start of `text` (which starts with `<`):
/// `<(?:converter(?:\((.*?)\))?:)?variable>`. Returns the length matched and the variable.
fn variable(text: &str) -> Option<(usize, &str)> {
    let inner = text.strip_prefix('<')?;
    let first = identifier(inner);
    // No converter: `<name>`.
    if first > 0 && inner[first..].starts_with('>') {
        return Some((first + 2, &inner[..first]));
    }
    if first == 0 {
        return None;
    }
    let after = &inner[first..];
    // The converter's arguments: the shortest `(...)` after which the rest matches, and not
    // across a line break (`.` in the pattern).
    let candidates: Vec<usize> = match after.strip_prefix('(') {
        Some(arguments) => {
            let line = arguments.find('\n').unwrap_or(arguments.len());
            arguments[..line]
                .match_indices(')')
                .map(|(i, _)| first + 1 + i + 1)
                .collect()
        }
        None => vec![first],
    };
    candidates.into_iter().find_map(|colon| {
        let name_start = colon + 1;
        let tail = inner.get(colon..)?.strip_prefix(':')?;
        let length = identifier(tail);
        (length > 0 && tail[length..].starts_with('>')).then(|| {
            (
                1 + name_start + length + 1,
                &inner[name_start..name_start + length],
            )
        })
    })
}

/// The length of the `[a-zA-Z_][a-zA-Z0-9_]*` at the start of `text`.
fn identifier(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(text.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prefix and rule meet at exactly one slash; an empty rule is the prefix itself.
    #[test]
    fn joins_like_flask() {
        assert_eq!(join(None, "/a"), "/a");
        assert_eq!(join(Some("/api"), "/a"), "/api/a");
        assert_eq!(join(Some("/api/"), "a/"), "/api/a/");
        assert_eq!(join(Some("/api"), "/"), "/api/");
        assert_eq!(join(Some("/api"), ""), "/api");
        assert_eq!(join(Some(""), "/a"), "/a");
    }

    #[test]
    fn nests_like_flask() {
        assert_eq!(
            nest(Some("/parent/"), Some("/child")).as_deref(),
            Some("/parent/child")
        );
        assert_eq!(nest(None, Some("/child")).as_deref(), Some("/child"));
        assert_eq!(nest(Some("/parent"), None).as_deref(), Some("/parent"));
        assert_eq!(nest(None, None), None);
    }

    #[test]
    fn converts_variables() {
        assert_eq!(openapi_path("/u/<int:id>/<path:p>"), "/u/{id}/{p}");
        assert_eq!(openapi_path("/<name>"), "/{name}");
        assert_eq!(openapi_path("/<string(length=2):code>"), "/{code}");
        assert_eq!(openapi_path("/<any(a, b):kind>/x"), "/{kind}/x");
        assert_eq!(openapi_path("/<re(\"a):b\"):x>"), "/{x}");
        assert_eq!(openapi_path("/a<3/<a-b>/<>/<int:>"), "/a<3/<a-b>/<>/<int:>");
        assert_eq!(openapi_path("<<x>>"), "<{x}>");
        assert_eq!(openapi_path("/é<ü>"), "/é<ü>");
    }
}
