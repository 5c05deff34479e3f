//! What one source file says about Koa, read with the queries: which names hold the Koa and
//! router classes, apps, routers, imports and string constants; which routes, prefixes and
//! mounts it declares on which receiver; what it exports. Nothing here looks across files:
//! `routes` does that.
//!
//! Scopes are not tracked: a name means the same thing everywhere in its file, which is how
//! Koa code is written (one `app`, one `router` per file).

use std::collections::HashMap;

use previewd_plugin_api::PluginError;
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Parser, Query, QueryCursor, QueryMatch};

use crate::queries::{self, Queries};

/// Route methods (`router.get`, ..., `router.all`), as called.
const VERBS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "del", "options", "head", "all",
];
/// The modules whose export is the router class.
const ROUTER_MODULES: &[&str] = &["@koa/router", "koa-router"];
/// The module whose export is the Koa class.
const KOA_MODULE: &str = "koa";
/// Constructor names taken for the router class when the file does not say where they come
/// from.
const ROUTER_NAMES: &[&str] = &["Router", "KoaRouter"];
/// How deep an expression (`A + '/x'`, an alias chain, a call chain) is followed.
const MAX_DEPTH: usize = 32;

/// Which export of a module a name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Export {
    /// The module itself: `require('./m')` (its `module.exports`) or `import * as m`.
    Whole,
    /// `import x from './m'`.
    Default,
    /// `import { x }`, `const { x } = require('./m')`, `require('./m').x`.
    Named(String),
}

/// What a name (or an expression) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// The Koa class.
    KoaClass,
    /// The router class of `@koa/router` or `koa-router`.
    RouterClass,
    /// An app: `new Koa()`.
    App,
    /// A router: `new Router()`, with the prefix its options give (empty without one).
    Router { prefix: String },
    /// Something another module of the project exports.
    Import { module: String, export: Export },
    /// Another name of this file.
    Alias(String),
    /// A string constant.
    Text(String),
}

/// A route: `receiver.method(path, ...)`, `receiver.method(name, path, ...)` or a link of a
/// chain of such calls.
#[derive(Debug, Clone)]
pub(crate) struct RouteCall {
    pub(crate) receiver: String,
    /// Upper case; `ALL` for `.all()`, `DELETE` for `.del()`.
    pub(crate) method: String,
    /// One path, or several for `router.get(['/a', '/b'], ...)`.
    pub(crate) paths: Vec<String>,
    /// The route's name, for a named route.
    pub(crate) name: Option<String>,
    /// 1-based line of the method name.
    pub(crate) line: u32,
}

/// `receiver.prefix('/v1')`.
#[derive(Debug, Clone)]
pub(crate) struct PrefixCall {
    pub(crate) receiver: String,
    pub(crate) prefix: String,
}

/// `receiver.use([path,] child.routes(), ...)`: a router mounted on an app or a router.
#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub(crate) receiver: String,
    /// The paths it is mounted under (an app's `use` takes none).
    pub(crate) paths: Vec<String>,
    pub(crate) child: Value,
}

/// The facts of one file.
#[derive(Debug, Default)]
pub(crate) struct FileModel {
    pub(crate) names: HashMap<String, Value>,
    /// Export name (`default` for `module.exports = x` / `export default x`) → value.
    pub(crate) exports: HashMap<String, Value>,
    pub(crate) routes: Vec<RouteCall>,
    pub(crate) prefixes: Vec<PrefixCall>,
    pub(crate) mounts: Vec<Mount>,
}

impl FileModel {
    /// Reads `source` (JavaScript).
    pub(crate) fn read(source: &str) -> Result<FileModel, PluginError> {
        let queries = Queries::get()?;
        let mut parser = Parser::new();
        parser
            .set_language(&queries::language())
            .map_err(|err| PluginError::Query {
                name: "javascript grammar".into(),
                message: err.to_string(),
            })?;
        let mut model = FileModel::default();
        let Some(tree) = parser.parse(source, None) else {
            return Ok(model);
        };
        let src = source.as_bytes();
        let root = tree.root_node();
        let mut reader = Reader {
            src,
            model: &mut model,
        };
        each_match(&queries.bindings, root, src, |m| {
            reader.binding(&queries.bindings, m)
        });
        each_match(&queries.exports, root, src, |m| {
            reader.export(&queries.exports, m)
        });
        each_match(&queries.calls, root, src, |m| {
            reader.call(&queries.calls, m)
        });
        Ok(model)
    }

