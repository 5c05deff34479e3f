//! What one source file says about Express: which calls make apps (`express()`) and routers
//! (`express.Router()`, `Router()`), and which routes and mounts it registers on which
//! receiver. What the file binds and exports otherwise (imports, `require`, string constants)
//! is read by `previewd_plugin_javascript`, which hands the Express parts to [`Calls`]. Nothing
//! here looks across files: `routes` does that.

use std::collections::HashMap;

use previewd_plugin_javascript::query::{Match, SharedQuery};
use previewd_plugin_javascript::reader::line;
use previewd_plugin_javascript::{Creation, Export, Framework, Reader};
use tree_sitter::Node;

use crate::comments;

/// The HTTP methods of route calls (`app.get`, ..., `app.all`).
const VERBS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "options", "head", "all",
];
/// The module whose export makes apps, and whose `Router` makes routers.
const EXPRESS: &str = "express";

/// `app.get('/p', h)`, `router.use('/api', child)`, `router.route('/p').get(h)`.
static MEMBER_CALLS: SharedQuery = SharedQuery::new(
    "member_calls.scm",
    include_str!("../queries/member_calls.scm"),
);

/// The Express objects a name can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Express {
    /// An app: `express()`.
    App,
    /// A router: `express.Router()`, `Router()`.
    Router,
}

/// What a name (or an expression) holds.
pub(crate) type Value = previewd_plugin_javascript::Value<Express>;

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

/// The Express calls of one file.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub(crate) routes: Vec<RouteCall>,
    pub(crate) mounts: Vec<MountCall>,
    /// Whether the file calls `express()` somewhere.
    pub(crate) creates_app: bool,
    /// While reading: the chain base found below each call node already walked.
    chains: HashMap<usize, Option<ChainBase>>,
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

impl Framework for Calls {
    type Kind = Express;

    fn calls_query() -> &'static SharedQuery {
        &MEMBER_CALLS
    }

    /// Every import is kept: whether a call makes an app is judged by its module.
    fn import(module: &str, export: Export) -> Option<Value> {
        Some(Value::Import {
            module: module.to_string(),
            export,
        })
    }

    /// `express()` (which marks the file as creating an app), `express.Router()`, `Router()`.
    fn create<'t>(reader: &mut Reader<'t, Calls>, creation: Creation<'t>) -> Option<Value> {
        let value = callee_value(reader, creation.callee)?;
        if !creation.new && value == Value::Framework(Express::App) {
            reader.calls.creates_app = true;
        }
        Some(value)
    }

    /// A route (`x.get('/p', h)`, a `.route('/p')` chain link) or a mount (`x.use(...)`).
    fn call<'t>(reader: &mut Reader<'t, Calls>, found: &Match<'_, 't>) {
        let (Some(call), Some(object), Some(method), Some(arguments)) = (
            found.get("call"),
            found.get("object"),
            found.get("method"),
            found.get("arguments"),
        ) else {
            return;
        };
        let method_name = reader.text(method);
        let args: Vec<Node> = {
            let mut cursor = arguments.walk();
            arguments
                .named_children(&mut cursor)
                .filter(|a| a.kind() != "comment")
                .collect()
        };
        if method_name == "use" {
            mount(reader, object, &args);
            return;
        }
        let base = match object.kind() {
            "identifier" => {
                // `app.get('title')` reads a setting: a route needs a handler too.
                if args.len() < 2 {
                    return;
                }
                let Some(path) = reader.string(args[0]) else {
                    return;
                };
                let (summary, description) =
                    comments::for_statement(call, reader.root(), reader.source());
                ChainBase {
                    receiver: reader.text(object).to_string(),
                    path,
                    summary,
                    description,
                }
            }
            "call_expression" => match chain_base(reader, object) {
                Some(base) => base,
                None => return,
            },
            _ => return,
        };
        reader.calls.routes.push(RouteCall {
            receiver: base.receiver,
            method: method_name.to_ascii_uppercase(),
            path: base.path,
            line: line(method),
            summary: base.summary,
            description: base.description,
        });
    }
}

