//! Static route extraction: every URL rule registered on an app or blueprint, placed under the
//! prefixes of the blueprint registrations above it and tagged with the blueprint's full name,
//! as Flask itself composes them.
//!
//! Registrations are `@x.route("/p", methods=[...])`, the verb shortcuts `@x.get("/p")` & co.,
//! and `x.add_url_rule("/p", endpoint, view_func, methods=[...])` with a function or a
//! class-based view (`UserAPI.as_view("users")`, see [`crate::views`]). Methods are what the
//! rule declares: the `HEAD` Werkzeug adds to every `GET` rule and the automatic `OPTIONS` are
//! not listed (the runtime table leaves them out the same way). Summary and description come
//! from the handler's docstring: its first line, and the rest. A rule whose path, or a prefix
//! above it, is not a static string is skipped rather than reported wrong.

use std::collections::{HashMap, HashSet};

use previewd_plugin_api::{Endpoint, PluginError};
use previewd_plugin_python::calls::{argument, keyword_argument};
use previewd_plugin_python::docstrings::{clean_docstring, docstring};
use previewd_plugin_python::query::matches;
use previewd_plugin_python::source::{decorates_cleanly, line_of, strip_parentheses};
use previewd_plugin_python::{FileId, Program};
use tree_sitter::Node;

use crate::model::{Kind, Model, Setting};
use crate::queries::{METHOD_CALLS, ROUTE_DECORATORS};
use crate::rules;
use crate::view_functions::{function_named_by, is_as_view, view_class};
use crate::views::method_list;

/// The method a rule answers when it declares none.
const DEFAULT_METHOD: &str = "GET";

/// Registration chains deeper than this are not followed (and cycles never are).
const MAX_NESTING: usize = 32;

/// At most this many endpoints are reported, and at most this many times an object is visited
/// on the way: blueprints registered from many places could otherwise multiply without bound.
const MAX_ENDPOINTS: usize = 10_000;

/// Where a handler is and what its docstring says.
#[derive(Clone)]
struct Handler {
    file: String,
    line: u32,
    summary: Option<String>,
    description: Option<String>,
}

/// One URL rule as registered on its app or blueprint, before prefixes.
struct Rule {
    object: usize,
    rule: String,
    /// Each declared method with its handler.
    methods: Vec<(String, Handler)>,
}

/// What the registrations above an object make of it.
struct Placement {
    /// The effective `url_prefix` (`None`: no prefix).
    url_prefix: Option<String>,
    /// The blueprint's full dotted name (`parent.child`); `None` for apps and unknown names.
    name: Option<String>,
}

/// Every route of the project, sorted by path then method.
pub(crate) fn extract(model: &Model<'_>) -> Result<Vec<Endpoint>, PluginError> {
    let rules = find_rules(model)?;
    let mut on_object: HashMap<usize, Vec<&Rule>> = HashMap::new();
    for rule in &rules {
        on_object.entry(rule.object).or_default().push(rule);
    }
    let mut walk = Walk {
        model,
        on_object,
        stack: Vec::new(),
        visits: 0,
        endpoints: Vec::new(),
    };
    let registered: HashSet<usize> = model.registrations.iter().map(|r| r.child).collect();
    // Objects nobody registers are the roots: the apps, and blueprints never registered
    // (listed under their own prefix, best effort).
    for (root, object) in model.objects.iter().enumerate() {
        if registered.contains(&root) {
            continue;
        }
        let placement = match object.kind {
            Kind::App => Placement {
                url_prefix: None,
                name: None,
            },
            Kind::Blueprint => match &object.url_prefix {
                Setting::Dynamic => continue,
                Setting::Absent => Placement {
                    url_prefix: None,
                    name: object.name.clone(),
                },
                Setting::Static(prefix) => Placement {
                    url_prefix: Some(prefix.clone()),
                    name: object.name.clone(),
                },
            },
        };
        walk.visit(root, &placement);
    }
    // The same blueprint registered twice in the same place yields the same endpoints twice.
    let mut seen = HashSet::new();
    let mut endpoints = walk.endpoints;
    endpoints.retain(|e| {
        seen.insert((
            e.method.clone(),
            e.path.clone(),
            e.tags.clone(),
            e.file.clone(),
            e.line,
        ))
    });
    endpoints.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Ok(endpoints)
}

/// The traversal from root objects down their blueprint registrations.
struct Walk<'a, 'p> {
    model: &'a Model<'p>,
    on_object: HashMap<usize, Vec<&'a Rule>>,
    /// The objects on the current registration chain, to stop at cycles.
    stack: Vec<usize>,
    /// How many objects were visited so far (bounded by [`MAX_ENDPOINTS`] too).
    visits: usize,
    endpoints: Vec<Endpoint>,
}

