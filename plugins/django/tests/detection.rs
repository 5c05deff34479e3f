//! Detection, launch-plan and extraction edge cases on throwaway projects: other launch files,
//! split settings, weak evidence, no evidence, and inputs that must not panic.

use previewd_plugin_api::testing::{mangled, routes_of, temp_project};
use previewd_plugin_api::{PluginError, RuntimePlugin};
use previewd_plugin_django::DjangoPlugin;

use proptest::prelude::*;

const SETTINGS: &[u8] = b"ROOT_URLCONF = 'site_cfg.urls'\nINSTALLED_APPS = []\n";

/// No manage.py: wsgi.py names the settings; the working dir is where the package resolves.
#[test]
fn wsgi_names_the_settings() {
    let (_dir, project) = temp_project(&[
        (
            "srv/site_cfg/wsgi.py",
            b"import os\nos.environ['DJANGO_SETTINGS_MODULE'] = 'site_cfg.settings'\n",
        ),
        ("srv/site_cfg/settings.py", SETTINGS),
        (
            "srv/site_cfg/urls.py",
            b"from django.urls import path\nfrom . import views\nurlpatterns = [path('x/', views.x)]\n",
        ),
        ("srv/site_cfg/views.py", b"def x(request):\n    pass\n"),
    ]);
    let plan = DjangoPlugin.launch_plan(&project, 8000).unwrap();
    assert_eq!(plan.working_dir, std::path::Path::new("srv"));
    assert_eq!(plan.args[3], "site_cfg.settings");
    let detection = DjangoPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.95);
    assert_eq!(
        routes_of(&DjangoPlugin, &project),
        [("GET".into(), "/x/".into())]
    );
}

/// Split settings (`settings/dev.py` importing `*` from `base.py`) and no launch file at all.
#[test]
fn split_settings() {
    let (_dir, project) = temp_project(&[
        (
            "manage.py",
            b"import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings.dev')\n",
        ),
        ("proj/__init__.py", b""),
        ("proj/settings/__init__.py", b""),
        (
            "proj/settings/base.py",
            b"ROOT_URLCONF = 'proj.urls'\nINSTALLED_APPS = []\n",
        ),
        (
            "proj/settings/dev.py",
            b"from .base import *\nDEBUG = True\n",
        ),
        (
            "proj/urls.py",
            b"from django.urls import re_path\nfrom django.views.generic import RedirectView\n\
urlpatterns = [re_path(r'^go/(?P<to>\\w+)$', RedirectView.as_view())]\n",
        ),
    ]);
    let detection = DjangoPlugin.detect(&project).unwrap();
    assert_eq!(
        detection.reason,
        "manage.py + proj/settings/dev.py with ROOT_URLCONF = \"proj.urls\""
    );
    let found = routes_of(&DjangoPlugin, &project);
    assert_eq!(found.len(), 5, "{found:?}");
    assert!(found.iter().all(|(_, path)| path == "/go/{to}"));
}

/// Weak evidence only: an import, a manifest; and nothing to launch.
#[test]
fn weak_evidence() {
    let (_dir, project) = temp_project(&[
        ("lib.py", b"from django.conf import settings\n"),
        ("requirements.txt", b"Django>=5\n"),
    ]);
    let detection = DjangoPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.4);
    let err = DjangoPlugin.launch_plan(&project, 3001).unwrap_err();
    assert!(matches!(err, PluginError::NoEntrypoint { .. }), "{err}");
    let (_dir2, manifest_only) = temp_project(&[(
        "pyproject.toml",
        b"[project]\ndependencies = [\"django\"]\n",
    )]);
    assert_eq!(
        DjangoPlugin.detect(&manifest_only).unwrap().confidence,
        0.25
    );
}

/// Other frameworks are not claimed.
#[test]
fn not_django() {
    let (_dir, project) = temp_project(&[
        (
            "app.py",
            b"from flask import Flask\napp = Flask(__name__)\n",
        ),
        ("requirements.txt", b"flask\ndjango-environ\n"),
    ]);
    assert_eq!(DjangoPlugin.detect(&project), None);
    assert!(routes_of(&DjangoPlugin, &project).is_empty());
}

/// Garbage, binary data, truncated files, include cycles and pathological nesting never panic.
#[test]
fn hostile_input() {
    let nested = format!(
        "urlpatterns = {}1{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let regex = format!(
        "from django.urls import re_path, path, include\nfrom . import views\nurlpatterns = [re_path(r'^{}$', views.v), path('c/', include('cfg.urls')), path('d/', include('cfg.nested')), path('e/', include('cfg.tuples'))]\n",
        "(".repeat(5_000)
    );
    let tuples = format!(
        "from django.urls import include, path\nurlpatterns = [path('t/', include({}'cfg.urls', 'x'{}))]\n",
        "(".repeat(20_000),
        ", 'y')".repeat(20_000)
    );
    let chain: String = (1..200)
        .map(|i| format!("P{i} = P{} + P{}\n", i - 1, i - 1))
        .collect();
    let (_dir, project) = temp_project(&[
        (
            "manage.py",
            b"import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'cfg.settings')\n",
        ),
        (
            "cfg/settings.py",
            b"ROOT_URLCONF = 'cfg.urls'\nINSTALLED_APPS = [\n",
        ),
        ("cfg/urls.py", regex.as_bytes()),
        ("cfg/nested.py", nested.as_bytes()),
        (
            "cfg/views.py",
            format!("P0 = 'x'\n{chain}def v(r): pass\n").as_bytes(),
        ),
        ("cfg/binary.py", &[0, 159, 146, 150, 255, 0, 10, 64]),
        (
            "cfg/truncated.py",
            b"urlpatterns = [path('a/', include(('x'",
        ),
        ("cfg/tuples.py", tuples.as_bytes()),
        ("cfg/strings.py", b"x = '''\nr = f'{'\nb = '\\N{\n"),
    ]);
    assert!(DjangoPlugin.detect(&project).is_some());
    let found = routes_of(&DjangoPlugin, &project);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "GET");
}

proptest! {
    /// Detection, the launch plan and route extraction never panic, and extraction always
    /// answers, whatever the URL configurations hold.
    #[test]
    fn any_source_is_handled(
        root in mangled(include_bytes!("fixtures/polls/mysite/urls.py")),
        app in mangled(include_bytes!("fixtures/polls/polls/urls.py")),
    ) {
        let (_dir, project) = temp_project(&[
            ("manage.py", include_bytes!("fixtures/polls/manage.py")),
            ("mysite/__init__.py", b""),
            ("mysite/settings.py", include_bytes!("fixtures/polls/mysite/settings.py")),
            ("mysite/urls.py", &root),
            ("polls/__init__.py", b""),
            ("polls/urls.py", &app),
        ]);
        let _ = DjangoPlugin.detect(&project);
        let _ = DjangoPlugin.launch_plan(&project, 3001);
        prop_assert!(DjangoPlugin.routes(&project).is_ok());
    }
}
