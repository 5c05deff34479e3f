//! What a FastAPI project is made of, read statically: its apps (`FastAPI()`), routers
//! (`APIRouter()`), app factories (`def create_app(): app = FastAPI(); ...; return app`) and how
//! routers and sub-apps are plugged into each other (`include_router`, `mount`).
//!
//! Detection, the launch plan and route extraction all read this one model. Objects are keyed
//! by where their name is bound: a file, a scope (module level or a function) and a name, so
//! `app` inside `create_app()` and a module-level `app` elsewhere stay apart.

use previewd_plugin_api::PluginError;
use previewd_plugin_python::assignments::{find_assignments, Assignment};
use previewd_plugin_python::bindings::Bindings;
use previewd_plugin_python::calls::{argument, dotted_path, keyword_argument};
use previewd_plugin_python::imports::{qualified_name, ImportKind};
use previewd_plugin_python::literals::sequence_elements;
use previewd_plugin_python::query::matches;
use previewd_plugin_python::source::{enclosing_function, is_top_level, line_of};
use previewd_plugin_python::{FileId, Program};
use tree_sitter::Node;

use crate::queries::{METHOD_CALLS, RETURNS};

/// The names the FastAPI application class is importable under.
const APP_CLASSES: &[&str] = &["fastapi.FastAPI", "fastapi.applications.FastAPI"];
/// The names the router class is importable under.
const ROUTER_CLASSES: &[&str] = &["fastapi.APIRouter", "fastapi.routing.APIRouter"];

/// An application or a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `FastAPI()`.
    App,
    /// `APIRouter()`.
    Router,
}

/// One `FastAPI()` or `APIRouter()` the code creates.
pub(crate) struct Object {
    /// App or router.
    pub kind: Kind,
    /// The router's own `prefix=` (empty for apps); `None` when it is not a static string, so
    /// routes under it cannot be placed.
    pub prefix: Option<String>,
    /// The router's own `tags=`.
    pub tags: Vec<String>,
}

/// Where a statement runs: its file, its scope and its place in the file, so that two statements
/// of one scope can be ordered as they execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Site {
    file: FileId,
    /// The node id of the enclosing function, `None` at module level.
    scope: Option<usize>,
    /// Where the statement starts in its file.
    byte: usize,
}

impl Site {
    /// The site of `node` in `file`.
    pub fn of(file: FileId, node: Node<'_>) -> Site {
        Site {
            file,
            scope: enclosing_function(node).map(|f| f.id()),
            byte: node.start_byte(),
        }
    }

    /// Whether this statement runs after `other` whenever both run: both in the same scope of
    /// the same file, this one further down. Across files or scopes the order is unknown.
    pub fn runs_after(&self, other: &Site) -> bool {
        self.file == other.file && self.scope == other.scope && self.byte > other.byte
    }
}

/// `parent.include_router(child, prefix=..., tags=...)` or `parent.mount(prefix, child)`.
pub(crate) struct Include {
    /// The including object (index into [`Model::objects`]).
    pub parent: usize,
    /// The included router, or the mounted app.
    pub child: usize,
    /// `None` when the prefix is not a static string.
    pub prefix: Option<String>,
    /// The include's own `tags=`.
    pub tags: Vec<String>,
    /// Whether this is `include_router` (which, before FastAPI 0.137, copies the routes the
    /// router has at that moment) rather than `mount` (which keeps the app itself).
    pub copies_routes: bool,
    /// Where the call is.
    pub site: Site,
}

/// A module-level app or an app factory: something the launcher can import and serve.
pub(crate) struct Entry {
    pub file: FileId,
    /// The attribute to import: the app variable or the factory function.
    pub attr: String,
    /// Whether `attr` is a factory to call.
    pub factory: bool,
    /// The app object it is (or returns).
    pub object: usize,
    /// The line of the assignment or `def`, to order entries within a file.
    pub line: u32,
    /// What the file does, for the detection reason, e.g. "creates `app = FastAPI()`".
    pub how: String,
}

/// The apps, routers, factories and includes of a project.
pub(crate) struct Model<'p> {
    /// The parsed project.
    pub program: &'p Program,
    /// Every app and router, in file and source order.
    pub objects: Vec<Object>,
    /// Every include and mount whose both sides are known.
    pub includes: Vec<Include>,
    /// Whether some `include_router` call includes a router that is not known (built in a
    /// loop, looked up by name...): then a router nobody seems to include may be that one.
    pub unresolved_includes: bool,
    /// Every launchable app: module-level apps and app factories.
    pub entries: Vec<Entry>,
    /// Which object each bound name holds and which app each factory function returns.
    bound: Bindings,
}

