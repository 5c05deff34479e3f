//! Detection, launch-plan and extraction edge cases on throwaway projects: weak evidence, no
//! evidence, nested packages, module spellings, and inputs that must not panic.

use previewd_plugin_api::testing::{mangled, routes_of, temp_project};
use previewd_plugin_api::{PluginError, RuntimePlugin};
use previewd_plugin_express::ExpressPlugin;

use proptest::prelude::*;

const PACKAGE: &[u8] = br#"{"dependencies": {"express": "^4.21.2"}}"#;

/// A backend folder beside a frontend: the express package.json decides the working dir.
#[test]
fn nested_backend() {
    let (_dir, project) = temp_project(&[
        ("frontend/package.json", br#"{"dependencies": {"react": "18"}}"#),
        ("frontend/src/main.js", b"console.log('hi')\n"),
        ("backend/package.json", br#"{"scripts": {"start": "nodemon src/index.js"}, "dependencies": {"express": "4"}}"#),
        ("backend/src/index.js", b"const express = require('express');\nconst app = express();\napp.get('/', (q, s) => s.end());\napp.listen(3000);\n"),
    ]);
    let detection = ExpressPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.95);
    assert_eq!(
        detection.reason,
        "backend/package.json depends on express; backend/src/index.js calls express()"
    );
    let plan = ExpressPlugin.launch_plan(&project, 4000).unwrap();
    assert_eq!(plan.args, ["--entry", "src/index.js", "--port", "4000"]);
    assert_eq!(plan.working_dir, std::path::Path::new("backend"));
    assert_eq!(
        plan.requirements,
        [std::path::Path::new("backend/package.json")]
    );
    assert_eq!(
        routes_of(&ExpressPlugin, &project),
        [("GET".into(), "/".into())]
    );
}

/// express() without a package.json: a weak claim that cannot be launched.
#[test]
fn no_package_json() {
    let (_dir, project) = temp_project(&[(
        "server.js",
        b"const express = require('express');\nconst app = express();\n",
    )]);
    let detection = ExpressPlugin.detect(&project).unwrap();
    assert_eq!(detection.confidence, 0.3);
    let err = ExpressPlugin.launch_plan(&project, 3001).unwrap_err();
    assert!(matches!(err, PluginError::NoEntrypoint { .. }), "{err}");
}

/// Other Node projects are not claimed.
#[test]
fn not_express() {
    let (_dir, project) = temp_project(&[
        ("package.json", br#"{"dependencies": {"fastify": "4"}}"#),
        ("index.js", b"require('fastify')().get('/', () => 1)\n"),
    ]);
    assert_eq!(ExpressPlugin.detect(&project), None);
    assert!(routes_of(&ExpressPlugin, &project).is_empty());
}

/// Mounting spellings: inline require, a `require().x` member, a namespace import, a router
/// exported through `module.exports = { ... }`, `new Router()`, a mount cycle.
#[test]
fn mount_spellings() {
    let (_dir, project) = temp_project(&[
        ("package.json", PACKAGE),
        ("app.js", b"const express = require('express');\nconst api = require('./api');\nimport * as ns from './ns.js';\nconst app = express();\napp.use('/a', require('./a'));\napp.use('/b', require('./b').router);\napp.use('/c', api.c);\napp.use('/ns', ns.default);\n"),
        ("a.js", b"const r = require('express').Router();\nr.get('/x', h);\nmodule.exports = r;\n"),
        ("b.js", b"const { Router } = require('express');\nconst router = new Router();\nrouter.post('/:id(\\\\d+)', h);\nrouter.use('/again', router);\nmodule.exports = { router };\n"),
        ("api.js", b"const express = require('express');\nconst c = express.Router();\nc.delete('/', h);\nmodule.exports = { c: c };\n"),
        ("ns.js", b"import { Router } from 'express';\nconst r = Router();\nr.head('/h', h);\nexport default r;\n"),
    ]);
    assert_eq!(
        routes_of(&ExpressPlugin, &project),
        [
            ("GET".into(), "/a/x".into()),
            ("POST".into(), "/b/{id}".into()),
            ("DELETE".into(), "/c".into()),
            ("HEAD".into(), "/ns/h".into()),
        ]
    );
}

/// TypeScript entries get a loader: the project's ts-node when it has no tsx.
#[test]
fn typescript_loader() {
    let (_dir, project) = temp_project(&[
        ("package.json", br#"{"main": "src/app.ts", "dependencies": {"express": "5"}, "devDependencies": {"ts-node": "10"}}"#),
        ("src/app.ts", b"import express from 'express';\nconst app = express();\napp.listen(1);\n"),
    ]);
    let plan = ExpressPlugin.launch_plan(&project, 3001).unwrap();
    assert_eq!(
        plan.args,
        [
            "--entry",
            "src/app.ts",
            "--port",
            "3001",
            "--loader",
            "ts-node"
        ]
    );
}

/// Garbage, binary data, truncated files and pathological nesting never panic.
#[test]
fn hostile_input() {
    let nested = format!("x = {}1{};\n", "[".repeat(50_000), "]".repeat(50_000));
    let sum = format!(
        "const express = require('express');\nconst app = express();\napp.get({}'/deep', h);\n",
        "'' + ".repeat(5_000)
    );
    let chain = format!(
        "const r = require('express').Router();\nr.route('/c'){};\n",
        ".get(h)".repeat(3_000)
    );
    let huge = "a".repeat(3 * 1024 * 1024);
    let (_dir, project) = temp_project(&[
        ("package.json", PACKAGE),
        ("server.js", b"const express = require('express');\nconst app = express();\napp.get('/ok', h);\napp.use('/r', require('./chain'));\n"),
        ("sum.js", sum.as_bytes()),
        ("chain.js", format!("{chain}module.exports = r;\n").as_bytes()),
        ("nested.js", nested.as_bytes()),
        ("binary.js", &[0, 159, 146, 150, 255, 0, 10, 64]),
        ("truncated.js", b"const app = express(); app.get('/t', (req, res) => { res.json({"),
        ("strings.ts", b"const s = `${'; app.get(`/x${y}`, h); app.get('\\u{', h)"),
        ("huge.js", huge.as_bytes()),
        ("bad.json/package.json", b"{ not json"),
    ]);
    assert!(ExpressPlugin.detect(&project).is_some());
    let found = routes_of(&ExpressPlugin, &project);
    assert!(found.contains(&("GET".into(), "/ok".into())), "{found:?}");
    assert!(found.contains(&("GET".into(), "/r/c".into())), "{found:?}");
}

proptest! {
    /// Detection, the launch plan and route extraction never panic, and extraction always
    /// answers, whatever the server and its package.json hold.
    #[test]
    fn any_source_is_handled(
        server in mangled(include_bytes!("fixtures/single_file/server.js")),
        package in prop_oneof![
            3 => Just(include_bytes!("fixtures/single_file/package.json").to_vec()),
            1 => mangled(include_bytes!("fixtures/single_file/package.json")),
        ],
    ) {
        let (_dir, project) = temp_project(&[("package.json", &package), ("server.js", &server)]);
        let _ = ExpressPlugin.detect(&project);
        let _ = ExpressPlugin.launch_plan(&project, 3001);
        prop_assert!(ExpressPlugin.routes(&project).is_ok());
    }
}
