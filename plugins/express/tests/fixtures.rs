//! Snapshot tests over the fixture projects in `tests/fixtures/`: small runnable Express apps
//! in the layouts real repositories use (each launched end to end with a package-lock.json, so
//! the e2e tests run `npm ci`; `prisma`, whose launch plan is the point, has none). Each gets
//! two snapshots: its detection with its launch plan, and its routes.

use std::path::Path;

use previewd_plugin_api::testing::{fixture, Launch, PORT};
use previewd_plugin_api::{Project, RuntimePlugin};
use previewd_plugin_express::ExpressPlugin;

/// Snapshots detection + launch plan as `<name>_launch` and routes as `<name>_routes`.
fn check(name: &str) {
    let project = fixture(env!("CARGO_MANIFEST_DIR"), name);
    let plugin = ExpressPlugin;
    let launch = Launch::of(&plugin, &project);
    insta::assert_json_snapshot!(format!("{name}_launch"), launch);
    insta::assert_json_snapshot!(format!("{name}_routes"), plugin.routes(&project).unwrap());
}

/// One `server.js` (Express 4): every verb, `.all`, JSDoc and line comments, a template
/// literal, an optional parameter, a path built from a constant, a settings read that is no
/// route.
#[test]
fn single_file() {
    check("single_file");
}

/// The realworld layout (Express 4): `bin/www` from `scripts.start` creating the server,
/// `app.js` mounting `routes/index.js`, which mounts `routes/api/` by folder `require`;
/// `router.route()` chains, a destructured named export, `require('express').Router()`.
#[test]
fn realworld() {
    check("realworld");
}

/// ES modules (Express 5, `"type": "module"`): default and named imports and exports with
/// `.js` specifiers.
#[test]
fn esm() {
    check("esm");
}

/// TypeScript (Express 5): `src/index.ts` from `scripts.dev` (the `start` script names a
/// `dist/` that is not built), routers in `src/routes/*.ts` with type annotations, tsx in
/// devDependencies as the loader.
#[test]
fn typescript() {
    check("typescript");
}

/// An app that hard-codes `app.listen(3000)`, found by its conventional name `index.js`.
#[test]
fn hardcoded_port() {
    check("hardcoded_port");
}

/// Prisma with its schema where `package.json`'s `prisma.schema` says (`db/schema.prisma`) and
/// migrations beside it: the plan's `migrate` is `prisma migrate deploy --schema
/// db/schema.prisma`.
#[test]
fn prisma() {
    check("prisma");
}

/// The e2e fixture `tests/fixtures/db-prisma` (Express + Prisma 7 on PostgreSQL, schema and
/// migrations under `prisma/`): `"migrate": true` runs `prisma migrate deploy` in its folder.
#[test]
fn db_prisma_migrates_with_prisma_migrate_deploy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/db-prisma");
    let project = Project::open(root).unwrap();
    let plan = ExpressPlugin.launch_plan(&project, PORT).unwrap();
    assert_eq!(
        plan.migrate,
        ["node_modules/prisma/build/index.js", "migrate", "deploy"]
    );
    assert_eq!(plan.working_dir, Path::new(""));
    assert_eq!(
        plan.args,
        ["--entry", "server.js", "--port", &PORT.to_string()]
    );
}
