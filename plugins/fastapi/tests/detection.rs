//! Detection and launch-plan edge cases on throwaway projects: weak evidence, no evidence,
//! no entrypoint, and inputs that must not panic.

use previewd_plugin_api::testing::{mangled, temp_project};
use previewd_plugin_api::{PluginError, RuntimePlugin};
use previewd_plugin_fastapi::FastApiPlugin;

use proptest::prelude::*;

/// fastapi imported but no app created: low confidence, and no entrypoint to launch.
#[test]
fn import_without_app() {
    let (_dir, project) = temp_project(&[
        ("schemas.py", b"from fastapi import HTTPException\n"),
        ("requirements.txt", b"fastapi\n"),
    ]);
    let detection = FastApiPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.4);
    assert_eq!(
        detection.reason,
        "schemas.py imports fastapi; requirements.txt lists fastapi, but no file creates `FastAPI()`"
    );
    let err = FastApiPlugin.launch_plan(&project, 3001).unwrap_err();
    assert!(matches!(err, PluginError::NoEntrypoint { .. }), "{err}");
    assert!(err.to_string().contains("FastAPI()"));
}

/// Only a manifest names fastapi.
#[test]
fn manifest_only() {
    let (_dir, project) = temp_project(&[(
        "pyproject.toml",
        b"[project]\ndependencies = [\"fastapi\"]\n",
    )]);
    let detection = FastApiPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.25);
    assert_eq!(
        detection.reason,
        "pyproject.toml lists fastapi, but no file creates `FastAPI()`"
    );
}

/// Other frameworks, and apps that exist only in tests, are not claimed.
#[test]
fn not_fastapi() {
    let (_dir, project) = temp_project(&[
        (
            "app.py",
            b"from flask import Flask\napp = Flask(__name__)\n",
        ),
        (
            "tests/test_fake.py",
            b"from fastapi import FastAPI\napp = FastAPI()\n",
        ),
        ("requirements.txt", b"flask\nfastapi-utils\n"),
    ]);
    assert_eq!(FastApiPlugin.detect(&project), None);
    assert!(FastApiPlugin.routes(&project).unwrap().is_empty());
}

/// The app class can be reached through `import fastapi`, aliases and annotated assignments.
#[test]
fn spellings_of_the_app() {
    for source in [
        &b"import fastapi\nserver = fastapi.FastAPI()\n"[..],
        b"import fastapi as fa\nserver = fa.FastAPI()\n",
        b"from fastapi import FastAPI as F\nserver: F = F(title='x')\n",
        b"from fastapi import *\nserver = FastAPI()\n",
    ] {
        let (_dir, project) = temp_project(&[("svc/server.py", source)]);
        let plan = FastApiPlugin.launch_plan(&project, 8123).unwrap();
        assert_eq!(
            plan.args,
            [
                "--framework",
                "fastapi",
                "--app",
                "server:server",
                "--port",
                "8123"
            ],
            "{}",
            String::from_utf8_lossy(source)
        );
        assert_eq!(plan.working_dir, std::path::Path::new("svc"));
        assert!(plan.requirements.is_empty());
    }
}

/// Garbage, binary data and pathological nesting never panic.
#[test]
fn hostile_input() {
    let nested = format!("x = {}1{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let parens = format!(
        "from fastapi import FastAPI\napp = FastAPI()\n@app.api_route('/x', methods={}['GET']{})\ndef g(): pass\n",
        "(".repeat(50_000),
        ")".repeat(50_000)
    );
    let chain: String = (1..200)
        .map(|i| format!("P{i} = P{} + P{}\n", i - 1, i - 1))
        .collect();
    let routes = format!(
        "from fastapi import FastAPI\nP0 = '/p'\n{chain}app = FastAPI()\n@app.get(P199)\ndef f(): pass\n"
    );
    let (_dir, project) = temp_project(&[
        ("main.py", routes.as_bytes()),
        ("nested.py", nested.as_bytes()),
        ("parens.py", parens.as_bytes()),
        ("binary.py", &[0, 159, 146, 150, 255, 0, 10, 64]),
        ("decorators.py", b"@@@\n@app.get(\n@\ndef\n"),
        ("strings.py", b"x = '''\nr = f'{'\nb = '\\N{\n"),
    ]);
    assert!(FastApiPlugin.detect(&project).is_some());
    let routes = FastApiPlugin.routes(&project).unwrap();
    let found: Vec<_> = routes
        .iter()
        .map(|e| (e.method.as_str(), e.path.as_str()))
        .collect();
    assert_eq!(found, [("GET", "/x")]);
}

proptest! {
    /// Detection, the launch plan and route extraction never panic, and extraction always
    /// answers, whatever the app's source holds.
    #[test]
    fn any_source_is_handled(
        main in mangled(include_bytes!("fixtures/single_file/main.py")),
    ) {
        let (_dir, project) = temp_project(&[("requirements.txt", b"fastapi\n"), ("main.py", &main)]);
        let _ = FastApiPlugin.detect(&project);
        let _ = FastApiPlugin.launch_plan(&project, 3001);
        prop_assert!(FastApiPlugin.routes(&project).is_ok());
    }
}
