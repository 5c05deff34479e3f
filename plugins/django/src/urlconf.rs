//! Static route extraction: the URLconf tree from `ROOT_URLCONF` down, as Django resolves it.
//!
//! A URLconf module's `urlpatterns` (`= [...]`, `+= [...]`, `.append(...)`, `.extend(...)`,
//! `= router.urls`, `+ router.urls`, `format_suffix_patterns([...])`) holds `path()`, `re_path()`
//! and `url()` entries. An entry's view is a view (see [`crate::views`]), `admin.site.urls`, or
//! `include(...)` of a module (`"app.urls"` or the module object), of a list of patterns, of
//! `router.urls`, or of a `(patterns, app_name)` tuple; its route is joined to the prefixes
//! above it. Namespaces (`namespace=`, else the included module's `app_name`) become tags.
//!
//! The admin site is collapsed into one `GET <prefix>` route tagged `admin`, as at runtime. A
//! (method, path) declared twice keeps its first declaration (the one Django resolves to).
//! Entries whose route is not a static string are skipped rather than reported wrong.

use std::collections::HashSet;

use previewd_plugin_api::Endpoint;
use previewd_plugin_api::PluginError;
use previewd_plugin_python::calls::{argument, dotted_path, keyword_argument};
use previewd_plugin_python::imports::qualified_name;
use previewd_plugin_python::literals::sequence_elements;
use previewd_plugin_python::program::assigned_value;
use previewd_plugin_python::query::matches;
use previewd_plugin_python::source::strip_parentheses;
use previewd_plugin_python::{FileId, Program, Symbol};
use tree_sitter::{Node, Query};

use crate::paths::{regex_path, route_path};
use crate::queries::URLPATTERNS;
use crate::routers::Routers;
use crate::site::Site;
use crate::views::View;

/// Includes nested deeper than this are not followed (and cycles never are).
const MAX_NESTING: usize = 32;

/// At most this many endpoints are reported.
const MAX_ENDPOINTS: usize = 10_000;

/// The tag of the collapsed admin site.
const ADMIN_TAG: &str = "admin";

/// Where the walk is: the prefix so far and the namespaces above.
#[derive(Clone, Default)]
struct Place {
    prefix: String,
    tags: Vec<String>,
}

impl Place {
    fn under(&self, route: &str, namespace: Option<String>) -> Place {
        let mut tags = self.tags.clone();
        tags.extend(namespace);
        Place {
            prefix: format!("{}{route}", self.prefix),
            tags,
        }
    }
}

/// Every route reachable from the site's root URLconf, sorted by path then method.
pub(crate) fn extract(program: &Program, site: &Site) -> Result<Vec<Endpoint>, PluginError> {
    let Some(root) = site
        .root_urlconf
        .as_deref()
        .and_then(|dotted| site.module_file(program, dotted))
    else {
        return Ok(Vec::new());
    };
    let routers = Routers::build(program, &program.files_but_tests())?;
    let mut walk = Walk {
        query: URLPATTERNS.get()?,
        program,
        site,
        routers,
        stack: Vec::new(),
        endpoints: Vec::new(),
    };
    walk.module(root, &Place::default());
    let mut seen = HashSet::new();
    let mut endpoints = walk.endpoints;
    endpoints.retain(|e| seen.insert((e.method.clone(), e.path.clone())));
    endpoints.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Ok(endpoints)
}

/// The traversal of URLconf modules.
struct Walk<'a, 'p> {
    /// The compiled `urlpatterns.scm`.
    query: &'static Query,
    program: &'p Program,
    site: &'a Site,
    routers: Routers<'p>,
    /// The modules on the current include chain, to stop at cycles.
    stack: Vec<FileId>,
    endpoints: Vec<Endpoint>,
}

