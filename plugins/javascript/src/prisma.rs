//! Prisma in a Node package: where its schema is, which `.prisma` files make it up, where its
//! generators write, and the command applying its migrations.
//!
//! The schema is looked for the way the Prisma CLI does, relative to the package folder: the
//! `schema` of a Prisma config file (`prisma.config.ts` and its `.js`/`.mjs`/... siblings, or
//! `.config/prisma.ts`, read as text for a string literal, never run), else the path in
//! `package.json`'s `"prisma": {"schema": ...}`, else `prisma/schema.prisma`, else
//! `schema.prisma`, else a `prisma/` folder of `*.prisma` files (a multi-file schema). A schema
//! file whose folder holds other `.prisma` files is that folder's multi-file schema.
//!
//! Migrations are applied with `prisma migrate deploy` when the package depends on the `prisma`
//! CLI and a `migrations` folder sits next to the schema, or where the config file's
//! `migrations: { path }` says. The CLI runs as
//! `node node_modules/prisma/build/index.js` (what its `bin` entry points at), since the host
//! puts the interpreter in front of a plan's `migrate` arguments. The host generates the client
//! itself when it installs the dependencies, from the same [`PrismaSchema`].

use std::path::{Path, PathBuf};

use previewd_plugin_api::project::normalize;
use previewd_plugin_api::Project;

use crate::package::Package;

/// The Prisma CLI's script, relative to the package folder once `node_modules` is linked.
pub const CLI: &str = "node_modules/prisma/build/index.js";
/// Where the CLI finds a schema without `--schema`, in its order.
const DEFAULT_FILES: &[&str] = &["prisma/schema.prisma", "schema.prisma"];
/// The conventional folder of a multi-file schema.
const DEFAULT_FOLDER: &str = "prisma";
/// The extension of schema files.
const EXTENSION: &str = "prisma";
/// Where the Prisma CLI looks for its config file, relative to the package folder, in its order.
const CONFIG_FILES: &[&str] = &[
    "prisma.config.ts",
    "prisma.config.mts",
    "prisma.config.cts",
    "prisma.config.js",
    "prisma.config.mjs",
    "prisma.config.cjs",
    ".config/prisma.ts",
    ".config/prisma.mts",
    ".config/prisma.cts",
    ".config/prisma.js",
    ".config/prisma.mjs",
    ".config/prisma.cjs",
];

/// A package's Prisma schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrismaSchema {
    /// The schema file, or the folder of a multi-file schema, relative to the package folder;
    /// what `--schema` is given.
    pub path: PathBuf,
    /// Whether `path` is a folder of `.prisma` files.
    pub is_folder: bool,
    /// The `.prisma` files making it up, relative to the package folder, sorted.
    pub files: Vec<PathBuf>,
    /// The migrations folder a config file names, relative to the package folder.
    configured_migrations: Option<PathBuf>,
}

/// What a package's Prisma config file says, its paths relative to the package folder.
#[derive(Debug, Default, PartialEq)]
struct PrismaConfig {
    schema: Option<PathBuf>,
    migrations: Option<PathBuf>,
}

impl PrismaConfig {
    /// The first config file the CLI would load among the package's `files`, read from `dir`.
    fn find(project: &Project, dir: &Path, files: &[PathBuf]) -> PrismaConfig {
        let Some(file) = CONFIG_FILES
            .iter()
            .map(Path::new)
            .find(|c| files.iter().any(|f| f == c))
        else {
            return PrismaConfig::default();
        };
        let Ok(text) = project.read_to_string(dir.join(file)) else {
            return PrismaConfig::default();
        };
        // Paths in the config are relative to its own folder.
        let folder = file.parent().unwrap_or(Path::new(""));
        let resolve = |value: String| normalize(&folder.join(value.trim_start_matches("./")));
        let migrations = property(&text, "migrations")
            .and_then(|value| value.strip_prefix('{'))
            .map(|block| &block[..block.find('}').unwrap_or(block.len())])
            .and_then(|block| property(block, "path"));
        PrismaConfig {
            schema: property(&text, "schema")
                .and_then(string_literal)
                .and_then(resolve),
            migrations: migrations.and_then(string_literal).and_then(resolve),
        }
    }
}

/// What follows the first `name:` property in a JavaScript text, from its value on.
fn property<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut searched = 0;
    while let Some(at) = text[searched..].find(name).map(|at| at + searched) {
        searched = at + name.len();
        let before = text[..at].chars().next_back();
        let is_word_start =
            before.is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '$')));
        let after = text[searched..].trim_start();
        if let Some(value) = after.strip_prefix(':').filter(|_| is_word_start) {
            return Some(value.trim_start());
        }
    }
    None
}

