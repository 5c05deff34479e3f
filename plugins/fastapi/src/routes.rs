//! Static route extraction: every path operation registered on an app or router, placed under
//! the prefixes and tags of the routers and includes above it, as FastAPI itself composes them.
//!
//! Registrations are `@x.get("/p")` (and the other HTTP verbs), `@x.api_route("/p",
//! methods=[...])`, `x.add_api_route("/p", handler, methods=[...])` and `@x.websocket("/p")`,
//! listed with the method `WEBSOCKET` as the launcher lists it from the running app.
//! A route whose path, or a prefix above it, is not a static string is skipped rather than
//! reported wrong. Path converters are dropped (`{p:path}` is listed as `{p}`), as the launcher
//! lists them.
//!
//! Before FastAPI 0.137, `include_router` copied the routes the router had at that moment, so a
//! route registered on a router after it was included is not served through that include. When
//! the project pins such a FastAPI, a registration (or a nested include) that provably runs
//! after the include (same file, same scope, further down) is left out under that include.
//! Registrations elsewhere are taken to run first: a router's module is imported, and its
//! routes registered, before the code including it runs.
//!
//! A router nobody includes is not served, and is left out; unless some `include_router` call
//! includes a router the model could not tell, which might be that one: then it is listed under
//! its own prefix, best effort.

use std::collections::{HashMap, HashSet};

use previewd_plugin_api::{Endpoint, PluginError};
use previewd_plugin_python::calls::{argument, keyword_argument};
use previewd_plugin_python::docstrings::{clean_docstring, docstring};
use previewd_plugin_python::literals::sequence_elements;
use previewd_plugin_python::query::matches;
use previewd_plugin_python::source::{decorates_cleanly, line_of};
use previewd_plugin_python::FileId;
use tree_sitter::Node;

use crate::model::{Include, Kind, Model, Site};
use crate::queries::{METHOD_CALLS, ROUTE_DECORATORS};

/// The method `api_route` and `add_api_route` use when given no `methods=`.
const DEFAULT_METHOD: &str = "GET";
/// The method shown for a WebSocket route (the launcher reports the same).
const WEBSOCKET_METHOD: &str = "WEBSOCKET";

/// Include chains deeper than this are not followed (and cycles never are).
const MAX_NESTING: usize = 32;

/// At most this many endpoints are reported, and at most this many times a router is visited
/// on the way: routers included from many places in many combinations could otherwise
/// multiply without bound.
const MAX_ENDPOINTS: usize = 10_000;

/// One path operation as registered on its app or router, before prefixes.
struct Registration {
    object: usize,
    methods: Vec<String>,
    path: String,
    summary: Option<String>,
    description: Option<String>,
    tags: Vec<String>,
    file: String,
    line: u32,
    /// Where the registering statement is.
    site: Site,
}

/// Every route of the project, sorted by path then method. `includes_copy_routes` says whether
/// the FastAPI the project runs copies routes at `include_router` time (before 0.137).
pub(crate) fn extract(
    model: &Model<'_>,
    includes_copy_routes: bool,
) -> Result<Vec<Endpoint>, PluginError> {
    let registrations = registrations(model)?;
    let mut on_object: HashMap<usize, Vec<&Registration>> = HashMap::new();
    for registration in &registrations {
        on_object
            .entry(registration.object)
            .or_default()
            .push(registration);
    }
    let mut walk = Walk {
        model,
        on_object,
        includes_copy_routes,
        stack: Vec::new(),
        visits: 0,
        endpoints: Vec::new(),
    };
    let included: HashSet<usize> = model.includes.iter().map(|i| i.child).collect();
    // Objects nobody includes are the roots: the apps, and routers never included when an
    // unknown router is included somewhere (listed under their own prefix, best effort).
    let roots = (0..model.objects.len()).filter(|&o| {
        !included.contains(&o) && (model.objects[o].kind == Kind::App || model.unresolved_includes)
    });
    for root in roots {
        walk.visit(root, "", &[], None);
    }
    // The same router included twice in the same place yields the same endpoints twice.
    let mut seen = HashSet::new();
    let mut endpoints = walk.endpoints;
    endpoints.retain(|e| {
        seen.insert((
            e.method.clone(),
            e.path.clone(),
            e.tags.clone(),
            e.file.clone(),
            e.line,
        ))
    });
    endpoints.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Ok(endpoints)
}

