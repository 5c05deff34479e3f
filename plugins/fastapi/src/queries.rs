//! The tree-sitter queries of the FastAPI plugin. They are data, kept as `.scm` files under
//! `queries/` and compiled once on first use; what their captures mean is decided in Rust.

use previewd_plugin_python::query::SharedQuery;

/// `@receiver.get("/path")` and friends on a function.
pub(crate) static ROUTE_DECORATORS: SharedQuery = SharedQuery::new(
    "route_decorators.scm",
    include_str!("../queries/route_decorators.scm"),
);

/// `include_router`, `mount` and `add_api_route` calls.
pub(crate) static METHOD_CALLS: SharedQuery = SharedQuery::new(
    "method_calls.scm",
    include_str!("../queries/method_calls.scm"),
);

/// `return name` and `return Callee(...)`, for app factories.
pub(crate) static RETURNS: SharedQuery =
    SharedQuery::new("returns.scm", include_str!("../queries/returns.scm"));

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query the plugin ships compiles against the Python grammar.
    #[test]
    fn every_query_compiles() {
        for query in [&ROUTE_DECORATORS, &METHOD_CALLS, &RETURNS] {
            query.get().unwrap();
        }
    }
}