/// What calling `callee` makes: an app or a router, judged by the express import.
fn callee_value<'t>(reader: &mut Reader<'t, Calls>, callee: Node<'t>) -> Option<Value> {
    match callee.kind() {
        "identifier" => {
            let name = reader.text(callee);
            match reader.module.local(&Value::Alias(name.to_string())) {
                Some(Value::Import { module, export }) if module == EXPRESS => match export {
                    Export::Whole | Export::Default => Some(Value::Framework(Express::App)),
                    Export::Named(n) if n == "Router" => Some(Value::Framework(Express::Router)),
                    Export::Named(_) => None,
                },
                None if name == "express" => Some(Value::Framework(Express::App)),
                None if name == "Router" => Some(Value::Framework(Express::Router)),
                _ => None,
            }
        }
        "member_expression" => {
            let property = reader.text(callee.child_by_field_name("property")?);
            if property != "Router" {
                return None;
            }
            let object = callee.child_by_field_name("object")?;
            let from_express = match reader.value(object).and_then(|v| reader.module.local(&v)) {
                Some(Value::Import { module, .. }) => module == EXPRESS,
                None => reader.text(object) == "express",
                _ => false,
            };
            from_express.then_some(Value::Framework(Express::Router))
        }
        _ => None,
    }
}

/// The base of a chain of verb calls, `receiver.route('/p')`, with the comment above the
/// statement. Remembered per call node: every link of a chain asks, and each would otherwise
/// walk the whole chain below it.
fn chain_base<'t>(reader: &mut Reader<'t, Calls>, node: Node<'t>) -> Option<ChainBase> {
    let mut visited = Vec::new();
    let mut node = node;
    let found = loop {
        if let Some(known) = reader.calls.chains.get(&node.id()) {
            break known.clone();
        }
        visited.push(node.id());
        match chain_link(reader, node) {
            Link::Next(next) => node = next,
            Link::Base(receiver, path) => {
                let (summary, description) =
                    comments::for_statement(node, reader.root(), reader.source());
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
        reader.calls.chains.insert(id, found.clone());
    }
    found
}

/// One step down a chain: the call below a verb call, or the `.route()` call at its base.
fn chain_link<'t>(reader: &Reader<'t, Calls>, node: Node<'t>) -> Link<'t> {
    let step = || -> Option<Link> {
        let function = node.child_by_field_name("function")?;
        if function.kind() != "member_expression" {
            return None;
        }
        let object = function.child_by_field_name("object")?;
        let property = reader.text(function.child_by_field_name("property")?);
        if property == "route" {
            if object.kind() != "identifier" {
                return None;
            }
            let arguments = node.child_by_field_name("arguments")?;
            let path = reader.string(arguments.named_child(0)?)?;
            return Some(Link::Base(reader.text(object).to_string(), path));
        }
        (VERBS.contains(&property) && object.kind() == "call_expression")
            .then_some(Link::Next(object))
    };
    step().unwrap_or(Link::NotAChain)
}

/// `receiver.use([prefix,] child...)`: every child that can be a router is a mount.
fn mount<'t>(reader: &mut Reader<'t, Calls>, object: Node<'t>, args: &[Node<'t>]) {
    if object.kind() != "identifier" {
        return;
    }
    let (prefix, children) = match args.first().map(|a| reader.string(*a)) {
        Some(Some(prefix)) => (prefix, &args[1..]),
        _ if args.first().is_some_and(|a| is_path_like(a.kind())) => return,
        _ => ("/".to_string(), args),
    };
    for child in children {
        if let Some(value) = reader.value(*child) {
            if !matches!(value, Value::Text(_)) {
                reader.calls.mounts.push(MountCall {
                    receiver: reader.text(object).to_string(),
                    prefix: prefix.clone(),
                    child: value,
                });
            }
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

#[cfg(test)]
mod tests {
    use previewd_plugin_javascript::Grammar;

    use super::*;

    type FileModel = previewd_plugin_javascript::FileModel<Calls>;

    /// The calls query compiles against both grammars.
    #[test]
    fn calls_query_compiles() {
        for grammar in [Grammar::JavaScript, Grammar::TypeScript] {
            MEMBER_CALLS.get(grammar).unwrap();
        }
    }

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
        let names = &model.module.names;
        assert_eq!(names["app"], Value::Framework(Express::App));
        assert_eq!(names["r"], Value::Framework(Express::Router));
        assert_eq!(names["r2"], Value::Framework(Express::Router));
        assert_eq!(
            names["c"],
            Value::Import {
                module: "./m".into(),
                export: Export::Named("b".into())
            }
        );
        assert_eq!(
            names["d"],
            Value::Import {
                module: "./m".into(),
                export: Export::Named("d".into())
            }
        );
        assert_eq!(names["P"], Value::Text("/x/y".into()));
        assert!(model.calls.creates_app);
    }

    /// Route chains yield one route per link, all on the `.route()` receiver and path.
    #[test]
    fn chains() {
        let model = read("router.route('/a').get(f).post(g);\nrouter.get('x');\n");
        let found: Vec<_> = model
            .calls
            .routes
            .iter()
            .map(|r| (r.receiver.as_str(), r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(found, [("router", "GET", "/a"), ("router", "POST", "/a")]);
    }
}