/// The traversal from root objects down their includes.
struct Walk<'a, 'p> {
    model: &'a Model<'p>,
    on_object: HashMap<usize, Vec<&'a Registration>>,
    /// Whether `include_router` copies the routes a router has at that moment.
    includes_copy_routes: bool,
    /// The objects on the current include chain, to stop at cycles.
    stack: Vec<usize>,
    /// How many objects were visited so far (bounded by [`MAX_ENDPOINTS`] too).
    visits: usize,
    endpoints: Vec<Endpoint>,
}

impl Walk<'_, '_> {
    /// Lists the routes of `object` and everything it includes, under `prefix` and `tags`
    /// (what the includes above it add), as served through `via`, the include that brought
    /// it in (`None` for a root).
    fn visit(&mut self, object: usize, prefix: &str, tags: &[String], via: Option<&Include>) {
        self.visits += 1;
        if self.stack.len() >= MAX_NESTING
            || self.stack.contains(&object)
            || self.visits > MAX_ENDPOINTS
        {
            return;
        }
        let model = self.model;
        let Some(own_prefix) = &model.objects[object].prefix else {
            return;
        };
        let prefix = format!("{prefix}{own_prefix}");
        let tags = merged(tags, &model.objects[object].tags);
        let copies = self.includes_copy_routes;
        let registrations = self.on_object.get(&object).into_iter().flatten();
        for registration in registrations.filter(|r| !late(copies, &r.site, via)) {
            for method in &registration.methods {
                if self.endpoints.len() >= MAX_ENDPOINTS {
                    return;
                }
                let path = match format!("{prefix}{}", registration.path) {
                    path if path.is_empty() => "/".to_string(),
                    path => path,
                };
                self.endpoints.push(Endpoint {
                    method: method.clone(),
                    path_params: Endpoint::params_of(&path),
                    path: without_converters(&path),
                    summary: registration.summary.clone(),
                    description: registration.description.clone(),
                    tags: merged(&tags, &registration.tags),
                    file: Some(registration.file.clone()),
                    line: Some(registration.line),
                });
            }
        }
        self.stack.push(object);
        let includes = model.includes.iter().filter(|i| i.parent == object);
        for include in includes.filter(|i| !late(copies, &i.site, via)) {
            if let Some(include_prefix) = &include.prefix {
                let tags = merged(&tags, &include.tags);
                let prefix = format!("{prefix}{include_prefix}");
                self.visit(include.child, &prefix, &tags, Some(include));
            }
        }
        self.stack.pop();
    }
}

/// Whether a registration (or include) at `site`, on the object `via` brought in, comes too
/// late to be served through it: `via` copied the routes before the registration ran.
fn late(includes_copy_routes: bool, site: &Site, via: Option<&Include>) -> bool {
    via.is_some_and(|include| {
        includes_copy_routes && include.copies_routes && site.runs_after(&include.site)
    })
}

