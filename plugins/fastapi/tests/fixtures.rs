//! Snapshot tests over the fixture projects in `tests/fixtures/`: small FastAPI projects in the
//! layouts real repositories use. Each gets two snapshots: its detection with its launch plan,
//! and its extracted routes.

use previewd_plugin_api::testing::{fixture, Launch};
use previewd_plugin_api::RuntimePlugin;
use previewd_plugin_fastapi::FastApiPlugin;

/// Snapshots detection + launch plan as `<name>_launch` and routes as `<name>_routes`.
fn check(name: &str) {
    let project = fixture(env!("CARGO_MANIFEST_DIR"), name);
    let plugin = FastApiPlugin;
    let launch = Launch::of(&plugin, &project);
    insta::assert_json_snapshot!(format!("{name}_launch"), launch);
    insta::assert_json_snapshot!(format!("{name}_routes"), plugin.routes(&project).unwrap());
}

/// Everything in one `main.py`: verbs, `api_route`, `add_api_route`, constants and enum tags,
/// docstrings cut at a form feed, stacked decorators, a `{p:path}` converter (listed as `{p}`),
/// a skipped dynamic path (an optional route, off unless configured) and websocket.
#[test]
fn single_file() {
    check("single_file");
}

/// FastAPI's "Bigger Applications" tutorial: `app/main.py`, relative imports of
/// `app/routers/*.py`, include-level prefix and tags; a test app that must not show up.
#[test]
fn bigger_app() {
    check("bigger_app");
}

/// The full-stack-fastapi-template backend: `backend/app`, `api/main.py` including
/// `api/routes/*.py`, the prefix read from `settings.API_V1_STR`, `pyproject.toml`.
#[test]
fn full_stack() {
    check("full_stack");
}

/// `backend/` with `requirements.txt`, `app/api/v1/endpoints` routers with include-level
/// prefixes, a router included twice, a nested router with a path-parameter prefix.
#[test]
fn backend_requirements() {
    check("backend_requirements");
}

/// `src/<pkg>/main.py` importing its own package absolutely; annotated app assignment;
/// `import a.b as c`; prefix constant from another module.
#[test]
fn src_layout() {
    check("src_layout");
}

/// No module-level app, only `create_app()`: launched in factory mode; routes registered
/// inside the factory; a router nobody includes, left out (the app does not serve it); with
/// FastAPI pinned below 0.137, a route and a router added to a router after it was included,
/// left out under that include.
#[test]
fn factory() {
    check("factory");
}

/// `app = get_application()` in a namespace package (no `__init__.py`) that imports itself by
/// its full path, so the working dir is the root.
#[test]
fn get_application() {
    check("get_application");
}

/// The Vercel `api/index.py` layout.
#[test]
fn vercel() {
    check("vercel");
}

/// Syntax errors, undecodable bytes, empty and pathological files next to good ones.
#[test]
fn broken() {
    check("broken");
}
