//! Reading one file into a [`FileModel`]: its module facts (imports, declarations, exports,
//! found with the queries under `queries/`) by the rules of JavaScript, then its framework's
//! calls by the plugin's [`Framework`], which also says what the framework's objects are and
//! how they are made. Nothing here looks across files: [`crate::Program`] does that.

use previewd_plugin_api::PluginError;
use tree_sitter::Node;

use crate::module::{Export, Module, Value, MAX_DEPTH};
use crate::query::{matches, Match, SharedQuery};
use crate::Grammar;

/// `import x, { a as b }, * as ns from 'module'`.
static IMPORTS: SharedQuery =
    SharedQuery::new("imports.scm", include_str!("../queries/imports.scm"));
/// `const name = value`, destructuring patterns too.
static DECLARATIONS: SharedQuery = SharedQuery::new(
    "declarations.scm",
    include_str!("../queries/declarations.scm"),
);
/// `module.exports = ...`, `exports.x = ...` and `export ...`.
static EXPORTS: SharedQuery =
    SharedQuery::new("exports.scm", include_str!("../queries/exports.scm"));

/// What a plugin reads of a file beyond its module facts: the type implementing it holds the
/// framework's calls of one file (routes, mounts, ...), and says what the framework's objects
/// are and how they are made.
pub trait Framework: Default + Sized {
    /// The framework's objects a name can hold (apps, routers, their classes).
    type Kind: Clone + PartialEq + std::fmt::Debug;

    /// The plugin's query (`queries/*.scm`) of the calls that declare routes (and mounts,
    /// prefixes, ...); each match goes to [`Framework::call`], after the module facts are read.
    fn calls_query() -> &'static SharedQuery;

    /// What `export` of `module` holds when imported or required (`require('koa')`,
    /// `import { Router } from 'express'`, `require('./users')`); `None` leaves the name unbound.
    fn import(module: &str, export: Export) -> Option<Value<Self::Kind>>;

    /// What a call or a `new` makes; `require(...)` is read before it gets here.
    fn create<'t>(
        reader: &mut Reader<'t, Self>,
        creation: Creation<'t>,
    ) -> Option<Value<Self::Kind>>;

    /// `object.property` (or `const { property } = object`) where `object` holds `kind`.
    fn member(kind: &Self::Kind, property: &str) -> Option<Value<Self::Kind>> {
        let _ = (kind, property);
        None
    }

    /// One match of [`Framework::calls_query`]: records what it declares in `reader.calls`.
    fn call<'t>(reader: &mut Reader<'t, Self>, found: &Match<'_, 't>);
}

/// `callee(arguments)` or `new callee(arguments)`: an expression that may create one of the
/// framework's objects (`express()`, `new Router({ prefix })`).
#[derive(Debug, Clone, Copy)]
pub struct Creation<'t> {
    /// What is called or constructed.
    pub callee: Node<'t>,
    /// The argument list, if the call has one.
    pub arguments: Option<Node<'t>>,
    /// Whether it is a `new` expression.
    pub new: bool,
}

/// The facts of one file.
#[derive(Debug)]
pub struct FileModel<F: Framework> {
    /// What it binds and exports.
    pub module: Module<F::Kind>,
    /// Its framework's calls.
    pub calls: F,
}

impl<F: Framework> Default for FileModel<F> {
    fn default() -> Self {
        FileModel {
            module: Module::default(),
            calls: F::default(),
        }
    }
}

