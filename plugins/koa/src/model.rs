//! What one source file says about Koa: which names hold the Koa and router classes
//! (`require('koa')`, `import Router from '@koa/router'`), what `new Koa()` and
//! `new Router({ prefix })` make, and which routes, prefixes and mounts it declares on which
//! receiver. What the file binds and exports otherwise (imports of the project's modules,
//! `require`, string constants) is read by `previewd_plugin_javascript`, which hands the Koa parts
//! to [`Calls`]. Nothing here looks across files: `routes` does that.

use previewd_plugin_javascript::query::{Match, SharedQuery};
use previewd_plugin_javascript::reader::line;
use previewd_plugin_javascript::{Creation, Export, Framework, Reader};
use tree_sitter::Node;

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
/// How deep a receiver's call chain (`router.get(...).post(...)`) is followed.
const MAX_DEPTH: usize = 32;

/// Route, prefix and mount calls: `router.get('/users/:id', h)`, `router.prefix('/v1')`,
/// `app.use(router.routes())`.
static CALLS: SharedQuery = SharedQuery::new("calls.scm", include_str!("../queries/calls.scm"));

/// The Koa objects a name can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Koa {
    /// The Koa class.
    Class,
    /// The router class of `@koa/router` or `koa-router`.
    RouterClass,
    /// An app: `new Koa()`.
    App,
    /// A router: `new Router()`, with the prefix its options give (empty without one).
    Router { prefix: String },
}

/// What a name (or an expression) holds.
pub(crate) type Value = previewd_plugin_javascript::Value<Koa>;

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

/// The Koa calls of one file.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub(crate) routes: Vec<RouteCall>,
    pub(crate) prefixes: Vec<PrefixCall>,
    pub(crate) mounts: Vec<Mount>,
}

impl Framework for Calls {
    type Kind = Koa;

    fn calls_query() -> &'static SharedQuery {
        &CALLS
    }

    /// The Koa class, the router class, another file of the project (relative specifiers), or
    /// nothing Koa cares about.
    fn import(module: &str, export: Export) -> Option<Value> {
        if module == KOA_MODULE {
            let class = matches!(export, Export::Whole | Export::Default);
            return class.then_some(Value::Framework(Koa::Class));
        }
        if ROUTER_MODULES.contains(&module) {
            let class = match &export {
                Export::Whole | Export::Default => true,
                Export::Named(name) => name == "Router" || name == "default",
            };
            return class.then_some(Value::Framework(Koa::RouterClass));
        }
        module.starts_with('.').then(|| Value::Import {
            module: module.to_string(),
            export,
        })
    }

    /// `new Koa()`, `new Router({ prefix })`; also `Router()` and `require('koa-router')()`:
    /// koa-router builds a router without `new`.
    fn create<'t>(reader: &mut Reader<'t, Calls>, creation: Creation<'t>) -> Option<Value> {
        let instance = match class(reader, creation.callee)? {
            Koa::Class => Koa::App,
            Koa::RouterClass => Koa::Router {
                prefix: creation
                    .arguments
                    .and_then(|a| a.named_child(0))
                    .and_then(|options| option(reader, options, "prefix"))
                    .unwrap_or_default(),
            },
            _ => return None,
        };
        Some(Value::Framework(instance))
    }

    /// `Router.Router`, `Router.default`, `Koa.default`: the classes again.
    fn member(kind: &Koa, property: &str) -> Option<Value> {
        match kind {
            Koa::RouterClass if matches!(property, "Router" | "default") => {
                Some(Value::Framework(Koa::RouterClass))
            }
            Koa::Class if property == "default" => Some(Value::Framework(Koa::Class)),
            _ => None,
        }
    }

    /// A route, prefix or mount call.
    fn call<'t>(reader: &mut Reader<'t, Calls>, found: &Match<'_, 't>) {
        let (Some(receiver), Some(method), Some(arguments)) = (
            found.get("receiver"),
            found.get("method"),
            found.get("arguments"),
        ) else {
            return;
        };
        let Some(receiver) = receiver_name(reader, receiver) else {
            return;
        };
        let mut cursor = arguments.walk();
        let args: Vec<Node> = arguments
            .named_children(&mut cursor)
            .filter(|n| n.kind() != "comment")
            .collect();
        match reader.text(method) {
            "prefix" => {
                if let Some(prefix) = args.first().and_then(|a| reader.string(*a)) {
                    reader.calls.prefixes.push(PrefixCall { receiver, prefix });
                }
            }
            "use" => {
                let paths = args.first().map(|a| paths(reader, *a)).unwrap_or_default();
                for arg in &args {
                    if let Some(child) = mounted_router(reader, *arg) {
                        reader.calls.mounts.push(Mount {
                            receiver: receiver.clone(),
                            paths: paths.clone(),
                            child,
                        });
                    }
                }
            }
            verb if VERBS.contains(&verb) => {
                let (name, paths) = match (args.first(), args.get(1)) {
                    (Some(first), Some(second)) if !paths(reader, *second).is_empty() => {
                        (reader.string(*first), paths(reader, *second))
                    }
                    (Some(first), _) => (None, paths(reader, *first)),
                    (None, _) => return,
                };
                if paths.is_empty() {
                    return;
                }
                reader.calls.routes.push(RouteCall {
                    receiver,
                    method: match verb {
                        "del" => "DELETE".to_string(),
                        other => other.to_ascii_uppercase(),
                    },
                    paths,
                    name,
                    line: line(method),
                });
            }
            _ => {}
        }
    }
}
/// The class a constructor expression names; a bare `Koa`, `Router` or `KoaRouter` the file does
/// not bind is taken for what it says.
fn class<'t>(reader: &mut Reader<'t, Calls>, node: Node<'t>) -> Option<Koa> {
    let value = reader.value(node)?;
    match reader.module.local(&value) {
        Some(Value::Framework(class @ (Koa::Class | Koa::RouterClass))) => Some(class),
        Some(_) => None,
        None => match value {
            Value::Alias(name) if name == "Koa" => Some(Koa::Class),
            Value::Alias(name) if ROUTER_NAMES.contains(&name.as_str()) => Some(Koa::RouterClass),
            _ => None,
        },
    }
}