impl<'p> Model<'p> {
    /// Reads the model from every non-test file of `program`.
    pub fn build(program: &'p Program) -> Result<Model<'p>, PluginError> {
        let mut model = Model {
            program,
            objects: Vec::new(),
            includes: Vec::new(),
            unresolved_includes: false,
            entries: Vec::new(),
            bound: Bindings::default(),
        };
        let files = program.files_but_tests();
        let assignments = find_assignments(program, &files)?;
        for assignment in &assignments {
            model.add_constructed(assignment);
        }
        for &file in &files {
            model.add_factories(file)?;
        }
        for assignment in &assignments {
            model.add_factory_result(assignment);
        }
        for &file in &files {
            model.add_includes(file)?;
        }
        Ok(model)
    }

    /// The app or router an expression in `file` denotes: a local or module-level name, an
    /// imported one (`users.router`), or a call of an app factory.
    pub fn object_of(&self, file: FileId, expr: Node<'_>) -> Option<usize> {
        self.bound.object_of(self.program, file, expr)
    }

    /// The string a `str` expression in `file` evaluates to, when static.
    pub fn string(&self, file: FileId, expr: Node<'_>) -> Option<String> {
        self.program.eval_str(file, expr)
    }

    /// The static strings of a `tags=[...]`-like list; elements that are not static are left
    /// out.
    pub fn strings(&self, file: FileId, expr: Node<'_>) -> Vec<String> {
        sequence_elements(expr)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| self.string(file, e))
            .collect()
    }

    /// Which of `FastAPI`/`APIRouter` a callee in `file` names, through the file's imports.
    fn class_of(&self, file: FileId, callee: Node<'_>) -> Option<Kind> {
        let source = self.program.source(file);
        let dotted = dotted_path(callee, source.text())?;
        let imports = self.program.imports(file);
        let qualified = qualified_name(imports, &dotted).or_else(|| {
            // `from fastapi import *` brings the bare names in.
            let starred = imports
                .iter()
                .any(|i| i.kind == ImportKind::Star && i.level == 0 && i.module == "fastapi");
            starred.then(|| format!("fastapi.{dotted}"))
        })?;
        if APP_CLASSES.contains(&qualified.as_str()) {
            Some(Kind::App)
        } else if ROUTER_CLASSES.contains(&qualified.as_str()) {
            Some(Kind::Router)
        } else {
            None
        }
    }

    /// A new object for a `FastAPI(...)`/`APIRouter(...)` call with these arguments.
    fn create(&mut self, kind: Kind, file: FileId, arguments: Node<'_>) -> usize {
        let text = self.program.source(file).text();
        let (prefix, tags) = match kind {
            Kind::App => (Some(String::new()), Vec::new()),
            Kind::Router => (
                keyword_argument(arguments, "prefix", text)
                    .map_or(Some(String::new()), |p| self.string(file, p)),
                keyword_argument(arguments, "tags", text)
                    .map(|t| self.strings(file, t))
                    .unwrap_or_default(),
            ),
        };
        self.objects.push(Object { kind, prefix, tags });
        self.objects.len() - 1
    }

    /// Binds `assignment`'s target to `object`; a module-level app becomes an entry.
    fn bind(&mut self, assignment: &Assignment<'_>, object: usize, how: String) {
        let source = self.program.source(assignment.file);
        let name = source.text_of(assignment.target).to_string();
        let scope = enclosing_function(assignment.statement).map(|f| f.id());
        if scope.is_none() && self.objects[object].kind == Kind::App {
            self.entries.push(Entry {
                file: assignment.file,
                attr: name.clone(),
                factory: false,
                object,
                line: line_of(assignment.statement),
                how,
            });
        }
        self.bound
            .names
            .insert((assignment.file, scope, name), object);
    }

    /// `app = FastAPI(...)`, `router = APIRouter(...)`.
    fn add_constructed(&mut self, assignment: &Assignment<'_>) {
        let Some(kind) = self.class_of(assignment.file, assignment.callee) else {
            return;
        };
        let object = self.create(kind, assignment.file, assignment.arguments);
        let source = self.program.source(assignment.file);
        let how = format!(
            "creates `{} = {}()`",
            source.text_of(assignment.target),
            source.text_of(assignment.callee)
        );
        self.bind(assignment, object, how);
    }