impl Walk<'_, '_> {
    /// Lists the routes of `object` placed as `placement`, then those of the blueprints
    /// registered on it.
    fn visit(&mut self, object: usize, placement: &Placement) {
        self.visits += 1;
        if self.stack.len() >= MAX_NESTING
            || self.stack.contains(&object)
            || self.visits > MAX_ENDPOINTS
        {
            return;
        }
        let tags: Vec<String> = placement.name.iter().cloned().collect();
        for rule in self.on_object.get(&object).into_iter().flatten() {
            let path =
                rules::openapi_path(&rules::join(placement.url_prefix.as_deref(), &rule.rule));
            for (method, handler) in &rule.methods {
                if self.endpoints.len() >= MAX_ENDPOINTS {
                    return;
                }
                self.endpoints.push(Endpoint {
                    method: method.clone(),
                    path_params: Endpoint::params_of(&path),
                    path: path.clone(),
                    summary: handler.summary.clone(),
                    description: handler.description.clone(),
                    tags: tags.clone(),
                    file: Some(handler.file.clone()),
                    line: Some(handler.line),
                });
            }
        }
        let model = self.model;
        let is_app = model.objects[object].kind == Kind::App;
        self.stack.push(object);
        for registration in model.registrations.iter().filter(|r| r.parent == object) {
            let child = &model.objects[registration.child];
            // The registration's own options replace the blueprint's.
            let own_prefix = match &registration.url_prefix {
                Setting::Absent => &child.url_prefix,
                given => given,
            };
            let own_prefix = match own_prefix {
                Setting::Dynamic => continue,
                Setting::Absent => None,
                Setting::Static(prefix) => Some(prefix.as_str()),
            };
            let own_name = match &registration.name {
                Setting::Static(name) => Some(name.clone()),
                Setting::Absent => child.name.clone(),
                Setting::Dynamic => None,
            };
            let placement = if is_app {
                Placement {
                    url_prefix: own_prefix.map(str::to_string),
                    name: own_name,
                }
            } else {
                Placement {
                    url_prefix: rules::nest(placement.url_prefix.as_deref(), own_prefix),
                    name: placement
                        .name
                        .as_ref()
                        .zip(own_name)
                        .map(|(parent, own)| format!("{parent}.{own}")),
                }
            };
            self.visit(registration.child, &placement);
        }
        self.stack.pop();
    }
}

/// Every URL rule registered on a known app or blueprint, in file and source order.
fn find_rules(model: &Model<'_>) -> Result<Vec<Rule>, PluginError> {
    let program = model.program;
    let mut found = Vec::new();
    for file in program.files_but_tests() {
        let source = program.source(file);
        let text = source.text();
        for m in matches(ROUTE_DECORATORS.get()?, source.root(), text) {
            let (Some(decorator), Some(receiver), Some(method), Some(arguments), Some(def)) = (
                m.get("decorator"),
                m.get("receiver"),
                m.get("method"),
                m.get("arguments"),
                m.get("handler"),
            ) else {
                continue;
            };
            if !decorates_cleanly(decorator, def) {
                continue;
            }
            let methods = match source.text_of(method) {
                "route" => methods_option(program, file, arguments),
                verb => Some(vec![verb.to_ascii_uppercase()]),
            };
            let handler = handler_at(program, file, def);
            let rule = methods.and_then(|methods| {
                let methods = declared(methods)
                    .into_iter()
                    .map(|m| (m, handler.clone()))
                    .collect();
                rule_of(model, file, receiver, arguments, methods)
            });
            found.extend(rule);
        }
        for m in matches(METHOD_CALLS.get()?, source.root(), text) {
            let (Some(receiver), Some(method), Some(arguments), Some(site)) = (
                m.get("receiver"),
                m.get("method"),
                m.get("arguments"),
                m.get("call"),
            ) else {
                continue;
            };
            if source.text_of(method) != "add_url_rule" {
                continue;
            }
            let methods = url_rule_methods(model, file, arguments, site);
            found.extend(
                methods.and_then(|methods| rule_of(model, file, receiver, arguments, methods)),
            );
        }
    }
    Ok(found)
}

/// The rule a registering call makes, if its receiver and rule string are known.
fn rule_of(
    model: &Model<'_>,
    file: FileId,
    receiver: Node<'_>,
    arguments: Node<'_>,
    methods: Vec<(String, Handler)>,
) -> Option<Rule> {
    let text = model.program.source(file).text();
    let object = model.object_of(file, receiver)?;
    let rule = model.string(file, argument(arguments, 0, "rule", text)?)?;
    Some(Rule {
        object,
        rule,
        methods,
    })
}