impl<F: Framework> FileModel<F> {
    /// Parses `text` with `grammar` and reads its facts: imports, then declarations, then
    /// exports, then the framework's calls.
    pub fn read(text: &str, grammar: Grammar) -> Result<FileModel<F>, PluginError> {
        let queries = [
            IMPORTS.get(grammar)?,
            DECLARATIONS.get(grammar)?,
            EXPORTS.get(grammar)?,
        ];
        let calls = F::calls_query().get(grammar)?;
        let Some(tree) = grammar.parse(text)? else {
            return Ok(FileModel::default());
        };
        let root = tree.root_node();
        let mut reader = Reader {
            src: text,
            root,
            depth: 0,
            module: Module::default(),
            calls: F::default(),
        };
        let [imports, declarations, exports] = queries;
        for m in matches(imports, root, text) {
            reader.import(&m);
        }
        for m in matches(declarations, root, text) {
            reader.declaration(&m);
        }
        for m in matches(exports, root, text) {
            reader.export(&m);
        }
        for m in matches(calls, root, text) {
            F::call(&mut reader, &m);
        }
        Ok(FileModel {
            module: reader.module,
            calls: reader.calls,
        })
    }
}

/// Fills a [`FileModel`] from the query matches of one file; what [`Framework`]'s methods are
/// handed to evaluate expressions with.
pub struct Reader<'t, F: Framework> {
    src: &'t str,
    root: Node<'t>,
    /// How many [`Reader::value`] calls are under way, against pathological nesting.
    depth: usize,
    /// What the file binds and exports, as read so far.
    pub module: Module<F::Kind>,
    /// The framework's calls, as read so far.
    pub calls: F,
}