    /// Whether the file creates a Koa app.
    pub(crate) fn creates_app(&self) -> bool {
        self.names.values().any(|v| *v == Value::App)
    }
}

/// Runs `query` over `root`, calling `f` on every match, in document order.
fn each_match<'t>(
    query: &Query,
    root: Node<'t>,
    src: &[u8],
    mut f: impl FnMut(&QueryMatch<'_, 't>),
) {
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(query, root, src);
    while let Some(m) = matches.next() {
        f(m);
    }
}

/// The node captured as `name` in `m`.
fn capture<'t>(query: &Query, m: &QueryMatch<'_, 't>, name: &str) -> Option<Node<'t>> {
    let index = query.capture_index_for_name(name)?;
    m.captures.iter().find(|c| c.index == index).map(|c| c.node)
}

/// Fills a model from the query matches of one file.
struct Reader<'m, 's> {
    src: &'s [u8],
    model: &'m mut FileModel,
}

impl<'s> Reader<'_, 's> {
    fn text(&self, node: Node) -> &'s str {
        node.utf8_text(self.src).unwrap_or_default()
    }

    /// `const name = value` and `import ... from 'module'`.
    fn binding(&mut self, query: &Query, m: &QueryMatch) {
        if let (Some(name), Some(value)) = (capture(query, m, "name"), capture(query, m, "value")) {
            self.declare(name, value);
        } else if let (Some(clause), Some(source)) =
            (capture(query, m, "clause"), capture(query, m, "source"))
        {
            if let Some(module) = self.string(source) {
                self.import(clause, &module);
            }
        }
    }

    /// `name = value`, where `name` may be a destructuring pattern.
    fn declare(&mut self, name: Node, value: Node) {
        match name.kind() {
            "identifier" => {
                if let Some(v) = self.value(value, 0) {
                    self.model.names.insert(self.text(name).to_string(), v);
                }
            }
            // `const { Router } = require('@koa/router')`, `const { a: b } = require('./m')`.
            "object_pattern" => {
                let mut cursor = name.walk();
                for part in name.named_children(&mut cursor) {
                    let (key, local) = match part.kind() {
                        "shorthand_property_identifier_pattern" => (part, part),
                        "pair_pattern" => match (
                            part.child_by_field_name("key"),
                            part.child_by_field_name("value"),
                        ) {
                            (Some(key), Some(local)) if local.kind() == "identifier" => {
                                (key, local)
                            }
                            _ => continue,
                        },
                        _ => continue,
                    };
                    let key = self.text(key).to_string();
                    if let Some(v) = self.member(value, &key, 0) {
                        self.model.names.insert(self.text(local).to_string(), v);
                    }
                }
            }
            _ => {}
        }
    }

    /// `import a, { b as c } from 'module'`, `import * as ns from 'module'`.
    fn import(&mut self, clause: Node, module: &str) {
        let mut cursor = clause.walk();
        for part in clause.named_children(&mut cursor) {
            match part.kind() {
                "identifier" => self.bind_import(part, module, Export::Default),
                "namespace_import" => {
                    let mut inner = part.walk();
                    let name = part
                        .named_children(&mut inner)
                        .find(|n| n.kind() == "identifier");
                    if let Some(name) = name {
                        self.bind_import(name, module, Export::Whole);
                    }
                }
                "named_imports" => {
                    let mut inner = part.walk();
                    for spec in part.named_children(&mut inner) {
                        let Some(name) = spec.child_by_field_name("name") else {
                            continue;
                        };
                        let local = spec.child_by_field_name("alias").unwrap_or(name);
                        let export = Export::Named(self.text(name).to_string());
                        self.bind_import(local, module, export);
                    }
                }
                _ => {}
            }
        }
    }

    fn bind_import(&mut self, local: Node, module: &str, export: Export) {
        if let Some(value) = module_value(module, export) {
            self.model.names.insert(self.text(local).to_string(), value);
        }
    }

    /// `module.exports = ...`, `exports.x = ...` and `export ...`.
    fn export(&mut self, query: &Query, m: &QueryMatch) {
        if let (Some(left), Some(value)) = (capture(query, m, "left"), capture(query, m, "value")) {
            match self.text(left) {
                "module.exports" => {
                    if value.kind() == "object" {
                        self.export_object(value);
                    } else if let Some(v) = self.value(value, 0) {
                        self.model.exports.insert("default".into(), v);
                    }
                }
                target => {
                    let name = target
                        .strip_prefix("module.exports.")
                        .or_else(|| target.strip_prefix("exports."));
                    if let (Some(name), Some(v)) = (name, self.value(value, 0)) {
                        self.model.exports.insert(name.to_string(), v);
                    }
                }
            }
        } else if let Some(export) = capture(query, m, "export") {
            self.export_statement(export);
        }
    }

    /// `module.exports = { users, admin: adminRouter }`.
    fn export_object(&mut self, object: Node) {
        let mut cursor = object.walk();
        for part in object.named_children(&mut cursor) {
            let (key, value) = match part.kind() {
                "shorthand_property_identifier" => (part, part),
                "pair" => match (
                    part.child_by_field_name("key"),
                    part.child_by_field_name("value"),
                ) {
                    (Some(key), Some(value)) => (key, value),
                    _ => continue,
                },
                _ => continue,
            };
            let value = if part.kind() == "shorthand_property_identifier" {
                Some(Value::Alias(self.text(value).to_string()))
            } else {
                self.value(value, 0)
            };
            if let Some(value) = value {
                self.model
                    .exports
                    .insert(self.text(key).trim_matches(['"', '\'']).to_string(), value);
            }
        }
    }

    /// `export default x`, `export const r = ...`, `export { r as s }`.
    fn export_statement(&mut self, export: Node) {
        if let Some(value) = export.child_by_field_name("value") {
            if let Some(v) = self.value(value, 0) {
                self.model.exports.insert("default".into(), v);
            }
            return;
        }
        if let Some(declaration) = export.child_by_field_name("declaration") {
            let mut cursor = declaration.walk();
            for declarator in declaration.named_children(&mut cursor) {
                if declarator.kind() != "variable_declarator" {
                    continue;
                }
                if let Some(name) = declarator
                    .child_by_field_name("name")
                    .filter(|n| n.kind() == "identifier")
                {
                    let name = self.text(name).to_string();
                    self.model.exports.insert(name.clone(), Value::Alias(name));
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
                self.model.exports.insert(
                    self.text(exported).to_string(),
                    Value::Alias(self.text(name).to_string()),
                );
            }
        }
    }

    /// A route, prefix or mount call.
    fn call(&mut self, query: &Query, m: &QueryMatch) {
        let (Some(receiver), Some(method), Some(arguments)) = (
            capture(query, m, "receiver"),
            capture(query, m, "method"),
            capture(query, m, "arguments"),
        ) else {
            return;
        };
        let Some(receiver) = self.receiver(receiver) else {
            return;
        };
        let mut cursor = arguments.walk();
        let args: Vec<Node> = arguments
            .named_children(&mut cursor)
            .filter(|n| n.kind() != "comment")
            .collect();
        let method_name = self.text(method);
        match method_name {
            "prefix" => {
                if let Some(prefix) = args.first().and_then(|a| self.text_value(*a, 0)) {
                    self.model.prefixes.push(PrefixCall { receiver, prefix });
                }
            }
            "use" => {
                let paths = args.first().map(|a| self.paths(*a)).unwrap_or_default();
                for arg in &args {
                    if let Some(child) = self.mounted_router(*arg) {
                        self.model.mounts.push(Mount {
                            receiver: receiver.clone(),
                            paths: paths.clone(),
                            child,
                        });
                    }
                }
            }
            verb if VERBS.contains(&verb) => {
                let (name, paths) = match (args.first(), args.get(1)) {
                    (Some(first), Some(second)) if !self.paths(*second).is_empty() => {
                        (self.text_value(*first, 0), self.paths(*second))
                    }
                    (Some(first), _) => (None, self.paths(*first)),
                    (None, _) => return,
                };
                if paths.is_empty() {
                    return;
                }
                let line = method.start_position().row as u32 + 1;
                let method = match verb {
                    "del" => "DELETE".to_string(),
                    other => other.to_ascii_uppercase(),
                };
                self.model.routes.push(RouteCall {
                    receiver,
                    method,
                    paths,
                    name,
                    line,
                });
            }
            _ => {}
        }
    }

    /// The name at the bottom of a receiver: `router` in `router`, `router.get(...)`,
    /// `router.get(...).post(...)`.
    fn receiver(&self, mut node: Node) -> Option<String> {
        for _ in 0..MAX_DEPTH {
            match node.kind() {
                "identifier" => return Some(self.text(node).to_string()),
                "call_expression" => {
                    let function = node.child_by_field_name("function")?;
                    if function.kind() != "member_expression" {
                        return None;
                    }
                    node = function.child_by_field_name("object")?;
                }
                "parenthesized_expression" => node = node.named_child(0)?,
                _ => return None,
            }
        }
        None
    }

    /// The router a `use` argument mounts: `router.routes()`, `router.middleware()`,
    /// `require('./users').routes()`.
    fn mounted_router(&self, arg: Node) -> Option<Value> {
        if arg.kind() != "call_expression" {
            return None;
        }
        let function = arg.child_by_field_name("function")?;
        if function.kind() != "member_expression" {
            return None;
        }
        let property = self.text(function.child_by_field_name("property")?);
        if property != "routes" && property != "middleware" {
            return None;
        }
        let object = function.child_by_field_name("object")?;
        match object.kind() {
            "identifier" => Some(Value::Alias(self.text(object).to_string())),
            _ => self.value(object, 0),
        }
    }

    /// The paths of a route or mount argument: a string, a constant, or an array of them.
    fn paths(&self, node: Node) -> Vec<String> {
        if node.kind() == "array" {
            let mut cursor = node.walk();
            return node
                .named_children(&mut cursor)
                .filter_map(|n| self.text_value(n, 0))
                .collect();
        }
        self.text_value(node, 0).into_iter().collect()
    }

    /// A string expression's value: a literal, a template without substitutions, a constant,
    /// or `+` of those.
    fn text_value(&self, node: Node, depth: usize) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        match node.kind() {
            "string" => self.string(node),
            "template_string" => {
                let mut cursor = node.walk();
                if node
                    .named_children(&mut cursor)
                    .any(|n| n.kind() == "template_substitution")
                {
                    return None;
                }
                let text = self.text(node);
                Some(text.get(1..text.len().saturating_sub(1))?.to_string())
            }
            "binary_expression" => {
                let operator = node.child_by_field_name("operator")?;
                if self.text(operator) != "+" {
                    return None;
                }
                let left = self.text_value(node.child_by_field_name("left")?, depth + 1)?;
                let right = self.text_value(node.child_by_field_name("right")?, depth + 1)?;
                Some(left + &right)
            }
            "parenthesized_expression" => self.text_value(node.named_child(0)?, depth + 1),
            "identifier" => {
                let mut name = self.text(node).to_string();
                for _ in 0..MAX_DEPTH {
                    match self.model.names.get(&name)? {
                        Value::Text(text) => return Some(text.clone()),
                        Value::Alias(next) => name = next.clone(),
                        _ => return None,
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// A string literal's content.
    fn string(&self, node: Node) -> Option<String> {
        if node.kind() != "string" {
            return None;
        }
        let text = self.text(node);
        Some(text.get(1..text.len().saturating_sub(1))?.to_string())
    }

    /// What an expression holds, as far as Koa is concerned.
    fn value(&self, node: Node, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        match node.kind() {
            "identifier" => Some(Value::Alias(self.text(node).to_string())),
            "string" | "template_string" | "binary_expression" => {
                self.text_value(node, depth).map(Value::Text)
            }
            "parenthesized_expression" | "await_expression" => {
                self.value(node.named_child(0)?, depth + 1)
            }
            "new_expression" => {
                let class = self.class(node.child_by_field_name("constructor")?, depth)?;
                let options = node
                    .child_by_field_name("arguments")
                    .and_then(|a| a.named_child(0));
                self.instance(class, options)
            }
            "call_expression" => {
                let function = node.child_by_field_name("function")?;
                let arguments = node.child_by_field_name("arguments")?;
                if function.kind() == "identifier" && self.text(function) == "require" {
                    let module = self.string(arguments.named_child(0)?)?;
                    return module_value(&module, Export::Whole);
                }
                // `require('koa-router')()`, `Router()`: koa-router builds a router without `new`.
                let class = self.class(function, depth)?;
                self.instance(class, arguments.named_child(0))
            }
            "member_expression" => {
                let object = node.child_by_field_name("object")?;
                let property = self.text(node.child_by_field_name("property")?).to_string();
                self.member(object, &property, depth + 1)
            }
            _ => None,
        }
    }

    /// `object.property` (or `{ property } = object`).
    fn member(&self, object: Node, property: &str, depth: usize) -> Option<Value> {
        match self.resolved(self.value(object, depth)?)? {
            Value::RouterClass if matches!(property, "Router" | "default") => {
                Some(Value::RouterClass)
            }
            Value::KoaClass if property == "default" => Some(Value::KoaClass),
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

    /// The class a constructor expression names; a bare `Koa`, `Router` or `KoaRouter` the file
    /// does not bind is taken for what it says.
    fn class(&self, node: Node, depth: usize) -> Option<Value> {
        let value = self.value(node, depth + 1)?;
        match self.resolved(value.clone()) {
            Some(class @ (Value::KoaClass | Value::RouterClass)) => Some(class),
            Some(_) => None,
            None => match value {
                Value::Alias(name) if name == "Koa" => Some(Value::KoaClass),
                Value::Alias(name) if ROUTER_NAMES.contains(&name.as_str()) => {
                    Some(Value::RouterClass)
                }
                _ => None,
            },
        }
    }

    /// What `new class(options)` builds.
    fn instance(&self, class: Value, options: Option<Node>) -> Option<Value> {
        match class {
            Value::KoaClass => Some(Value::App),
            Value::RouterClass => Some(Value::Router {
                prefix: options
                    .and_then(|o| self.option(o, "prefix"))
                    .unwrap_or_default(),
            }),
            _ => None,
        }
    }

    /// The string value of `key` in an object literal.
    fn option(&self, object: Node, key: &str) -> Option<String> {
        if object.kind() != "object" {
            return None;
        }
        let mut cursor = object.walk();
        let pair = object.named_children(&mut cursor).find(|pair| {
            pair.kind() == "pair"
                && pair
                    .child_by_field_name("key")
                    .is_some_and(|k| self.text(k).trim_matches(['"', '\'']) == key)
        })?;
        self.text_value(pair.child_by_field_name("value")?, 0)
    }

    /// `value` with this file's aliases followed; `None` for a name the file does not bind.
    fn resolved(&self, value: Value) -> Option<Value> {
        let mut value = value;
        for _ in 0..MAX_DEPTH {
            match value {
                Value::Alias(name) => value = self.model.names.get(&name)?.clone(),
                other => return Some(other),
            }
        }
        None
    }
}

/// What `export` of `module` is: the Koa class, the router class, another file of the project
/// (relative specifiers), or nothing Koa cares about.
fn module_value(module: &str, export: Export) -> Option<Value> {
    if module == KOA_MODULE {
        return matches!(export, Export::Whole | Export::Default).then_some(Value::KoaClass);
    }
    if ROUTER_MODULES.contains(&module) {
        let class = match &export {
            Export::Whole | Export::Default => true,
            Export::Named(name) => name == "Router" || name == "default",
        };
        return class.then_some(Value::RouterClass);
    }
    module.starts_with('.').then(|| Value::Import {
        module: module.to_string(),
        export,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Classes from `require` and `import`, apps, routers with prefixes, constants.
    #[test]
    fn bindings() {
        let model = FileModel::read(
            r#"
            const Koa = require('koa');
            const Router = require('@koa/router');
            import KR from 'koa-router';
            const { Router: Named } = require('@koa/router');
            const BASE = '/api';
            const app = new Koa();
            const router = new Router({ prefix: BASE + '/v1' });
            const old = require('koa-router')();
            const other = new KR();
            const named = new Named();
            const users = require('./routes/users');
            "#,
        )
        .unwrap();
        assert!(model.creates_app());
        assert_eq!(
            model.names["router"],
            Value::Router {
                prefix: "/api/v1".into()
            }
        );
        for name in ["old", "other", "named"] {
            assert_eq!(
                model.names[name],
                Value::Router {
                    prefix: String::new()
                },
                "{name}"
            );
        }
        assert_eq!(
            model.names["users"],
            Value::Import {
                module: "./routes/users".into(),
                export: Export::Whole
            }
        );
    }

    /// Routes (named, chained, arrays, `del`), prefixes and mounts.
    #[test]
    fn calls() {
        let model = FileModel::read(
            r#"
            const router = new Router();
            router.prefix('/v1');
            router
              .get('/users/:id', show)
              .del('/users/:id', remove);
            router.post('user', '/users', create);
            router.all(['/a', '/b'], any);
            router.get(handlerOnly);
            app.use(router.routes()).use(router.allowedMethods());
            api.use('/nested', router.routes(), router.allowedMethods());
            "#,
        )
        .unwrap();
        let routes: Vec<(String, Vec<String>, Option<String>)> = model
            .routes
            .iter()
            .map(|r| (r.method.clone(), r.paths.clone(), r.name.clone()))
            .collect();
        assert_eq!(routes.len(), 4, "{routes:?}");
        assert!(routes.contains(&("GET".into(), vec!["/users/:id".into()], None)));
        assert!(routes.contains(&("DELETE".into(), vec!["/users/:id".into()], None)));
        assert!(routes.contains(&("POST".into(), vec!["/users".into()], Some("user".into()))));
        assert!(routes.contains(&("ALL".into(), vec!["/a".into(), "/b".into()], None)));
        assert!(model.routes.iter().all(|r| r.receiver == "router"));
        assert_eq!(model.prefixes[0].prefix, "/v1");
        let mounts: Vec<(&str, &[String])> = model
            .mounts
            .iter()
            .map(|m| (m.receiver.as_str(), m.paths.as_slice()))
            .collect();
        assert_eq!(
            mounts,
            [("app", &[][..]), ("api", &["/nested".to_string()][..])]
        );
    }

    /// CommonJS and ES module exports.
    #[test]
    fn exports() {
        let model = FileModel::read(
            r#"
            const router = new Router();
            module.exports = router;
            module.exports.extra = other;
            exports.more = router;
            export const r2 = new Router();
            export { router as users };
            "#,
        )
        .unwrap();
        assert_eq!(model.exports["default"], Value::Alias("router".into()));
        assert_eq!(model.exports["extra"], Value::Alias("other".into()));
        assert_eq!(model.exports["more"], Value::Alias("router".into()));
        assert_eq!(model.exports["r2"], Value::Alias("r2".into()));
        assert_eq!(model.exports["users"], Value::Alias("router".into()));
        let model = FileModel::read("module.exports = { api, admin: adminRouter };").unwrap();
        assert_eq!(model.exports["api"], Value::Alias("api".into()));
        assert_eq!(model.exports["admin"], Value::Alias("adminRouter".into()));
    }
}
