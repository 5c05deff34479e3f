//! Snapshot tests over the fixture projects in `tests/fixtures/`: small, runnable Flask apps in
//! the layouts real repositories use (the same folders the end-to-end test launches). Each gets
//! two snapshots: its detection with its launch plan, and its extracted routes.

use previewd_plugin_api::testing::{fixture, Launch};
use previewd_plugin_api::RuntimePlugin;
use previewd_plugin_flask::FlaskPlugin;

/// Snapshots detection + launch plan as `<name>_launch` and routes as `<name>_routes`.
fn check(name: &str) {
    let project = fixture(env!("CARGO_MANIFEST_DIR"), name);
    let plugin = FlaskPlugin;
    let launch = Launch::of(&plugin, &project);
    insta::assert_json_snapshot!(format!("{name}_launch"), launch);
    insta::assert_json_snapshot!(format!("{name}_routes"), plugin.routes(&project).unwrap());
}

/// The quickstart layout, everything in `app.py`: `route` with methods lists and tuples, the
/// verb shortcuts, stacked decorators, converters, trailing slashes, `add_url_rule`, a path
/// built from a constant and an f-string, docstrings split into summary and description.
#[test]
fn single_file() {
    check("single_file");
}

/// The Flask tutorial's "flaskr": `create_app()` in `flaskr/__init__.py` registering the `auth`
/// (with `url_prefix`) and `blog` blueprints from inside the factory, a view defined in the
/// factory, `add_url_rule("/", endpoint="index")` without a view function, `FLASK_APP` in
/// `.flaskenv`, `pyproject.toml` dependencies, and a test app that must not show up.
#[test]
fn flaskr() {
    check("flaskr");
}

/// A larger app: `url_prefix` on blueprints and at registration (which replaces it), nested
/// blueprints, one blueprint registered twice under two names, registration in a `for` loop,
/// `MethodView`s (inherited handlers too) and a `View` with `methods`, `as_view` through a
/// variable, a blueprint with a static folder, converters with arguments.
#[test]
fn blueprints() {
    check("blueprints");
}

/// `wsgi.py` calling `create_app(config_name)` from the `app/` package, blueprints whose views
/// live in modules importing the blueprint back (`from . import main`), `requirements.txt`.
#[test]
fn wsgi_package() {
    check("wsgi_package");
}

/// Corner cases of URL composition: a nested blueprint renamed at registration, the parent
/// registered twice (once with an empty prefix), a prefix without a leading slash, an empty
/// rule, a HEAD-only rule, a dotted endpoint on the app, views inheriting or declaring
/// `methods`, `methods=` overriding a view's, registration inside a plain function, a view
/// wrapped by a decorator applied by hand, a lambda.
#[test]
fn edge_cases() {
    check("edge_cases");
}