impl<'t, F: Framework> Reader<'t, F> {
    /// The source text of `node`.
    pub fn text(&self, node: Node) -> &'t str {
        node.utf8_text(self.src.as_bytes()).unwrap_or_default()
    }

    /// The file's source.
    pub fn source(&self) -> &'t [u8] {
        self.src.as_bytes()
    }

    /// The file's root node.
    pub fn root(&self) -> Node<'t> {
        self.root
    }

    /// What an expression holds: a name (as an alias), a string constant, a `require(...)`,
    /// a member of an import or of a framework object, or what the framework makes of a call
    /// or a `new`; `None` for anything else.
    pub fn value(&mut self, node: Node<'t>) -> Option<Value<F::Kind>> {
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let value = self.evaluate(node);
        self.depth -= 1;
        value
    }

    fn evaluate(&mut self, node: Node<'t>) -> Option<Value<F::Kind>> {
        match node.kind() {
            "identifier" => Some(Value::Alias(self.text(node).to_string())),
            "string" | "template_string" | "binary_expression" => {
                self.string(node).map(Value::Text)
            }
            "parenthesized_expression"
            | "await_expression"
            | "as_expression"
            | "non_null_expression"
            | "satisfies_expression" => self.value(node.named_child(0)?),
            "call_expression" => {
                let function = node.child_by_field_name("function")?;
                let arguments = node.child_by_field_name("arguments");
                if function.kind() == "identifier" && self.text(function) == "require" {
                    let module = self.string(arguments?.named_child(0)?)?;
                    return F::import(&module, Export::Whole);
                }
                let creation = Creation {
                    callee: function,
                    arguments,
                    new: false,
                };
                F::create(self, creation)
            }
            "new_expression" => {
                let creation = Creation {
                    callee: node.child_by_field_name("constructor")?,
                    arguments: node.child_by_field_name("arguments"),
                    new: true,
                };
                F::create(self, creation)
            }
            "member_expression" => {
                let object = node.child_by_field_name("object")?;
                let property = self.text(node.child_by_field_name("property")?);
                self.member(object, property)
            }
            _ => None,
        }
    }

    /// `object.property`: a named export of an imported module, or what the framework says of
    /// a member of its object.
    pub fn member(&mut self, object: Node<'t>, property: &str) -> Option<Value<F::Kind>> {
        let value = self.value(object)?;
        match self.module.local(&value)? {
            Value::Framework(kind) => F::member(&kind, property),
            Value::Import {
                module,
                export: Export::Whole,
            } => Some(Value::Import {
                module,
                export: Export::Named(property.to_string()),
            }),
            _ => None,
        }
    }

    /// The value of a string expression: a literal, a template without substitutions (or
    /// escapes), a constant of this file, or `+` of those.
    pub fn string(&self, node: Node) -> Option<String> {
        self.string_at(node, 0)
    }

    fn string_at(&self, node: Node, depth: usize) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        match node.kind() {
            "string" => {
                let text = self.text(node);
                Some(text.get(1..text.len().checked_sub(1)?)?.to_string())
            }
            "template_string" => {
                let mut cursor = node.walk();
                let plain = node
                    .named_children(&mut cursor)
                    .all(|c| c.kind() == "string_fragment");
                let text = self.text(node);
                plain.then(|| {
                    text.get(1..text.len().saturating_sub(1))
                        .map(str::to_string)
                })?
            }
            "binary_expression" => {
                let operator = node.child_by_field_name("operator")?;
                if self.text(operator) != "+" {
                    return None;
                }
                let left = self.string_at(node.child_by_field_name("left")?, depth + 1)?;
                let right = self.string_at(node.child_by_field_name("right")?, depth + 1)?;
                Some(left + &right)
            }
            "parenthesized_expression" => self.string_at(node.named_child(0)?, depth + 1),
            "identifier" => match self
                .module
                .local(&Value::Alias(self.text(node).to_string()))?
            {
                Value::Text(text) => Some(text),
                _ => None,
            },
            _ => None,
        }
    }

    /// `import x, { a as b }, * as ns from 'module'`.
    fn import(&mut self, m: &Match<'_, 't>) {
        let (Some(clause), Some(source)) = (m.get("clause"), m.get("source")) else {
            return;
        };
        let Some(module) = self.string(source) else {
            return;
        };
        let mut cursor = clause.walk();
        for part in clause.named_children(&mut cursor) {
            match part.kind() {
                "identifier" => self.bind_import(part, &module, Export::Default),
                "namespace_import" => {
                    let mut inner = part.walk();
                    let name = part
                        .named_children(&mut inner)
                        .filter(|c| c.kind() == "identifier")
                        .last();
                    if let Some(name) = name {
                        self.bind_import(name, &module, Export::Whole);
                    }
                }
                "named_imports" => {
                    let mut inner = part.walk();
                    for spec in part.named_children(&mut inner) {
                        let Some(name) = spec.child_by_field_name("name") else {
                            continue;
                        };
                        let local = spec.child_by_field_name("alias").unwrap_or(name);
                        let export = match self.text(name) {
                            "default" => Export::Default,
                            exported => Export::Named(exported.to_string()),
                        };
                        self.bind_import(local, &module, export);
                    }
                }
                _ => {}
            }
        }
    }

    fn bind_import(&mut self, local: Node, module: &str, export: Export) {
        if let Some(value) = F::import(module, export) {
            self.module
                .names
                .insert(self.text(local).to_string(), value);
        }
    }

    /// `const name = value` and `const { a, b: c } = value`.
    fn declaration(&mut self, m: &Match<'_, 't>) {
        let (Some(name), Some(value)) = (m.get("name"), m.get("value")) else {
            return;
        };
        match name.kind() {
            "identifier" => {
                if let Some(value) = self.value(value) {
                    self.module.names.insert(self.text(name).to_string(), value);
                }
            }
            // `const { Router } = require('@koa/router')`, `const { a: b } = require('./m')`.
            "object_pattern" => {
                let mut cursor = name.walk();
                for property in name.named_children(&mut cursor) {
                    let (key, local) = match property.kind() {
                        "shorthand_property_identifier_pattern" => (property, property),
                        "pair_pattern" => match (
                            property.child_by_field_name("key"),
                            property.child_by_field_name("value"),
                        ) {
                            (Some(key), Some(local)) if local.kind() == "identifier" => {
                                (key, local)
                            }
                            _ => continue,
                        },
                        _ => continue,
                    };
                    if let Some(value) = self.member(value, self.text(key)) {
                        self.module
                            .names
                            .insert(self.text(local).to_string(), value);
                    }
                }
            }
            _ => {}
        }
    }

    /// `module.exports = ...`, `exports.x = ...` and `export ...`.
    fn export(&mut self, m: &Match<'_, 't>) {
        if let (Some(left), Some(value)) = (m.get("left"), m.get("value")) {
            self.commonjs_export(left, value);
        } else if let Some(export) = m.get("export") {
            self.export_statement(export);
        }
    }

    /// `module.exports = x`, `module.exports = { a, b: c }`, `exports.x = y`,
    /// `module.exports.x = y`.
    fn commonjs_export(&mut self, left: Node<'t>, value: Node<'t>) {
        let target = self.text(left).replace(char::is_whitespace, "");
        if target == "module.exports" {
            if value.kind() == "object" {
                self.object_exports(value);
            } else if let Some(value) = self.value(value) {
                self.module.exports.insert("default".into(), value);
            }
            return;
        }
        let name = target
            .strip_prefix("module.exports.")
            .or_else(|| target.strip_prefix("exports."));
        if let (Some(name), Some(value)) = (name, self.value(value)) {
            self.module.exports.insert(name.to_string(), value);
        }
    }

    /// The properties of `module.exports = { users, 'admin': adminRouter }`.
    fn object_exports(&mut self, object: Node<'t>) {
        let mut cursor = object.walk();
        for property in object.named_children(&mut cursor) {
            let (name, value) = match property.kind() {
                "shorthand_property_identifier" => (
                    self.text(property),
                    Some(Value::Alias(self.text(property).to_string())),
                ),
                "pair" => match (
                    property.child_by_field_name("key"),
                    property.child_by_field_name("value"),
                ) {
                    (Some(key), Some(value)) => (self.text(key), self.value(value)),
                    _ => continue,
                },
                _ => continue,
            };
            if let Some(value) = value {
                let name = name.trim_matches(['"', '\'']).to_string();
                self.module.exports.insert(name, value);
            }
        }
    }

    /// `export default x`, `export const r = Router()`, `export { a as b }`.
    fn export_statement(&mut self, export: Node<'t>) {
        if let Some(value) = export.child_by_field_name("value") {
            if let Some(value) = self.value(value) {
                self.module.exports.insert("default".into(), value);
            }
            return;
        }
        if let Some(declaration) = export.child_by_field_name("declaration") {
            let mut cursor = declaration.walk();
            for declarator in declaration.named_children(&mut cursor) {
                if let Some(name) = declarator
                    .child_by_field_name("name")
                    .filter(|n| n.kind() == "identifier")
                {
                    let name = self.text(name).to_string();
                    self.module.exports.insert(name.clone(), Value::Alias(name));
                }
            }
            return;
        }
        let mut cursor = export.walk();
        for clause in export.named_children(&mut cursor) {
            if clause.kind() != "export_clause" {
                continue;
            }
            let mut inner = clause.walk();
            for spec in clause.named_children(&mut inner) {
                let Some(name) = spec.child_by_field_name("name") else {
                    continue;
                };
                let exported = spec.child_by_field_name("alias").unwrap_or(name);
                self.module.exports.insert(
                    self.text(exported).to_string(),
                    Value::Alias(self.text(name).to_string()),
                );
            }
        }
    }
}

