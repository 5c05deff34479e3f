//! The tree-sitter queries of the Django plugin. They are data, kept as `.scm` files under
//! `queries/` and compiled once on first use; what their captures mean is decided in Rust.

use previewd_plugin_python::query::SharedQuery;

/// `os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)` and the subscript assignment.
pub(crate) static SETTINGS_MODULE: SharedQuery = SharedQuery::new(
    "settings_module.scm",
    include_str!("../queries/settings_module.scm"),
);

/// `urlpatterns = ...`, `urlpatterns += ...`, `urlpatterns.append/extend(...)`.
pub(crate) static URLPATTERNS: SharedQuery = SharedQuery::new(
    "urlpatterns.scm",
    include_str!("../queries/urlpatterns.scm"),
);

/// Module-level `name = Callee(...)`, for DRF routers.
pub(crate) static ROUTER_ASSIGNMENTS: SharedQuery = SharedQuery::new(
    "router_assignments.scm",
    include_str!("../queries/router_assignments.scm"),
);

/// `router.register(prefix, ViewSet, ...)`.
pub(crate) static ROUTER_REGISTRATIONS: SharedQuery = SharedQuery::new(
    "router_registrations.scm",
    include_str!("../queries/router_registrations.scm"),
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query the plugin ships compiles against the Python grammar.
    #[test]
    fn every_query_compiles() {
        for query in [
            &SETTINGS_MODULE,
            &URLPATTERNS,
            &ROUTER_ASSIGNMENTS,
            &ROUTER_REGISTRATIONS,
        ] {
            query.get().unwrap();
        }
    }
}
