//! A framework of one kind of object for this crate's own tests: a server made by `server()` or
//! `new Server()` when imported from the module `server`, and routes declared by
//! `receiver.route('/path')`.

use crate::query::{Match, SharedQuery};
use crate::{Creation, Export, Framework, Reader, Value};

/// The routes of one file: (receiver, path) of every `receiver.route('/path')`.
#[derive(Debug, Default)]
pub(crate) struct Routes(pub(crate) Vec<(String, String)>);

/// The framework's one object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Server;

/// `receiver.route(path)`.
static ROUTE_CALLS: SharedQuery = SharedQuery::new(
    "route_calls.scm",
    r#"(call_expression
         function: (member_expression object: (identifier) @receiver
                                      property: (property_identifier) @method)
         arguments: (arguments . (_) @path)
         (#eq? @method "route"))"#,
);

impl Framework for Routes {
    type Kind = Server;

    fn calls_query() -> &'static SharedQuery {
        &ROUTE_CALLS
    }

    fn import(module: &str, export: Export) -> Option<Value<Server>> {
        match module {
            "server" => Some(Value::Framework(Server)),
            _ if module.starts_with('.') => Some(Value::Import {
                module: module.to_string(),
                export,
            }),
            _ => None,
        }
    }

    fn create<'t>(reader: &mut Reader<'t, Self>, creation: Creation<'t>) -> Option<Value<Server>> {
        let made = reader.value(creation.callee)?;
        (reader.module.local(&made)? == Value::Framework(Server)).then_some(made)?;
        Some(Value::Framework(Server))
    }

    fn call<'t>(reader: &mut Reader<'t, Self>, found: &Match<'_, 't>) {
        let receiver = reader.text(found.get("receiver").unwrap()).to_string();
        if let Some(path) = reader.string(found.get("path").unwrap()) {
            reader.calls.0.push((receiver, path));
        }
    }
}
