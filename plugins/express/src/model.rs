//! What one source file says about Express, read with the queries: which names hold apps,
//! routers, modules and string constants; which routes and mounts it registers on which
//! receiver; what it exports. Nothing here looks across files: `routes` does that.
//!
//! Scopes are not tracked: a name means the same thing everywhere in its file, which is how
//! Express code is written (one `app`, one `router` per file).

use std::collections::HashMap;

use previewd_plugin_api::PluginError;
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Parser, Query, QueryCursor, QueryMatch};

use crate::comments;
use crate::queries::{Grammar, Queries};

/// The HTTP methods of route calls (`app.get`, ..., `app.all`).
const VERBS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "options", "head", "all",
];
/// How deep a string expression (`A + '/x'`) or an alias chain is followed.
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
    /// An Express app: `express()`.
    App,
    /// A router: `express.Router()`, `Router()`.
    Router,
    /// Something another module exports.
    Import { module: String, export: Export },
    /// Another name of this file.
    Alias(String),
    /// A string constant.
    Text(String),
}

/// A route registration: `receiver.method(path, ...)` or a link of `receiver.route(path)`.
#[derive(Debug, Clone)]
pub(crate) struct RouteCall {
    pub(crate) receiver: String,
    /// Upper case; `ALL` for `.all()`.
    pub(crate) method: String,
    pub(crate) path: String,
    /// 1-based line of the method name.
    pub(crate) line: u32,
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
}

/// `receiver.use(prefix, child)`: a router (or app) mounted under a prefix.
#[derive(Debug, Clone)]
pub(crate) struct MountCall {
    pub(crate) receiver: String,
    pub(crate) prefix: String,
    pub(crate) child: Value,
}

/// The facts of one file.
#[derive(Debug, Default)]
pub(crate) struct FileModel {
    pub(crate) names: HashMap<String, Value>,
    /// Export name (`default` for `module.exports = x` / `export default x`) → value.
    pub(crate) exports: HashMap<String, Value>,
    pub(crate) routes: Vec<RouteCall>,
    pub(crate) mounts: Vec<MountCall>,
    /// Whether the file calls `express()` somewhere.
    pub(crate) creates_app: bool,
}

impl FileModel {
    /// Parses `text` with `grammar` and reads its facts.
    pub(crate) fn read(text: &str, grammar: Grammar) -> Result<FileModel, PluginError> {
        let queries = Queries::get(grammar)?;
        let mut parser = Parser::new();
        parser
            .set_language(&grammar.language())
            .map_err(|err| PluginError::Query {
                name: "grammar".into(),
                message: err.to_string(),
            })?;
        let Some(tree) = parser.parse(text, None) else {
            return Ok(FileModel::default());
        };
        let mut reader = Reader {
            src: text.as_bytes(),
            model: FileModel::default(),
            chains: HashMap::new(),
        };
        let root = tree.root_node();
        for_each(&queries.imports, root, text, |m, q| reader.import(m, q));
        for_each(&queries.declarations, root, text, |m, q| {
            reader.declaration(m, q)
        });
        for_each(&queries.assignments, root, text, |m, q| {
            reader.assignment(m, q)
        });
        for_each(&queries.exports, root, text, |m, q| reader.export(m, q));
        for_each(&queries.member_calls, root, text, |m, q| {
            reader.call(m, q, root)
        });
        Ok(reader.model)
    }

    /// Resolves a value through this file's aliases (not across files).
    pub(crate) fn local(&self, value: &Value) -> Option<Value> {
        let mut value = value.clone();
        for _ in 0..MAX_DEPTH {
            match value {
                Value::Alias(name) => value = self.names.get(&name)?.clone(),
                other => return Some(other),
            }
        }
        None
    }
}

/// Runs `query` over `root`, handing each match to `each`.
fn for_each(query: &Query, root: Node, text: &str, mut each: impl FnMut(&QueryMatch, &Query)) {
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(query, root, text.as_bytes());
    while let Some(m) = matches.next() {
        each(m, query);
    }
}