/// The 1-based line `node` starts on.
pub fn line(node: Node) -> u32 {
    node.start_position().row as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_framework::{Routes, Server};

    fn read(text: &str) -> FileModel<Routes> {
        FileModel::read(text, Grammar::JavaScript).unwrap()
    }

    /// Every query compiles against both grammars.
    #[test]
    fn queries_compile() {
        for grammar in [Grammar::JavaScript, Grammar::TypeScript] {
            for query in [&IMPORTS, &DECLARATIONS, &EXPORTS] {
                query.get(grammar).unwrap();
            }
        }
    }

    /// Imports of every spelling; `require`, its members and destructuring; what the framework
    /// makes; modules the framework ignores stay unbound.
    #[test]
    fn bindings() {
        let model = read(
            "import s, { a, b as c, default as d } from './m';\nimport * as ns from './ns';\n\
             import lib from 'lib';\nconst r = require('./r');\nconst { x, y: z } = require('./m');\n\
             const w = r.w;\nconst app = s();\nimport server from 'server';\n\
             const made = new server();\nconst alias = made;\n",
        );
        let names = &model.module.names;
        let import = |module: &str, export| Value::Import {
            module: module.into(),
            export,
        };
        assert_eq!(names["s"], import("./m", Export::Default));
        assert_eq!(names["a"], import("./m", Export::Named("a".into())));
        assert_eq!(names["c"], import("./m", Export::Named("b".into())));
        assert_eq!(names["d"], import("./m", Export::Default));
        assert_eq!(names["ns"], import("./ns", Export::Whole));
        assert_eq!(names["r"], import("./r", Export::Whole));
        assert_eq!(names["x"], import("./m", Export::Named("x".into())));
        assert_eq!(names["z"], import("./m", Export::Named("y".into())));
        assert_eq!(names["w"], import("./r", Export::Named("w".into())));
        assert_eq!(names["made"], Value::Framework(Server));
        assert_eq!(names["alias"], Value::Alias("made".into()));
        assert!(!names.contains_key("lib"));
        assert!(!names.contains_key("app"), "s is not the server module");
    }

    /// CommonJS and ES module exports.
    #[test]
    fn exports() {
        let model = read(
            r#"
            const router = new Router();
            module.exports = router;
            module.exports.extra = other;
            exports.more = router;
            export const r2 = new Router();
            export { router as users };
            "#,
        );
        let exports = &model.module.exports;
        assert_eq!(exports["default"], Value::Alias("router".into()));
        assert_eq!(exports["extra"], Value::Alias("other".into()));
        assert_eq!(exports["more"], Value::Alias("router".into()));
        assert_eq!(exports["r2"], Value::Alias("r2".into()));
        assert_eq!(exports["users"], Value::Alias("router".into()));
        let model = read("module.exports = { api, 'admin': adminRouter, v: '/v1' };");
        let exports = &model.module.exports;
        assert_eq!(exports["api"], Value::Alias("api".into()));
        assert_eq!(exports["admin"], Value::Alias("adminRouter".into()));
        assert_eq!(exports["v"], Value::Text("/v1".into()));
    }

    /// String expressions: literals, plain templates, constants and `+`; not templates with
    /// substitutions or escapes, other operators, or sums nested past the limit.
    #[test]
    fn strings() {
        let deep = format!("const D = {}'x';\n", "'' + ".repeat(100));
        let model = read(&format!(
            "const A = '/a';\nconst B = A + `/b`;\nconst C = B;\nconst T = `/${{A}}`;\n\
             const E = `/\\n`;\nconst M = 1 - 2;\n{deep}\
             s.route(C + '/c');\ns.route(T);\ns.route(\"/q\");\n"
        ));
        let names = &model.module.names;
        assert_eq!(names["B"], Value::Text("/a/b".into()));
        for name in ["T", "E", "M", "D"] {
            assert!(!names.contains_key(name), "{name}: {:?}", names.get(name));
        }
        let routes = &model.calls.0;
        assert_eq!(
            routes,
            &[
                ("s".to_string(), "/a/b/c".to_string()),
                ("s".into(), "/q".into())
            ]
        );
    }

    /// TypeScript wrappers (`as`, `!`, `satisfies`) are seen through.
    #[test]
    fn typescript_expressions() {
        let model = FileModel::<Routes>::read(
            "import server from 'server';\nconst a = server() as Server;\nconst b = (a!);\n\
             const c = server() satisfies Server;\n",
            Grammar::TypeScript,
        )
        .unwrap();
        let names = &model.module.names;
        assert_eq!(names["a"], Value::Framework(Server));
        assert_eq!(names["b"], Value::Alias("a".into()));
        assert_eq!(names["c"], Value::Framework(Server));
    }
}