/// The methods and handlers of `add_url_rule(rule, endpoint, view_func, ..., methods=...)`:
/// a function's own, a view class's per method, or the call itself when there is no view
/// function (Flask's tutorial adds `"/"` with only an endpoint). `None` when not static.
fn url_rule_methods(
    model: &Model<'_>,
    file: FileId,
    arguments: Node<'_>,
    site: Node<'_>,
) -> Option<Vec<(String, Handler)>> {
    let program = model.program;
    let text = program.source(file).text();
    let explicit = match keyword_argument(arguments, "methods", text) {
        Some(value) => Some(method_list(program, file, value)?),
        None => None,
    };
    let view_func = argument(arguments, 2, "view_func", text)
        .map(strip_parentheses)
        .filter(|v| v.kind() != "none");
    let at_site = |node: Node<'_>| Handler {
        file: program.source(file).path().to_string(),
        line: line_of(node),
        summary: None,
        description: None,
    };
    let Some(view_func) = view_func else {
        return Some(pair(
            declared(explicit.unwrap_or_else(default)),
            &at_site(site),
        ));
    };
    if let Some(view) = view_class(program, file, view_func) {
        let methods = declared(match explicit {
            Some(methods) => methods,
            None => view.methods(program)?,
        });
        return Some(
            methods
                .into_iter()
                .map(|m| {
                    let (file, node) = view.handler(program, &m);
                    (m, handler_at(program, file, node))
                })
                .collect(),
        );
    }
    let handler = match function_named_by(program, file, view_func) {
        Some((def_file, def)) => handler_at(program, def_file, def),
        // A class-based view from outside the project: its methods are unknown.
        None if explicit.is_none() && is_as_view(program, file, view_func) => return None,
        // A lambda, or a function from outside the project: the rule is there all the same.
        None if view_func.kind() == "lambda" => at_site(view_func),
        None => at_site(site),
    };
    Some(pair(declared(explicit.unwrap_or_else(default)), &handler))
}

/// Every method with the same handler.
fn pair(methods: Vec<String>, handler: &Handler) -> Vec<(String, Handler)> {
    methods.into_iter().map(|m| (m, handler.clone())).collect()
}

fn default() -> Vec<String> {
    vec![DEFAULT_METHOD.to_string()]
}

/// The `methods=` of a route decorator (GET when absent); `None` when not static.
fn methods_option(program: &Program, file: FileId, arguments: Node<'_>) -> Option<Vec<String>> {
    let text = program.source(file).text();
    match keyword_argument(arguments, "methods", text) {
        Some(value) => method_list(program, file, value),
        None => Some(default()),
    }
}

/// The methods a rule declares: what it lists, without the `HEAD` that Werkzeug adds to
/// every `GET` rule anyway (so a listed one cannot be told apart).
fn declared(mut methods: Vec<String>) -> Vec<String> {
    if methods.iter().any(|m| m == "GET") {
        methods.retain(|m| m != "HEAD");
    }
    methods
}

/// The location and docstring of a `def` or `class`.
fn handler_at(program: &Program, file: FileId, definition: Node<'_>) -> Handler {
    let source = program.source(file);
    let (summary, description) = docstring(definition, source.text())
        .map(|d| summary_and_description(&clean_docstring(&d)))
        .unwrap_or_default();
    Handler {
        file: source.path().to_string(),
        line: line_of(definition),
        summary,
        description,
    }
}

/// A cleaned docstring's first line (the summary) and the rest (the description), each
/// stripped like Python's `str.strip()`, `None` when empty. `serve_flask.py` splits the same.
fn summary_and_description(doc: &str) -> (Option<String>, Option<String>) {
    let (first, rest) = doc.split_once('\n').unwrap_or((doc, ""));
    let strip = |s: &str| {
        let s = s.trim_matches(is_python_space);
        (!s.is_empty()).then(|| s.to_string())
    };
    (strip(first), strip(rest))
}

/// Python's `str.isspace()` for one character.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_docstrings() {
        assert_eq!(
            summary_and_description("Show a post.\n\nWith details.\n"),
            (Some("Show a post.".into()), Some("With details.".into()))
        );
        assert_eq!(
            summary_and_description("One line."),
            (Some("One line.".into()), None)
        );
        assert_eq!(summary_and_description(""), (None, None));
    }

    #[test]
    fn head_goes_with_get_only() {
        assert_eq!(declared(vec!["GET".into(), "HEAD".into()]), ["GET"]);
        assert_eq!(declared(vec!["HEAD".into()]), ["HEAD"]);
        assert_eq!(
            declared(vec!["OPTIONS".into(), "POST".into()]),
            ["OPTIONS", "POST"]
        );
    }
}
