//! Class-based views (`flask.views.View`, `flask.views.MethodView`) registered with
//! `add_url_rule("/p", view_func=UserAPI.as_view("users"))`: which HTTP methods a view class
//! answers and which of its methods handles each, read the way Flask computes them.
//!
//! - A class attribute `methods = [...]` wins.
//! - Otherwise a `MethodView` answers the methods of its bases plus every HTTP verb it has a
//!   handler for (`def get`, `def post`, ..., also inherited: Flask asks `hasattr`).
//! - Any other view answers what a base's `methods` says, else GET.
//!
//! The handler of a method is the class's `def <verb>` (own first, then its bases in order),
//! else its `dispatch_request`, else the class itself. Bases are followed inside the project
//! only; Flask's own classes are recognised by name.

use previewd_plugin_python::literals::sequence_elements;
use previewd_plugin_python::{FileId, Program, Symbol};
use tree_sitter::Node;

use crate::model::flask_name;

/// The `MethodView` class, by the names it is importable under.
const METHOD_VIEW: &[&str] = &["flask.views.MethodView"];
/// Methods of a view class that handle the HTTP method of the same name, upper-cased.
const HTTP_METHOD_FUNCS: &[&str] = &[
    "get", "post", "head", "options", "delete", "put", "trace", "patch",
];
/// The method plain `View`s (and `MethodView`s without a handler) dispatch through.
const DISPATCH: &str = "dispatch_request";
/// The method a view answers when nothing says otherwise.
const DEFAULT_METHOD: &str = "GET";
/// How many base classes deep the hierarchy is followed (also what ends cycles).
const MAX_DEPTH: usize = 16;

/// A class defined in the project.
#[derive(Clone, Copy)]
pub(crate) struct ViewClass<'p> {
    pub file: FileId,
    pub node: Node<'p>,
}

impl<'p> ViewClass<'p> {
    /// The class an expression in `file` names, when it is a class defined in the project.
    pub fn named_by(program: &'p Program, file: FileId, expr: Node<'_>) -> Option<Self> {
        let Symbol::Name { file, name } = program.resolve(file, expr)? else {
            return None;
        };
        let node = program.definition(file, &name)?;
        (node.kind() == "class_definition").then_some(ViewClass { file, node })
    }

    /// The upper-cased HTTP methods the view answers; `None` when a `methods` attribute is not
    /// a static list of strings.
    pub fn methods(&self, program: &'p Program) -> Option<Vec<String>> {
        self.methods_at(program, 0)
            .map(|m| m.unwrap_or_else(|| vec![DEFAULT_METHOD.to_string()]))
    }

    /// The `def` (or the class itself) handling `method` (upper-case).
    pub fn handler(&self, program: &'p Program, method: &str) -> (FileId, Node<'p>) {
        self.find_def(program, &method.to_ascii_lowercase(), 0)
            .or_else(|| self.find_def(program, DISPATCH, 0))
            .unwrap_or((self.file, self.node))
    }

    /// The class's `methods`: `Ok(None)` when it has none (Flask's `None`).
    fn methods_at(&self, program: &'p Program, depth: usize) -> Option<Option<Vec<String>>> {
        if depth > MAX_DEPTH {
            return Some(None);
        }
        if let Some(value) = self.own_attribute(program, "methods") {
            return Some(Some(method_list(program, self.file, value)?));
        }
        let bases = self.project_bases(program);
        if !self.is_method_view(program, 0) {
            for base in bases {
                if let Some(methods) = base.methods_at(program, depth + 1)? {
                    return Some(Some(methods));
                }
            }
            return Some(None);
        }
        let mut methods: Vec<String> = Vec::new();
        for base in bases {
            methods.extend(base.methods_at(program, depth + 1)?.unwrap_or_default());
        }
        for verb in HTTP_METHOD_FUNCS {
            if self.find_def(program, verb, 0).is_some() {
                methods.push(verb.to_ascii_uppercase());
            }
        }
        let mut unique = Vec::new();
        for method in methods {
            if !unique.contains(&method) {
                unique.push(method);
            }
        }
        Some((!unique.is_empty()).then_some(unique))
    }

    /// Whether the class derives from `MethodView`, directly or through project classes.
    fn is_method_view(&self, program: &'p Program, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        self.base_expressions().into_iter().any(|base| {
            flask_name(program, self.file, base).is_some_and(|n| METHOD_VIEW.contains(&n.as_str()))
                || ViewClass::named_by(program, self.file, base)
                    .is_some_and(|c| c.is_method_view(program, depth + 1))
        })
    }

    /// `def name` in the class or, failing that, in its project bases (depth first, in order).
    fn find_def(
        &self,
        program: &'p Program,
        name: &str,
        depth: usize,
    ) -> Option<(FileId, Node<'p>)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let source = program.source(self.file);
        let own = self.body_statements().into_iter().find_map(|statement| {
            let definition = match statement.kind() {
                "decorated_definition" => statement.child_by_field_name("definition")?,
                _ => statement,
            };
            let named = definition.kind() == "function_definition"
                && definition
                    .child_by_field_name("name")
                    .is_some_and(|n| source.text_of(n) == name);
            named.then_some((self.file, definition))
        });
        own.or_else(|| {
            self.project_bases(program)
                .into_iter()
                .find_map(|base| base.find_def(program, name, depth + 1))
        })
    }

    /// The value of `name = ...` in the class body (the last one).
    fn own_attribute(&self, program: &'p Program, name: &str) -> Option<Node<'p>> {
        let source = program.source(self.file);
        self.body_statements()
            .into_iter()
            .filter(|s| s.kind() == "expression_statement")
            .filter_map(|s| s.named_child(0))
            .filter(|a| a.kind() == "assignment")
            .filter(|a| {
                a.child_by_field_name("left")
                    .is_some_and(|l| l.kind() == "identifier" && source.text_of(l) == name)
            })
            .filter_map(|a| a.child_by_field_name("right"))
            .next_back()
    }

    fn project_bases(&self, program: &'p Program) -> Vec<ViewClass<'p>> {
        self.base_expressions()
            .into_iter()
            .filter_map(|base| ViewClass::named_by(program, self.file, base))
            .collect()
    }

    /// The base class expressions (keywords like `metaclass=` left out).
    fn base_expressions(&self) -> Vec<Node<'p>> {
        let Some(superclasses) = self.node.child_by_field_name("superclasses") else {
            return Vec::new();
        };
        let mut cursor = superclasses.walk();
        superclasses
            .named_children(&mut cursor)
            .filter(|n| matches!(n.kind(), "identifier" | "attribute"))
            .collect()
    }

    fn body_statements(&self) -> Vec<Node<'p>> {
        let Some(body) = self.node.child_by_field_name("body") else {
            return Vec::new();
        };
        let mut cursor = body.walk();
        body.named_children(&mut cursor).collect()
    }
}

/// A static list of method names, upper-cased, without duplicates; `None` when not static.
pub(crate) fn method_list(program: &Program, file: FileId, value: Node<'_>) -> Option<Vec<String>> {
    let mut found: Vec<String> = Vec::new();
    for element in sequence_elements(value)? {
        let method = program.eval_str(file, element)?.to_ascii_uppercase();
        if !found.contains(&method) {
            found.push(method);
        }
    }
    Some(found)
}
