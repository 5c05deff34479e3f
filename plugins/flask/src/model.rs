//! What a Flask project is made of, read statically: its apps (`Flask(__name__)`), blueprints
//! (`Blueprint("auth", __name__, url_prefix="/auth")`), app factories (`def create_app(): app =
//! Flask(__name__); ...; return app`) and how blueprints are registered on apps and on each
//! other (`register_blueprint`, also in a `for bp in (a, b):` loop). Apps and blueprints passed
//! to the project's own functions (`register_views(app)`) are followed into them.
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
use previewd_plugin_python::source::{
    enclosing_function, is_top_level, line_of, strip_parentheses,
};
use previewd_plugin_python::{FileId, Program, Symbol};
use tree_sitter::Node;

use crate::queries::{CALLS, METHOD_CALLS, RETURNS};

/// The names the Flask application class is importable under.
const APP_CLASSES: &[&str] = &["flask.Flask", "flask.app.Flask"];
/// The names the blueprint class is importable under.
const BLUEPRINT_CLASSES: &[&str] = &[
    "flask.Blueprint",
    "flask.blueprints.Blueprint",
    "flask.sansio.blueprints.Blueprint",
];
/// `Blueprint(name, import_name, static_folder, static_url_path, template_folder, url_prefix)`:
/// the position of `url_prefix`.
const URL_PREFIX_POSITION: usize = 5;
/// How many rounds of passing objects to functions are followed (`main(app)` calling
/// `register_views(app)` needs two).
const PARAMETER_ROUNDS: usize = 3;
/// How many project base classes deep a subclass of `Flask` or `Blueprint` is recognised.
const MAX_CLASS_DEPTH: usize = 8;

/// An application or a blueprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Flask(...)`.
    App,
    /// `Blueprint(...)`.
    Blueprint,
}

/// A string option as written (`url_prefix=`, `name=`): absent (or `None`), a static string,
/// or something only known at runtime (routes under a dynamic prefix cannot be placed and are
/// skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Setting {
    Absent,
    Static(String),
    Dynamic,
}

/// One `Flask()` or `Blueprint()` the code creates.
pub(crate) struct Object {
    /// App or blueprint.
    pub kind: Kind,
    /// The blueprint's name (its first argument); `None` for apps and dynamic names.
    pub name: Option<String>,
    /// The blueprint's own `url_prefix=` (absent for apps).
    pub url_prefix: Setting,
}

/// `parent.register_blueprint(child, url_prefix=..., name=...)`.
pub(crate) struct Registration {
    /// The app or blueprint registered on (index into [`Model::objects`]).
    pub parent: usize,
    /// The registered blueprint.
    pub child: usize,
    /// The registration's own `url_prefix=`, which replaces the blueprint's.
    pub url_prefix: Setting,
    /// The registration's `name=`, which replaces the blueprint's name.
    pub name: Setting,
}

/// A module-level app or an app factory: something the launcher can import and serve.
pub(crate) struct Entry {
    pub file: FileId,
    /// The attribute to import: the app variable or the factory function.
    pub attr: String,
    /// Whether `attr` is a factory to call.
    pub factory: bool,
    /// The line of the assignment or `def`, to order entries within a file.
    pub line: u32,
    /// What the file does, for the detection reason, e.g. "creates `app = Flask(__name__)`".
    pub how: String,
}