/// The string value of `key` in an object literal.
fn option(reader: &Reader<Calls>, object: Node, key: &str) -> Option<String> {
    if object.kind() != "object" {
        return None;
    }
    let mut cursor = object.walk();
    let pair = object.named_children(&mut cursor).find(|pair| {
        pair.kind() == "pair"
            && pair
                .child_by_field_name("key")
                .is_some_and(|k| reader.text(k).trim_matches(['"', '\'']) == key)
    })?;
    reader.string(pair.child_by_field_name("value")?)
}

/// The name at the bottom of a receiver: `router` in `router`, `router.get(...)`,
/// `router.get(...).post(...)`.
fn receiver_name(reader: &Reader<Calls>, mut node: Node) -> Option<String> {
    for _ in 0..MAX_DEPTH {
        match node.kind() {
            "identifier" => return Some(reader.text(node).to_string()),
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
fn mounted_router<'t>(reader: &mut Reader<'t, Calls>, arg: Node<'t>) -> Option<Value> {
    if arg.kind() != "call_expression" {
        return None;
    }
    let function = arg.child_by_field_name("function")?;
    if function.kind() != "member_expression" {
        return None;
    }
    let property = reader.text(function.child_by_field_name("property")?);
    if property != "routes" && property != "middleware" {
        return None;
    }
    reader.value(function.child_by_field_name("object")?)
}

/// The paths of a route or mount argument: a string, a constant, or an array of them.
fn paths(reader: &Reader<Calls>, node: Node) -> Vec<String> {
    if node.kind() == "array" {
        let mut cursor = node.walk();
        return node
            .named_children(&mut cursor)
            .filter_map(|n| reader.string(n))
            .collect();
    }
    reader.string(node).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use previewd_plugin_javascript::Grammar;

    use super::*;

    type FileModel = previewd_plugin_javascript::FileModel<Calls>;

    /// The calls query compiles against the grammar.
    #[test]
    fn calls_query_compiles() {
        CALLS.get(Grammar::JavaScript).unwrap();
    }

    fn read(source: &str) -> FileModel {
        FileModel::read(source, Grammar::JavaScript).unwrap()
    }

    /// Classes from `require` and `import`, apps, routers with prefixes, constants.
    #[test]
    fn bindings() {
        let model = read(
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
        );
        let names = &model.module.names;
        assert_eq!(names["app"], Value::Framework(Koa::App));
        assert_eq!(
            names["router"],
            Value::Framework(Koa::Router {
                prefix: "/api/v1".into()
            })
        );
        for name in ["old", "other", "named"] {
            assert_eq!(
                names[name],
                Value::Framework(Koa::Router {
                    prefix: String::new()
                }),
                "{name}"
            );
        }
        assert_eq!(
            names["users"],
            Value::Import {
                module: "./routes/users".into(),
                export: Export::Whole
            }
        );
    }

    /// Routes (named, chained, arrays, `del`), prefixes and mounts.
    #[test]
    fn calls() {
        let model = read(
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
        );
        let routes: Vec<(String, Vec<String>, Option<String>)> = model
            .calls
            .routes
            .iter()
            .map(|r| (r.method.clone(), r.paths.clone(), r.name.clone()))
            .collect();
        assert_eq!(routes.len(), 4, "{routes:?}");
        assert!(routes.contains(&("GET".into(), vec!["/users/:id".into()], None)));
        assert!(routes.contains(&("DELETE".into(), vec!["/users/:id".into()], None)));
        assert!(routes.contains(&("POST".into(), vec!["/users".into()], Some("user".into()))));
        assert!(routes.contains(&("ALL".into(), vec!["/a".into(), "/b".into()], None)));
        assert!(model.calls.routes.iter().all(|r| r.receiver == "router"));
        assert_eq!(model.calls.prefixes[0].prefix, "/v1");
        let mounts: Vec<(&str, &[String])> = model
            .calls
            .mounts
            .iter()
            .map(|m| (m.receiver.as_str(), m.paths.as_slice()))
            .collect();
        assert_eq!(
            mounts,
            [("app", &[][..]), ("api", &["/nested".to_string()][..])]
        );
    }
}
