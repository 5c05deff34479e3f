//! What the view of a URL pattern answers, read statically: its methods, the file and line of
//! the function or class, and its docstring split into summary and description.
//!
//! The rules are the runtime's (`serve_django.py`): class-based views answer the handlers they
//! have that `http_method_names` allows; `as_view({"get": "list"})` the mapping's methods;
//! functions what `require_http_methods` / `require_GET` / `require_POST` / `require_safe` /
//! `@api_view([...])` allow, and GET when nothing restricts them. HEAD and OPTIONS are never
//! listed.

use previewd_plugin_python::calls::{argument, dotted_path, positional_arguments};
use previewd_plugin_python::docstrings::{clean_docstring, docstring};
use previewd_plugin_python::imports::qualified_name;
use previewd_plugin_python::literals::sequence_elements;
use previewd_plugin_python::program::assigned_value;
use previewd_plugin_python::source::{line_of, strip_parentheses};
use previewd_plugin_python::{FileId, Program, Symbol};
use tree_sitter::Node;

use crate::classes::ViewClass;

/// The method listed for a function view nothing restricts.
pub(crate) const UNRESTRICTED_METHOD: &str = "GET";

/// Aliases (`index = IndexView.as_view()`) followed at most this many times.
const MAX_ALIASES: usize = 8;

/// A view as the route table shows it.
pub(crate) struct View {
    /// Upper-case methods, HEAD and OPTIONS left out.
    pub methods: Vec<String>,
    /// Where the function or class is declared, when it is in the project.
    pub location: Option<(String, u32)>,
    pub summary: Option<String>,
    pub description: Option<String>,
}

impl View {
    /// A view declared by `definition` (a `def` or `class`) in `file`, answering `methods`.
    pub fn declared(
        program: &Program,
        file: FileId,
        definition: Node<'_>,
        methods: Vec<String>,
    ) -> View {
        let source = program.source(file);
        let (summary, description) = docstring(definition, source.text())
            .map(|d| split_docstring(&clean_docstring(&d)))
            .unwrap_or_default();
        View {
            methods: without_automatic(methods),
            location: Some((source.path().to_string(), line_of(definition))),
            summary,
            description,
        }
    }

    /// A view outside the project (or not understood): no location, no documentation.
    fn external(methods: Vec<String>) -> View {
        View {
            methods: without_automatic(methods),
            location: None,
            summary: None,
            description: None,
        }
    }

    /// The view a `path()`'s view argument in `file` denotes.
    pub fn of(program: &Program, file: FileId, expr: Node<'_>) -> View {
        view_at(program, file, expr, 0)
    }
}

fn view_at(program: &Program, file: FileId, expr: Node<'_>, hops: usize) -> View {
    let expr = strip_parentheses(expr);
    if hops > MAX_ALIASES {
        return View::external(vec![UNRESTRICTED_METHOD.to_string()]);
    }
    if expr.kind() == "call" {
        return as_view(program, file, expr)
            .unwrap_or_else(|| View::external(vec![UNRESTRICTED_METHOD.to_string()]));
    }
    let Some(Symbol::Name { file, name }) = program.resolve(file, expr) else {
        return View::external(vec![UNRESTRICTED_METHOD.to_string()]);
    };
    match program.definition(file, &name) {
        Some(def) if def.kind() == "function_definition" => {
            let methods = restricted_methods(program, file, def)
                .unwrap_or_else(|| vec![UNRESTRICTED_METHOD.to_string()]);
            View::declared(program, file, def, methods)
        }
        Some(assignment) if assignment.kind() == "assignment" => match assigned_value(assignment) {
            Some(value) => view_at(program, file, value, hops + 1),
            None => View::external(vec![UNRESTRICTED_METHOD.to_string()]),
        },
        _ => View::external(vec![UNRESTRICTED_METHOD.to_string()]),
    }
}

