//! A project's Python code as a whole: every file parsed once, the module each file is, and
//! name resolution across modules (what `users.router` or `settings.API_V1_STR` in one file
//! refers to in another).
//!
//! Resolution is static and deliberately shallow: module-level bindings, imports (absolute,
//! relative, aliased, re-exported through `__init__.py`, `*`), simple aliases (`x = y`), and
//! string values built from literals, `+`, f-strings, module constants and class attributes
//! (`class Settings: API_V1_STR: str = "/api/v1"` read through `settings = Settings()`).
//! Anything more dynamic resolves to `None`, never to a guess.

use std::collections::HashMap;

use previewd_plugin_api::{PluginError, Project};
use tree_sitter::Node;

use crate::imports::{imports, Import, ImportKind};
use crate::literals::string_value_with;
use crate::modules::{
    is_ancestor_or_self, is_identifier, is_test_path, join, module_stem, parent_dir,
    resolve_relative, slash_path,
};
use crate::source::{enclosing_function, local_function, strip_parentheses, SourceFile};

/// At most this many `.py` files are read from a project (in path order); more is not a web app
/// someone generated but a vendored tree.
pub const MAX_FILES: usize = 5_000;

/// How many hops (imports, aliases, nested expressions) a resolution may take before giving
/// up; also what stops import cycles.
const MAX_DEPTH: usize = 24;

/// Names a file within a [`Program`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(usize);

/// What a name or dotted expression refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Symbol {
    /// A module or package, by stem (`app/routers/users`, see [`crate::modules`]).
    Module(String),
    /// A module-level binding (assignment, `def` or `class`) `name` in `file`.
    Name { file: FileId, name: String },
}

/// One parsed file and what it binds at module level.
struct PyFile {
    source: SourceFile,
    imports: Vec<Import>,
    /// Module-level bindings: name → index of the defining statement among the root's named
    /// children (the last binding wins, as at runtime).
    definitions: HashMap<String, usize>,
}

/// Every Python file of a project, parsed, with module lookup and name resolution.
pub struct Program {
    files: Vec<PyFile>,
    /// Module stem → the file defining it; `None` for a folder without `__init__.py` (a
    /// namespace package).
    modules: HashMap<String, Option<FileId>>,
    /// Dotted name → (folder it is importable from, stem), for every folder it could be.
    dotted: HashMap<String, Vec<(String, String)>>,
}

impl Program {
    /// Reads and parses the project's `.py` files (at most [`MAX_FILES`]).
    pub fn load(project: &Project) -> Result<Program, PluginError> {
        let mut sources = Vec::new();
        for path in project.files_with_extension("py").take(MAX_FILES) {
            let Some(rel) = slash_path(path) else {
                continue;
            };
            let text = project
                .read_to_string(path)
                .map_err(|source| PluginError::Io {
                    path: rel.clone(),
                    source,
                })?;
            sources.extend(SourceFile::parse(rel, text));
        }
        Program::new(sources)
    }

    /// Builds a program from already parsed files.
    pub fn new(sources: Vec<SourceFile>) -> Result<Program, PluginError> {
        let mut files = Vec::with_capacity(sources.len());
        for source in sources {
            let imports = imports(&source)?;
            let definitions = top_level_definitions(&source);
            files.push(PyFile {
                source,
                imports,
                definitions,
            });
        }
        let modules = module_table(&files);
        let dotted = dotted_index(&modules);
        Ok(Program {
            files,
            modules,
            dotted,
        })
    }

