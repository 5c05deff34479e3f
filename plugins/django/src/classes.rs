//! Class-based views and DRF ViewSets, read statically: which handler and action methods a
//! class has (its own, its project-local base classes', and those of the Django and DRF classes
//! it extends, from a table), its `http_method_names`, its `@action`s and its lookup field.

use std::collections::BTreeSet;

use previewd_plugin_python::calls::{dotted_path, keyword_argument, positional_arguments};
use previewd_plugin_python::imports::qualified_name;
use previewd_plugin_python::literals::sequence_elements;
use previewd_plugin_python::program::assigned_value;
use previewd_plugin_python::{FileId, Program, Symbol};
use tree_sitter::Node;

/// Django's `View.http_method_names`.
pub(crate) const DEFAULT_HTTP_METHOD_NAMES: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

/// Base classes followed at most this deep.
const MAX_BASE_DEPTH: usize = 16;

/// The handler (`get`...) and action (`list`...) methods of Django's and DRF's view classes,
/// by class name (read from Django 5.2 and DRF 3.16 by introspection).
const LIBRARY_CLASSES: &[(&str, &[&str])] = &[
    ("View", &[]),
    ("TemplateView", &["get"]),
    ("RedirectView", &["get", "post", "put", "patch", "delete"]),
    ("ListView", &["get"]),
    ("DetailView", &["get"]),
    ("ArchiveIndexView", &["get"]),
    ("YearArchiveView", &["get"]),
    ("MonthArchiveView", &["get"]),
    ("WeekArchiveView", &["get"]),
    ("DayArchiveView", &["get"]),
    ("TodayArchiveView", &["get"]),
    ("DateDetailView", &["get"]),
    ("FormView", &["get", "post", "put"]),
    ("CreateView", &["get", "post", "put"]),
    ("UpdateView", &["get", "post", "put"]),
    ("DeleteView", &["get", "post", "delete"]),
    ("LoginView", &["get", "post", "put"]),
    ("LogoutView", &["get", "post"]),
    ("PasswordChangeView", &["get", "post", "put"]),
    ("PasswordChangeDoneView", &["get"]),
    ("PasswordResetView", &["get", "post", "put"]),
    ("PasswordResetDoneView", &["get"]),
    ("PasswordResetConfirmView", &["get", "post", "put"]),
    ("PasswordResetCompleteView", &["get"]),
    ("APIView", &[]),
    ("GenericAPIView", &[]),
    ("CreateAPIView", &["post", "create"]),
    ("ListAPIView", &["get", "list"]),
    ("RetrieveAPIView", &["get", "retrieve"]),
    ("DestroyAPIView", &["delete", "destroy"]),
    (
        "UpdateAPIView",
        &["put", "patch", "update", "partial_update"],
    ),
    ("ListCreateAPIView", &["get", "post", "list", "create"]),
    (
        "RetrieveUpdateAPIView",
        &[
            "get",
            "put",
            "patch",
            "retrieve",
            "update",
            "partial_update",
        ],
    ),
    (
        "RetrieveDestroyAPIView",
        &["get", "delete", "retrieve", "destroy"],
    ),
    (
        "RetrieveUpdateDestroyAPIView",
        &[
            "get",
            "put",
            "patch",
            "delete",
            "retrieve",
            "update",
            "partial_update",
            "destroy",
        ],
    ),
    ("ViewSet", &[]),
    ("GenericViewSet", &[]),
    (
        "ModelViewSet",
        &[
            "list",
            "create",
            "retrieve",
            "update",
            "partial_update",
            "destroy",
        ],
    ),
    ("ReadOnlyModelViewSet", &["list", "retrieve"]),
    ("ListModelMixin", &["list"]),
    ("CreateModelMixin", &["create"]),
    ("RetrieveModelMixin", &["retrieve"]),
    ("UpdateModelMixin", &["update", "partial_update"]),
    ("DestroyModelMixin", &["destroy"]),
];

/// Library classes whose `http_method_names` is not Django's default.
const LIBRARY_METHOD_NAMES: &[(&str, &[&str])] = &[("LogoutView", &["post", "options"])];