/// The node captured as `name` in a match.
fn capture<'t>(m: &QueryMatch<'_, 't>, query: &Query, name: &str) -> Option<Node<'t>> {
    let index = query.capture_index_for_name(name)?;
    m.captures.iter().find(|c| c.index == index).map(|c| c.node)
}

/// Where a route chain starts, and its documentation.
#[derive(Debug, Clone)]
struct ChainBase {
    receiver: String,
    path: String,
    summary: Option<String>,
    description: Option<String>,
}

/// A step down a route chain.
enum Link<'t> {
    Next(Node<'t>),
    Base(String, String),
    NotAChain,
}

struct Reader<'s> {
    src: &'s [u8],
    model: FileModel,
    /// The chain base found below each call node already walked.
    chains: HashMap<usize, Option<ChainBase>>,
}

impl Reader<'_> {
    fn text(&self, node: Node) -> &str {
        node.utf8_text(self.src).unwrap_or_default()
    }

    /// `import x, { a as b }, * as ns from 'module'`.
    fn import(&mut self, m: &QueryMatch, query: &Query) {
        let (Some(clause), Some(source)) =
            (capture(m, query, "clause"), capture(m, query, "source"))
        else {
            return;
        };
        let Some(module) = self.string(source, 0) else {
            return;
        };
        let mut bound = Vec::new();
        let mut bind = |name: String, export: Export| bound.push((name, export));
        let mut cursor = clause.walk();
        for part in clause.named_children(&mut cursor) {
            match part.kind() {
                "identifier" => bind(self.text(part).to_string(), Export::Default),
                "namespace_import" => {
                    if let Some(name) = last_identifier(part) {
                        bind(self.text(name).to_string(), Export::Whole);
                    }
                }
                "named_imports" => {
                    let mut inner = part.walk();
                    for spec in part.named_children(&mut inner) {
                        let (Some(name), alias) = (
                            spec.child_by_field_name("name"),
                            spec.child_by_field_name("alias"),
                        ) else {
                            continue;
                        };
                        let local = self.text(alias.unwrap_or(name)).to_string();
                        let exported = self.text(name).to_string();
                        let export = match exported.as_str() {
                            "default" => Export::Default,
                            _ => Export::Named(exported),
                        };
                        bind(local, export);
                    }
                }
                _ => {}
            }
        }
        for (name, export) in bound {
            let module = module.clone();
            self.model
                .names
                .insert(name, Value::Import { module, export });
        }
    }

    /// `const name = value` and `const { a, b: c } = require('m')`.
    fn declaration(&mut self, m: &QueryMatch, query: &Query) {
        let (Some(name), Some(value)) = (capture(m, query, "name"), capture(m, query, "value"))
        else {
            return;
        };
        match name.kind() {
            "identifier" => {
                if let Some(value) = self.value(value) {
                    self.model.names.insert(self.text(name).to_string(), value);
                }
            }
            "object_pattern" => {
                let Some(Value::Import {
                    module,
                    export: Export::Whole,
                }) = self.value(value)
                else {
                    return;
                };
                let mut cursor = name.walk();
                for property in name.named_children(&mut cursor) {
                    let (exported, local) = match property.kind() {
                        "shorthand_property_identifier_pattern" => (property, property),
                        "pair_pattern" => match (
                            property.child_by_field_name("key"),
                            property.child_by_field_name("value"),
                        ) {
                            (Some(key), Some(value)) if value.kind() == "identifier" => {
                                (key, value)
                            }
                            _ => continue,
                        },
                        _ => continue,
                    };
                    let value = Value::Import {
                        module: module.clone(),
                        export: Export::Named(self.text(exported).to_string()),
                    };
                    self.model.names.insert(self.text(local).to_string(), value);
                }
            }
            _ => {}
        }
    }

    /// `module.exports = x`, `module.exports = { a, b: c }`, `exports.x = y`,
    /// `module.exports.x = y`.
    fn assignment(&mut self, m: &QueryMatch, query: &Query) {
        let (Some(left), Some(value)) = (capture(m, query, "left"), capture(m, query, "value"))
        else {
            return;
        };
        let target = self.text(left).replace(char::is_whitespace, "");
        if target == "module.exports" {
            if value.kind() == "object" {
                self.object_exports(value);
            } else if let Some(value) = self.value(value) {
                self.model.exports.insert("default".into(), value);
            }
            return;
        }
        let name = target
            .strip_prefix("module.exports.")
            .or_else(|| target.strip_prefix("exports."));
        if let (Some(name), Some(value)) = (name, self.value(value)) {
            self.model.exports.insert(name.to_string(), value);
        }
    }

    /// The properties of `module.exports = { a, b: c }`.
    fn object_exports(&mut self, object: Node) {
        let mut cursor = object.walk();
        for property in object.named_children(&mut cursor) {
            let (name, value) = match property.kind() {
                "shorthand_property_identifier" => (
                    self.text(property).to_string(),
                    Some(Value::Alias(self.text(property).to_string())),
                ),
                "pair" => match (
                    property.child_by_field_name("key"),
                    property.child_by_field_name("value"),
                ) {
                    (Some(key), Some(value)) => (self.text(key).to_string(), self.value(value)),
                    _ => continue,
                },
                _ => continue,
            };
            if let Some(value) = value {
                self.model.exports.insert(name, value);
            }
        }
    }

    /// `export default x`, `export { a as b }`, `export const r = Router()`.
    fn export(&mut self, m: &QueryMatch, query: &Query) {
        let Some(export) = capture(m, query, "export") else {
            return;
        };
        if let Some(value) = export.child_by_field_name("value") {
            if let Some(value) = self.value(value) {
                self.model.exports.insert("default".into(), value);
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
                let alias = spec.child_by_field_name("alias").unwrap_or(name);
                self.model.exports.insert(
                    self.text(alias).to_string(),
                    Value::Alias(self.text(name).to_string()),
                );
            }
        }
    }

    /// A route (`x.get('/p', h)`, a `.route('/p')` chain link) or a mount (`x.use(...)`).
    fn call(&mut self, m: &QueryMatch, query: &Query, root: Node) {
        let (Some(call), Some(object), Some(method), Some(arguments)) = (
            capture(m, query, "call"),
            capture(m, query, "object"),
            capture(m, query, "method"),
            capture(m, query, "arguments"),
        ) else {
            return;
        };
        let method_name = self.text(method).to_string();
        let args: Vec<Node> = {
            let mut cursor = arguments.walk();
            arguments
                .named_children(&mut cursor)
                .filter(|a| a.kind() != "comment")
                .collect()
        };
        if method_name == "use" {
            self.mount(object, &args);
            return;
        }
        let line = method.start_position().row as u32 + 1;
        let base = match object.kind() {
            "identifier" => {
                // `app.get('title')` reads a setting: a route needs a handler too.
                if args.len() < 2 {
                    return;
                }
                let Some(path) = self.string(args[0], 0) else {
                    return;
                };
                let (summary, description) = comments::for_statement(call, root, self.src);
                ChainBase {
                    receiver: self.text(object).to_string(),
                    path,
                    summary,
                    description,
                }
            }
            "call_expression" => match self.chain_base(object, root) {
                Some(base) => base,
                None => return,
            },
            _ => return,
        };
        let method = match method_name.as_str() {
            "all" => "ALL".to_string(),
            verb => verb.to_ascii_uppercase(),
        };
        self.model.routes.push(RouteCall {
            receiver: base.receiver,
            method,
            path: base.path,
            line,
            summary: base.summary,
            description: base.description,
        });
    }

    /// The base of a chain of verb calls, `receiver.route('/p')`, with the comment above the
    /// statement. Remembered per call node: every link of a chain asks, and each would
    /// otherwise walk the whole chain below it.
    fn chain_base(&mut self, node: Node, root: Node) -> Option<ChainBase> {
        let mut visited = Vec::new();
        let mut node = node;
        let found = loop {
            if let Some(known) = self.chains.get(&node.id()) {
                break known.clone();
            }
            visited.push(node.id());
            match self.chain_link(node) {
                Link::Next(next) => node = next,
                Link::Base(receiver, path) => {
                    let (summary, description) = comments::for_statement(node, root, self.src);
                    break Some(ChainBase {
                        receiver,
                        path,
                        summary,
                        description,
                    });
                }
                Link::NotAChain => break None,
            }
        };
        for id in visited {
            self.chains.insert(id, found.clone());
        }
        found
    }

    /// One step down a chain: the call below a verb call, or the `.route()` call at its base.
    fn chain_link<'t>(&self, node: Node<'t>) -> Link<'t> {
        let step = || -> Option<Link> {
            let function = node.child_by_field_name("function")?;
            if function.kind() != "member_expression" {
                return None;
            }
            let object = function.child_by_field_name("object")?;
            let property = self.text(function.child_by_field_name("property")?);
            if property == "route" {
                if object.kind() != "identifier" {
                    return None;
                }
                let arguments = node.child_by_field_name("arguments")?;
                let path = self.string(arguments.named_child(0)?, 0)?;
                return Some(Link::Base(self.text(object).to_string(), path));
            }
            (VERBS.contains(&property) && object.kind() == "call_expression")
                .then_some(Link::Next(object))
        };
        step().unwrap_or(Link::NotAChain)
    }

    /// `receiver.use([prefix,] child...)`: every child that can be a router is a mount.
    fn mount(&mut self, object: Node, args: &[Node]) {
        if object.kind() != "identifier" {
            return;
        }
        let (prefix, children) = match args.first().map(|a| self.string(*a, 0)) {
            Some(Some(prefix)) => (prefix, &args[1..]),
            _ if args.first().is_some_and(|a| is_path_like(a.kind())) => return,
            _ => ("/".to_string(), args),
        };
        for child in children {
            if let Some(value) = self.value(*child) {
                if !matches!(value, Value::Text(_)) {
                    self.model.mounts.push(MountCall {
                        receiver: self.text(object).to_string(),
                        prefix: prefix.clone(),
                        child: value,
                    });
                }
            }
        }
    }

    /// What an expression holds, when it is something the model tracks.
    fn value(&mut self, node: Node) -> Option<Value> {
        match node.kind() {
            "identifier" => Some(Value::Alias(self.text(node).to_string())),
            "parenthesized_expression"
            | "as_expression"
            | "non_null_expression"
            | "satisfies_expression"
            | "await_expression" => self.value(node.named_child(0)?),
            "call_expression" => self.call_value(node),
            "new_expression" => {
                let constructor = node.child_by_field_name("constructor")?;
                self.callee_value(constructor)
            }
            "member_expression" => {
                let object = node.child_by_field_name("object")?;
                let property = self.text(node.child_by_field_name("property")?).to_string();
                match self.value(object).and_then(|v| self.model.local(&v)) {
                    Some(Value::Import {
                        module,
                        export: Export::Whole,
                    }) => Some(Value::Import {
                        module,
                        export: Export::Named(property),
                    }),
                    _ => None,
                }
            }
            _ => self.string(node, 0).map(Value::Text),
        }
    }

    /// `require('m')`, `express()`, `express.Router()`, `Router()`.
    fn call_value(&mut self, call: Node) -> Option<Value> {
        let function = call.child_by_field_name("function")?;
        if function.kind() == "identifier" && self.text(function) == "require" {
            let argument = call.child_by_field_name("arguments")?.named_child(0)?;
            return Some(Value::Import {
                module: self.string(argument, 0)?,
                export: Export::Whole,
            });
        }
        let value = self.callee_value(function)?;
        if value == Value::App {
            self.model.creates_app = true;
        }
        Some(value)
    }

    /// What calling `callee` makes: an app or a router, judged by the express import.
    fn callee_value(&mut self, callee: Node) -> Option<Value> {
        match callee.kind() {
            "identifier" => {
                let name = self.text(callee).to_string();
                match self.model.local(&Value::Alias(name.clone())) {
                    Some(Value::Import { module, export }) if module == "express" => match export {
                        Export::Whole | Export::Default => Some(Value::App),
                        Export::Named(n) if n == "Router" => Some(Value::Router),
                        Export::Named(_) => None,
                    },
                    None if name == "express" => Some(Value::App),
                    None if name == "Router" => Some(Value::Router),
                    _ => None,
                }
            }
            "member_expression" => {
                let property = self.text(callee.child_by_field_name("property")?);
                if property != "Router" {
                    return None;
                }
                let object = callee.child_by_field_name("object")?;
                let from_express = match self.value(object).and_then(|v| self.model.local(&v)) {
                    Some(Value::Import { module, .. }) => module == "express",
                    None => self.text(object) == "express",
                    _ => false,
                };
                from_express.then_some(Value::Router)
            }
            _ => None,
        }
    }

    /// The value of a string expression: a literal, a template without substitutions, a
    /// constant of this file, or `+` of those.
    fn string(&self, node: Node, depth: usize) -> Option<String> {
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
                let left = self.string(node.child_by_field_name("left")?, depth + 1)?;
                let right = self.string(node.child_by_field_name("right")?, depth + 1)?;
                Some(left + &right)
            }
            "parenthesized_expression" => self.string(node.named_child(0)?, depth + 1),
            "identifier" => {
                match self
                    .model
                    .local(&Value::Alias(self.text(node).to_string()))?
                {
                    Value::Text(text) => Some(text),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Whether a first `use` argument is a path the model cannot read (a regex, an expression),
/// rather than a middleware or router.
fn is_path_like(kind: &str) -> bool {
    matches!(
        kind,
        "regex" | "template_string" | "binary_expression" | "array" | "string"
    )
}

fn last_identifier(node: Node) -> Option<Node> {
    let mut cursor = node.walk();
    let found = node
        .named_children(&mut cursor)
        .filter(|c| c.kind() == "identifier")
        .last();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> FileModel {
        FileModel::read(text, Grammar::JavaScript).unwrap()
    }

    /// Apps, routers, requires, destructured imports and string constants get their values.
    #[test]
    fn names() {
        let model = read(
            "const express = require('express');\nconst { Router } = require('express');\n\
             import * as ns from './ns';\nconst app = express();\nconst r = Router();\n\
             const r2 = express.Router();\nconst { a, b: c } = require('./m');\n\
             const d = require('./m').d;\nconst P = '/x' + `/y`;\n",
        );
        assert_eq!(model.names["app"], Value::App);
        assert_eq!(model.names["r"], Value::Router);
        assert_eq!(model.names["r2"], Value::Router);
        assert_eq!(
            model.names["c"],
            Value::Import {
                module: "./m".into(),
                export: Export::Named("b".into())
            }
        );
        assert_eq!(
            model.names["d"],
            Value::Import {
                module: "./m".into(),
                export: Export::Named("d".into())
            }
        );
        assert_eq!(model.names["P"], Value::Text("/x/y".into()));
        assert!(model.creates_app);
    }

    /// Route chains yield one route per link, all on the `.route()` receiver and path.
    #[test]
    fn chains() {
        let model = read("router.route('/a').get(f).post(g);\nrouter.get('x');\n");
        let found: Vec<_> = model
            .routes
            .iter()
            .map(|r| (r.receiver.as_str(), r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(found, [("router", "GET", "/a"), ("router", "POST", "/a")]);
    }
}