impl Walk<'_, '_> {
    /// The `urlpatterns` of a URLconf module, under `place`.
    fn module(&mut self, file: FileId, place: &Place) {
        if self.stack.len() >= MAX_NESTING || self.stack.contains(&file) {
            return;
        }
        self.stack.push(file);
        let source = self.program.source(file);
        let mut values: Vec<(usize, Node<'_>, bool)> = Vec::new();
        for m in matches(self.query, source.root(), source.text()) {
            let (Some(statement), Some(value)) = (m.get("statement"), m.get("value")) else {
                continue;
            };
            // `append(x)` adds one entry; the other forms add a list.
            let single = m
                .get("method")
                .is_some_and(|n| source.text_of(n) == "append");
            values.push((statement.start_byte(), value, single));
        }
        values.sort_by_key(|(start, _, _)| *start);
        for (_, value, single) in values {
            match single {
                true => self.entry(file, value, place),
                false => self.patterns(file, value, place, 0),
            }
        }
        self.stack.pop();
    }

    /// A list of patterns: a list display, `a + b`, `router.urls`, a name bound to a list,
    /// `format_suffix_patterns([...])`.
    fn patterns(&mut self, file: FileId, expr: Node<'_>, place: &Place, hops: usize) {
        let program = self.program;
        let expr = strip_parentheses(expr);
        if hops > MAX_NESTING {
            return;
        }
        if let Some(elements) = sequence_elements(expr) {
            for element in elements {
                self.entry(file, element, place);
            }
            return;
        }
        match expr.kind() {
            "binary_operator" => {
                for side in ["left", "right"] {
                    if let Some(side) = expr.child_by_field_name(side) {
                        self.patterns(file, side, place, hops + 1);
                    }
                }
            }
            "call" => {
                let text = program.source(file).text();
                let suffixes = expr
                    .child_by_field_name("function")
                    .and_then(|f| dotted_path(f, text))
                    .is_some_and(|d| d.rsplit('.').next() == Some("format_suffix_patterns"));
                let patterns = expr
                    .child_by_field_name("arguments")
                    .and_then(|a| argument(a, 0, "urlpatterns", text));
                if let (true, Some(patterns)) = (suffixes, patterns) {
                    self.patterns(file, patterns, place, hops + 1);
                }
            }
            "attribute" | "identifier" => {
                if let Some(router) = self.routers.urls_of(file, expr) {
                    for route in self.routers.routes(&router) {
                        let path = format!("{}{}", place.prefix, route.path);
                        self.push(&path, &place.tags, route.view);
                    }
                    return;
                }
                if let Some(Symbol::Name { file, name }) = program.resolve(file, expr) {
                    let value = program.definition(file, &name).and_then(assigned_value);
                    if let Some(value) = value {
                        self.patterns(file, value, place, hops + 1);
                    }
                }
            }
            _ => {}
        }
    }

    /// One `path()` / `re_path()` / `url()` entry.
    fn entry(&mut self, file: FileId, expr: Node<'_>, place: &Place) {
        let program = self.program;
        let text = program.source(file).text();
        let expr = strip_parentheses(expr);
        if expr.kind() != "call" {
            return;
        }
        let (Some(function), Some(arguments)) = (
            expr.child_by_field_name("function"),
            expr.child_by_field_name("arguments"),
        ) else {
            return;
        };
        let kind = dotted_path(function, text);
        let to_path: fn(&str) -> String = match kind.as_deref().and_then(|d| d.rsplit('.').next()) {
            Some("path") => route_path,
            Some("re_path" | "url") => regex_path,
            _ => return,
        };
        let Some(route) = argument(arguments, 0, "route", text)
            .or_else(|| argument(arguments, 0, "regex", text))
            .and_then(|r| program.eval_str(file, r))
        else {
            return;
        };
        let Some(view) = argument(arguments, 1, "view", text) else {
            return;
        };
        let route = to_path(&route);
        let view = strip_parentheses(view);
        if self.is_admin_urls(file, view) {
            self.admin(&place.under(&route, None));
            return;
        }
        if let Some(include) = self.include_call(file, view) {
            let namespace = keyword_argument(include, "namespace", text)
                .and_then(|n| program.eval_str(file, n));
            if let Some(target) = argument(include, 0, "arg", text) {
                self.include(file, target, namespace, &place.under(&route, None));
            }
            return;
        }
        let path = format!("{}{route}", place.prefix);
        let view = View::of(program, file, view);
        self.push(&path, &place.tags, view);
    }

    /// The arguments of `include(...)`, when `expr` is that call.
    fn include_call<'n>(&self, file: FileId, expr: Node<'n>) -> Option<Node<'n>> {
        let text = self.program.source(file).text();
        let function = expr.child_by_field_name("function")?;
        let name = dotted_path(function, text)?;
        (expr.kind() == "call" && name.rsplit('.').next() == Some("include"))
            .then(|| expr.child_by_field_name("arguments"))
            .flatten()
    }

    /// What `include(target, namespace=...)` adds under `place`.
    fn include(
        &mut self,
        file: FileId,
        target: Node<'_>,
        namespace: Option<String>,
        place: &Place,
    ) {
        let program = self.program;
        let target = strip_parentheses(target);
        if self.is_admin_urls(file, target) {
            self.admin(place);
            return;
        }
        // `(patterns, app_name)`: the app name is the namespace unless `namespace=` says.
        // Django accepts one level of tuple only, which also bounds the recursion.
        if target.kind() == "tuple" {
            let elements = sequence_elements(target).unwrap_or_default();
            let app_name = elements.get(1).and_then(|a| program.eval_str(file, *a));
            let patterns = elements
                .first()
                .filter(|p| strip_parentheses(**p).kind() != "tuple");
            if let Some(patterns) = patterns {
                self.include(file, *patterns, namespace.or(app_name), place);
            }
            return;
        }
        let module = match target.kind() {
            "string" | "concatenated_string" => program
                .eval_str(file, target)
                .and_then(|dotted| self.site.module_file(program, &dotted)),
            "identifier" | "attribute" => match program.resolve(file, target) {
                Some(Symbol::Module(stem)) => program.module_file(&stem),
                _ => None,
            },
            _ => None,
        };
        match module {
            Some(module) => {
                let app_name = program
                    .definition(module, "app_name")
                    .and_then(assigned_value)
                    .and_then(|v| program.eval_str(module, v));
                self.module(module, &place.under("", namespace.or(app_name)));
            }
            None => self.patterns(file, target, &place.under("", namespace), 0),
        }
    }

    /// Whether `expr` is `admin.site.urls` (django.contrib.admin's default site).
    fn is_admin_urls(&self, file: FileId, expr: Node<'_>) -> bool {
        let text = self.program.source(file).text();
        dotted_path(expr, text)
            .and_then(|d| qualified_name(self.program.imports(file), &d))
            .is_some_and(|q| q == "django.contrib.admin.site.urls")
    }

    /// The admin site, collapsed into one route.
    fn admin(&mut self, place: &Place) {
        let mut tags = place.tags.clone();
        tags.push(ADMIN_TAG.to_string());
        let view = View {
            methods: vec!["GET".to_string()],
            location: None,
            summary: None,
            description: None,
        };
        let path = place.prefix.clone();
        self.push(&path, &tags, view);
    }

    /// The endpoints of one view at `path` (relative, without the leading `/`).
    fn push(&mut self, path: &str, tags: &[String], view: View) {
        let path = format!("/{path}");
        for method in view.methods {
            if self.endpoints.len() >= MAX_ENDPOINTS {
                return;
            }
            self.endpoints.push(Endpoint {
                method,
                path_params: Endpoint::params_of(&path),
                path: path.clone(),
                summary: view.summary.clone(),
                description: view.description.clone(),
                tags: tags.to_vec(),
                file: view.location.as_ref().map(|(f, _)| f.clone()),
                line: view.location.as_ref().map(|(_, l)| *l),
            });
        }
    }
}