/// A DRF `@action` method.
pub(crate) struct ExtraAction<'p> {
    /// `detail=True`: the route is under the lookup (`books/{pk}/check-out/`).
    pub detail: bool,
    /// Upper-case methods (`methods=`, default GET).
    pub methods: Vec<String>,
    /// `url_path=`, default the method name.
    pub url_path: String,
    pub file: FileId,
    /// The `def`.
    pub def: Node<'p>,
}

/// What a view class has, its bases included.
pub(crate) struct ViewClass<'p> {
    /// The class, when it is in the project.
    pub site: Option<(FileId, Node<'p>)>,
    /// Lower-case names of the methods it has that matter for routing.
    pub defined: BTreeSet<String>,
    /// `http_method_names`, from the nearest class setting it.
    pub http_method_names: Option<Vec<String>>,
    /// Its `@action` methods.
    pub actions: Vec<ExtraAction<'p>>,
    /// `lookup_url_kwarg`, else `lookup_field`, from the nearest class setting it.
    pub lookup_url_kwarg: Option<String>,
    pub lookup_field: Option<String>,
    /// `lookup_value_regex`.
    pub lookup_value_regex: Option<String>,
}

impl<'p> ViewClass<'p> {
    /// The class a class expression (`views.IndexView`, `generic.ListView`) in `file` names.
    pub fn of_expression(program: &'p Program, file: FileId, expr: Node<'_>) -> Option<Self> {
        let mut class = ViewClass {
            site: None,
            defined: BTreeSet::new(),
            http_method_names: None,
            actions: Vec::new(),
            lookup_url_kwarg: None,
            lookup_field: None,
            lookup_value_regex: None,
        };
        if !class.add_base(program, file, expr, 0) {
            return None;
        }
        if let Some(Symbol::Name { file, name }) = program.resolve(file, expr) {
            class.site = program
                .definition(file, &name)
                .filter(|d| d.kind() == "class_definition")
                .map(|d| (file, d));
        }
        Some(class)
    }

    /// The upper-case methods a class-based view answers: handlers it has that
    /// `http_method_names` allows, HEAD and OPTIONS left out.
    pub fn handler_methods(&self) -> Vec<String> {
        let names: Vec<String> = match &self.http_method_names {
            Some(names) => names.clone(),
            None => DEFAULT_HTTP_METHOD_NAMES
                .iter()
                .map(|n| n.to_string())
                .collect(),
        };
        names
            .iter()
            .filter(|n| !matches!(n.as_str(), "head" | "options"))
            .filter(|n| self.defined.contains(n.as_str()))
            .map(|n| n.to_ascii_uppercase())
            .collect()
    }

    /// Adds what the class `expr` in `file` brings; false when it is not a known class.
    fn add_base(
        &mut self,
        program: &'p Program,
        file: FileId,
        expr: Node<'_>,
        depth: usize,
    ) -> bool {
        if depth > MAX_BASE_DEPTH {
            return false;
        }
        if let Some(Symbol::Name { file, name }) = program.resolve(file, expr) {
            if let Some(class) = program
                .definition(file, &name)
                .filter(|d| d.kind() == "class_definition")
            {
                self.add_class(program, file, class, depth);
                return true;
            }
        }
        let source = program.source(file);
        let Some(qualified) = dotted_path(expr, source.text())
            .and_then(|dotted| qualified_name(program.imports(file), &dotted))
        else {
            return false;
        };
        if !(qualified.starts_with("django.") || qualified.starts_with("rest_framework.")) {
            return false;
        }
        let name = qualified.rsplit('.').next().unwrap_or(&qualified);
        let Some((_, methods)) = LIBRARY_CLASSES.iter().find(|(n, _)| *n == name) else {
            return false;
        };
        self.defined.extend(methods.iter().map(|m| m.to_string()));
        if self.http_method_names.is_none() {
            if let Some((_, names)) = LIBRARY_METHOD_NAMES.iter().find(|(n, _)| *n == name) {
                self.http_method_names = Some(names.iter().map(|n| n.to_string()).collect());
            }
        }
        true
    }

    /// Adds a project class: its body first, then its bases left to right (a simplified MRO).
    fn add_class(&mut self, program: &'p Program, file: FileId, class: Node<'p>, depth: usize) {
        if let Some(body) = class.child_by_field_name("body") {
            let mut cursor = body.walk();
            let statements: Vec<Node<'p>> = body.named_children(&mut cursor).collect();
            for statement in statements {
                self.add_statement(program, file, statement);
            }
        }
        if let Some(bases) = class.child_by_field_name("superclasses") {
            for base in positional_arguments(bases) {
                self.add_base(program, file, base, depth + 1);
            }
        }
    }