    /// Module-level functions that return an app they build: `return app` after
    /// `app = FastAPI()`, or `return FastAPI(...)`. Only functions callable without arguments
    /// count, since the launcher calls them so.
    fn add_factories(&mut self, file: FileId) -> Result<(), PluginError> {
        let source = self.program.source(file);
        for m in matches(RETURNS.get()?, source.root(), source.text()) {
            let Some(function) = m.get("return").and_then(enclosing_function) else {
                continue;
            };
            if !is_top_level(function) || !callable_without_arguments(function) {
                continue;
            }
            let Some(name) = function.child_by_field_name("name") else {
                continue;
            };
            let name = source.text_of(name).to_string();
            if self.bound.factories.contains_key(&(file, name.clone())) {
                continue;
            }
            let object = if let Some(returned) = m.get("returned") {
                let key = (
                    file,
                    Some(function.id()),
                    source.text_of(returned).to_string(),
                );
                self.bound
                    .names
                    .get(&key)
                    .copied()
                    .filter(|&o| self.objects[o].kind == Kind::App)
            } else {
                let call = m.get("callee").and_then(|c| c.parent());
                let arguments = call.and_then(|c| c.child_by_field_name("arguments"));
                match (m.get("callee"), arguments) {
                    (Some(callee), Some(arguments))
                        if self.class_of(file, callee) == Some(Kind::App) =>
                    {
                        Some(self.create(Kind::App, file, arguments))
                    }
                    _ => None,
                }
            };
            let Some(object) = object else {
                continue;
            };
            self.bound.factories.insert((file, name.clone()), object);
            self.entries.push(Entry {
                file,
                how: format!("defines the app factory `{name}()`, which returns `FastAPI()`"),
                attr: name,
                factory: true,
                object,
                line: line_of(function),
            });
        }
        Ok(())
    }

    /// `app = create_app()`: the name is the factory's app.
    fn add_factory_result(&mut self, assignment: &Assignment<'_>) {
        let Some(object) =
            self.bound
                .factory_called(self.program, assignment.file, assignment.callee)
        else {
            return;
        };
        let source = self.program.source(assignment.file);
        let how = format!(
            "creates `{} = {}()` (an app factory returning `FastAPI()`)",
            source.text_of(assignment.target),
            source.text_of(assignment.callee)
        );
        self.bind(assignment, object, how);
    }

    /// `include_router` and `mount` calls whose both sides are known.
    fn add_includes(&mut self, file: FileId) -> Result<(), PluginError> {
        let source = self.program.source(file);
        let text = source.text();
        for m in matches(METHOD_CALLS.get()?, source.root(), text) {
            let (Some(receiver), Some(method), Some(arguments), Some(call)) = (
                m.get("receiver"),
                m.get("method"),
                m.get("arguments"),
                m.get("call"),
            ) else {
                continue;
            };
            let (child, kind, prefix, tags) = match source.text_of(method) {
                "include_router" => (
                    argument(arguments, 0, "router", text),
                    Kind::Router,
                    keyword_argument(arguments, "prefix", text)
                        .map_or(Some(String::new()), |p| self.string(file, p)),
                    keyword_argument(arguments, "tags", text)
                        .map(|t| self.strings(file, t))
                        .unwrap_or_default(),
                ),
                "mount" => (
                    argument(arguments, 1, "app", text),
                    Kind::App,
                    argument(arguments, 0, "path", text).and_then(|p| self.string(file, p)),
                    Vec::new(),
                ),
                _ => continue,
            };
            let parent = self.object_of(file, receiver);
            let child = child
                .and_then(|c| self.object_of(file, c))
                .filter(|&c| self.objects[c].kind == kind);
            let copies_routes = kind == Kind::Router;
            match (parent, child) {
                (Some(parent), Some(child)) => self.includes.push(Include {
                    parent,
                    child,
                    prefix,
                    tags,
                    copies_routes,
                    site: Site::of(file, call),
                }),
                _ if copies_routes => self.unresolved_includes = true,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether every parameter of a `def` has a default (or is `*args`/`**kwargs`).
fn callable_without_arguments(function: Node<'_>) -> bool {
    let Some(parameters) = function.child_by_field_name("parameters") else {
        return false;
    };
    let mut cursor = parameters.walk();
    let required = parameters
        .named_children(&mut cursor)
        .any(|p| match p.kind() {
            "identifier" => true,
            "typed_parameter" => p.named_child(0).is_some_and(|n| n.kind() == "identifier"),
            _ => false,
        });
    !required
}
