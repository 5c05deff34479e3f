//! Detection, launch-plan and extraction edge cases on throwaway projects: the spellings of an
//! app, weak and missing evidence, `FLASK_APP`, factories with parameters, and inputs that must
//! not panic (garbage, truncated files, huge ones).

use previewd_plugin_api::testing::{routes_of, temp_project};
use previewd_plugin_api::{PluginError, RuntimePlugin};
use previewd_plugin_flask::FlaskPlugin;

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

/// flask imported but no app created: low confidence, and no entrypoint to launch.
#[test]
fn import_without_app() {
    let (_dir, project) = temp_project(&[
        ("helpers.py", b"from flask import jsonify\n"),
        ("requirements.txt", b"flask\n"),
    ]);
    let detection = FlaskPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.4);
    assert_eq!(
        detection.reason,
        "helpers.py imports flask; requirements.txt lists flask, but no file creates `Flask(__name__)`"
    );
    let err = FlaskPlugin.launch_plan(&project, 3001).unwrap_err();
    assert!(matches!(err, PluginError::NoEntrypoint { .. }), "{err}");
    assert!(err.to_string().contains("Flask(__name__)"), "{err}");
    assert!(FlaskPlugin.looks_for().contains("create_app"));
}

/// Only a manifest names flask.
#[test]
fn manifest_only() {
    let (_dir, project) = temp_project(&[(
        "pyproject.toml",
        b"[project]\ndependencies = [\"Flask>=3\"]\n",
    )]);
    let detection = FlaskPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.25);
}

/// Other frameworks, and apps that exist only in tests, are not claimed.
#[test]
fn not_flask() {
    let (_dir, project) = temp_project(&[
        ("main.py", b"from fastapi import FastAPI\napp = FastAPI()\n"),
        (
            "tests/test_app.py",
            b"from flask import Flask\napp = Flask(__name__)\n@app.get('/x')\ndef x(): pass\n",
        ),
        ("requirements.txt", b"fastapi\nflask-cors\n"),
    ]);
    assert_eq!(FlaskPlugin.detect(&project), None);
    assert!(routes_of(&FlaskPlugin, &project).is_empty());
}

/// The app class through `import flask`, aliases, `from flask import *` and annotations.
#[test]
fn spellings_of_the_app() {
    for source in [
        &b"import flask\nserver = flask.Flask(__name__)\n"[..],
        b"import flask as fl\nserver = fl.Flask('svc')\n",
        b"from flask import Flask as F\nserver: F = F(__name__)\n",
        b"from flask import *\nserver = Flask(__name__)\n",
        b"from flask.app import Flask\nserver = Flask(__name__)\n",
    ] {
        let (_dir, project) = temp_project(&[("svc/server.py", source)]);
        let plan = FlaskPlugin.launch_plan(&project, 8123).unwrap();
        assert_eq!(
            plan.args,
            [
                "--framework",
                "flask",
                "--app",
                "server:server",
                "--port",
                "8123"
            ],
            "{}",
            String::from_utf8_lossy(source)
        );
        assert_eq!(plan.working_dir, std::path::Path::new("svc"));
    }
}

/// Factories are launched with `--factory`, whatever their parameters; a module-level app
/// wins over a factory, and `FLASK_APP` over both.
#[test]
fn factories_and_flask_app() {
    let factory = b"from flask import Flask\n\ndef make_app(config_name):\n    app = Flask(__name__)\n    return app\n";
    let (_dir, project) = temp_project(&[("pkg/__init__.py", factory)]);
    let plan = FlaskPlugin.launch_plan(&project, 1).unwrap();
    assert_eq!(plan.args[3], "pkg:make_app");
    assert_eq!(plan.args.last().map(String::as_str), Some("--factory"));
    let detection = FlaskPlugin.detect(&project).unwrap();
    assert_eq!(
        detection.reason,
        "pkg/__init__.py defines the factory `make_app()`, which returns a `Flask` app"
    );

    let app = b"from flask import Flask\napp = Flask(__name__)\n";
    let other = b"from flask import Flask\ndef create_app():\n    return Flask(__name__)\n";
    let (_dir, project) = temp_project(&[("app.py", app), ("other.py", other)]);
    assert_eq!(
        FlaskPlugin.launch_plan(&project, 1).unwrap().args[3],
        "app:app"
    );
    let (_dir, project) = temp_project(&[
        ("app.py", app),
        ("other.py", other),
        (".env", b"export FLASK_APP='other:create_app()'\n"),
    ]);
    let plan = FlaskPlugin.launch_plan(&project, 1).unwrap();
    assert_eq!(plan.args[3], "other:create_app");
    assert!(FlaskPlugin
        .detect(&project)
        .unwrap()
        .reason
        .contains(".env sets FLASK_APP=other:create_app()"));
}

/// An app the static reading cannot see (built by a library) is still launched when
/// `FLASK_APP` names it.
#[test]
fn flask_app_alone() {
    let (_dir, project) = temp_project(&[
        (
            "svc/server.py",
            b"from flask import Flask\nfrom toolkit import build\ndef make_server():\n    return build(Flask)\n",
        ),
        ("svc/.flaskenv", b"FLASK_APP=server:make_server()\n"),
    ]);
    let detection = FlaskPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.7);
    assert_eq!(
        detection.reason,
        "svc/.flaskenv sets FLASK_APP=server:make_server(), but no file was seen creating `Flask(__name__)`"
    );
    let plan = FlaskPlugin.launch_plan(&project, 1).unwrap();
    assert_eq!(plan.args[3], "server:make_server");
    assert_eq!(plan.args.last().map(String::as_str), Some("--factory"));
    assert_eq!(plan.working_dir, std::path::Path::new("svc"));
}

