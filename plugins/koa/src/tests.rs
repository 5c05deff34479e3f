//! Snapshot tests over the fixture projects in `tests/fixtures/` (small runnable Koa apps,
//! each with a package-lock.json so a preview runs `npm ci`): each gets its detection with its
//! launch plan as `<name>_launch` and its routes as `<name>_routes`. Then detection on projects
//! that are not Koa, and extraction on broken source.

use previewd_plugin_api::testing::{fixture, mangled, temp_project, Launch};
use previewd_plugin_api::RuntimePlugin;
use proptest::prelude::*;

use crate::KoaPlugin;

fn check(name: &str) {
    let project = fixture(env!("CARGO_MANIFEST_DIR"), name);
    insta::assert_json_snapshot!(format!("{name}_launch"), Launch::of(&KoaPlugin, &project));
    insta::assert_json_snapshot!(
        format!("{name}_routes"),
        KoaPlugin.routes(&project).unwrap()
    );
}

/// One `server.js` (Koa 3, @koa/router): a constructor prefix, a named route, a `put`/`del`
/// chain, `all` on an array of paths, a second router mounted on the app.
#[test]
fn single_file() {
    check("single_file");
}

/// `src/index.js` from `scripts.start` requiring `src/app.js`, which mounts `routes/index.js`;
/// that router has a `prefix()` call and nests `users.js` (`require('koa-router')()` with a
/// prefix) and a destructured `articles` export under paths built from a constant.
#[test]
fn nested() {
    check("nested");
}

/// ES modules: default and named imports and exports with `.js` specifiers, mounts with
/// string and template paths, `index.js`-less entry found as `app.js`.
#[test]
fn esm() {
    check("esm");
}

/// Express projects and projects without package.json are not Koa.
#[test]
fn not_koa() {
    let (_dir, express) = temp_project(&[
        ("package.json", br#"{"dependencies": {"express": "^5"}}"#),
        ("index.js", b"const app = require('express')();"),
    ]);
    assert_eq!(KoaPlugin.detect(&express), None);
    let (_dir, bare) = temp_project(&[("server.js", b"const Koa = require('koa');")]);
    assert_eq!(KoaPlugin.detect(&bare), None);
}

/// Koa in package.json without an entry: claimed weakly; the plan says what it looked for.
#[test]
fn no_entry() {
    let (_dir, p) = temp_project(&[("package.json", br#"{"dependencies": {"koa": "^3"}}"#)]);
    assert_eq!(KoaPlugin.detect(&p).unwrap().confidence, 0.5);
    let err = KoaPlugin.launch_plan(&p, 3001).unwrap_err();
    assert!(
        err.to_string().contains("looked for a package.json"),
        "{err}"
    );
}

/// A Koa package with Prisma migrations: `"migrate": true` runs `prisma migrate deploy`,
/// pointed at a multi-file schema folder.
#[test]
fn prisma_migrations() {
    let (_dir, p) = temp_project(&[
        (
            "package.json",
            br#"{"dependencies": {"koa": "^3", "@prisma/client": "7"}, "devDependencies": {"prisma": "7"}}"#,
        ),
        ("index.js", b"const Koa = require('koa');\nnew Koa().listen(3000);\n"),
        ("prisma/schema.prisma", b"datasource db {\n  provider = \"postgresql\"\n}\n"),
        ("prisma/models/item.prisma", b"model Item {\n  id Int @id\n}\n"),
        ("prisma/migrations/0_init/migration.sql", b"CREATE TABLE x ();\n"),
    ]);
    let plan = KoaPlugin.launch_plan(&p, 3001).unwrap();
    assert_eq!(
        plan.migrate,
        [
            "node_modules/prisma/build/index.js",
            "migrate",
            "deploy",
            "--schema",
            "prisma"
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Broken or hostile source never makes extraction fail or panic.
    #[test]
    fn mangled_source_is_survived(
        source in mangled(include_bytes!("../tests/fixtures/nested/src/routes/index.js"))
    ) {
        let (_dir, project) = temp_project(&[
            ("package.json", br#"{"dependencies": {"koa": "^3"}}"#),
            ("index.js", &source),
        ]);
        prop_assert!(KoaPlugin.routes(&project).is_ok());
        prop_assert!(KoaPlugin.detect(&project).is_some());
    }
}
