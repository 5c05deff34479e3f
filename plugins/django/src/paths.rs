//! URL pattern strings as client paths: `path()` routes (`<int:pk>/` → `{pk}/`) and `re_path()`
//! regexes (`^(?P<year>[0-9]{4})/$` → `{year}/`). The launcher's `serve_django.py` applies the
//! same rules to the live resolver, so static and runtime paths agree.

/// A `path()` route with its `<converter:name>` / `<name>` parameters as `{name}`.
pub(crate) fn route_path(route: &str) -> String {
    let mut out = String::with_capacity(route.len());
    let mut rest = route;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let inner = &rest[start + 1..start + len];
        out.push_str(&rest[..start]);
        if inner.is_empty() || inner.contains('<') {
            out.push_str(&rest[start..=start + len]);
        } else {
            let name = inner.rsplit(':').next().unwrap_or(inner);
            out.push('{');
            out.push_str(name);
            out.push('}');
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// A `re_path()` regex as a path: the leading `^` and trailing `$`/`\Z` dropped, named groups
/// as `{name}`, unnamed groups as `{arg1}`, `{arg2}`..., `(?...)` groups kept as written, and
/// backslash escapes as the character escaped.
pub(crate) fn regex_path(regex: &str) -> String {
    let mut regex = regex.strip_prefix('^').unwrap_or(regex);
    for anchor in ["\\Z", "$"] {
        if regex.ends_with(anchor) && !regex.ends_with(&format!("\\{anchor}")) {
            regex = &regex[..regex.len() - anchor.len()];
            break;
        }
    }
    let chars: Vec<char> = regex.chars().collect();
    let mut out = String::with_capacity(regex.len());
    let mut positional = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '(' => {
                let end = group_end(&chars, i);
                let group: String = chars[i..end].iter().collect();
                if let Some(name) = group_name(&group) {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                } else if group.starts_with("(?") {
                    out.push_str(&group);
                } else {
                    positional += 1;
                    out.push_str(&format!("{{arg{positional}}}"));
                }
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The name of a `(?P<name>...)` group: word characters only, as Python requires.
fn group_name(group: &str) -> Option<&str> {
    let rest = group.strip_prefix("(?P<")?;
    let name = &rest[..rest.find('>')?];
    let valid = !name.is_empty() && name.chars().all(|c| c == '_' || c.is_alphanumeric());
    valid.then_some(name)
}

/// The index after the `)` closing the group opened at `start`, aware of escapes and character
/// classes; the end of the regex when it is unbalanced.
fn group_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut in_class = false;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                i += 2;
                continue;
            }
            ']' if in_class => in_class = false,
            _ if in_class => {}
            '[' => in_class = true,
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Converters and bare names become `{name}`; broken brackets stay as written.
    #[test]
    fn routes() {
        assert_eq!(route_path("<int:question_id>/vote/"), "{question_id}/vote/");
        assert_eq!(route_path("<slug>/<path:rest>"), "{slug}/{rest}");
        assert_eq!(route_path("a<>/b<c"), "a<>/b<c");
        assert_eq!(route_path(""), "");
    }

    /// Anchors, named and unnamed groups, classes with parentheses, escapes.
    #[test]
    fn regexes() {
        assert_eq!(
            regex_path(r"^archive/(?P<year>[0-9]{4})/(?P<month>[0-9]{2})/$"),
            "archive/{year}/{month}/"
        );
        assert_eq!(regex_path(r"^(?P<slug>[\w-]+)\.html$"), "{slug}.html");
        assert_eq!(regex_path(r"^books/(?P<isbn>[^/.]+)/$"), "books/{isbn}/");
        assert_eq!(regex_path(r"^a/([0-9]+)/(\d+)\Z"), "a/{arg1}/{arg2}");
        assert_eq!(regex_path(r"^x/(?:y|z)/$"), "x/(?:y|z)/");
        assert_eq!(regex_path(r"^c/(?P<v>[()])/\$"), "c/{v}/$");
        assert_eq!(regex_path("^(?P<broken"), "(?P<broken");
        assert_eq!(regex_path("^$"), "");
    }
}