/// Subclasses of `Flask` and `Blueprint` defined in the project are apps and blueprints.
#[test]
fn subclasses() {
    let (_dir, project) = temp_project(&[
        (
            "base.py",
            b"import flask
class Api(flask.Flask): pass
class Bp(flask.Blueprint): pass
",
        ),
        (
            "app.py",
            b"from base import Api, Bp
class Mine(Api): pass
app = Mine(__name__)
bp = Bp('b', __name__, url_prefix='/b')
@bp.get('/x')
def x(): pass
app.register_blueprint(bp)
",
        ),
    ]);
    assert_eq!(
        FlaskPlugin.launch_plan(&project, 1).unwrap().args[3],
        "app:app"
    );
    assert_eq!(routes_of(&FlaskPlugin, &project), pairs(&[("GET", "/b/x")]));
}

/// Registrations Flask resolves at runtime but not from a static string are skipped, the rest
/// still listed; blueprints never registered are listed under their own prefix.
#[test]
fn dynamic_parts_are_skipped() {
    let source = b"import os\nfrom flask import Flask, Blueprint\napp = Flask(__name__)\n\
bp = Blueprint('bp', __name__, url_prefix=os.environ['P'])\nlone = Blueprint('lone', __name__, url_prefix='/lone')\n\
@bp.route('/x')\ndef x(): pass\n@lone.route('/y', methods=METHODS)\ndef y(): pass\n\
@lone.route('/z')\ndef z(): pass\n@app.route(os.environ['R'])\ndef r(): pass\n\
app.register_blueprint(bp)\n";
    let (_dir, project) = temp_project(&[("app.py", source)]);
    assert_eq!(
        routes_of(&FlaskPlugin, &project),
        pairs(&[("GET", "/lone/z")])
    );
}

/// Garbage, binary data, truncated files and pathological nesting never panic; what is well
/// formed around them is still found.
#[test]
fn hostile_input() {
    let nested = format!("x = {}1{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let parens = format!(
        "from flask import Flask\napp = Flask(__name__)\n@app.route('/p', methods={}['GET']{})\ndef g(): pass\n",
        "(".repeat(50_000),
        ")".repeat(50_000)
    );
    let chain: String = (1..200)
        .map(|i| format!("P{i} = P{} + P{}\n", i - 1, i - 1))
        .collect();
    let good = format!(
        "from flask import Flask, Blueprint\nP0 = '/p'\n{chain}app = Flask(__name__)\n\
a = Blueprint('a', __name__)\nb = Blueprint('b', __name__)\na.register_blueprint(b)\n\
b.register_blueprint(a)\napp.register_blueprint(a)\n@app.get(P199)\ndef f(): pass\n\
@app.route('/ok/<int:id>')\ndef ok(id): pass\n"
    );
    let truncated = &good.as_bytes()[..good.len() / 2];
    let mut huge = String::from("from flask import Flask\napp = Flask(__name__)\n");
    for i in 0..3_000 {
        huge.push_str(&format!("@app.route('/r{i}/<x>')\ndef r{i}(x): pass\n"));
    }
    let (_dir, project) = temp_project(&[
        ("app.py", good.as_bytes()),
        ("truncated.py", truncated),
        ("huge.py", huge.as_bytes()),
        ("nested.py", nested.as_bytes()),
        ("parens.py", parens.as_bytes()),
        ("binary.py", &[0, 159, 146, 150, 255, 0, 10, 64]),
        ("decorators.py", b"@@@\n@app.route(\n@\ndef\n"),
        ("views.py", b"from flask.views import MethodView\nclass A(B):\n    pass\nclass B(A):\n    methods = [*x]\n"),
        ("strings.py", b"x = '''\nr = f'{'\nb = '\\N{\n"),
        ("rules.py", b"from flask import Flask\napp = Flask(__name__)\n@app.route('/<<int:(>:x>/<string(a:b>')\ndef q(): pass\n"),
    ]);
    assert!(FlaskPlugin.detect(&project).is_some());
    let found = routes_of(&FlaskPlugin, &project);
    assert!(
        found.contains(&("GET".into(), "/ok/{id}".into())),
        "{found:?}"
    );
    assert!(found.contains(&("GET".into(), "/r2999/{x}".into())));
    assert!(
        found.iter().any(|(_, p)| p.starts_with("/<<int")),
        "{found:?}"
    );
}

/// Extraction on arbitrary bytes never panics: a deterministic sweep of random and mutated
/// Flask sources.
#[test]
fn random_input_never_panics() {
    let seed_source = include_bytes!("fixtures/blueprints/app.py");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..40 {
        let mut bytes = seed_source.to_vec();
        for _ in 0..(round * 5) {
            let at = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[at] = (next() % 256) as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b"()[]{}<>:'\"\\@\n"[(next() % 14) as usize]),
            }
        }
        let noise: Vec<u8> = (0..256).map(|_| (next() % 256) as u8).collect();
        let (_dir, project) = temp_project(&[("app.py", &bytes), ("noise.py", &noise)]);
        let _ = FlaskPlugin.detect(&project);
        let _ = FlaskPlugin.launch_plan(&project, 1);
        FlaskPlugin.routes(&project).unwrap();
    }
}