/// `SomeView.as_view(...)`: a class-based view, or a ViewSet with an explicit actions mapping.
fn as_view(program: &Program, file: FileId, call: Node<'_>) -> Option<View> {
    let text = program.source(file).text();
    let function = call.child_by_field_name("function")?;
    if function.kind() != "attribute"
        || program
            .source(file)
            .text_of(function.child_by_field_name("attribute")?)
            != "as_view"
    {
        return None;
    }
    let class = ViewClass::of_expression(program, file, function.child_by_field_name("object")?)?;
    let arguments = call.child_by_field_name("arguments")?;
    let mapping = argument(arguments, 0, "actions", text).filter(|a| a.kind() == "dictionary");
    let methods = match mapping {
        Some(mapping) => dictionary_keys(program, file, mapping)
            .into_iter()
            .map(|k| k.to_ascii_uppercase())
            .collect(),
        None => class.handler_methods(),
    };
    Some(match class.site {
        Some((file, node)) => View::declared(program, file, node, methods),
        None => View::external(methods),
    })
}

/// The static string keys of a dictionary display.
fn dictionary_keys(program: &Program, file: FileId, dictionary: Node<'_>) -> Vec<String> {
    let mut cursor = dictionary.walk();
    let pairs: Vec<Node<'_>> = dictionary
        .named_children(&mut cursor)
        .filter(|n| n.kind() == "pair")
        .collect();
    pairs
        .into_iter()
        .filter_map(|pair| program.eval_str(file, pair.child_by_field_name("key")?))
        .collect()
}

/// The methods a restricting decorator on a function view allows: `require_http_methods`,
/// `require_GET`, `require_POST`, `require_safe` (Django) and `api_view` (DRF). `None` when
/// no decorator restricts the view or the list is not static.
fn restricted_methods(program: &Program, file: FileId, def: Node<'_>) -> Option<Vec<String>> {
    let decorated = def
        .parent()
        .filter(|p| p.kind() == "decorated_definition")?;
    let text = program.source(file).text();
    let mut cursor = decorated.walk();
    let decorators: Vec<Node<'_>> = decorated
        .named_children(&mut cursor)
        .filter(|n| n.kind() == "decorator")
        .collect();
    decorators.into_iter().find_map(|decorator| {
        let expr = decorator.named_child(0)?;
        let (callee, arguments) = match expr.kind() {
            "call" => (
                expr.child_by_field_name("function")?,
                expr.child_by_field_name("arguments"),
            ),
            _ => (expr, None),
        };
        let qualified = qualified_name(program.imports(file), &dotted_path(callee, text)?)?;
        let listed = |name: &str| {
            let list = arguments.and_then(|a| argument(a, 0, name, text));
            let elements = match list {
                Some(list) => sequence_elements(list)?,
                None => return Some(vec![UNRESTRICTED_METHOD.to_string()]),
            };
            elements
                .into_iter()
                .map(|e| program.eval_str(file, e).map(|m| m.to_ascii_uppercase()))
                .collect::<Option<Vec<_>>>()
        };
        match qualified.as_str() {
            "django.views.decorators.http.require_http_methods" => {
                let list = arguments.and_then(|a| positional_arguments(a).first().copied())?;
                sequence_elements(list)?
                    .into_iter()
                    .map(|e| program.eval_str(file, e).map(|m| m.to_ascii_uppercase()))
                    .collect()
            }
            "django.views.decorators.http.require_GET" => Some(vec!["GET".into()]),
            "django.views.decorators.http.require_POST" => Some(vec!["POST".into()]),
            "django.views.decorators.http.require_safe" => Some(vec!["GET".into(), "HEAD".into()]),
            "rest_framework.decorators.api_view" => listed("http_method_names"),
            _ => None,
        }
    })
}

/// `methods` without HEAD and OPTIONS (Django answers them by itself) and duplicates.
fn without_automatic(methods: Vec<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for method in methods {
        if !matches!(method.as_str(), "HEAD" | "OPTIONS") && !kept.contains(&method) {
            kept.push(method);
        }
    }
    kept
}

/// A cleaned docstring as (first line, the rest), each `None` when empty.
pub(crate) fn split_docstring(doc: &str) -> (Option<String>, Option<String>) {
    let (first, rest) = doc.split_once('\n').unwrap_or((doc, ""));
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    (some(first), some(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First line and the rest, trimmed; empty parts are `None`.
    #[test]
    fn docstring_parts() {
        assert_eq!(
            split_docstring("Lend a book.\n\nOnly members."),
            (Some("Lend a book.".into()), Some("Only members.".into()))
        );
        assert_eq!(
            split_docstring("One line."),
            (Some("One line.".into()), None)
        );
        assert_eq!(split_docstring(""), (None, None));
    }
}