    /// A method or a class attribute of a project class.
    fn add_statement(&mut self, program: &'p Program, file: FileId, statement: Node<'p>) {
        let source = program.source(file);
        let (def, decorated) = match statement.kind() {
            "function_definition" => (Some(statement), None),
            "decorated_definition" => {
                (statement.child_by_field_name("definition"), Some(statement))
            }
            "expression_statement" => {
                self.add_attribute(program, file, statement);
                return;
            }
            _ => return,
        };
        let Some(def) = def.filter(|d| d.kind() == "function_definition") else {
            return;
        };
        let Some(name) = def
            .child_by_field_name("name")
            .map(|n| source.text_of(n).to_string())
        else {
            return;
        };
        // The nearest definition wins; a base's `@action` of the same name is shadowed.
        if !self.defined.insert(name.clone()) {
            return;
        }
        if let Some(action) = decorated.and_then(|d| extra_action(program, file, d, def, &name)) {
            self.actions.push(action);
        }
    }

    /// `http_method_names = [...]`, `lookup_field = "..."` and friends.
    fn add_attribute(&mut self, program: &Program, file: FileId, statement: Node<'_>) {
        let source = program.source(file);
        let Some(assignment) = statement
            .named_child(0)
            .filter(|n| n.kind() == "assignment")
        else {
            return;
        };
        let (Some(left), Some(value)) = (
            assignment.child_by_field_name("left"),
            assigned_value(assignment),
        ) else {
            return;
        };
        let string = || program.eval_str(file, value);
        match source.text_of(left) {
            "http_method_names" if self.http_method_names.is_none() => {
                self.http_method_names = sequence_elements(value).map(|elements| {
                    elements
                        .into_iter()
                        .filter_map(|e| program.eval_str(file, e))
                        .map(|m| m.to_ascii_lowercase())
                        .collect()
                });
            }
            "lookup_field" if self.lookup_field.is_none() => self.lookup_field = string(),
            "lookup_url_kwarg" if self.lookup_url_kwarg.is_none() => {
                self.lookup_url_kwarg = string()
            }
            "lookup_value_regex" if self.lookup_value_regex.is_none() => {
                self.lookup_value_regex = string()
            }
            _ => {}
        }
    }
}

/// The `@action(...)` on a method, if it has one.
fn extra_action<'p>(
    program: &Program,
    file: FileId,
    decorated: Node<'p>,
    def: Node<'p>,
    name: &str,
) -> Option<ExtraAction<'p>> {
    let source = program.source(file);
    let text = source.text();
    let mut cursor = decorated.walk();
    let decorators: Vec<Node<'p>> = decorated
        .named_children(&mut cursor)
        .filter(|n| n.kind() == "decorator")
        .collect();
    decorators.into_iter().find_map(|decorator| {
        let call = decorator.named_child(0).filter(|c| c.kind() == "call")?;
        let callee = dotted_path(call.child_by_field_name("function")?, text)?;
        let qualified = qualified_name(program.imports(file), &callee)?;
        if !(qualified.starts_with("rest_framework.") && qualified.ends_with(".action")) {
            return None;
        }
        let arguments = call.child_by_field_name("arguments")?;
        let detail = keyword_argument(arguments, "detail", text)
            .or_else(|| positional_arguments(arguments).get(1).copied())
            .is_some_and(|d| d.kind() == "true");
        let methods = match keyword_argument(arguments, "methods", text)
            .or_else(|| positional_arguments(arguments).first().copied())
        {
            Some(list) => sequence_elements(list)?
                .into_iter()
                .map(|m| program.eval_str(file, m).map(|m| m.to_ascii_uppercase()))
                .collect::<Option<Vec<_>>>()?,
            None => vec!["GET".to_string()],
        };
        let url_path = match keyword_argument(arguments, "url_path", text) {
            Some(path) => program.eval_str(file, path)?,
            None => name.to_string(),
        };
        Some(ExtraAction {
            detail,
            methods,
            url_path,
            file,
            def,
        })
    })
}
