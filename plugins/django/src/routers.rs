//! Django REST framework routers, read statically: `router = DefaultRouter()` /
//! `SimpleRouter(trailing_slash=False)`, `router.register(prefix, ViewSet, basename=...)`, and
//! the routes `router.urls` makes, as DRF's `SimpleRouter.get_routes` builds them:
//!
//! - list route `{prefix}/`: GET → `list`, POST → `create`;
//! - `@action(detail=False)` routes `{prefix}/{url_path}/`;
//! - detail route `{prefix}/{lookup}/`: GET → `retrieve`, PUT → `update`, PATCH →
//!   `partial_update`, DELETE → `destroy`;
//! - `@action(detail=True)` routes `{prefix}/{lookup}/{url_path}/`;
//!
//! each with only the methods whose action the ViewSet has (a route with none is left out),
//! and `DefaultRouter`'s API root at its own prefix (GET). Format-suffix variants
//! (`books.{format}`) are not listed, by the runtime either.

use std::collections::HashMap;

use previewd_plugin_api::PluginError;
use previewd_plugin_python::calls::{argument, dotted_path, keyword_argument};
use previewd_plugin_python::imports::qualified_name;
use previewd_plugin_python::query::matches;
use previewd_plugin_python::source::strip_parentheses;
use previewd_plugin_python::{FileId, Program, Symbol};
use tree_sitter::Node;

use crate::classes::ViewClass;
use crate::paths::regex_path;
use crate::queries::{ROUTER_ASSIGNMENTS, ROUTER_REGISTRATIONS};
use crate::views::View;

/// The list route's methods and the actions they call.
const LIST_MAPPING: &[(&str, &str)] = &[("GET", "list"), ("POST", "create")];

/// The detail route's methods and the actions they call.
const DETAIL_MAPPING: &[(&str, &str)] = &[
    ("GET", "retrieve"),
    ("PUT", "update"),
    ("PATCH", "partial_update"),
    ("DELETE", "destroy"),
];

/// DRF's default `lookup_value_regex`.
const DEFAULT_LOOKUP_VALUE: &str = "[^/.]+";

/// One route a router makes, relative to where its `urls` are included.
pub(crate) struct RouterRoute {
    /// The path relative to the include point (no leading `/`).
    pub path: String,
    pub view: View,
}

/// A router object.
struct Router<'p> {
    /// `DefaultRouter` (with an API root view) rather than `SimpleRouter`.
    api_root: bool,
    /// `/`, or empty with `trailing_slash=False`.
    trailing_slash: &'static str,
    /// `(prefix, file, viewset expression)` in registration order.
    registrations: Vec<(String, FileId, Node<'p>)>,
}

/// Every router of a project, by the module-level name bound to it.
pub(crate) struct Routers<'p> {
    program: &'p Program,
    routers: HashMap<(FileId, String), Router<'p>>,
}