/// `path` with Starlette's converters dropped: `/files/{p:path}` is `/files/{p}`.
fn without_converters(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let Some(end) = rest[1..].find(['{', '}']).map(|e| e + 1) else {
            break;
        };
        let parameter = &rest[..end];
        if rest[end..].starts_with('}') {
            match parameter.split_once(':') {
                Some((name, _)) if name.len() > 1 => out.push_str(name),
                _ => out.push_str(parameter),
            }
            out.push('}');
            rest = &rest[end + 1..];
        } else {
            out.push_str(parameter);
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// `outer` followed by the tags of `inner` not already in it.
fn merged(outer: &[String], inner: &[String]) -> Vec<String> {
    let mut tags = outer.to_vec();
    for tag in inner {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    tags
}

/// Every route registration on a known app or router, in file and source order.
fn registrations(model: &Model<'_>) -> Result<Vec<Registration>, PluginError> {
    let program = model.program;
    let mut found = Vec::new();
    for file in program.files_but_tests() {
        let source = program.source(file);
        let text = source.text();
        for m in matches(ROUTE_DECORATORS.get()?, source.root(), text) {
            let (Some(decorator), Some(receiver), Some(method), Some(arguments), Some(handler)) = (
                m.get("decorator"),
                m.get("receiver"),
                m.get("method"),
                m.get("arguments"),
                m.get("handler"),
            ) else {
                continue;
            };
            if !decorates_cleanly(decorator, handler) {
                continue;
            }
            let methods = match source.text_of(method) {
                "api_route" => methods_argument(model, file, arguments),
                "websocket" => Some(vec![WEBSOCKET_METHOD.to_string()]),
                verb => Some(vec![verb.to_ascii_uppercase()]),
            };
            let call = Call {
                file,
                receiver,
                arguments,
                methods,
                statement: handler.parent().unwrap_or(handler),
            };
            found.extend(call.registration(model, Some((file, handler)), handler));
        }
        for m in matches(METHOD_CALLS.get()?, source.root(), text) {
            let (Some(receiver), Some(method), Some(arguments), Some(site)) = (
                m.get("receiver"),
                m.get("method"),
                m.get("arguments"),
                m.get("call"),
            ) else {
                continue;
            };
            if source.text_of(method) != "add_api_route" {
                continue;
            }
            let handler = argument(arguments, 1, "endpoint", text)
                .and_then(|endpoint| program.function_named_by(file, endpoint));
            let call = Call {
                file,
                receiver,
                arguments,
                methods: methods_argument(model, file, arguments),
                statement: site,
            };
            found.extend(call.registration(model, handler, site));
        }
    }
    Ok(found)
}

/// A registering call: `@receiver.verb(arguments)` or `receiver.add_api_route(arguments)`.
struct Call<'p> {
    file: FileId,
    receiver: Node<'p>,
    arguments: Node<'p>,
    /// The HTTP methods; `None` when `methods=` is not static.
    methods: Option<Vec<String>>,
    /// What runs the registration: the decorated `def`, or the call.
    statement: Node<'p>,
}

impl Call<'_> {
    /// The registration this call makes, if its receiver, methods and path are all known.
    /// `handler` is the handler's `def` (and its file) when known; `site` locates the route
    /// when it is not (a lambda, a partial).
    fn registration(
        &self,
        model: &Model<'_>,
        handler: Option<(FileId, Node<'_>)>,
        site: Node<'_>,
    ) -> Option<Registration> {
        let program = model.program;
        let text = program.source(self.file).text();
        let object = model.object_of(self.file, self.receiver)?;
        let methods = self.methods.clone()?;
        let path = model.string(self.file, argument(self.arguments, 0, "path", text)?)?;
        let keyword = |name| {
            keyword_argument(self.arguments, name, text).and_then(|v| model.string(self.file, v))
        };
        let handler_name = handler.and_then(|(file, def)| {
            let name = def.child_by_field_name("name")?;
            Some(program.source(file).text_of(name).to_string())
        });
        let summary = keyword("summary").or_else(|| {
            keyword("name")
                .or(handler_name)
                .map(|n| title(&n.replace('_', " ")))
        });
        let docstring = handler.and_then(|(file, def)| {
            docstring(def, program.source(file).text()).map(|d| clean_docstring(&d))
        });
        // FastAPI keeps what precedes a form feed, stripped.
        let description = keyword("description")
            .or(docstring)
            .map(|d| d.split('\u{c}').next().unwrap_or("").trim().to_string())
            .filter(|d| !d.is_empty());
        let tags = keyword_argument(self.arguments, "tags", text)
            .map(|t| model.strings(self.file, t))
            .unwrap_or_default();
        let (file, line) = match handler {
            Some((file, def)) => (program.source(file).path().to_string(), line_of(def)),
            None => (program.source(self.file).path().to_string(), line_of(site)),
        };
        Some(Registration {
            object,
            methods,
            path,
            summary,
            description,
            tags,
            file,
            line,
            site: Site::of(self.file, self.statement),
        })
    }
}

/// The upper-cased `methods=` of `api_route`/`add_api_route` (GET when absent); `None` when it
/// is not a static list of strings.
fn methods_argument(model: &Model<'_>, file: FileId, arguments: Node<'_>) -> Option<Vec<String>> {
    let text = model.program.source(file).text();
    let Some(methods) = keyword_argument(arguments, "methods", text) else {
        return Some(vec![DEFAULT_METHOD.to_string()]);
    };
    let elements = sequence_elements(methods)?;
    let mut found: Vec<String> = Vec::new();
    for element in elements {
        let method = model.string(file, element)?.to_ascii_uppercase();
        if !found.contains(&method) {
            found.push(method);
        }
    }
    Some(found)
}

/// Python's `str.title()`: each run of letters starts upper-case and continues lower-case
/// (FastAPI's default summary is the handler name, `_` as spaces, title-cased).
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_word = false;
    for c in text.chars() {
        if c.is_alphabetic() {
            if in_word {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
        } else {
            out.push(c);
            in_word = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use previewd_plugin_python::{Program, SourceFile};

    /// The (method, path) routes of a project, with `include_router` copying routes or not.
    fn routes(files: &[(&str, &str)], includes_copy_routes: bool) -> Vec<String> {
        let sources = files
            .iter()
            .map(|(p, t)| SourceFile::parse(*p, *t).unwrap())
            .collect();
        let program = Program::new(sources).unwrap();
        let model = Model::build(&program).unwrap();
        extract(&model, includes_copy_routes)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect()
    }

    const LATE: &str = "\
from fastapi import APIRouter, FastAPI
app = FastAPI()
router = APIRouter(prefix='/r')
inner = APIRouter(prefix='/i')

@router.get('/early')
def early(): ...

app.include_router(router)
router.include_router(inner)

@router.get('/late')
def late(): ...

router.add_api_route('/late-call', late)

@inner.get('')
def inner_route(): ...
";

    /// Before FastAPI 0.137, what is registered on a router below the include, in the same
    /// scope, is not served; the router's own earlier routes are, and so is everything from
    /// 0.137 on.
    #[test]
    fn registrations_after_the_include() {
        assert_eq!(routes(&[("main.py", LATE)], true), ["GET /r/early"]);
        assert_eq!(
            routes(&[("main.py", LATE)], false),
            [
                "GET /r/early",
                "GET /r/i",
                "GET /r/late",
                "GET /r/late-call"
            ]
        );
    }

    /// Registrations in another module, or another scope, are taken to run first.
    #[test]
    fn other_modules_and_scopes_run_first() {
        let main = "\
from fastapi import FastAPI
from routes import router
app = FastAPI()
app.include_router(router)
";
        let routes_py = "\
from fastapi import APIRouter
router = APIRouter()

@router.get('/a')
def a(): ...
";
        assert_eq!(
            routes(&[("main.py", main), ("routes.py", routes_py)], true),
            ["GET /a"]
        );
        let factory = "\
from fastapi import APIRouter, FastAPI
router = APIRouter()

def create_app():
    app = FastAPI()
    app.include_router(router)
    return app

@router.get('/b')
def b(): ...
";
        assert_eq!(routes(&[("main.py", factory)], true), ["GET /b"]);
    }

    /// A router nobody includes is not served, unless some include names a router the model
    /// cannot tell, which may be that one.
    #[test]
    fn routers_nobody_includes() {
        let orphan = "\
from fastapi import APIRouter, FastAPI
app = FastAPI()
orphan = APIRouter(prefix='/o')

@orphan.get('/x')
def x(): ...
";
        assert!(routes(&[("main.py", orphan)], false).is_empty());
        let unknown = format!("{orphan}for r in [orphan]:\n    app.include_router(r)\n");
        assert_eq!(routes(&[("main.py", &unknown)], false), ["GET /o/x"]);
    }

    #[test]
    fn titles_like_python() {
        assert_eq!(title("get user items"), "Get User Items");
        assert_eq!(title("read root2x"), "Read Root2X");
        assert_eq!(title("getHTTPData"), "Gethttpdata");
        assert_eq!(title("  lead"), "  Lead");
    }

    #[test]
    fn drops_converters_like_the_launcher() {
        assert_eq!(
            without_converters("/files/{file_path:path}"),
            "/files/{file_path}"
        );
        assert_eq!(without_converters("/a/{x:int}/b/{y}"), "/a/{x}/b/{y}");
        assert_eq!(without_converters("/{:path}/{oops"), "/{:path}/{oops");
        assert_eq!(without_converters("/{a{b:c}"), "/{a{b}");
        assert_eq!(without_converters("/plain"), "/plain");
    }

    #[test]
    fn merges_tags_without_duplicates() {
        let outer = vec!["v1".to_string(), "users".to_string()];
        let inner = vec!["users".to_string(), "admin".to_string()];
        assert_eq!(merged(&outer, &inner), ["v1", "users", "admin"]);
    }
}