    /// Every file, in the order given ([`Program::load`] gives path order).
    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> + '_ {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i), &f.source))
    }

    /// Every file but tests (which build throwaway apps), in the order of [`Program::files`]:
    /// the files a framework plugin reads its model from.
    pub fn files_but_tests(&self) -> Vec<FileId> {
        self.files()
            .filter(|(_, source)| !is_test_path(source.path()))
            .map(|(id, _)| id)
            .collect()
    }

    /// The file with this id.
    pub fn source(&self, file: FileId) -> &SourceFile {
        &self.files[file.0].source
    }

    /// The imports of a file, in source order.
    pub fn imports(&self, file: FileId) -> &[Import] {
        &self.files[file.0].imports
    }

    /// Whether a module or package with this stem exists (a `.py` file, a package, or a
    /// folder of Python files).
    pub fn has_module(&self, stem: &str) -> bool {
        self.modules.contains_key(stem)
    }

    /// The file defining the module with this stem (`None` for namespace packages).
    pub fn module_file(&self, stem: &str) -> Option<FileId> {
        self.modules.get(stem).copied().flatten()
    }

    /// The stem of the module `dotted` as `importer` would import it absolutely: from the
    /// outermost folder above `importer` under which it exists (as when that folder is the
    /// working directory).
    pub fn find_module(&self, importer: FileId, dotted: &str) -> Option<&str> {
        let dir = parent_dir(self.source(importer).path());
        self.dotted
            .get(dotted)?
            .iter()
            .filter(|(base, _)| is_ancestor_or_self(base, dir))
            .min_by_key(|(base, _)| base.len())
            .map(|(_, stem)| stem.as_str())
    }

    /// The stem of the module an import statement in `file` reads from.
    pub fn import_target(&self, file: FileId, import: &Import) -> Option<String> {
        if import.level == 0 {
            return self.find_module(file, &import.module).map(str::to_string);
        }
        let stem = resolve_relative(self.source(file).path(), import.level, &import.module)?;
        self.has_module(&stem).then_some(stem)
    }

    /// The `def` a name expression in `file` refers to: a function defined in an enclosing
    /// function's body (app factories define handlers and views locally), else a module-level
    /// or imported one.
    pub fn function_named_by<'p>(
        &'p self,
        file: FileId,
        expr: Node<'p>,
    ) -> Option<(FileId, Node<'p>)> {
        if expr.kind() == "identifier" {
            let source = self.source(file);
            let name = source.text_of(expr);
            let mut scope = enclosing_function(expr);
            while let Some(function) = scope {
                if let Some(local) = local_function(source, function, name) {
                    return Some((file, local));
                }
                scope = enclosing_function(function);
            }
        }
        let Symbol::Name { file, name } = self.resolve(file, expr)? else {
            return None;
        };
        let definition = self.definition(file, &name)?;
        (definition.kind() == "function_definition").then_some((file, definition))
    }

    /// The statement binding `name` at module level in `file`: a `function_definition`, a
    /// `class_definition` or an `assignment`.
    pub fn definition(&self, file: FileId, name: &str) -> Option<Node<'_>> {
        let f = &self.files[file.0];
        let statement = f.source.root().named_child(*f.definitions.get(name)?)?;
        definition_of(statement)
    }

    /// What an `identifier` or attribute chain in `file` refers to.
    pub fn resolve(&self, file: FileId, expr: Node<'_>) -> Option<Symbol> {
        self.resolve_at(file, expr, 0)
    }

    /// The string a `str` expression in `file` evaluates to, when that is statically known.
    pub fn eval_str(&self, file: FileId, expr: Node<'_>) -> Option<String> {
        self.eval_at(file, expr, 0)
    }

    fn resolve_at(&self, file: FileId, expr: Node<'_>, depth: usize) -> Option<Symbol> {
        if depth > MAX_DEPTH {
            return None;
        }
        let text_of = |node| self.source(file).text_of(node);
        let expr = strip_parentheses(expr);
        match expr.kind() {
            "identifier" => self.name_at(file, text_of(expr), depth + 1),
            "attribute" => {
                let attribute = text_of(expr.child_by_field_name("attribute")?);
                let object = expr.child_by_field_name("object")?;
                match self.resolve_at(file, object, depth + 1)? {
                    Symbol::Module(stem) => self.member(&stem, attribute, depth + 1),
                    Symbol::Name { .. } => None,
                }
            }
            _ => None,
        }
    }

    /// What `name` means at module level in `file`.
    fn name_at(&self, file: FileId, name: &str, depth: usize) -> Option<Symbol> {
        if depth > MAX_DEPTH {
            return None;
        }
        if let Some(definition) = self.definition(file, name) {
            // Follow plain aliases (`router = users.router`) to what they alias.
            let alias = assigned_value(definition)
                .filter(|v| matches!(v.kind(), "identifier" | "attribute"))
                .and_then(|v| self.resolve_at(file, v, depth + 1));
            return alias.or_else(|| {
                Some(Symbol::Name {
                    file,
                    name: name.to_string(),
                })
            });
        }
        let imports = self.imports(file);
        let named = imports.iter().rev().filter(|i| i.local == name);
        for import in named {
            if let Some(symbol) = self.import_symbol(file, import, depth + 1) {
                return Some(symbol);
            }
        }
        let stars = imports.iter().filter(|i| i.kind == ImportKind::Star);
        for import in stars {
            let Some(source) = self
                .import_target(file, import)
                .and_then(|stem| self.module_file(&stem))
            else {
                continue;
            };
            if source != file && self.binds(source, name) {
                if let Some(symbol) = self.name_at(source, name, depth + 1) {
                    return Some(symbol);
                }
            }
        }
        None
    }

    /// What an import statement binds.
    fn import_symbol(&self, file: FileId, import: &Import, depth: usize) -> Option<Symbol> {
        let stem = self.import_target(file, import)?;
        match &import.kind {
            ImportKind::Module => Some(Symbol::Module(stem)),
            // `from . import users` inside a package's own `__init__.py` names a submodule.
            ImportKind::Member(member) if self.module_file(&stem) == Some(file) => {
                self.submodule(&stem, member)
            }
            ImportKind::Member(member) => self.member(&stem, member, depth + 1),
            ImportKind::Star => None,
        }
    }

    /// `module.name`: a binding of the module's file, else a submodule.
    fn member(&self, stem: &str, name: &str, depth: usize) -> Option<Symbol> {
        let bound = self
            .module_file(stem)
            .filter(|&file| self.binds(file, name))
            .and_then(|file| self.name_at(file, name, depth + 1));
        bound.or_else(|| self.submodule(stem, name))
    }

    fn submodule(&self, stem: &str, name: &str) -> Option<Symbol> {
        let sub = join(stem, name);
        self.has_module(&sub).then_some(Symbol::Module(sub))
    }

    /// Whether `file` binds `name` at module level, by definition or import.
    fn binds(&self, file: FileId, name: &str) -> bool {
        let f = &self.files[file.0];
        f.definitions.contains_key(name)
            || f.imports
                .iter()
                .any(|i| i.local == name || i.kind == ImportKind::Star)
    }

    fn eval_at(&self, file: FileId, expr: Node<'_>, depth: usize) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        let source = self.source(file);
        let expr = strip_parentheses(expr);
        match expr.kind() {
            "string" | "concatenated_string" => string_value_with(expr, source.text(), &mut |e| {
                self.eval_at(file, e, depth + 1)
            }),
            "binary_operator" => {
                let operator = expr.child_by_field_name("operator")?;
                if source.text_of(operator) != "+" {
                    return None;
                }
                let left = self.eval_at(file, expr.child_by_field_name("left")?, depth + 1)?;
                let right = self.eval_at(file, expr.child_by_field_name("right")?, depth + 1)?;
                Some(left + &right)
            }
            "identifier" | "attribute" => self.symbol_value(file, expr, depth + 1),
            _ => None,
        }
    }

    /// The string value of a name: a module constant, or an attribute of a class or of an
    /// instance of one (`settings.API_V1_STR`).
    fn symbol_value(&self, file: FileId, expr: Node<'_>, depth: usize) -> Option<String> {
        if let Some(Symbol::Name { file, name }) = self.resolve_at(file, expr, depth + 1) {
            let value = assigned_value(self.definition(file, &name)?)?;
            return self.eval_at(file, value, depth + 1);
        }
        if expr.kind() != "attribute" {
            return None;
        }
        let attribute = self
            .source(file)
            .text_of(expr.child_by_field_name("attribute")?);
        let object = expr.child_by_field_name("object")?;
        let Symbol::Name { file, name } = self.resolve_at(file, object, depth + 1)? else {
            return None;
        };
        let (class_file, class) = self.class_of(file, &name, depth + 1)?;
        let value = class_attribute(self.source(class_file), class, attribute)?;
        self.eval_at(class_file, value, depth + 1)
    }

    /// The class `name` in `file` is, or is an instance of (`settings = Settings()`).
    fn class_of(&self, file: FileId, name: &str, depth: usize) -> Option<(FileId, Node<'_>)> {
        let definition = self.definition(file, name)?;
        if definition.kind() == "class_definition" {
            return Some((file, definition));
        }
        let value = assigned_value(definition)?;
        if value.kind() != "call" {
            return None;
        }
        let callee = value.child_by_field_name("function")?;
        let Symbol::Name { file, name } = self.resolve_at(file, callee, depth + 1)? else {
            return None;
        };
        let class = self.definition(file, &name)?;
        (class.kind() == "class_definition").then_some((file, class))
    }
}