/// The string literal a value starts with (quoted with `"`, `'` or a backtick without `${`);
/// `None` when it is not a plain literal (`path.join(...)`), which callers treat as unset.
fn string_literal(value: &str) -> Option<String> {
    let quote = value
        .chars()
        .next()
        .filter(|q| matches!(q, '"' | '\'' | '`'))?;
    let literal = &value[1..value[1..].find(quote)? + 1];
    (!literal.contains("${")).then(|| literal.to_string())
}

impl PrismaSchema {
    /// The schema of the package in `dir` (relative to the project root) whose parsed
    /// `package.json` is `manifest`; `None` when it has none.
    pub fn find(project: &Project, dir: &Path, manifest: &serde_json::Value) -> Option<Self> {
        // The package's own files, relative to its folder.
        let files: Vec<PathBuf> = project
            .files()
            .iter()
            .filter_map(|f| f.strip_prefix(dir).ok())
            .map(Path::to_path_buf)
            .collect();
        let config = PrismaConfig::find(project, dir, &files);
        let in_manifest = manifest
            .get("prisma")
            .and_then(|p| p.get("schema"))
            .and_then(|s| s.as_str())
            .and_then(|s| normalize(Path::new(s.trim_start_matches("./"))));
        let candidates = config
            .schema
            .into_iter()
            .chain(in_manifest)
            .chain(DEFAULT_FILES.iter().map(PathBuf::from))
            .chain([PathBuf::from(DEFAULT_FOLDER)]);
        let schema = candidates
            .filter(|c| !c.as_os_str().is_empty())
            .find_map(|candidate| Self::at(&files, candidate))?;
        Some(PrismaSchema {
            configured_migrations: config.migrations.filter(|m| !m.as_os_str().is_empty()),
            ..schema
        })
    }

    /// The schema at `path` (a file, or a folder holding `.prisma` files) among `files`.
    fn at(files: &[PathBuf], path: PathBuf) -> Option<Self> {
        let in_folder = |folder: &Path| -> Vec<PathBuf> {
            files
                .iter()
                .filter(|f| f.starts_with(folder) && is_schema_file(f))
                .cloned()
                .collect()
        };
        if files.contains(&path) {
            // Other `.prisma` files beside it: a multi-file schema, whose folder is the schema.
            // Not at the package root, whose `.prisma` files anywhere below are not one schema.
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(folder) = folder {
                let siblings = in_folder(folder);
                if siblings.len() > 1 {
                    return Some(PrismaSchema {
                        path: folder.to_path_buf(),
                        is_folder: true,
                        files: siblings,
                        configured_migrations: None,
                    });
                }
            }
            return Some(PrismaSchema {
                files: vec![path.clone()],
                path,
                is_folder: false,
                configured_migrations: None,
            });
        }
        let files = in_folder(&path);
        (!files.is_empty()).then_some(PrismaSchema {
            path,
            is_folder: true,
            files,
            configured_migrations: None,
        })
    }

    /// Whether the Prisma CLI finds this schema without `--schema`.
    pub fn at_default_place(&self) -> bool {
        !self.is_folder && DEFAULT_FILES.iter().any(|d| self.path == Path::new(d))
    }

    /// `--schema <path>`, for commands that must be told where the schema is.
    pub fn schema_args(&self) -> [String; 2] {
        ["--schema".into(), self.path.to_string_lossy().into_owned()]
    }

    /// The migrations folder the config file names, else the one beside the schema, relative
    /// to the package folder.
    pub fn migrations(&self) -> PathBuf {
        if let Some(configured) = &self.configured_migrations {
            return configured.clone();
        }
        match self.is_folder {
            true => self.path.join("migrations"),
            false => self
                .path
                .parent()
                .unwrap_or(Path::new(""))
                .join("migrations"),
        }
    }
}

/// Whether `path` is a `.prisma` file.
fn is_schema_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == EXTENSION)
}

/// The interpreter arguments of `prisma migrate deploy` for `package` (see the module docs):
/// empty without the `prisma` dependency, a schema or migrations beside it.
pub fn migrate_args(project: &Project, package: &Package) -> Vec<String> {
    if !package.depends_on("prisma") {
        return Vec::new();
    }
    let Some(schema) = PrismaSchema::find(project, &package.dir, package.manifest_json()) else {
        return Vec::new();
    };
    let migrations = package.dir.join(schema.migrations());
    if !project.files().iter().any(|f| f.starts_with(&migrations)) {
        return Vec::new();
    }
    let mut args: Vec<String> = [CLI, "migrate", "deploy"].map(String::from).into();
    if !schema.at_default_place() {
        args.extend(schema.schema_args());
    }
    args
}