/// The apps, blueprints, factories and registrations of a project.
pub(crate) struct Model<'p> {
    /// The parsed project.
    pub program: &'p Program,
    /// Every app and blueprint, in file and source order.
    pub objects: Vec<Object>,
    /// Every `register_blueprint` whose both sides are known.
    pub registrations: Vec<Registration>,
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
            registrations: Vec::new(),
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
        for _ in 0..PARAMETER_ROUNDS {
            for &file in &files {
                model.add_parameters(file)?;
            }
        }
        for &file in &files {
            model.add_registrations(file)?;
        }
        Ok(model)
    }

    /// The app or blueprint an expression in `file` denotes: a local or module-level name, an
    /// imported one (`auth.bp`), or a call of an app factory.
    pub fn object_of(&self, file: FileId, expr: Node<'_>) -> Option<usize> {
        self.bound.object_of(self.program, file, expr)
    }

    /// The string a `str` expression in `file` evaluates to, when static.
    pub fn string(&self, file: FileId, expr: Node<'_>) -> Option<String> {
        self.program.eval_str(file, expr)
    }

    /// A string option: absent when `expr` is `None` or the literal `None`.
    fn option(&self, file: FileId, expr: Option<Node<'_>>) -> Setting {
        match expr.map(strip_parentheses) {
            None => Setting::Absent,
            Some(e) if e.kind() == "none" => Setting::Absent,
            Some(e) => self
                .string(file, e)
                .map_or(Setting::Dynamic, Setting::Static),
        }
    }

    /// Which of `Flask`/`Blueprint` a callee in `file` names (or a project subclass of).
    fn class_of(&self, file: FileId, callee: Node<'_>) -> Option<Kind> {
        class_kind(self.program, file, callee, 0)
    }

    /// A new object for a `Flask(...)`/`Blueprint(...)` call with these arguments.
    fn create(&mut self, kind: Kind, file: FileId, arguments: Node<'_>) -> usize {
        let text = self.program.source(file).text();
        let object = match kind {
            Kind::App => Object {
                kind,
                name: None,
                url_prefix: Setting::Absent,
            },
            Kind::Blueprint => Object {
                kind,
                name: argument(arguments, 0, "name", text).and_then(|n| self.string(file, n)),
                url_prefix: self.option(
                    file,
                    argument(arguments, URL_PREFIX_POSITION, "url_prefix", text),
                ),
            },
        };
        self.objects.push(object);
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
                line: line_of(assignment.statement),
                how,
            });
        }
        self.bound
            .names
            .insert((assignment.file, scope, name), object);
    }

    /// `app = Flask(__name__)`, `bp = Blueprint("auth", __name__)`.
    fn add_constructed(&mut self, assignment: &Assignment<'_>) {
        let Some(kind) = self.class_of(assignment.file, assignment.callee) else {
            return;
        };
        let object = self.create(kind, assignment.file, assignment.arguments);
        let source = self.program.source(assignment.file);
        let how = format!(
            "creates `{} = {}`",
            source.text_of(assignment.target),
            call_text(
                source.text_of(assignment.callee),
                source.text_of(assignment.arguments)
            ),
        );
        self.bind(assignment, object, how);
    }

    /// Module-level functions that return an app they build: `return app` after
    /// `app = Flask(__name__)`, or `return Flask(__name__)`. Factories with required parameters
    /// count too: the launcher calls them without arguments, as `flask run` does, and a failure
    /// shows the user's own traceback.
    fn add_factories(&mut self, file: FileId) -> Result<(), PluginError> {
        let source = self.program.source(file);
        for m in matches(RETURNS.get()?, source.root(), source.text()) {
            let Some(function) = m.get("return").and_then(enclosing_function) else {
                continue;
            };
            let Some(name) = function.child_by_field_name("name") else {
                continue;
            };
            let name = source.text_of(name).to_string();
            if !is_top_level(function) || self.bound.factories.contains_key(&(file, name.clone())) {
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
                how: format!("defines the factory `{name}()`, which returns a `Flask` app"),
                attr: name,
                factory: true,
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
            "creates `{} = {}` (an app factory returning a `Flask` app)",
            source.text_of(assignment.target),
            call_text(
                source.text_of(assignment.callee),
                source.text_of(assignment.arguments)
            ),
        );
        self.bind(assignment, object, how);
    }

    /// Parameters of project functions that receive an app or a blueprint:
    /// `register_views(app)` binds `register_views`'s first parameter to the app inside it
    /// (the first call site seen wins).
    fn add_parameters(&mut self, file: FileId) -> Result<(), PluginError> {
        let source = self.program.source(file);
        let text = source.text();
        for m in matches(CALLS.get()?, source.root(), text) {
            let (Some(callee), Some(arguments)) = (m.get("callee"), m.get("arguments")) else {
                continue;
            };
            let Some(Symbol::Name { file: at, name }) = self.program.resolve(file, callee) else {
                continue;
            };
            let Some(function) = self.program.definition(at, &name) else {
                continue;
            };
            if function.kind() != "function_definition" {
                continue;
            }
            for (index, parameter) in parameter_names(self.program, at, function)
                .into_iter()
                .enumerate()
            {
                let key = (at, Some(function.id()), parameter.clone());
                if self.bound.names.contains_key(&key) {
                    continue;
                }
                let object = argument(arguments, index, &parameter, text)
                    .and_then(|a| self.object_of(file, a));
                if let Some(object) = object {
                    self.bound.names.insert(key, object);
                }
            }
        }
        Ok(())
    }

    /// `register_blueprint` calls whose both sides are known.
    fn add_registrations(&mut self, file: FileId) -> Result<(), PluginError> {
        let source = self.program.source(file);
        let text = source.text();
        for m in matches(METHOD_CALLS.get()?, source.root(), text) {
            let (Some(receiver), Some(method), Some(arguments)) =
                (m.get("receiver"), m.get("method"), m.get("arguments"))
            else {
                continue;
            };
            if source.text_of(method) != "register_blueprint" {
                continue;
            }
            let Some(parent) = self.object_of(file, receiver) else {
                continue;
            };
            let Some(child) = argument(arguments, 0, "blueprint", text) else {
                continue;
            };
            let url_prefix = self.option(file, keyword_argument(arguments, "url_prefix", text));
            let name = self.option(file, keyword_argument(arguments, "name", text));
            for child in self.loop_values(file, child) {
                let child = self
                    .object_of(file, child)
                    .filter(|&c| self.objects[c].kind == Kind::Blueprint);
                if let Some(child) = child {
                    self.registrations.push(Registration {
                        parent,
                        child,
                        url_prefix: url_prefix.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The expressions a name may stand for: the elements of a literal list or tuple when the
    /// name is the variable of an enclosing `for x in (a, b):`, else the expression itself.
    fn loop_values<'t>(&self, file: FileId, expr: Node<'t>) -> Vec<Node<'t>> {
        let source = self.program.source(file);
        let expr = strip_parentheses(expr);
        if expr.kind() == "identifier" {
            let mut current = expr.parent();
            while let Some(node) = current {
                if node.kind() == "function_definition" {
                    break;
                }
                let bound_here = node.kind() == "for_statement"
                    && node
                        .child_by_field_name("left")
                        .is_some_and(|l| source.text_of(l) == source.text_of(expr));
                if bound_here {
                    return node
                        .child_by_field_name("right")
                        .and_then(sequence_elements)
                        .unwrap_or_default();
                }
                current = node.parent();
            }
        }
        vec![expr]
    }
}

/// The qualified name (`flask.Flask`, `flask.views.MethodView`) a dotted expression in `file`
/// refers to through the file's imports, `from flask import *` included.
pub(crate) fn flask_name(program: &Program, file: FileId, expr: Node<'_>) -> Option<String> {
    let dotted = dotted_path(expr, program.source(file).text())?;
    let imports = program.imports(file);
    qualified_name(imports, &dotted).or_else(|| {
        let starred = imports.iter().find(|i| {
            i.kind == ImportKind::Star
                && i.level == 0
                && i.module.split('.').next() == Some("flask")
        })?;
        Some(format!("{}.{dotted}", starred.module))
    })
}

/// Which of `Flask`/`Blueprint` an expression in `file` names: one of them through the file's
/// imports, or a class of the project deriving from one (`class App(Flask): ...`).
fn class_kind(program: &Program, file: FileId, expr: Node<'_>, depth: usize) -> Option<Kind> {
    if let Some(qualified) = flask_name(program, file, expr) {
        if APP_CLASSES.contains(&qualified.as_str()) {
            return Some(Kind::App);
        }
        if BLUEPRINT_CLASSES.contains(&qualified.as_str()) {
            return Some(Kind::Blueprint);
        }
    }
    if depth >= MAX_CLASS_DEPTH {
        return None;
    }
    let Symbol::Name { file, name } = program.resolve(file, expr)? else {
        return None;
    };
    let class = program.definition(file, &name)?;
    let superclasses = class
        .child_by_field_name("superclasses")
        .filter(|_| class.kind() == "class_definition")?;
    let mut cursor = superclasses.walk();
    let bases: Vec<Node<'_>> = superclasses.named_children(&mut cursor).collect();
    bases
        .into_iter()
        .find_map(|base| class_kind(program, file, base, depth + 1))
}

/// The names of a function's parameters that can be passed by position, in order (up to
/// `*args` or a bare `*`).
fn parameter_names(program: &Program, file: FileId, function: Node<'_>) -> Vec<String> {
    let Some(parameters) = function.child_by_field_name("parameters") else {
        return Vec::new();
    };
    let source = program.source(file);
    let mut cursor = parameters.walk();
    let mut names = Vec::new();
    for parameter in parameters.named_children(&mut cursor) {
        let name = match parameter.kind() {
            "identifier" => Some(parameter),
            "typed_parameter" => parameter
                .named_child(0)
                .filter(|n| n.kind() == "identifier"),
            "default_parameter" | "typed_default_parameter" => {
                parameter.child_by_field_name("name")
            }
            _ => break,
        };
        match name {
            Some(name) => names.push(source.text_of(name).to_string()),
            None => break,
        }
    }
    names
}

/// `Flask(__name__)` for the detection reason; long argument lists are elided.
fn call_text(callee: &str, arguments: &str) -> String {
    const MAX_ARGUMENTS: usize = 40;
    let arguments: String = arguments.split_whitespace().collect::<Vec<_>>().join(" ");
    if arguments.chars().count() <= MAX_ARGUMENTS {
        format!("{callee}{arguments}")
    } else {
        format!("{callee}(…)")
    }
}