/// The value assigned by an `assignment` node (`a = b = v` gives `v`); `None` for other nodes
/// and bare annotations (`x: int`).
pub fn assigned_value(assignment: Node<'_>) -> Option<Node<'_>> {
    if assignment.kind() != "assignment" {
        return None;
    }
    let mut value = assignment.child_by_field_name("right")?;
    while value.kind() == "assignment" {
        value = value.child_by_field_name("right")?;
    }
    Some(value)
}

/// The value a class body assigns to `attribute` (`API_V1_STR: str = "/api/v1"`), last wins.
fn class_attribute<'t>(source: &SourceFile, class: Node<'t>, attribute: &str) -> Option<Node<'t>> {
    let body = class.child_by_field_name("body")?;
    let mut cursor = body.walk();
    let statements: Vec<_> = body.named_children(&mut cursor).collect();
    statements
        .into_iter()
        .filter(|s| s.kind() == "expression_statement")
        .filter_map(|s| s.named_child(0))
        .filter(|a| {
            a.child_by_field_name("left").is_some_and(|left| {
                left.kind() == "identifier" && source.text_of(left) == attribute
            })
        })
        .filter_map(assigned_value)
        .next_back()
}

/// The definition inside a module-level statement: the function or class under decorators, or
/// the assignment of an expression statement.
fn definition_of(statement: Node<'_>) -> Option<Node<'_>> {
    match statement.kind() {
        "function_definition" | "class_definition" => Some(statement),
        "decorated_definition" => statement.child_by_field_name("definition"),
        "expression_statement" => statement
            .named_child(0)
            .filter(|n| n.kind() == "assignment"),
        _ => None,
    }
}

/// The names a file binds at module level, each with the index of its last binding statement.
fn top_level_definitions(source: &SourceFile) -> HashMap<String, usize> {
    let root = source.root();
    let mut definitions = HashMap::new();
    let mut cursor = root.walk();
    for (index, statement) in root.named_children(&mut cursor).enumerate() {
        let Some(definition) = definition_of(statement) else {
            continue;
        };
        let mut names = Vec::new();
        if definition.kind() == "assignment" {
            if assigned_value(definition).is_none() {
                continue;
            }
            // `a = b = value` binds both names.
            let mut current = Some(definition);
            while let Some(assignment) = current.filter(|n| n.kind() == "assignment") {
                names.extend(assignment.child_by_field_name("left"));
                current = assignment.child_by_field_name("right");
            }
        } else {
            names.extend(definition.child_by_field_name("name"));
        }
        for name in names.into_iter().filter(|n| n.kind() == "identifier") {
            definitions.insert(source.text_of(name).to_string(), index);
        }
    }
    definitions
}

/// Stem → file for every module, package and namespace folder. A package's `__init__.py` wins
/// over a same-named `.py` file, and any file over a bare folder, as in Python's import system.
fn module_table(files: &[PyFile]) -> HashMap<String, Option<FileId>> {
    let mut modules: HashMap<String, Option<FileId>> = HashMap::new();
    for (index, file) in files.iter().enumerate() {
        let Some((stem, package)) = module_stem(file.source.path()) else {
            continue;
        };
        if stem.is_empty() {
            continue;
        }
        let entry = modules.entry(stem.to_string()).or_insert(None);
        if package || entry.is_none() {
            *entry = Some(FileId(index));
        }
        let mut dir = parent_dir(stem);
        while !dir.is_empty() {
            modules.entry(dir.to_string()).or_insert(None);
            dir = parent_dir(dir);
        }
    }
    modules
}

/// For every stem, the dotted names it has from each folder above it
/// (`backend/app/main` is `app.main` from `backend`, `backend.app.main` from the root).
fn dotted_index(
    modules: &HashMap<String, Option<FileId>>,
) -> HashMap<String, Vec<(String, String)>> {
    let mut index: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for stem in modules.keys() {
        let parts: Vec<&str> = stem.split('/').collect();
        for split in 0..parts.len() {
            let inner = &parts[split..];
            if !inner.iter().all(|p| is_identifier(p)) {
                continue;
            }
            index
                .entry(inner.join("."))
                .or_default()
                .push((parts[..split].join("/"), stem.clone()));
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(files: &[(&str, &str)]) -> Program {
        let sources = files
            .iter()
            .map(|(path, text)| SourceFile::parse(*path, *text).unwrap())
            .collect();
        Program::new(sources).unwrap()
    }

    fn id(program: &Program, path: &str) -> FileId {
        program.files().find(|(_, s)| s.path() == path).unwrap().0
    }

    /// The expression on the last line of `path`, resolved or evaluated there.
    fn last_expr<'p>(program: &'p Program, path: &str) -> Node<'p> {
        let root = program.source(id(program, path)).root();
        root.named_child(root.named_child_count() - 1)
            .and_then(|s| s.named_child(0))
            .unwrap()
    }

    fn name(program: &Program, path: &str, binding: &str) -> Option<Symbol> {
        Some(Symbol::Name {
            file: id(program, path),
            name: binding.into(),
        })
    }

    #[test]
    fn finds_modules() {
        let p = program(&[
            ("backend/app/__init__.py", ""),
            ("backend/app/main.py", ""),
            ("backend/app/api/routes/users.py", ""),
            ("other/app/main.py", ""),
        ]);
        let main = id(&p, "backend/app/main.py");
        assert_eq!(
            p.find_module(main, "app.api.routes.users"),
            Some("backend/app/api/routes/users")
        );
        assert_eq!(p.find_module(main, "app"), Some("backend/app"));
        assert_eq!(
            p.find_module(main, "backend.app.main"),
            Some("backend/app/main")
        );
        assert_eq!(p.find_module(main, "fastapi"), None);
        assert!(p.has_module("backend/app/api"));
        assert_eq!(p.module_file("backend/app/api"), None);
        assert_eq!(
            p.module_file("backend/app"),
            Some(id(&p, "backend/app/__init__.py"))
        );
    }

    #[test]
    fn resolves_across_modules() {
        let p = program(&[
            ("app/__init__.py", ""),
            ("app/main.py", "from .routers import items, users as u\nfrom app.routers.users import router as r\nimport app.routers.users as mod\nfrom app.routers import everything\nx = 1\nitems.router\nu.router\nr\nmod.router\neverything\n"),
            ("app/routers/__init__.py", "from . import items\nfrom .users import router as everything\n"),
            ("app/routers/items.py", "router = make()\n"),
            ("app/routers/users.py", "from fastapi import APIRouter\nrouter = APIRouter()\nalias = router\nalias\n"),
        ]);
        let main = id(&p, "app/main.py");
        let root = p.source(main).root();
        let expr = |line: usize| {
            root.named_child(line)
                .and_then(|s| s.named_child(0))
                .unwrap()
        };
        assert_eq!(
            p.resolve(main, expr(5)),
            name(&p, "app/routers/items.py", "router")
        );
        assert_eq!(
            p.resolve(main, expr(6)),
            name(&p, "app/routers/users.py", "router")
        );
        assert_eq!(
            p.resolve(main, expr(7)),
            name(&p, "app/routers/users.py", "router")
        );
        assert_eq!(
            p.resolve(main, expr(8)),
            name(&p, "app/routers/users.py", "router")
        );
        assert_eq!(
            p.resolve(main, expr(9)),
            name(&p, "app/routers/users.py", "router")
        );
        let users = id(&p, "app/routers/users.py");
        assert_eq!(
            p.resolve(users, last_expr(&p, "app/routers/users.py")),
            name(&p, "app/routers/users.py", "router")
        );
    }

    /// Import cycles and self-references end instead of looping.
    #[test]
    fn cycles_end() {
        let p = program(&[
            ("a.py", "from b import x\nx\n"),
            ("b.py", "from a import x\n"),
            ("c.py", "y = y\ny\n"),
        ]);
        assert_eq!(p.resolve(id(&p, "a.py"), last_expr(&p, "a.py")), None);
        assert_eq!(p.eval_str(id(&p, "c.py"), last_expr(&p, "c.py")), None);
    }

    #[test]
    fn evaluates_strings() {
        let p = program(&[
            ("app/core/config.py", "class Settings(BaseSettings):\n    API_V1_STR: str = \"/api/v1\"\n    NAME = 'x'\n\nsettings = Settings()\n"),
            ("app/consts.py", "BASE = '/base'\nFULL = BASE + \"/full\"\nclass Tags:\n    items = 'items'\n"),
            ("app/main.py", "from app.core.config import settings\nfrom app import consts\nfrom app.consts import *\nP = f\"{settings.API_V1_STR}/users\"\nQ = consts.FULL\nP + (Q) + Tags.items\n"),
        ]);
        let main = id(&p, "app/main.py");
        assert_eq!(
            p.eval_str(main, last_expr(&p, "app/main.py")).as_deref(),
            Some("/api/v1/users/base/fullitems")
        );
    }
}
