//! The tree-sitter queries of the Flask plugin. They are data, kept as `.scm` files under
//! `queries/` and compiled once on first use; what their captures mean is decided in Rust.

use previewd_plugin_python::query::SharedQuery;

/// `@receiver.route("/path")` and the verb shortcuts on a function.
pub(crate) static ROUTE_DECORATORS: SharedQuery = SharedQuery::new(
    "route_decorators.scm",
    include_str!("../queries/route_decorators.scm"),
);

/// `register_blueprint` and `add_url_rule` calls.
pub(crate) static METHOD_CALLS: SharedQuery = SharedQuery::new(
    "method_calls.scm",
    include_str!("../queries/method_calls.scm"),
);

/// `function(arguments)`: apps and blueprints passed to the project's own functions.
pub(crate) static CALLS: SharedQuery =
    SharedQuery::new("calls.scm", include_str!("../queries/calls.scm"));

/// `return name` and `return Callee(...)`, for app factories.
pub(crate) static RETURNS: SharedQuery =
    SharedQuery::new("returns.scm", include_str!("../queries/returns.scm"));

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query the plugin ships compiles against the Python grammar.
    #[test]
    fn every_query_compiles() {
        for query in [&ROUTE_DECORATORS, &METHOD_CALLS, &RETURNS, &CALLS] {
            query.get().unwrap();
        }
    }
}
