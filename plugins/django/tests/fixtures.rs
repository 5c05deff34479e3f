//! Snapshot tests over the fixture projects in `tests/fixtures/`: small runnable Django
//! projects in the layouts real repositories use. Each gets two snapshots: its detection with
//! its launch plan, and its extracted routes. The end-to-end test (`tests/e2e/django.rs`)
//! launches every one of them and checks that the running app lists the same routes.

use previewd_plugin_api::testing::{fixture, Launch};
use previewd_plugin_api::RuntimePlugin;
use previewd_plugin_django::DjangoPlugin;

/// Snapshots detection + launch plan as `<name>_launch` and routes as `<name>_routes`.
fn check(name: &str) {
    let project = fixture(env!("CARGO_MANIFEST_DIR"), name);
    let plugin = DjangoPlugin;
    let launch = Launch::of(&plugin, &project);
    insta::assert_json_snapshot!(format!("{name}_launch"), launch);
    insta::assert_json_snapshot!(format!("{name}_routes"), plugin.routes(&project).unwrap());
}

/// The Django tutorial's mysite/polls: generic class-based views, a function view with
/// `require_POST`, `include("polls.urls")` with `app_name`, the admin site.
#[test]
fn polls() {
    check("polls");
}

/// A Django REST framework API: `DefaultRouter` with a `ModelViewSet` (custom `lookup_field`,
/// `@action`s), a `ReadOnlyModelViewSet` and a mixin-built `GenericViewSet`, `@api_view`
/// functions, `include(router.urls)`, requirements.txt listing djangorestframework.
#[test]
fn drf_api() {
    check("drf_api");
}

/// `backend/manage.py` next to a frontend: `re_path` named groups, `require_http_methods` /
/// `require_GET` / `require_safe`, class-based views with a project-local base class and
/// `http_method_names`, `include((module, app_name), namespace=)`, `include([...])`,
/// `urlpatterns += [...]`, a prefix constant.
#[test]
fn nested_backend() {
    check("nested_backend");
}

/// The less common routing forms: `format_suffix_patterns`, `urlpatterns +=` and `.append`,
/// `include((router.urls, "v2"))`, `include(module)`, a `SimpleRouter(trailing_slash=False)`
/// with a plain `ViewSet` (custom lookup, an `@action` with a regex `url_path`), DRF generic
/// views, `as_view({...})`, Django's `LoginView`, stacked decorators; DEBUG off.
#[test]
fn api_variants() {
    check("api_variants");
}