impl<'p> Routers<'p> {
    /// Reads the routers and their registrations from `files`.
    pub fn build(program: &'p Program, files: &[FileId]) -> Result<Routers<'p>, PluginError> {
        let mut routers = Routers {
            program,
            routers: HashMap::new(),
        };
        for &file in files {
            let source = program.source(file);
            for m in matches(ROUTER_ASSIGNMENTS.get()?, source.root(), source.text()) {
                let (Some(target), Some(callee), Some(arguments)) =
                    (m.get("target"), m.get("callee"), m.get("arguments"))
                else {
                    continue;
                };
                let qualified = dotted_path(callee, source.text())
                    .and_then(|d| qualified_name(program.imports(file), &d));
                let api_root = match qualified.as_deref() {
                    Some("rest_framework.routers.DefaultRouter") => true,
                    Some("rest_framework.routers.SimpleRouter") => false,
                    _ => continue,
                };
                let trailing_slash =
                    match keyword_argument(arguments, "trailing_slash", source.text()) {
                        Some(value) if value.kind() == "false" => "",
                        _ => "/",
                    };
                routers.routers.insert(
                    (file, source.text_of(target).to_string()),
                    Router {
                        api_root,
                        trailing_slash,
                        registrations: Vec::new(),
                    },
                );
            }
        }
        for &file in files {
            let source = program.source(file);
            for m in matches(ROUTER_REGISTRATIONS.get()?, source.root(), source.text()) {
                let (Some(receiver), Some(arguments)) = (m.get("router"), m.get("arguments"))
                else {
                    continue;
                };
                let Some(key) = routers.key_of(file, receiver) else {
                    continue;
                };
                let prefix = argument(arguments, 0, "prefix", source.text())
                    .and_then(|p| program.eval_str(file, p));
                let viewset = argument(arguments, 1, "viewset", source.text());
                if let (Some(prefix), Some(viewset), Some(router)) =
                    (prefix, viewset, routers.routers.get_mut(&key))
                {
                    router.registrations.push((prefix, file, viewset));
                }
            }
        }
        Ok(routers)
    }

    /// The router `expr.urls` names, if `expr` in `file` is a known router.
    pub fn urls_of(&self, file: FileId, expr: Node<'_>) -> Option<(FileId, String)> {
        let expr = strip_parentheses(expr);
        if expr.kind() != "attribute" {
            return None;
        }
        let source = self.program.source(file);
        if source.text_of(expr.child_by_field_name("attribute")?) != "urls" {
            return None;
        }
        self.key_of(file, expr.child_by_field_name("object")?)
    }

    /// The key of the router an expression in `file` names.
    fn key_of(&self, file: FileId, expr: Node<'_>) -> Option<(FileId, String)> {
        let expr = strip_parentheses(expr);
        if expr.kind() == "identifier" {
            let key = (file, self.program.source(file).text_of(expr).to_string());
            if self.routers.contains_key(&key) {
                return Some(key);
            }
        }
        match self.program.resolve(file, expr)? {
            Symbol::Name { file, name } => {
                let key = (file, name);
                self.routers.contains_key(&key).then_some(key)
            }
            Symbol::Module(_) => None,
        }
    }

    /// The routes of a router, in DRF's order.
    pub fn routes(&self, key: &(FileId, String)) -> Vec<RouterRoute> {
        let Some(router) = self.routers.get(key) else {
            return Vec::new();
        };
        let program = self.program;
        let mut routes = Vec::new();
        if router.api_root {
            routes.push(RouterRoute {
                path: String::new(),
                view: View {
                    methods: vec!["GET".to_string()],
                    location: None,
                    summary: None,
                    description: None,
                },
            });
        }
        let slash = router.trailing_slash;
        for (prefix, file, viewset) in &router.registrations {
            let Some(class) = ViewClass::of_expression(program, *file, *viewset) else {
                continue;
            };
            let lookup = format!(
                "(?P<{}>{})",
                class
                    .lookup_url_kwarg
                    .as_deref()
                    .or(class.lookup_field.as_deref())
                    .unwrap_or("pk"),
                class
                    .lookup_value_regex
                    .as_deref()
                    .unwrap_or(DEFAULT_LOOKUP_VALUE)
            );
            let declared = |methods: Vec<String>| match class.site {
                Some((file, node)) => View::declared(program, file, node, methods),
                None => View {
                    methods,
                    location: None,
                    summary: None,
                    description: None,
                },
            };
            let mapped = |mapping: &[(&str, &str)]| -> Vec<String> {
                mapping
                    .iter()
                    .filter(|(_, action)| class.defined.contains(*action))
                    .map(|(method, _)| method.to_string())
                    .collect()
            };
            let mut push = |regex: String, view: View| {
                if !view.methods.is_empty() {
                    routes.push(RouterRoute {
                        path: regex_path(&drf_regex(&regex)),
                        view,
                    });
                }
            };
            push(format!("^{prefix}{slash}$"), declared(mapped(LIST_MAPPING)));
            for detail in [false, true] {
                if detail {
                    push(
                        format!("^{prefix}/{lookup}{slash}$"),
                        declared(mapped(DETAIL_MAPPING)),
                    );
                }
                for action in class.actions.iter().filter(|a| a.detail == detail) {
                    let regex = match detail {
                        true => format!("^{prefix}/{lookup}/{}{slash}$", action.url_path),
                        false => format!("^{prefix}/{}{slash}$", action.url_path),
                    };
                    let view =
                        View::declared(program, action.file, action.def, action.methods.clone());
                    push(regex, view);
                }
            }
        }
        routes
    }
}

/// DRF drops the slash after `^` when the prefix is empty (`^/{lookup}/$` → `^{lookup}/$`).
fn drf_regex(regex: &str) -> String {
    match regex.strip_prefix("^/") {
        Some(rest) => format!("^{rest}"),
        None => regex.to_string(),
    }
}