/// The `output` of each `generator` block in a schema file's text, as written (relative to
/// that file's folder); generators without one write into `node_modules`.
pub fn generator_outputs(schema: &str) -> Vec<String> {
    let mut outputs = Vec::new();
    let mut in_generator = false;
    for line in schema.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("generator") if line.ends_with('{') => in_generator = true,
            Some("}") => in_generator = false,
            Some("output") if in_generator => {
                let value = line["output".len()..].trim_start();
                if let Some(value) = value.strip_prefix('=') {
                    let value = value.trim();
                    if let Some(quoted) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'))
                    {
                        outputs.push(quoted.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    outputs
}

#[cfg(test)]
mod tests {
    use previewd_plugin_api::testing::temp_project;

    use super::*;

    const SCHEMA: &[u8] = b"generator client {\n  provider = \"prisma-client-js\"\n}\n";
    const MIGRATION: &[u8] = b"CREATE TABLE \"Item\" (\"id\" SERIAL);\n";

    /// The plan's `migrate` for a project of `files` (the package depending on express).
    fn migrate(files: &[(&str, &[u8])]) -> Vec<String> {
        let (_dir, project) = temp_project(files);
        let package = Package::find(&project, "express").expect("package");
        migrate_args(&project, &package)
    }

    /// `prisma/schema.prisma` with migrations beside it: `migrate deploy`, no `--schema`.
    #[test]
    fn default_schema_with_migrations() {
        let args = migrate(&[
            (
                "package.json",
                br#"{"dependencies": {"express": "5"}, "devDependencies": {"prisma": "7"}}"#,
            ),
            ("prisma/schema.prisma", SCHEMA),
            (
                "prisma/migrations/20250101000000_init/migration.sql",
                MIGRATION,
            ),
        ]);
        assert_eq!(args, [CLI, "migrate", "deploy"]);
    }

    /// No `prisma` dependency, or no migrations folder: nothing to run.
    #[test]
    fn no_cli_or_no_migrations() {
        let args = migrate(&[
            (
                "package.json",
                br#"{"dependencies": {"express": "5", "@prisma/client": "7"}}"#,
            ),
            ("prisma/schema.prisma", SCHEMA),
            (
                "prisma/migrations/20250101000000_init/migration.sql",
                MIGRATION,
            ),
        ]);
        assert!(args.is_empty(), "{args:?}");
        let args = migrate(&[
            (
                "package.json",
                br#"{"dependencies": {"express": "5", "prisma": "7"}}"#,
            ),
            ("prisma/schema.prisma", SCHEMA),
        ]);
        assert!(args.is_empty(), "{args:?}");
    }

    /// A Prisma config file's `schema` and `migrations.path` win over `package.json`, relative
    /// to the config file's folder, read as text and never run.
    #[test]
    fn config_file_schema_and_migrations() {
        let config = br#"import "dotenv/config";
import { defineConfig, env } from "prisma/config";

export default defineConfig({
  // The schema lives with the database code.
  schema: "./src/db/app.prisma",
  migrations: {
    seed: "tsx src/db/seed.ts",
    path: 'src/db/history',
  },
  datasource: { url: env("DATABASE_URL") },
});
"#;
        let args = migrate(&[
            (
                "package.json",
                br#"{"dependencies": {"express": "5"}, "devDependencies": {"prisma": "7"}, "prisma": {"schema": "prisma/schema.prisma"}}"#,
            ),
            ("prisma.config.ts", config),
            ("prisma/schema.prisma", SCHEMA),
            ("src/db/app.prisma", SCHEMA),
            ("src/db/history/20250101000000_init/migration.sql", MIGRATION),
        ]);
        assert_eq!(
            args,
            [CLI, "migrate", "deploy", "--schema", "src/db/app.prisma"]
        );
        // In `.config/`, paths are relative to that folder.
        let (_dir, project) = temp_project(&[
            (
                ".config/prisma.ts",
                b"export default { schema: '../db/schema.prisma' }\n",
            ),
            ("db/schema.prisma", SCHEMA),
        ]);
        let schema = PrismaSchema::find(&project, Path::new(""), &serde_json::json!({})).unwrap();
        assert_eq!(schema.path, Path::new("db/schema.prisma"));
        assert_eq!(schema.migrations(), Path::new("db/migrations"));
    }

    /// A config file whose schema is computed (`path.join(...)`) or templated is as good as
    /// silent: the usual places are looked at.
    #[test]
    fn computed_config_paths_fall_back() {
        for config in [
            &b"export default defineConfig({ schema: path.join(__dirname, 'x.prisma') })\n"[..],
            b"export default defineConfig({ schema: `${root}/x.prisma` })\n",
            b"const myschema: string = 'x.prisma';\nexport default defineConfig({})\n",
        ] {
            let (_dir, project) = temp_project(&[
                ("prisma.config.ts", config),
                ("x.prisma", SCHEMA),
                ("prisma/schema.prisma", SCHEMA),
            ]);
            let schema =
                PrismaSchema::find(&project, Path::new(""), &serde_json::json!({})).unwrap();
            assert_eq!(schema.path, Path::new("prisma/schema.prisma"));
        }
    }

    /// `package.json`'s `prisma.schema` wins, and the CLI is told where it is; in a package
    /// below the project root, paths stay relative to the package folder.
    #[test]
    fn configured_schema_in_a_nested_package() {
        let args = migrate(&[
            (
                "api/package.json",
                br#"{"dependencies": {"express": "5", "prisma": "7"}, "prisma": {"schema": "./db/main.prisma"}}"#,
            ),
            ("api/db/main.prisma", SCHEMA),
            ("api/db/migrations/migration_lock.toml", b"provider = \"postgresql\"\n"),
            ("api/prisma/schema.prisma", SCHEMA),
        ]);
        assert_eq!(
            args,
            [CLI, "migrate", "deploy", "--schema", "db/main.prisma"]
        );
    }

    /// A root `schema.prisma` is found too; a `prisma/` folder of several files is a
    /// multi-file schema, given to the CLI as the folder, whether or not one is called
    /// `schema.prisma`.
    #[test]
    fn root_file_and_folders() {
        let manifest = serde_json::json!({});
        let (_dir, project) = temp_project(&[("schema.prisma", SCHEMA), ("index.js", b"")]);
        let schema = PrismaSchema::find(&project, Path::new(""), &manifest).unwrap();
        assert_eq!(schema.path, Path::new("schema.prisma"));
        assert!(schema.at_default_place());
        assert_eq!(schema.migrations(), Path::new("migrations"));

        let (_dir, project) = temp_project(&[
            ("prisma/models/user.prisma", SCHEMA),
            ("prisma/base.prisma", SCHEMA),
        ]);
        let schema = PrismaSchema::find(&project, Path::new(""), &manifest).unwrap();
        assert!(schema.is_folder);
        assert_eq!(schema.path, Path::new("prisma"));
        assert_eq!(
            schema.files,
            [
                Path::new("prisma/base.prisma"),
                Path::new("prisma/models/user.prisma")
            ]
        );
        assert!(!schema.at_default_place());
        assert_eq!(schema.migrations(), Path::new("prisma/migrations"));

        let (_dir, project) = temp_project(&[
            ("prisma/schema.prisma", SCHEMA),
            ("prisma/user.prisma", SCHEMA),
        ]);
        let schema = PrismaSchema::find(&project, Path::new(""), &manifest).unwrap();
        assert_eq!(
            (schema.path.as_path(), schema.is_folder),
            (Path::new("prisma"), true)
        );
        assert_eq!(schema.schema_args(), ["--schema", "prisma"]);

        let (_dir, project) = temp_project(&[("index.js", b"")]);
        assert!(PrismaSchema::find(&project, Path::new(""), &manifest).is_none());
    }

    /// A configured path climbing out of the project, or naming nothing, falls back to the
    /// default places.
    #[test]
    fn bad_configured_paths_fall_back() {
        let (_dir, project) = temp_project(&[("prisma/schema.prisma", SCHEMA)]);
        for configured in ["../../etc/schema.prisma", "missing.prisma", ""] {
            let manifest = serde_json::json!({"prisma": {"schema": configured}});
            let schema = PrismaSchema::find(&project, Path::new(""), &manifest).unwrap();
            assert_eq!(
                schema.path,
                Path::new("prisma/schema.prisma"),
                "{configured}"
            );
        }
    }

    /// Generator outputs, as written; comments, datasources and generators without one are
    /// passed over.
    #[test]
    fn outputs() {
        let schema = r#"
// output = "../commented"
generator client {
  provider = "prisma-client"
  output   = "../generated/prisma" // next to src/
}

generator js {
  provider = "prisma-client-js"
}

datasource db {
  provider = "postgresql"
  output = "../not-a-generator"
}
"#;
        assert_eq!(generator_outputs(schema), ["../generated/prisma"]);
        assert!(generator_outputs(std::str::from_utf8(SCHEMA).unwrap()).is_empty());
    }
}
