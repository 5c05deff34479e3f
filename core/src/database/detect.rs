//! Which database a project expects, read from its files.
//!
//! A preview runs a user's backend alone: a project that opens `DATABASE_URL` (or hardcodes a
//! SQLite file, or connects to MongoDB) at start-up fails or misbehaves unless previewd hands it
//! a database. This module reads the project's imports, dependency manifests, ORM settings,
//! `.env` examples and compose files to say what kind of database it wants (any SQL, PostgreSQL
//! specifically, or MongoDB), which library the URL must be shaped for, which async driver goes
//! in an SQLAlchemy URL, which environment variables carry the URL, and which split connection
//! variables (`POSTGRES_SERVER`, `DB_USER`, `PGPASSWORD` ...) it reads to build one itself, so
//! the caller can provision one per generation.
//!
//! It is plain string scanning (plus the TOML and JSON of dependency manifests): nothing is run
//! and no grammar is parsed. Files over 1 MiB, test folders, `node_modules` and
//! virtual environments are not read. Every conclusion keeps the file it came from, so the
//! `reason` names files a user can check.
//!
//! Rules: a relational library wins over MongoDB ones; among relational libraries the most
//! specific one shapes the URL (`SQL_LIBRARIES`); PostgreSQL is wanted when a PostgreSQL
//! driver, URL, Prisma provider, ORM dialect, Django backend or compose image is seen, except
//! that hints found only outside the code (a listed driver, an example URL, a compose service)
//! do not outweigh a SQLite database the code hardcodes without reading any URL variable.
//! Split variables named for PostgreSQL (`POSTGRES_*`, `PG*`) are a PostgreSQL sign too. Only
//! PostgreSQL will do (no SQLite file may stand in) when the URL is typed pydantic
//! `PostgresDsn`, or when the project reads split variables and no URL variable at all.

use std::fmt;
use std::path::Path;

use previewd_plugin_api::Project;

/// Files larger than this are not read: generated bundles and data dumps, not configuration.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// At most this many files are read, so a huge upload cannot make detection slow.
const MAX_FILES: usize = 5_000;

/// Folders never read: dependencies, virtual environments, build output, tests and CI.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "venv",
    ".venv",
    "site-packages",
    "__pycache__",
    "dist",
    "build",
    ".next",
    "coverage",
    ".github",
    "tests",
    "test",
    "__tests__",
    "spec",
    "e2e",
];

/// Relational libraries, most specific first: when several are seen, the first one in this
/// list is the one the URL is shaped for (Django's settings over an SQLAlchemy helper, an ORM
/// over the driver underneath it).
const SQL_LIBRARIES: &[&str] = &[
    "django",
    "sqlmodel",
    "sqlalchemy",
    "tortoise",
    "peewee",
    "prisma",
    "typeorm",
    "sequelize",
    "knex",
    "psycopg",
    "psycopg2",
    "asyncpg",
    "pg",
    "better-sqlite3",
    "sqlite3",
];

/// Node ORMs, which open a SQLite file through a driver package the project depends on.
const NODE_ORMS: &[&str] = &["sequelize", "knex", "typeorm"];

/// Node's SQLite driver packages.
const NODE_SQLITE_DRIVERS: &[&str] = &["sqlite3", "better-sqlite3"];

/// The relational libraries that only talk to PostgreSQL.
const POSTGRES_DRIVERS: &[&str] = &["psycopg", "psycopg2", "asyncpg", "pg"];

/// MongoDB libraries, most specific first (an ODM over the driver it uses). `prisma` counts
/// here only when its datasource provider is `mongodb`.
const MONGO_LIBRARIES: &[&str] = &[
    "beanie",
    "mongoengine",
    "motor",
    "pymongo",
    "prisma",
    "mongoose",
    "mongodb",
];

/// Calls whose first string argument is the name of an environment variable they read
/// (`os.environ["X"]`, `os.getenv("X")`, django-environ's `env.db("X")`, decouple's
/// `config("X")`, pydantic's `Field(env="X")`, `process.env["X"]`, sequelize-cli's
/// `"use_env_variable": "X"` ...).
const READ_CALLS: &[&str] = &[
    "environ[",
    "environ.get(",
    "getenv(",
    "env[",
    "env(",
    "env.get(",
    "env.str(",
    "env.db(",
    "env.db_url(",
    "env.url(",
    "config(",
    "env=",
    "alias=",
    "use_env_variable\":",
    "use_env_variable:",
];

/// The variable a URL is put in when the project names none.
const DEFAULT_VARIABLE: &str = "DATABASE_URL";

/// Words that start a split connection variable's name, before the part (`DB_HOST`,
/// `POSTGRES_SERVER`); `PG` also without `_`, as libpq's own `PGHOST`.
const PART_PREFIXES: &[&str] = &["POSTGRES", "POSTGRESQL", "PG", "DB", "DATABASE", "SQL"];

/// The prefixes naming PostgreSQL: their variables are a sign the project wants it.
const POSTGRES_PREFIXES: &[&str] = &["POSTGRES", "POSTGRESQL", "PG"];

/// Words naming a database that is not the app's own: tests', Prisma's shadow database, caches,
/// vector stores.
const OTHER_DATABASE_WORDS: &[&str] = &[
    "TEST", "TESTS", "TESTING", "SHADOW", "REDIS", "CACHE", "VECTOR",
];

/// Words naming a server split variables of previewd's never point at (`MYSQL_DB_HOST`).
const OTHER_SERVER_WORDS: &[&str] = &["MONGO", "MONGODB", "MYSQL", "MARIADB"];

/// What kind of database a project expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// A relational database through a library that also runs on SQLite (SQLAlchemy, SQLModel,
    /// Django ORM, Prisma with sqlite provider, Sequelize, Tortoise, Peewee, Knex ...).
    Sql,
    /// PostgreSQL specifically: a PostgreSQL driver (psycopg, psycopg2, asyncpg, pg, postgres.js),
    /// a Prisma datasource with provider "postgresql", a Sequelize/knex dialect 'postgres', or a
    /// postgres:// / postgresql:// URL in .env.example / settings / docker-compose.
    Postgres,
    /// MongoDB: pymongo, motor, mongoengine, beanie, mongoose, mongodb (node driver).
    Mongo,
}

impl Wants {
    /// The lowercase name used in API answers (`sql`, `postgres`, `mongo`).
    pub fn as_str(self) -> &'static str {
        match self {
            Wants::Sql => "sql",
            Wants::Postgres => "postgres",
            Wants::Mongo => "mongo",
        }
    }
}

/// What a split connection variable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `HOST`, `SERVER`, `HOSTNAME`: a host name or address (for a Unix socket, its folder).
    Host,
    /// `PORT`.
    Port,
    /// `USER`, `USERNAME`: the role to log in as.
    User,
    /// `PASSWORD`, `PASS`, `PWD`.
    Password,
    /// `NAME`, `DB`, `DATABASE`, `DBNAME`: the database's name.
    Database,
}

impl Part {
    /// The lowercase name used in API answers (`host`, `port`, `user`, `password`, `database`).
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Host => "host",
            Part::Port => "port",
            Part::User => "user",
            Part::Password => "password",
            Part::Database => "database",
        }
    }
}

/// How the project talks to its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseNeed {
    pub wants: Wants,
    /// The library the URL is shaped for: one of "sqlalchemy", "sqlmodel", "django",
    /// "prisma", "sequelize", "knex", "typeorm", "psycopg", "psycopg2", "asyncpg", "pg",
    /// "tortoise", "peewee", "pymongo", "motor", "mongoengine", "beanie", "mongoose", "mongodb".
    pub library: String,
    /// Async SQLAlchemy driver to put in the URL scheme when the project uses one:
    /// Some("asyncpg") / Some("aiosqlite") / Some("psycopg") (psycopg 3) or None.
    pub driver: Option<String>,
    /// Whether it makes an async SQLAlchemy engine, which opens a SQLite file only through
    /// aiosqlite, whatever its PostgreSQL driver.
    pub async_engine: bool,
    /// The environment variables the project reads its URL from, in order of confidence;
    /// never empty (default ["DATABASE_URL"], or ["MONGO_URL"] / ["MONGODB_URI"] for Mongo
    /// when that is what the project reads).
    pub variables: Vec<String>,
    /// Split connection variables the project reads to build its URL itself (`POSTGRES_SERVER`
    /// the host, `DB_PASS` the password ...), best first; only for relational needs, empty for
    /// most projects.
    pub parts: Vec<(String, Part)>,
    /// Why no SQLite file may stand in for PostgreSQL, when none may: "app/config.py uses
    /// PostgresDsn, which takes no SQLite URL". Only when `wants` is Postgres.
    pub postgres_only: Option<String>,
    /// A sentence a user can check: "app/db.py imports sqlalchemy; .env.example names DATABASE_URL".
    pub reason: String,
}

/// What the project expects, from its files; None when it uses no database we know.
pub fn detect(project: &Project) -> Option<DatabaseNeed> {
    let venvs: Vec<&Path> = project
        .files()
        .iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "pyvenv.cfg"))
        .filter_map(|path| path.parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .collect();
    let mut evidence = Evidence::default();
    let readable = project
        .files()
        .iter()
        .filter(|rel| !is_skipped(rel, &venvs))
        .filter_map(|rel| Some((rel, FileKind::of(rel)?)))
        .take(MAX_FILES);
    for (rel, kind) in readable {
        if let Some(text) = read_bounded(project, rel) {
            evidence.scan(&rel.display().to_string(), kind, &text);
        }
    }
    evidence.decide()
}

/// The text of `rel`, unless it is too large or unreadable.
fn read_bounded(project: &Project, rel: &Path) -> Option<String> {
    let size = std::fs::metadata(project.root().join(rel)).ok()?.len();
    if size > MAX_FILE_BYTES {
        return None;
    }
    project.read_to_string(rel).ok()
}

/// Whether `rel` lies in a folder not to read, or is a test module.
fn is_skipped(rel: &Path, venvs: &[&Path]) -> bool {
    let in_skipped_dir = rel.parent().is_some_and(|dir| {
        dir.components().any(|c| {
            c.as_os_str()
                .to_str()
                .is_some_and(|name| SKIPPED_DIRS.contains(&name.to_ascii_lowercase().as_str()))
        })
    });
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let test_module = (name.starts_with("test_") && name.ends_with(".py"))
        || name.ends_with("_test.py")
        || name == "conftest.py"
        || name == "tests.py"
        || name.contains(".test.")
        || name.contains(".spec.");
    in_skipped_dir || test_module || venvs.iter().any(|venv| rel.starts_with(venv))
}

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// `.py`: imports, settings, environment reads, URLs.
    Python,
    /// JavaScript / TypeScript: `require` / `import`, ORM options, `process.env`, URLs.
    Script,
    /// `*.prisma`: the datasource block.
    Prisma,
    /// `requirements*.txt`, `requirements/*.txt`: one requirement per line.
    Requirements,
    /// `pyproject.toml`, `Pipfile`: dependency tables.
    PythonManifest,
    /// `package.json`: dependency tables.
    PackageJson,
    /// `.env`, `.env.example`, `.env.sample`, `example.env` ...: keys and URLs.
    EnvFile,
    /// `docker-compose*.yml`, `compose.yaml`: images, environment keys, URLs.
    Compose,
    /// Other JSON / YAML / INI / TOML (sequelize-cli `config.json`, `ormconfig.json`,
    /// `alembic.ini`, ...): ORM options, environment reads, URLs.
    Config,
}

impl FileKind {
    /// How `rel` is read, or `None` when it says nothing about databases.
    fn of(rel: &Path) -> Option<FileKind> {
        let name = rel.file_name()?.to_str()?;
        let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
        let in_requirements_dir = rel
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|dir| dir == "requirements");
        if name.ends_with(".lock") || name.ends_with("-lock.json") || name.ends_with("-lock.yaml") {
            return None;
        }
        Some(match name {
            "package.json" => FileKind::PackageJson,
            "pyproject.toml" | "Pipfile" => FileKind::PythonManifest,
            _ if is_env_file(name) => FileKind::EnvFile,
            _ if (name.starts_with("docker-compose") || name.starts_with("compose."))
                && matches!(ext, "yml" | "yaml") =>
            {
                FileKind::Compose
            }
            _ if (name.starts_with("requirements") && matches!(ext, "txt" | "in"))
                || (in_requirements_dir && ext == "txt") =>
            {
                if name.contains("test") {
                    return None;
                }
                FileKind::Requirements
            }
            _ => match ext {
                "py" => FileKind::Python,
                "js" | "mjs" | "cjs" | "ts" | "mts" | "cts" | "jsx" | "tsx" => FileKind::Script,
                "prisma" => FileKind::Prisma,
                "json" | "yaml" | "yml" | "ini" | "cfg" | "toml" => FileKind::Config,
                _ => return None,
            },
        })
    }
}

/// `.env`, `.env.example`, `.env.local`, `example.env`, `env.sample` ... but not `env.py`.
fn is_env_file(name: &str) -> bool {
    let source = [".py", ".js", ".ts"].iter().any(|ext| name.ends_with(ext));
    !source
        && (name == ".env"
            || name.starts_with(".env.")
            || name.ends_with(".env")
            || matches!(name, "env.example" | "env.sample" | "env.template"))
}

/// Where a clue was found, most trustworthy first (the order variables are ranked in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// Source code or configuration the application runs with.
    Code,
    /// A `.env` file or example.
    EnvFile,
    /// A compose file.
    Compose,
    /// A dependency manifest.
    Dependency,
}

/// One thing seen in one file, worded for the reason: `app/db.py` + `imports sqlalchemy`.
#[derive(Debug, Clone)]
struct Clue {
    file: String,
    source: Source,
    says: String,
}

impl Clue {
    fn new(file: &str, source: Source, says: impl Into<String>) -> Clue {
        Clue {
            file: file.to_string(),
            source,
            says: says.into(),
        }
    }
}

impl fmt::Display for Clue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.file, self.says)
    }
}

/// Everything seen across the project, in file order.
#[derive(Debug, Default)]
struct Evidence {
    /// Database libraries used (imported) or listed, by the name [`DatabaseNeed::library`] uses.
    libraries: Vec<(&'static str, Clue)>,
    /// Signs the relational database is PostgreSQL, besides PostgreSQL drivers.
    postgres: Vec<Clue>,
    /// SQLite configured in the code itself (a `sqlite://` URL, Django's sqlite3 backend ...).
    sqlite: Vec<Clue>,
    /// SQLAlchemy drivers named in URL schemes (`postgresql+asyncpg`): asyncpg, psycopg, aiosqlite.
    drivers: Vec<(&'static str, Clue)>,
    /// Where SQLAlchemy's asyncio API is used.
    async_engine: Option<Clue>,
    /// The provider of a Prisma datasource (`postgresql`, `sqlite`, `mongodb` ...) and where.
    prisma_provider: Option<(String, Clue)>,
    /// Variables that may carry the URL, each with where it was seen.
    variables: Vec<(String, Clue)>,
    /// Split connection variables, each with where it was seen.
    parts: Vec<(String, Part, Clue)>,
    /// Where a URL typed pydantic `PostgresDsn` is, which refuses any other scheme.
    postgres_dsn: Option<Clue>,
}

impl Evidence {
    /// Reads one file's text, as its kind says.
    fn scan(&mut self, file: &str, kind: FileKind, text: &str) {
        match kind {
            FileKind::Python => self.python(file, text),
            FileKind::Script => self.script(file, text),
            FileKind::Prisma => self.prisma(file, text),
            FileKind::Requirements => {
                for line in text.lines() {
                    self.requirement(file, line.split(" #").next().unwrap_or(""));
                }
            }
            FileKind::PythonManifest => self.python_manifest(file, text),
            FileKind::PackageJson => self.package_json(file, text),
            FileKind::EnvFile => self.env_file(file, text),
            FileKind::Compose => self.compose(file, text),
            FileKind::Config => {
                self.orm_options(file, text);
                self.reads(file, literal_reads(text));
            }
        }
        let source = match kind {
            FileKind::EnvFile => Source::EnvFile,
            FileKind::Compose => Source::Compose,
            _ => Source::Code,
        };
        if !matches!(
            kind,
            FileKind::Requirements | FileKind::PythonManifest | FileKind::PackageJson
        ) {
            self.urls(file, source, text);
        }
    }

    /// `library` is used or listed, as `clue` says.
    fn library(&mut self, library: &'static str, clue: Clue) {
        self.libraries.push((library, clue));
    }

    /// Variables read in the code, with their offsets in the file (sorted here).
    fn reads(&mut self, file: &str, mut names: Vec<(usize, String)>) {
        names.sort();
        for (_, name) in names {
            let clue = Clue::new(file, Source::Code, format!("reads {name}"));
            if looks_like_database_variable(&name) {
                self.variables.push((name, clue));
            } else {
                self.part(name, clue);
            }
        }
    }

    /// `name`, seen as `clue` says, if it is a split connection variable; one named for
    /// PostgreSQL says PostgreSQL too.
    fn part(&mut self, name: String, clue: Clue) {
        if let Some((part, postgres)) = connection_part(&name) {
            if postgres {
                self.postgres.push(clue.clone());
            }
            self.parts.push((name, part, clue));
        }
    }

    /// Imports, Django settings, backend names, SQLAlchemy's asyncio API, environment reads.
    fn python(&mut self, file: &str, text: &str) {
        for line in text.lines().map(str::trim).filter(|l| !is_comment(l)) {
            for module in python_imports(line) {
                if let Some(library) = python_library(&normalized(module)) {
                    self.library(
                        library,
                        Clue::new(file, Source::Code, format!("imports {module}")),
                    );
                }
            }
            let databases = line.strip_prefix("DATABASES").map(str::trim_start);
            if databases.is_some_and(|rest| {
                rest.starts_with(['[', ':']) || (rest.starts_with('=') && !rest.starts_with("=="))
            }) {
                self.library("django", Clue::new(file, Source::Code, "sets DATABASES"));
            }
            for backend in ["django.db.backends.postgresql", "backends.postgis"] {
                if line.contains(backend) {
                    let says = format!("uses {backend}");
                    self.postgres.push(Clue::new(file, Source::Code, says));
                }
            }
            for postgres in ["PostgresDsn", "PostgresqlDatabase("] {
                if line.contains(postgres) {
                    let says = format!("uses {}", postgres.trim_end_matches('('));
                    let clue = Clue::new(file, Source::Code, says);
                    if postgres == "PostgresDsn" && self.postgres_dsn.is_none() {
                        self.postgres_dsn = Some(clue.clone());
                    }
                    self.postgres.push(clue);
                }
            }
            for sqlite in ["django.db.backends.sqlite3", "SqliteDatabase("] {
                if line.contains(sqlite) {
                    let says = format!("uses {}", sqlite.trim_end_matches('('));
                    self.sqlite.push(Clue::new(file, Source::Code, says));
                }
            }
            let asyncio = ["create_async_engine", "ext.asyncio", "async_sessionmaker"];
            if self.async_engine.is_none() && asyncio.iter().any(|a| line.contains(a)) {
                let says = "uses SQLAlchemy's asyncio API";
                self.async_engine = Some(Clue::new(file, Source::Code, says));
            }
        }
        let mut names = literal_reads(text);
        names.extend(default_url_reads(text));
        names.extend(settings_fields(text));
        self.reads(file, names);
    }

    /// `require` / `import`, ORM options and `process.env` reads.
    fn script(&mut self, file: &str, text: &str) {
        for spec in script_imports(text) {
            if let Some((package, library)) =
                package_of(spec).and_then(|p| Some((p, script_library(p)?)))
            {
                let says = format!("imports {package}");
                self.library(library, Clue::new(file, Source::Code, says));
            }
        }
        self.orm_options(file, text);
        let mut names = literal_reads(text);
        names.extend(process_env_reads(text));
        self.reads(file, names);
    }

    /// `dialect: 'postgres'` (Sequelize), `client: 'pg'` (knex), `type: "postgres"` (TypeORM),
    /// or their SQLite counterparts.
    fn orm_options(&mut self, file: &str, text: &str) {
        for key in ["dialect", "client", "type"] {
            for value in option_values(text, key) {
                let says = format!("sets {key} '{value}'");
                match value.to_ascii_lowercase().as_str() {
                    "postgres" | "postgresql" | "pg" => {
                        self.postgres.push(Clue::new(file, Source::Code, says));
                    }
                    "sqlite" | "sqlite3" | "better-sqlite3" => {
                        self.sqlite.push(Clue::new(file, Source::Code, says));
                    }
                    _ => {}
                }
            }
        }
    }

    /// The `datasource` block: its provider and the variables of `url` / `directUrl`.
    fn prisma(&mut self, file: &str, text: &str) {
        let mut in_datasource = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("datasource ") {
                in_datasource = true;
            } else if line.starts_with('}') {
                in_datasource = false;
            } else if in_datasource {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let (key, value) = (key.trim(), value.trim());
                let provider = value.trim_matches(['"', '\'']);
                if key == "provider" && !provider.is_empty() {
                    let provider = provider.to_string();
                    let says = format!("declares a {provider} datasource");
                    let clue = Clue::new(file, Source::Code, says);
                    self.library("prisma", clue.clone());
                    self.prisma_provider = Some((provider, clue));
                } else if key == "url" || key == "directUrl" {
                    let variable = value
                        .strip_prefix("env(")
                        .and_then(|rest| quoted(rest.trim_start()));
                    if let Some(name) = variable {
                        let clue = Clue::new(file, Source::Code, format!("reads {name}"));
                        self.variables.push((name.to_string(), clue));
                    }
                }
            }
        }
    }

    /// One PEP 508 requirement (`psycopg[binary]>=3.1 ; python_version > "3.8"`): its
    /// distribution, and the drivers its extras pull in (`sqlalchemy[asyncio,postgresql_asyncpg]`).
    fn requirement(&mut self, file: &str, spec: &str) {
        let spec = spec.trim();
        if spec.is_empty() || spec.starts_with(['#', '-']) {
            return;
        }
        let end = spec
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .unwrap_or(spec.len());
        let name = &spec[..end];
        if let Some(library) = python_library(&normalized(name)) {
            let clue = Clue::new(file, Source::Dependency, format!("lists {name}"));
            self.library(library, clue);
        }
        let extras = spec[end..]
            .trim_start()
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .map_or("", |(extras, _)| extras);
        for extra in extras.split(',').map(str::trim) {
            if let Some(library) = extra_library(&normalized(extra)) {
                let clue = Clue::new(file, Source::Dependency, format!("lists {name}[{extra}]"));
                self.library(library, clue);
            }
        }
    }

    /// PEP 621 / PEP 735 requirement lists, Poetry and Pipfile dependency tables.
    fn python_manifest(&mut self, file: &str, text: &str) {
        let Ok(document) = text.parse::<toml::Table>() else {
            return;
        };
        let at = |path: &[&str]| -> Option<&toml::Value> {
            let (first, rest) = path.split_first()?;
            rest.iter()
                .try_fold(document.get(*first)?, |value, key| value.get(key))
        };
        let mut lists: Vec<&toml::Value> = at(&["project", "dependencies"]).into_iter().collect();
        for groups in [
            at(&["project", "optional-dependencies"]),
            at(&["dependency-groups"]),
        ] {
            if let Some(groups) = groups.and_then(toml::Value::as_table) {
                lists.extend(untested(groups));
            }
        }
        let specs = lists
            .into_iter()
            .filter_map(toml::Value::as_array)
            .flatten()
            .filter_map(toml::Value::as_str);
        let mut requirements: Vec<String> = specs.map(str::to_string).collect();
        let mut tables: Vec<&toml::Value> = [
            at(&["tool", "poetry", "dependencies"]),
            at(&["tool", "poetry", "dev-dependencies"]),
            at(&["packages"]),
            at(&["dev-packages"]),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(groups) = at(&["tool", "poetry", "group"]).and_then(toml::Value::as_table) {
            tables.extend(untested(groups).filter_map(|group| group.get("dependencies")));
        }
        for (name, value) in tables
            .into_iter()
            .filter_map(toml::Value::as_table)
            .flatten()
        {
            let extras: Vec<&str> = value
                .get("extras")
                .and_then(toml::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(toml::Value::as_str)
                .collect();
            requirements.push(format!("{name}[{}]", extras.join(",")));
        }
        for requirement in requirements {
            self.requirement(file, &requirement);
        }
    }

    /// `dependencies` and `devDependencies`.
    fn package_json(&mut self, file: &str, text: &str) {
        let Ok(manifest) = serde_json::from_str::<serde_json::Value>(text) else {
            return;
        };
        for section in ["dependencies", "devDependencies"] {
            let packages = manifest.get(section).and_then(serde_json::Value::as_object);
            for package in packages.into_iter().flat_map(|p| p.keys()) {
                if let Some(library) = script_library(package) {
                    let clue = Clue::new(file, Source::Dependency, format!("lists {package}"));
                    self.library(library, clue);
                }
            }
        }
    }

    /// `KEY=value` lines whose key looks like a database URL or a split connection variable.
    fn env_file(&mut self, file: &str, text: &str) {
        for line in text.lines().map(str::trim).filter(|l| !is_comment(l)) {
            let line = line.strip_prefix("export ").unwrap_or(line);
            if let Some((key, _)) = line.split_once('=') {
                let key = key.trim();
                let clue = Clue::new(file, Source::EnvFile, format!("names {key}"));
                if looks_like_database_variable(key) {
                    self.variables.push((key.to_string(), clue));
                } else {
                    self.part(key.to_string(), clue);
                }
            }
        }
    }

    /// `image: postgres:16` services and `DATABASE_URL: ...` / `- DATABASE_URL=...` settings.
    fn compose(&mut self, file: &str, text: &str) {
        for line in text.lines().map(str::trim).filter(|l| !is_comment(l)) {
            let entry = line.strip_prefix('-').unwrap_or(line).trim_start();
            if let Some(image) = entry.strip_prefix("image:") {
                let image = image.trim().trim_matches(['"', '\'']);
                let repository = image.split([':', '@']).next().unwrap_or("");
                let name = repository.rsplit('/').next().unwrap_or("");
                if matches!(name, "postgres" | "postgresql" | "postgis") {
                    let clue = Clue::new(file, Source::Compose, format!("runs the {image} image"));
                    self.postgres.push(clue);
                }
            } else if let Some((key, _)) = entry.split_once(['=', ':']) {
                let key = key.trim().trim_matches(['"', '\'']);
                if looks_like_database_variable(key) {
                    let clue = Clue::new(file, Source::Compose, format!("sets {key}"));
                    self.variables.push((key.to_string(), clue));
                }
            }
        }
    }

    /// `postgresql://`, `postgresql+asyncpg`, `sqlite:///`, `sqlite+aiosqlite` outside comments.
    fn urls(&mut self, file: &str, source: Source, text: &str) {
        for line in text.lines().map(str::trim).filter(|l| !is_comment(l)) {
            let starts = line
                .match_indices("postgres")
                .chain(line.match_indices("sqlite"))
                .map(|(at, _)| at);
            for at in starts {
                let preceded = line[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
                let rest = &line[at..];
                let len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '+'))
                    .unwrap_or(rest.len());
                let scheme = &rest[..len];
                let is_url = rest[len..].starts_with("://");
                if preceded || !(is_url || scheme.contains('+')) {
                    continue;
                }
                let (base, driver) = scheme.split_once('+').unwrap_or((scheme, ""));
                let clue = Clue::new(file, source, format!("has a {scheme} URL"));
                match base {
                    "postgres" | "postgresql" => self.postgres.push(clue.clone()),
                    "sqlite" if source == Source::Code => self.sqlite.push(clue.clone()),
                    _ => {}
                }
                let driver = match (base, driver) {
                    ("postgres" | "postgresql", "asyncpg") => "asyncpg",
                    ("postgres" | "postgresql", "psycopg") => "psycopg",
                    ("sqlite", "aiosqlite") => "aiosqlite",
                    _ => continue,
                };
                self.drivers.push((driver, clue));
            }
        }
    }

    /// The need all the evidence adds up to.
    fn decide(&self) -> Option<DatabaseNeed> {
        let on_mongo = self
            .prisma_provider
            .as_ref()
            .is_some_and(|(provider, _)| provider == "mongodb");
        let seen = |library: &str| self.libraries.iter().any(|(l, _)| *l == library);
        let sql = SQL_LIBRARIES
            .iter()
            .copied()
            .find(|&library| seen(library) && !(library == "prisma" && on_mongo));
        let (library, wants, wants_clue) = match sql {
            Some(library) => {
                let (wants, clue) = self.relational(library);
                (library, wants, clue)
            }
            None => {
                let library = MONGO_LIBRARIES
                    .iter()
                    .copied()
                    .find(|&library| seen(library) && (library != "prisma" || on_mongo))?;
                (library, Wants::Mongo, None)
            }
        };
        let driver = match library {
            "sqlalchemy" | "sqlmodel" => self.driver(wants),
            _ => None,
        };
        let (variables, variable_clue) = self.variables(wants);
        let parts = match wants {
            Wants::Sql | Wants::Postgres => self.parts(),
            Wants::Mongo => Vec::new(),
        };
        let postgres_only = match (wants, &self.postgres_dsn) {
            // A Prisma schema is written for one provider.
            (Wants::Postgres, _) if library == "prisma" => {
                wants_clue.map(|clue| format!("{clue}, which takes no SQLite URL"))
            }
            (Wants::Postgres, Some(dsn)) => Some(format!("{dsn}, which takes no SQLite URL")),
            // A Node ORM opens SQLite through a driver package of the project's own.
            (Wants::Postgres, None)
                if NODE_ORMS.contains(&library)
                    && !NODE_SQLITE_DRIVERS.iter().any(|d| self.clue_of(d).is_some()) =>
            {
                Some(format!(
                    "{library} opens a SQLite file only through {}, which the project does not depend on",
                    NODE_SQLITE_DRIVERS.join(" or ")
                ))
            }
            (Wants::Postgres, None) if variable_clue.is_none() && !parts.is_empty() => {
                let names: Vec<&str> = parts.iter().map(|(name, _, _)| *name).collect();
                Some(format!(
                    "it reads split connection variables ({}) and no URL, which a SQLite file cannot fill",
                    names.join(", ")
                ))
            }
            _ => None,
        };
        let mut reason: Vec<String> = Vec::new();
        let clues = [
            self.clue_of(library),
            wants_clue,
            driver.map(|(_, clue)| clue),
            variable_clue,
        ];
        for clue in clues.into_iter().flatten().map(Clue::to_string) {
            if !reason.contains(&clue) {
                reason.push(clue);
            }
        }
        if variable_clue.is_none() {
            reason.push(format!(
                "no database URL variable found, {DEFAULT_VARIABLE} assumed"
            ));
        }
        for group in part_groups(&parts) {
            // "config.py reads POSTGRES_SERVER" (a PostgreSQL sign) says less than the group.
            reason.retain(|clue| {
                !group
                    .strip_prefix(clue.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(','))
            });
            reason.push(group);
        }
        Some(DatabaseNeed {
            wants,
            library: library.to_string(),
            driver: driver.map(|(name, _)| name.to_string()),
            async_engine: matches!(library, "sqlalchemy" | "sqlmodel")
                && self.async_engine.is_some(),
            variables,
            parts: parts
                .into_iter()
                .map(|(name, part, _)| (name.to_string(), part))
                .collect(),
            postgres_only,
            reason: reason.join("; "),
        })
    }

    /// The split connection variables, each once (where it was best seen), best first.
    fn parts(&self) -> Vec<(&str, Part, &Clue)> {
        best_sightings(
            self.parts
                .iter()
                .map(|(name, part, clue)| (name.as_str(), *part, clue)),
        )
    }

    /// Where `library` was seen: in the code if it was, else in a manifest.
    fn clue_of(&self, library: &str) -> Option<&Clue> {
        let mut clues = self
            .libraries
            .iter()
            .filter(|(l, _)| *l == library)
            .map(|(_, clue)| clue);
        let first = clues.clone().next();
        clues.find(|clue| clue.source == Source::Code).or(first)
    }

    /// Sql or Postgres for the relational `library`, with the clue that decided it (none when
    /// the library itself says it).
    fn relational(&self, library: &str) -> (Wants, Option<&Clue>) {
        if POSTGRES_DRIVERS.contains(&library) {
            return (Wants::Postgres, None);
        }
        // A Prisma schema is written for one provider: nothing else can change it.
        if let ("prisma", Some((provider, clue))) = (library, &self.prisma_provider) {
            let wants = match provider.as_str() {
                "postgresql" | "postgres" | "cockroachdb" => Wants::Postgres,
                _ => Wants::Sql,
            };
            return (wants, Some(clue));
        }
        let drivers = self
            .libraries
            .iter()
            .filter(|(l, _)| POSTGRES_DRIVERS.contains(l))
            .map(|(_, clue)| clue);
        let postgres: Vec<&Clue> = self.postgres.iter().chain(drivers).collect();
        if let Some(clue) = postgres.iter().find(|clue| clue.source == Source::Code) {
            return (Wants::Postgres, Some(clue));
        }
        let reads_url = self
            .variables
            .iter()
            .any(|(name, clue)| clue.source == Source::Code && !is_mongo_variable(name));
        let hardcoded_sqlite = self.sqlite.first().filter(|_| !reads_url);
        match (postgres.first(), hardcoded_sqlite) {
            (Some(clue), None) => (Wants::Postgres, Some(clue)),
            (Some(_), Some(sqlite)) => (Wants::Sql, Some(sqlite)),
            (None, _) => (Wants::Sql, None),
        }
    }

    /// The async (or psycopg 3) driver an SQLAlchemy URL needs, with where it was seen.
    fn driver(&self, wants: Wants) -> Option<(&'static str, &Clue)> {
        let scheme = |name: &str| self.drivers.iter().find(|(d, _)| *d == name);
        let scheme = |name: &str| scheme(name).map(|(driver, clue)| (*driver, clue));
        let library = |name: &'static str| {
            let clue = self.libraries.iter().find(|(l, _)| *l == name)?;
            Some((name, &clue.1))
        };
        let asyncio = self.async_engine.as_ref();
        match (wants, asyncio) {
            (Wants::Postgres, Some(asyncio)) => scheme("asyncpg")
                .or_else(|| scheme("psycopg"))
                .or_else(|| library("asyncpg"))
                .or_else(|| library("psycopg"))
                .or(Some(("asyncpg", asyncio))),
            (Wants::Postgres, None) => scheme("psycopg")
                .or_else(|| scheme("asyncpg"))
                .or_else(|| library("psycopg").filter(|_| library("psycopg2").is_none())),
            (Wants::Sql, _) => scheme("aiosqlite").or(asyncio.map(|clue| ("aiosqlite", clue))),
            (Wants::Mongo, _) => None,
        }
    }

    /// The variables fit for `wants`, best first, with the clue of the best one.
    fn variables(&self, wants: Wants) -> (Vec<String>, Option<&Clue>) {
        let fits = |name: &str| match wants {
            Wants::Mongo => !is_sql_variable(name),
            Wants::Sql | Wants::Postgres => !is_mongo_variable(name),
        };
        let sightings = self.variables.iter().filter(|(name, _)| fits(name));
        let best = best_sightings(sightings.map(|(name, clue)| (name.as_str(), (), clue)));
        let clue = best.first().map(|(_, _, clue)| *clue);
        let mut names: Vec<String> = best.iter().map(|(name, ..)| name.to_string()).collect();
        if names.is_empty() {
            names.push(DEFAULT_VARIABLE.to_string());
        }
        (names, clue)
    }
}

/// The best sighting of each name among `sightings` (name, what goes with it, where): the
/// sources in their order of trust, ties in the order seen; best first.
fn best_sightings<'a, T: Copy>(
    sightings: impl Iterator<Item = (&'a str, T, &'a Clue)>,
) -> Vec<(&'a str, T, &'a Clue)> {
    // (source, order seen, name, what goes with it, clue)
    let mut best: Vec<(Source, usize, &str, T, &Clue)> = Vec::new();
    for (order, (name, with, clue)) in sightings.enumerate() {
        match best.iter_mut().find(|entry| entry.2 == name) {
            Some(entry) if clue.source < entry.0 => *entry = (clue.source, order, name, with, clue),
            Some(_) => {}
            None => best.push((clue.source, order, name, with, clue)),
        }
    }
    best.sort_by_key(|(source, order, ..)| (*source, *order));
    best.into_iter()
        .map(|(_, _, name, with, clue)| (name, with, clue))
        .collect()
}

/// The split variables of each file, worded for the reason: "app/config.py reads POSTGRES_SERVER,
/// POSTGRES_USER", ".env.example names DB_HOST".
fn part_groups(parts: &[(&str, Part, &Clue)]) -> Vec<String> {
    let mut groups: Vec<(&Clue, Vec<&str>)> = Vec::new();
    for (name, _, clue) in parts {
        match groups
            .iter_mut()
            .find(|(seen, _)| seen.file == clue.file && seen.source == clue.source)
        {
            Some((_, names)) => names.push(name),
            None => groups.push((clue, vec![name])),
        }
    }
    groups
        .into_iter()
        .map(|(clue, names)| {
            let verb = match clue.source {
                Source::Code => "reads",
                _ => "names",
            };
            format!("{} {verb} {}", clue.file, names.join(", "))
        })
        .collect()
}

/// The dependency groups of `groups` but those for tests (`test`, `testing`, `tests`).
fn untested(groups: &toml::Table) -> impl Iterator<Item = &toml::Value> {
    groups
        .iter()
        .filter(|(name, _)| !name.contains("test"))
        .map(|(_, group)| group)
}

/// The library a Python module or distribution (normalised by [`normalized`]) belongs to.
fn python_library(name: &str) -> Option<&'static str> {
    Some(match name {
        "sqlalchemy" | "flask_sqlalchemy" | "sqlalchemy_utils" | "alembic" | "flask_migrate"
        | "ormar" => "sqlalchemy",
        "sqlmodel" => "sqlmodel",
        "tortoise" | "tortoise_orm" => "tortoise",
        "peewee" | "playhouse" => "peewee",
        "psycopg" | "psycopg_binary" | "psycopg_c" | "psycopg_pool" => "psycopg",
        "psycopg2" | "psycopg2_binary" => "psycopg2",
        "asyncpg" => "asyncpg",
        "pymongo" | "flask_pymongo" => "pymongo",
        "motor" | "odmantic" => "motor",
        "mongoengine" | "flask_mongoengine" => "mongoengine",
        "beanie" => "beanie",
        _ => return None,
    })
}

/// The PostgreSQL driver a requirement extra pulls in (`sqlalchemy[postgresql_asyncpg]`,
/// `tortoise-orm[asyncpg]`, `psycopg[binary]` is not one).
fn extra_library(extra: &str) -> Option<&'static str> {
    Some(match extra {
        "asyncpg" | "postgresql_asyncpg" => "asyncpg",
        "psycopg" | "postgresql_psycopg" | "postgresql_psycopgbinary" => "psycopg",
        "psycopg2" | "postgresql" | "postgresql_psycopg2binary" => "psycopg2",
        _ => return None,
    })
}

/// The library an npm package belongs to.
fn script_library(package: &str) -> Option<&'static str> {
    Some(match package {
        "prisma" | "@prisma/client" => "prisma",
        "typeorm" => "typeorm",
        "sequelize" => "sequelize",
        "knex" | "objection" => "knex",
        "pg" | "pg-promise" | "postgres" | "@neondatabase/serverless" | "@vercel/postgres" => "pg",
        "better-sqlite3" => "better-sqlite3",
        "sqlite3" | "sqlite" => "sqlite3",
        "mongoose" => "mongoose",
        "mongodb" => "mongodb",
        _ => return None,
    })
}

/// `Flask-SQLAlchemy` → `flask_sqlalchemy`, so modules and distributions compare.
fn normalized(name: &str) -> String {
    name.to_ascii_lowercase().replace(['-', '.'], "_")
}

/// Whether a (trimmed) line is a comment in Python, JavaScript, INI, YAML or dotenv.
fn is_comment(line: &str) -> bool {
    line.starts_with(['#', ';', '*']) || line.starts_with("//") || line.starts_with("/*")
}

/// The top-level modules a (trimmed) Python line imports: `import a.b as c, d` → a, d;
/// `from a.b import c` → a; relative imports → none.
fn python_imports(line: &str) -> Vec<&str> {
    fn top(module: &str) -> &str {
        module.split('.').next().unwrap_or("")
    }
    if let Some(rest) = line.strip_prefix("from ") {
        let module = rest.split_whitespace().next().unwrap_or("");
        if module.starts_with('.') || module.is_empty() {
            return Vec::new();
        }
        return vec![top(module)];
    }
    let Some(rest) = line.strip_prefix("import ") else {
        return Vec::new();
    };
    rest.split(',')
        .filter_map(|part| part.split_whitespace().next())
        .map(|module| top(module.trim_end_matches(';')))
        .filter(|module| !module.is_empty())
        .collect()
}

/// Module specifiers of `require("x")`, `import ... from "x"`, `import "x"`, `import("x")`.
fn script_imports(text: &str) -> Vec<&str> {
    ["require(", "from ", "import ", "import("]
        .iter()
        .flat_map(|call| {
            text.match_indices(call)
                .filter_map(move |(at, _)| quoted(text[at + call.len()..].trim_start()))
        })
        .collect()
}

/// `@prisma/client/runtime` → `@prisma/client`, `pg/lib` → `pg`; relative and `node:` → none.
fn package_of(spec: &str) -> Option<&str> {
    if spec.starts_with(['.', '/']) || spec.starts_with("node:") {
        return None;
    }
    let mut parts = spec.split('/');
    let first = parts.next()?;
    if first.starts_with('@') {
        let second = parts.next()?;
        return Some(&spec[..first.len() + 1 + second.len()]);
    }
    Some(first)
}

/// The string literal `text` starts with (`"x"`, `'x'` or `` `x` ``, on one line).
fn quoted(text: &str) -> Option<&str> {
    let quote = text
        .chars()
        .next()
        .filter(|c| matches!(c, '"' | '\'' | '`'))?;
    let body = &text[1..];
    let end = body.find([quote, '\n'])?;
    body[end..].starts_with(quote).then(|| &body[..end])
}

/// Names passed as string literals to [`READ_CALLS`], with their offsets.
fn literal_reads(text: &str) -> Vec<(usize, String)> {
    READ_CALLS
        .iter()
        .flat_map(|call| {
            text.match_indices(call).filter_map(move |(at, _)| {
                let rest = text[at + call.len()..].trim_start_matches([' ', '\t']);
                Some((at, quoted(rest)?.to_string()))
            })
        })
        .collect()
}

/// `DATABASE_URL`, read without being named: `dj_database_url.config()` with no `env=`,
/// django-environ's `env.db()` / `env.db_url()` with no variable name.
fn default_url_reads(text: &str) -> Vec<(usize, String)> {
    let mut reads = Vec::new();
    for call in ["dj_database_url.config(", "env.db(", "env.db_url("] {
        for (at, _) in text.match_indices(call) {
            let args = &text[at + call.len()..];
            let args = &args[..args.find(')').unwrap_or(args.len())];
            let named = args.contains("env=") || args.trim_start().starts_with(['"', '\'']);
            if !named {
                reads.push((at, DEFAULT_VARIABLE.to_string()));
            }
        }
    }
    reads
}

/// The variables a pydantic `BaseSettings` class reads: its database-URL-like fields and split
/// connection fields (`POSTGRES_SERVER: str`), upper-cased, behind the class's `env_prefix`.
fn settings_fields(text: &str) -> Vec<(usize, String)> {
    if !text.contains("BaseSettings") {
        return Vec::new();
    }
    let prefix = option_values(text, "env_prefix")
        .into_iter()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    let mut fields = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        if !line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        let end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(line.len());
        let (name, rest) = line.split_at(end);
        if rest.contains("alias=") || rest.contains("env=") {
            continue; // read under that name, which `literal_reads` finds
        }
        let annotation = rest.trim_start().strip_prefix(':').map(str::trim);
        let variable = format!("{prefix}{}", name.to_ascii_uppercase());
        if annotation.is_some_and(|a| !a.is_empty() && !a.starts_with('#'))
            && (looks_like_database_variable(name) || connection_part(&variable).is_some())
        {
            fields.push((at, variable));
        }
    }
    fields
}

/// `process.env.X`, and `const { X, Y } = process.env`.
fn process_env_reads(text: &str) -> Vec<(usize, String)> {
    let identifier = |s: &str| {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        s[..end].to_string()
    };
    let mut reads: Vec<(usize, String)> = text
        .match_indices("process.env.")
        .map(|(at, call)| (at, identifier(&text[at + call.len()..])))
        .collect();
    for (at, _) in text.match_indices("= process.env") {
        let before = text[..at].trim_end();
        let Some(pattern) = before.strip_suffix('}') else {
            continue;
        };
        let Some(open) = pattern.rfind('{') else {
            continue;
        };
        for part in pattern[open + 1..].split(',') {
            reads.push((at, identifier(part.trim())));
        }
    }
    reads
}

/// Values of `key: 'value'`, `"key": "value"`, `key = value` (quoted or not) in `text`.
fn option_values<'t>(text: &'t str, key: &str) -> Vec<&'t str> {
    let mut values = Vec::new();
    for (at, _) in text.match_indices(key) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let rest = text[at + key.len()..]
            .trim_start_matches(['"', '\''])
            .trim_start_matches([' ', '\t']);
        let Some(rest) = rest.strip_prefix([':', '=']) else {
            continue;
        };
        let rest = rest
            .trim_start_matches([' ', '\t'])
            .trim_start_matches(['"', '\'', '`']);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .unwrap_or(rest.len());
        if end > 0 {
            values.push(&rest[..end]);
        }
    }
    values
}

/// Whether a variable name looks like it holds a database URL: a URL word (`URL`, `URI`,
/// `DSN`, `CONNECTION_STRING`) and a database word (`DATABASE`, `DB`, `POSTGRES`, `MONGO` ...),
/// and not a test, shadow or cache database.
fn looks_like_database_variable(name: &str) -> bool {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return false;
    }
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper.split('_').collect();
    let has = |set: &[&str]| words.iter().any(|word| set.contains(word));
    let url = has(&["URL", "URI", "DSN"]) || upper.contains("CONNECTION_STRING");
    let database = has(&[
        "DATABASE",
        "DB",
        "POSTGRES",
        "POSTGRESQL",
        "PG",
        "PSQL",
        "SQL",
        "SQLALCHEMY",
        "SQLITE",
        "MONGO",
        "MONGODB",
    ]);
    url && database && !has(OTHER_DATABASE_WORDS)
}

/// What a split connection variable holds, and whether its name says PostgreSQL: a prefix word
/// ([`PART_PREFIXES`]) then a part word as its last two words (`DB_HOST`, `APP_POSTGRES_USER`),
/// or `PG` and a part word in one (`PGHOST`, libpq's own); not another database's
/// (`TEST_DB_NAME`, `REDIS_DB_HOST`, `MYSQL_DB_USER`).
fn connection_part(name: &str) -> Option<(Part, bool)> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper.split('_').collect();
    let other =
        |word: &&str| OTHER_DATABASE_WORDS.contains(word) || OTHER_SERVER_WORDS.contains(word);
    if words.iter().any(other) {
        return None;
    }
    let part = |word: &str| {
        Some(match word {
            "HOST" | "SERVER" | "HOSTNAME" => Part::Host,
            "PORT" => Part::Port,
            "USER" | "USERNAME" => Part::User,
            "PASSWORD" | "PASS" | "PWD" => Part::Password,
            "NAME" | "DB" | "DATABASE" | "DBNAME" => Part::Database,
            _ => return None,
        })
    };
    let (last, before) = words.split_last()?;
    if let (Some(prefix), Some(part)) = (before.last(), part(last)) {
        if PART_PREFIXES.contains(prefix) {
            return Some((part, POSTGRES_PREFIXES.contains(prefix)));
        }
    }
    Some((part(last.strip_prefix("PG")?)?, true))
}

/// A MongoDB variable (`MONGO_URI`, `MONGODB_URL`).
fn is_mongo_variable(name: &str) -> bool {
    name.to_ascii_uppercase().contains("MONGO")
}

/// A variable named for a relational database (`POSTGRES_URL`, `SQLALCHEMY_DATABASE_URI`).
fn is_sql_variable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let sql = [
        "POSTGRES",
        "POSTGRESQL",
        "PG",
        "PSQL",
        "SQL",
        "SQLALCHEMY",
        "SQLITE",
        "MYSQL",
    ];
    upper.split('_').any(|word| sql.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Detection on a throwaway project made of `files` (path, content).
    fn detect_in(files: &[(&str, &str)]) -> Option<DatabaseNeed> {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        detect(&Project::open(dir.path()).unwrap())
    }

    /// Detection that must find a need.
    fn need(files: &[(&str, &str)]) -> DatabaseNeed {
        detect_in(files).expect("a database need")
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// A web app with no database library needs nothing.
    #[test]
    fn nothing_without_a_database_library() {
        let files = [
            ("requirements.txt", "flask==3.0\nrequests\n"),
            (
                "app.py",
                "import os\nfrom flask import Flask\nPORT = os.getenv('PORT')\n",
            ),
            (".env.example", "PORT=5000\nREDIS_URL=redis://localhost\n"),
        ];
        assert_eq!(detect_in(&files), None);
        let express = [
            ("package.json", r#"{"dependencies": {"express": "^4"}}"#),
            ("index.js", "const express = require('express');\n"),
        ];
        assert_eq!(detect_in(&express), None);
    }

    /// FastAPI + SQLAlchemy reading `database_url` from a pydantic settings class.
    #[test]
    fn sqlalchemy_with_a_settings_class() {
        let n = need(&[
            (
                "app/core/config.py",
                "from pydantic_settings import BaseSettings\n\n\
                 class Settings(BaseSettings):\n    \
                 app_name: str = \"api\"\n    \
                 database_url: str = \"sqlite:///./app.db\"\n\n\
                 settings = Settings()\n",
            ),
            (
                "app/db.py",
                "from sqlalchemy import create_engine\n\
                 from sqlalchemy.orm import sessionmaker\n\
                 from app.core.config import settings\n\
                 engine = create_engine(settings.database_url)\n",
            ),
            ("requirements.txt", "fastapi\nSQLAlchemy==2.0.30\n"),
        ]);
        assert_eq!(n.wants, Wants::Sql);
        assert_eq!(n.library, "sqlalchemy");
        assert_eq!(n.driver, None);
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert_eq!(
            n.reason,
            "app/db.py imports sqlalchemy; app/core/config.py reads DATABASE_URL"
        );
    }

    /// A settings class's `env_prefix` is part of the variable's name; upper-case fields too.
    #[test]
    fn settings_env_prefix_and_upper_case_fields() {
        let n = need(&[(
            "config.py",
            "import sqlalchemy\nfrom pydantic_settings import BaseSettings, SettingsConfigDict\n\
             class Settings(BaseSettings):\n    \
             model_config = SettingsConfigDict(env_prefix=\"APP_\")\n    \
             SQLALCHEMY_DATABASE_URI: str\n    \
             secret_key: str = \"x\"\n",
        )]);
        assert_eq!(n.variables, strings(&["APP_SQLALCHEMY_DATABASE_URI"]));
    }

    /// `create_async_engine` with asyncpg listed: PostgreSQL through asyncpg.
    #[test]
    fn async_engine_with_asyncpg() {
        let n = need(&[
            (
                "app/database.py",
                "import os\nfrom sqlalchemy.ext.asyncio import create_async_engine\n\
                 engine = create_async_engine(os.environ[\"DATABASE_URL\"])\n",
            ),
            (
                "requirements.txt",
                "fastapi\nsqlalchemy[asyncio]>=2\nasyncpg==0.29\n",
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "sqlalchemy");
        assert_eq!(n.driver.as_deref(), Some("asyncpg"));
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert!(
            n.reason.contains("requirements.txt lists asyncpg"),
            "{}",
            n.reason
        );
    }

    /// A `postgresql+asyncpg` URL names the driver even when nothing lists it.
    #[test]
    fn asyncpg_from_the_url_scheme() {
        let n = need(&[
            ("db.py", "from sqlalchemy.ext.asyncio import AsyncSession\n"),
            (
                ".env.example",
                "DATABASE_URL=postgresql+asyncpg://user:pass@localhost/app\n",
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.driver.as_deref(), Some("asyncpg"));
        assert_eq!(
            n.reason,
            "db.py imports sqlalchemy; .env.example has a postgresql+asyncpg URL; \
             .env.example names DATABASE_URL"
        );
    }

    /// SQLite through aiosqlite: from the URL, or from an async engine on SQLite.
    #[test]
    fn aiosqlite_driver() {
        let by_url = need(&[(
            "db.py",
            "from sqlalchemy.ext.asyncio import create_async_engine\n\
             import os\nURL = os.getenv('DATABASE_URL', 'sqlite+aiosqlite:///./app.db')\n",
        )]);
        assert_eq!(by_url.wants, Wants::Sql);
        assert_eq!(by_url.driver.as_deref(), Some("aiosqlite"));
        let by_engine = need(&[(
            "db.py",
            "from sqlalchemy.ext.asyncio import create_async_engine\nengine = create_async_engine(URL)\n",
        )]);
        assert_eq!(by_engine.wants, Wants::Sql);
        assert_eq!(by_engine.driver.as_deref(), Some("aiosqlite"));
        let sync = need(&[("db.py", "from sqlalchemy import create_engine\n")]);
        assert_eq!(sync.driver, None);
    }

    /// psycopg 3 listed (and not psycopg2): SQLAlchemy needs `postgresql+psycopg`.
    #[test]
    fn psycopg3_driver() {
        let n = need(&[
            ("app/models.py", "from sqlmodel import SQLModel, Field\n"),
            (
                "pyproject.toml",
                "[project]\nname = \"app\"\ndependencies = [\"sqlmodel>=0.0.21\", \"psycopg[binary]<4.0\"]\n",
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "sqlmodel");
        assert_eq!(n.driver.as_deref(), Some("psycopg"));
        assert!(
            n.reason.contains("pyproject.toml lists psycopg"),
            "{}",
            n.reason
        );

        let both = need(&[
            (
                "app/models.py",
                "from sqlalchemy.orm import declarative_base\n",
            ),
            ("requirements.txt", "psycopg2-binary\npsycopg\n"),
        ]);
        assert_eq!(both.wants, Wants::Postgres);
        assert_eq!(both.driver, None, "psycopg2 is SQLAlchemy's default driver");
    }

    /// The full-stack-fastapi-template builds its URL with `scheme="postgresql+psycopg"`.
    #[test]
    fn psycopg3_from_a_built_url() {
        let n = need(&[
            ("backend/app/core/db.py", "from sqlmodel import Session, create_engine\n"),
            (
                "backend/app/core/config.py",
                "from pydantic_settings import BaseSettings\nfrom pydantic_core import MultiHostUrl\n\
                 class Settings(BaseSettings):\n    POSTGRES_SERVER: str\n    \
                 def SQLALCHEMY_DATABASE_URI(self):\n        \
                 return MultiHostUrl.build(scheme=\"postgresql+psycopg\", host=self.POSTGRES_SERVER)\n",
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "sqlmodel");
        assert_eq!(n.driver.as_deref(), Some("psycopg"));
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert!(n.reason.ends_with(
            "no database URL variable found, DATABASE_URL assumed; \
             backend/app/core/config.py reads POSTGRES_SERVER"
        ));
    }

    /// Poetry dependency tables (with extras) count like requirement lines.
    #[test]
    fn poetry_dependencies() {
        let n = need(&[(
            "pyproject.toml",
            "[tool.poetry.dependencies]\npython = \"^3.11\"\n\
             sqlalchemy = { version = \"^2\", extras = [\"postgresql_asyncpg\"] }\n",
        )]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "sqlalchemy");
        assert!(n
            .reason
            .contains("pyproject.toml lists sqlalchemy[postgresql_asyncpg]"));
    }

    /// startproject's settings: SQLite, no URL read, still a need for Django.
    #[test]
    fn django_with_plain_sqlite() {
        let n = need(&[
            ("manage.py", "import os\nimport django\n"),
            (
                "mysite/settings.py",
                "from pathlib import Path\nBASE_DIR = Path(__file__).resolve().parent.parent\n\
                 DATABASES = {\n    'default': {\n        \
                 'ENGINE': 'django.db.backends.sqlite3',\n        \
                 'NAME': BASE_DIR / 'db.sqlite3',\n    }\n}\n",
            ),
            ("requirements.txt", "Django>=5\n"),
        ]);
        assert_eq!(n.wants, Wants::Sql);
        assert_eq!(n.library, "django");
        assert_eq!(n.driver, None);
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert_eq!(
            n.reason,
            "mysite/settings.py sets DATABASES; no database URL variable found, DATABASE_URL assumed"
        );
    }

    /// `dj_database_url.config()` reads DATABASE_URL; psycopg2 makes it PostgreSQL.
    #[test]
    fn django_with_dj_database_url() {
        let n = need(&[
            (
                "project/settings.py",
                "import dj_database_url\nfrom sqlalchemy import text\n\
                 DATABASES = {'default': dj_database_url.config(default='sqlite:///db.sqlite3', conn_max_age=600)}\n",
            ),
            ("requirements.txt", "django\ndj-database-url\npsycopg2-binary\n"),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "django", "Django's settings win over SQLAlchemy");
        assert_eq!(n.driver, None);
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert_eq!(
            n.reason,
            "project/settings.py sets DATABASES; requirements.txt lists psycopg2-binary; \
             project/settings.py reads DATABASE_URL"
        );
    }

    /// django-environ's `env.db()` (DATABASE_URL) and `env.db("X")`.
    #[test]
    fn django_environ() {
        let n = need(&[
            (
                "config/settings/base.py",
                "import environ\nenv = environ.Env()\nDATABASES = {\"default\": env.db()}\n",
            ),
            (
                ".env.example",
                "DATABASE_URL=postgres://postgres:postgres@db:5432/app\n",
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "django");
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert!(
            n.reason.contains(".env.example has a postgres URL"),
            "{}",
            n.reason
        );

        let named = need(&[(
            "settings.py",
            "DATABASES = {'default': env.db('PRIMARY_DATABASE_URL')}\n\
             DATABASES['default']['ENGINE'] = 'django.db.backends.postgresql'\n",
        )]);
        assert_eq!(named.wants, Wants::Postgres);
        assert_eq!(named.variables, strings(&["PRIMARY_DATABASE_URL"]));
    }

    /// Listings and compose services do not outweigh SQLite hardcoded in the code.
    #[test]
    fn hardcoded_sqlite_beats_hints_outside_the_code() {
        let n = need(&[
            (
                "mysite/settings.py",
                "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': 'db.sqlite3'}}\n",
            ),
            ("requirements.txt", "django\npsycopg2-binary\n"),
            ("docker-compose.yml", "services:\n  db:\n    image: postgres:16\n"),
        ]);
        assert_eq!(n.wants, Wants::Sql);
        assert_eq!(n.library, "django");
        assert!(
            n.reason
                .contains("mysite/settings.py uses django.db.backends.sqlite3"),
            "{}",
            n.reason
        );

        // The same hints win once the code reads a URL variable.
        let n = need(&[
            (
                "app.py",
                "import os\nfrom flask_sqlalchemy import SQLAlchemy\n\
                 SQLALCHEMY_DATABASE_URI = os.environ.get('DATABASE_URL', 'sqlite:///app.db')\n",
            ),
            ("requirements.txt", "flask-sqlalchemy\npsycopg2-binary\n"),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
    }

    /// Flask-SQLAlchemy with `os.environ.get("DATABASE_URL", "sqlite:///...")`.
    #[test]
    fn flask_sqlalchemy() {
        let n = need(&[
            (
                "config.py",
                "import os\nclass Config:\n    \
                 SQLALCHEMY_DATABASE_URI = os.environ.get(\"DATABASE_URL\", \"sqlite:///\" + os.path.join(basedir, \"app.db\"))\n",
            ),
            (
                "app/__init__.py",
                "from flask import Flask\nfrom flask_sqlalchemy import SQLAlchemy\nfrom flask_migrate import Migrate\n\
                 app.config[\"SQLALCHEMY_DATABASE_URI\"] = app.config.get(\"SQLALCHEMY_DATABASE_URI\")\n",
            ),
            ("requirements.txt", "Flask-SQLAlchemy==3.1\n"),
        ]);
        assert_eq!(n.wants, Wants::Sql);
        assert_eq!(n.library, "sqlalchemy");
        assert_eq!(
            n.variables,
            strings(&["DATABASE_URL"]),
            "config keys are not env reads"
        );
        assert_eq!(
            n.reason,
            "app/__init__.py imports flask_sqlalchemy; config.py reads DATABASE_URL"
        );
    }

    /// Prisma: the datasource provider decides, `env("X")` gives the variables.
    #[test]
    fn prisma_providers() {
        let schema = |provider: &str| {
            format!(
                "generator client {{\n  provider = \"prisma-client-js\"\n}}\n\n\
                 datasource db {{\n  provider  = \"{provider}\"\n  url       = env(\"DATABASE_URL\")\n  \
                 directUrl = env(\"DIRECT_URL\")\n}}\n"
            )
        };
        let package = r#"{"dependencies": {"@prisma/client": "^5", "express": "^4"}, "devDependencies": {"prisma": "^5"}}"#;
        let postgres = schema("postgresql");
        let n = need(&[
            ("package.json", package),
            ("prisma/schema.prisma", &postgres),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "prisma");
        assert_eq!(n.variables, strings(&["DATABASE_URL", "DIRECT_URL"]));
        assert_eq!(
            n.reason,
            "prisma/schema.prisma declares a postgresql datasource; prisma/schema.prisma reads DATABASE_URL"
        );
        assert_eq!(
            n.postgres_only.as_deref(),
            Some(
                "prisma/schema.prisma declares a postgresql datasource, which takes no SQLite URL"
            )
        );

        // A sqlite schema stays on SQLite, whatever else the project lists.
        let sqlite = schema("sqlite");
        let with_pg = package.replace("\"express\"", "\"pg\"");
        let n = need(&[
            ("package.json", &with_pg),
            ("prisma/schema.prisma", &sqlite),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Sql, "prisma"));

        let mongo = schema("mongodb");
        let n = need(&[("package.json", package), ("prisma/schema.prisma", &mongo)]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Mongo, "prisma"));
        assert_eq!(n.variables, strings(&["DATABASE_URL", "DIRECT_URL"]));
    }

    /// Sequelize from `process.env.DATABASE_URL` with dialect 'postgres', and on SQLite.
    #[test]
    fn sequelize() {
        let n = need(&[
            (
                "package.json",
                r#"{"dependencies": {"express": "^4", "sequelize": "^6", "pg": "^8", "pg-hstore": "^2"}}"#,
            ),
            (
                "src/db.js",
                "const { Sequelize } = require('sequelize');\n\
                 module.exports = new Sequelize(process.env.DATABASE_URL, { dialect: 'postgres' });\n",
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "sequelize", "the ORM over its driver");
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert_eq!(
            n.reason,
            "src/db.js imports sequelize; src/db.js sets dialect 'postgres'; src/db.js reads DATABASE_URL"
        );
        assert_eq!(
            n.postgres_only.as_deref(),
            Some("sequelize opens a SQLite file only through sqlite3 or better-sqlite3, which the project does not depend on"),
            "no SQLite fallback the app cannot open"
        );
        let with_sqlite = need(&[
            (
                "package.json",
                r#"{"dependencies": {"sequelize": "^6", "pg": "^8", "sqlite3": "^5"}}"#,
            ),
            (
                "src/db.js",
                "new Sequelize(process.env.DATABASE_URL, { dialect: 'postgres' });\n",
            ),
        ]);
        assert_eq!(with_sqlite.wants, Wants::Postgres);
        assert_eq!(
            with_sqlite.postgres_only, None,
            "sqlite3 opens the fallback"
        );

        let n = need(&[
            ("package.json", r#"{"dependencies": {"sequelize": "^6", "sqlite3": "^5"}}"#),
            (
                "models/index.js",
                "import { Sequelize } from 'sequelize';\nexport default new Sequelize({ dialect: 'sqlite', storage: 'db.sqlite' });\n",
            ),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Sql, "sequelize"));
    }

    /// sequelize-cli's `config/config.json` names the variable with `use_env_variable`.
    #[test]
    fn sequelize_cli_config() {
        let n = need(&[
            ("package.json", r#"{"dependencies": {"sequelize": "^6"}}"#),
            (
                "config/config.json",
                r#"{"production": {"use_env_variable": "DATABASE_URL", "dialect": "postgres"}}"#,
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert!(n
            .reason
            .contains("config/config.json sets dialect 'postgres'"));
    }

    /// knex: `client: 'pg'` is PostgreSQL, `client: 'sqlite3'` is not.
    #[test]
    fn knex() {
        let n = need(&[
            (
                "package.json",
                r#"{"dependencies": {"knex": "^3", "pg": "^8"}}"#,
            ),
            (
                "knexfile.js",
                "module.exports = {\n  client: 'pg',\n  connection: process.env.DB_URL,\n};\n",
            ),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Postgres, "knex"));
        assert_eq!(n.variables, strings(&["DB_URL"]));

        let n = need(&[
            ("package.json", r#"{"dependencies": {"knex": "^3", "sqlite3": "^5"}}"#),
            (
                "knexfile.js",
                "module.exports = { client: 'sqlite3', connection: { filename: './dev.sqlite3' } };\n",
            ),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Sql, "knex"));
    }

    /// The bare SQLite drivers are SQL libraries of their own (the URL is shaped for them);
    /// beside a PostgreSQL driver or an ORM, the other one shapes it.
    #[test]
    fn sqlite_drivers() {
        let n = need(&[
            (
                "package.json",
                r#"{"dependencies": {"express": "^4", "better-sqlite3": "^11"}}"#,
            ),
            (
                "db.js",
                "const Database = require('better-sqlite3');
                 module.exports = new Database(process.env.DATABASE_URL || 'app.db');
",
            ),
        ]);
        assert_eq!(
            (n.wants, n.library.as_str()),
            (Wants::Sql, "better-sqlite3")
        );
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));

        let n = need(&[(
            "package.json",
            r#"{"dependencies": {"sqlite": "^5", "sqlite3": "^5"}}"#,
        )]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Sql, "sqlite3"));

        let n = need(&[(
            "package.json",
            r#"{"dependencies": {"pg": "^8"}, "devDependencies": {"better-sqlite3": "^11"}}"#,
        )]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Postgres, "pg"));
        let n = need(&[(
            "package.json",
            r#"{"dependencies": {"knex": "^3", "better-sqlite3": "^11"}}"#,
        )]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Sql, "knex"));
    }

    /// TypeORM's `type: "postgres"`.
    #[test]
    fn typeorm() {
        let n = need(&[
            ("package.json", r#"{"dependencies": {"typeorm": "^0.3", "pg": "^8"}}"#),
            (
                "src/data-source.ts",
                "import { DataSource } from \"typeorm\";\nexport const AppDataSource = new DataSource({\n  \
                 type: \"postgres\",\n  url: process.env.DATABASE_URL,\n});\n",
            ),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Postgres, "typeorm"));
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
    }

    /// node-postgres alone: PostgreSQL, library "pg".
    #[test]
    fn node_postgres_alone() {
        let n = need(&[
            (
                "package.json",
                r#"{"dependencies": {"express": "^4", "pg": "^8"}}"#,
            ),
            (
                "db.js",
                "const { Pool } = require('pg');\nconst { DATABASE_URL, PORT } = process.env;\n\
                 const pool = new Pool({ connectionString: DATABASE_URL });\n",
            ),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Postgres, "pg"));
        assert_eq!(n.driver, None);
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert_eq!(n.reason, "db.js imports pg; db.js reads DATABASE_URL");
    }

    /// asyncpg alone (no ORM).
    #[test]
    fn asyncpg_alone() {
        let n = need(&[(
            "main.py",
            "import asyncpg\nimport os\npool = await asyncpg.create_pool(os.getenv('POSTGRES_DSN'))\n",
        )]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Postgres, "asyncpg"));
        assert_eq!(n.driver, None, "only SQLAlchemy URLs carry a driver");
        assert_eq!(n.variables, strings(&["POSTGRES_DSN"]));
    }

    /// Tortoise and Peewee are relational libraries too.
    #[test]
    fn tortoise_and_peewee() {
        let n = need(&[
            (
                "app/main.py",
                "import os\nfrom tortoise.contrib.fastapi import register_tortoise\n\
                 register_tortoise(app, db_url=os.environ['DATABASE_URL'])\n",
            ),
            (".env.sample", "DATABASE_URL=postgres://u:p@localhost/app\n"),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Postgres, "tortoise"));

        let n = need(&[(
            "models.py",
            "from peewee import *\ndb = SqliteDatabase('people.db')\n",
        )]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Sql, "peewee"));
        let n = need(&[(
            "models.py",
            "import peewee\ndb = peewee.PostgresqlDatabase('app')\n",
        )]);
        assert_eq!(n.wants, Wants::Postgres);
    }

    /// mongoose reading MONGO_URI.
    #[test]
    fn mongoose() {
        let n = need(&[
            ("package.json", r#"{"dependencies": {"express": "^4", "mongoose": "^8"}}"#),
            (
                "server.js",
                "const mongoose = require(\"mongoose\");\nmongoose.connect(process.env.MONGO_URI);\n",
            ),
            (".env.example", "PORT=3000\nMONGO_URI=mongodb://localhost:27017/app\n"),
        ]);
        assert_eq!(n.wants, Wants::Mongo);
        assert_eq!(n.library, "mongoose");
        assert_eq!(n.driver, None);
        assert_eq!(n.variables, strings(&["MONGO_URI"]));
        assert_eq!(
            n.reason,
            "server.js imports mongoose; server.js reads MONGO_URI"
        );
    }

    /// Beanie over motor, reading `mongodb_url` from settings; SQL-named variables left out.
    #[test]
    fn beanie_over_motor() {
        let n = need(&[
            (
                "app/config.py",
                "from pydantic_settings import BaseSettings\nclass Settings(BaseSettings):\n    \
                 mongodb_url: str = 'mongodb://localhost:27017'\n    postgres_url: str = ''\n",
            ),
            (
                "app/db.py",
                "from motor.motor_asyncio import AsyncIOMotorClient\nfrom beanie import init_beanie\n",
            ),
            ("requirements.txt", "motor\nbeanie\n"),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Mongo, "beanie"));
        assert_eq!(n.variables, strings(&["MONGODB_URL"]));
    }

    /// MongoDB is reported only when no relational library is used; Mongo variables are then
    /// left out.
    #[test]
    fn sql_wins_over_mongo() {
        let n = need(&[
            (
                "app.py",
                "import pymongo\nimport sqlalchemy\nimport os\nos.getenv('MONGO_URL')\n",
            ),
            (
                ".env.example",
                "MONGO_URL=mongodb://localhost\nDATABASE_URL=sqlite:///x.db\n",
            ),
        ]);
        assert_eq!((n.wants, n.library.as_str()), (Wants::Sql, "sqlalchemy"));
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
    }

    /// Postgres wins over Sql: a compose `postgres` image upgrades an SQLAlchemy project that
    /// reads its URL from the environment.
    #[test]
    fn compose_postgres_service() {
        let n = need(&[
            ("app/db.py", "import os\nimport sqlalchemy\nURL = os.environ['DATABASE_URL']\n"),
            (
                "docker-compose.yml",
                "services:\n  api:\n    environment:\n      - DATABASE_URL=${DATABASE_URL}\n  \
                 db:\n    image: \"postgres:16-alpine\"\n    environment:\n      POSTGRES_DB: app\n",
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(
            n.reason,
            "app/db.py imports sqlalchemy; docker-compose.yml runs the postgres:16-alpine image; \
             app/db.py reads DATABASE_URL"
        );
    }

    /// Variables: read in the code, then named in an env file, then set in compose; each
    /// kind in file order (`.env.example` sorts before `a.env`); duplicates once.
    #[test]
    fn variables_in_order_of_confidence() {
        let n = need(&[
            ("a.env", "DB_URL=sqlite:///a.db\n"),
            (
                ".env.example",
                "SQLALCHEMY_DATABASE_URI=\nDATABASE_URL=\nTEST_DATABASE_URL=\n",
            ),
            (
                "compose.yaml",
                "services:\n  app:\n    environment:\n      ASYNC_DATABASE_URL: x\n",
            ),
            (
                "src/settings.py",
                "import sqlalchemy, os\nfrom decouple import config\n\
                 URL = config('DATABASE_URL')\nRO = os.environ.get(\"READONLY_DATABASE_URL\")\n",
            ),
        ]);
        assert_eq!(
            n.variables,
            strings(&[
                "DATABASE_URL",
                "READONLY_DATABASE_URL",
                "SQLALCHEMY_DATABASE_URI",
                "DB_URL",
                "ASYNC_DATABASE_URL",
            ])
        );
        assert!(
            n.reason.ends_with("src/settings.py reads DATABASE_URL"),
            "{}",
            n.reason
        );

        let only_example = need(&[
            ("db.py", "from sqlalchemy import create_engine\n"),
            (".env.example", "PORT=8000\nDB_URI=sqlite:///x.db\n"),
        ]);
        assert_eq!(only_example.variables, strings(&["DB_URI"]));
        assert!(only_example.reason.ends_with(".env.example names DB_URI"));
    }

    /// Requirements for tests (files, pyproject groups) do not count; a settings field with
    /// an alias is read under the alias only.
    #[test]
    fn test_requirements_and_aliases() {
        let n = need(&[
            (
                "app/settings.py",
                "from pydantic import Field
from pydantic_settings import BaseSettings
                 class Settings(BaseSettings):
                     database_url: str = Field(\"sqlite:///x.db\", alias=\"DB_URL\")
",
            ),
            (
                "app/db.py",
                "import sqlalchemy
",
            ),
            (
                "requirements-test.txt",
                "psycopg2-binary
",
            ),
            (
                "requirements/test.txt",
                "asyncpg
",
            ),
            (
                "pyproject.toml",
                "[dependency-groups]
test = [\"psycopg\"]
                 [tool.poetry.group.testing.dependencies]
asyncpg = \"*\"
",
            ),
        ]);
        assert_eq!(n.wants, Wants::Sql);
        assert_eq!(n.variables, strings(&["DB_URL"]));
    }

    /// Tests, dependencies and virtual environments say nothing about the app.
    #[test]
    fn ignored_folders_and_files() {
        let files = [
            ("app.py", "from flask import Flask\n"),
            ("tests/test_db.py", "import sqlalchemy\n"),
            ("conftest.py", "import sqlalchemy\n"),
            (
                "node_modules/pg/package.json",
                r#"{"dependencies": {"pg": "^8"}}"#,
            ),
            ("env/pyvenv.cfg", "home = /usr/bin\n"),
            (
                "env/lib/python3.12/sqlalchemy/__init__.py",
                "import sqlalchemy\n",
            ),
            ("src/db.test.js", "require('mongoose')\n"),
        ];
        assert_eq!(detect_in(&files), None);

        // An aiosqlite URL only in the tests does not make the app's driver aiosqlite.
        let n = need(&[
            ("app/db.py", "from sqlalchemy import create_engine\n"),
            (
                "tests/conftest.py",
                "URL = 'sqlite+aiosqlite:///:memory:'\n",
            ),
        ]);
        assert_eq!(n.driver, None);
    }

    /// Commented-out URLs and imports are not evidence.
    #[test]
    fn comments_are_ignored() {
        let n = need(&[(
            "database.py",
            "from sqlalchemy import create_engine\n\
             SQLALCHEMY_DATABASE_URL = \"sqlite:///./sql_app.db\"\n\
             # SQLALCHEMY_DATABASE_URL = \"postgresql://user:password@postgresserver/db\"\n\
             # import psycopg2\n",
        )]);
        assert_eq!(n.wants, Wants::Sql);
    }

    /// Files over the size bound are not read.
    #[test]
    fn large_files_are_skipped() {
        let mut big = "import sqlalchemy\n".to_string();
        big.push_str(&"x = 1\n".repeat(200_000));
        assert_eq!(detect_in(&[("generated.py", &big)]), None);
    }

    /// Broken manifests and odd bytes are skipped, not fatal.
    #[test]
    fn malformed_files_do_not_panic() {
        let files = [
            ("package.json", "{\"dependencies\": {\"pg\": "),
            ("pyproject.toml", "[project\ndependencies = ["),
            ("requirements.txt", "-r base.txt\n-e .\n# psycopg2\n[\n"),
            (
                "schema.prisma",
                "datasource db {\n  provider =\n  url = env(\n",
            ),
            (
                "settings.py",
                "DATABASES\nos.environ['\nenv.db(\nprocess.env.\n= process.env\n",
            ),
            ("index.js", "require(\"\nimport from 'x\n} = process.env\n"),
            ("docker-compose.yml", "image:\n-\n:\n"),
            (".env", "=\nexport\n"),
            (
                "weird.py",
                "\u{feff}import \u{e9}t\u{e9}\npostgres+\nsqlite://",
            ),
        ];
        let n = detect_in(&files);
        assert_eq!(n.map(|n| n.library), None);
    }

    /// Which names count as database URL variables.
    #[test]
    fn database_variable_names() {
        for name in [
            "DATABASE_URL",
            "DB_URL",
            "SQLALCHEMY_DATABASE_URI",
            "POSTGRES_URL",
            "PG_DSN",
            "MONGO_URI",
            "MONGODB_URL",
            "database_url",
            "DB_CONNECTION_STRING",
        ] {
            assert!(looks_like_database_variable(name), "{name}");
        }
        for name in [
            "PORT",
            "REDIS_URL",
            "DATABASE_NAME",
            "TEST_DATABASE_URL",
            "SHADOW_DATABASE_URL",
            "SUPABASE_URL",
            "DB-URL",
            "",
        ] {
            assert!(!looks_like_database_variable(name), "{name}");
        }
    }

    /// The settings of tiangolo/full-stack-fastapi-template (`backend/app/core/config.py`):
    /// split `POSTGRES_*` fields and a computed `PostgresDsn` built from them, read by no
    /// variable. PostgreSQL through psycopg 3, the split variables found, and only PostgreSQL
    /// will do.
    #[test]
    fn full_stack_fastapi_template_settings() {
        let config = r#"import secrets
import warnings
from typing import Annotated, Any, Literal

from pydantic import (
    AnyUrl,
    BeforeValidator,
    EmailStr,
    HttpUrl,
    PostgresDsn,
    computed_field,
    model_validator,
)
from pydantic_core import MultiHostUrl
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        # Use top level .env file (one level above ./backend/)
        env_file="../.env",
        env_ignore_empty=True,
        extra="ignore",
    )
    API_V1_STR: str = "/api/v1"
    SECRET_KEY: str = secrets.token_urlsafe(32)
    FRONTEND_HOST: str = "http://localhost:5173"
    ENVIRONMENT: Literal["local", "staging", "production"] = "local"
    PROJECT_NAME: str
    SENTRY_DSN: HttpUrl | None = None
    POSTGRES_SERVER: str
    POSTGRES_PORT: int = 5432
    POSTGRES_USER: str
    POSTGRES_PASSWORD: str = ""
    POSTGRES_DB: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def SQLALCHEMY_DATABASE_URI(self) -> PostgresDsn:
        return MultiHostUrl.build(
            scheme="postgresql+psycopg",
            username=self.POSTGRES_USER,
            password=self.POSTGRES_PASSWORD,
            host=self.POSTGRES_SERVER,
            port=self.POSTGRES_PORT,
            path=self.POSTGRES_DB,
        )

    SMTP_TLS: bool = True
    SMTP_PORT: int = 587
    SMTP_HOST: str | None = None
    SMTP_USER: str | None = None
    SMTP_PASSWORD: str | None = None
    EMAILS_FROM_NAME: EmailStr | None = None
    FIRST_SUPERUSER_PASSWORD: str


settings = Settings()  # type: ignore
"#;
        let pyproject = r#"[project]
name = "app"
dependencies = [
    "fastapi[standard]<1.0.0,>=0.114.2",
    "psycopg[binary]<4.0.0,>=3.1.13",
    "sqlmodel<1.0.0,>=0.0.21",
    "pydantic-settings<3.0.0,>=2.2.1",
]
"#;
        let n = need(&[
            ("backend/app/core/config.py", config),
            (
                "backend/app/core/db.py",
                "from sqlmodel import Session, create_engine, select\n\
                 from app.core.config import settings\n\
                 engine = create_engine(str(settings.SQLALCHEMY_DATABASE_URI))\n",
            ),
            ("backend/pyproject.toml", pyproject),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "sqlmodel");
        assert_eq!(n.driver.as_deref(), Some("psycopg"));
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert_eq!(
            n.parts,
            [
                ("POSTGRES_SERVER".to_string(), Part::Host),
                ("POSTGRES_PORT".to_string(), Part::Port),
                ("POSTGRES_USER".to_string(), Part::User),
                ("POSTGRES_PASSWORD".to_string(), Part::Password),
                ("POSTGRES_DB".to_string(), Part::Database),
            ]
        );
        assert_eq!(
            n.postgres_only.as_deref(),
            Some("backend/app/core/config.py uses PostgresDsn, which takes no SQLite URL")
        );
        assert_eq!(
            n.reason,
            "backend/app/core/db.py imports sqlmodel; backend/app/core/config.py uses PostgresDsn; \
             backend/app/core/config.py has a postgresql+psycopg URL; \
             no database URL variable found, DATABASE_URL assumed; \
             backend/app/core/config.py reads POSTGRES_SERVER, POSTGRES_PORT, POSTGRES_USER, \
             POSTGRES_PASSWORD, POSTGRES_DB"
        );
    }

    /// Express on node-postgres with its pool configured from `process.env.DB_*` (no URL):
    /// PostgreSQL (pg), the split variables in the order read, and only PostgreSQL will do;
    /// test and Redis names in `.env.example` are not the app's.
    #[test]
    fn express_reads_split_db_variables() {
        let n = need(&[
            (
                "package.json",
                r#"{"dependencies": {"express": "^4", "pg": "^8"}}"#,
            ),
            (
                "src/db.js",
                "const { Pool } = require('pg');\n\
                 const pool = new Pool({\n  host: process.env.DB_HOST,\n  \
                 port: Number(process.env.DB_PORT || 5432),\n  user: process.env.DB_USER,\n  \
                 password: process.env.DB_PASS,\n  database: process.env.DB_NAME,\n});\n\
                 module.exports = pool;\n",
            ),
            (
                ".env.example",
                "PORT=3000\nDB_HOST=localhost\nDB_NAME=app\nTEST_DB_NAME=app_test\nREDIS_HOST=x\n",
            ),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.library, "pg");
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert_eq!(
            n.parts,
            [
                ("DB_HOST".to_string(), Part::Host),
                ("DB_PORT".to_string(), Part::Port),
                ("DB_USER".to_string(), Part::User),
                ("DB_PASS".to_string(), Part::Password),
                ("DB_NAME".to_string(), Part::Database),
            ]
        );
        assert!(
            n.reason
                .ends_with("src/db.js reads DB_HOST, DB_PORT, DB_USER, DB_PASS, DB_NAME"),
            "{}",
            n.reason
        );
        assert!(
            n.postgres_only
                .as_deref()
                .is_some_and(|why| why.contains("(DB_HOST, DB_PORT")),
            "{:?}",
            n.postgres_only
        );
    }

    /// Split variables beside a URL variable are set too, but a SQLite URL may still stand in;
    /// `PG*` names in `.env.example` alone say PostgreSQL; a Django `DATABASES` built from
    /// `os.environ` reads its parts; MongoDB projects have none.
    #[test]
    fn split_variables_beside_urls_env_files_and_django() {
        let n = need(&[
            (
                "app.py",
                "import os\nimport sqlalchemy\nURL = os.environ.get('DATABASE_URL')\n\
                 HOST = os.getenv('POSTGRES_HOST', 'localhost')\n",
            ),
            (".env.example", "PGUSER=app\nPGPASSWORD=\n"),
        ]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert_eq!(
            n.parts,
            [
                ("POSTGRES_HOST".to_string(), Part::Host),
                ("PGUSER".to_string(), Part::User),
                ("PGPASSWORD".to_string(), Part::Password),
            ]
        );
        assert_eq!(n.postgres_only, None);
        assert!(
            n.reason.ends_with(
                "app.py reads DATABASE_URL; app.py reads POSTGRES_HOST; \
                 .env.example names PGUSER, PGPASSWORD"
            ),
            "{}",
            n.reason
        );

        let env_only = need(&[
            ("db.py", "import sqlalchemy\n"),
            (".env.example", "PGHOST=localhost\n"),
        ]);
        assert_eq!(env_only.wants, Wants::Postgres);

        let django = need(&[(
            "project/settings.py",
            "import os\nDATABASES = {\n    'default': {\n        \
             'ENGINE': 'django.db.backends.postgresql',\n        \
             'NAME': os.environ.get('DB_NAME'),\n        'USER': os.environ.get('DB_USER'),\n        \
             'PASSWORD': os.environ['DB_PASSWORD'],\n        'HOST': os.getenv('DB_HOST'),\n    }\n}\n",
        )]);
        assert_eq!(django.library, "django");
        let names: Vec<&str> = django.parts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST"]);
        assert!(django.postgres_only.is_some());

        let mongo = need(&[(
            "app.py",
            "import os, pymongo\nHOST = os.environ['DB_HOST']\n",
        )]);
        assert!(mongo.parts.is_empty());
    }

    /// A settings field typed `PostgresDsn` takes no SQLite URL, even read from a variable.
    #[test]
    fn postgres_dsn_field_is_postgres_only() {
        let n = need(&[(
            "config.py",
            "import sqlalchemy\nfrom pydantic import PostgresDsn\n\
             from pydantic_settings import BaseSettings\n\
             class Settings(BaseSettings):\n    database_url: PostgresDsn\n",
        )]);
        assert_eq!(n.wants, Wants::Postgres);
        assert_eq!(n.variables, strings(&["DATABASE_URL"]));
        assert!(n.parts.is_empty());
        assert_eq!(
            n.postgres_only.as_deref(),
            Some("config.py uses PostgresDsn, which takes no SQLite URL")
        );
    }

    /// Which names count as split connection variables, and which say PostgreSQL.
    #[test]
    fn split_variable_names() {
        for (name, part, postgres) in [
            ("POSTGRES_SERVER", Part::Host, true),
            ("POSTGRESQL_HOST", Part::Host, true),
            ("PGHOST", Part::Host, true),
            ("PG_PORT", Part::Port, true),
            ("PGDATABASE", Part::Database, true),
            ("pguser", Part::User, true),
            ("postgres_db", Part::Database, true),
            ("DB_HOSTNAME", Part::Host, false),
            ("DB_PASS", Part::Password, false),
            ("DB_PWD", Part::Password, false),
            ("DATABASE_USERNAME", Part::User, false),
            ("DB_DATABASE", Part::Database, false),
            ("SQL_DBNAME", Part::Database, false),
            ("APP_DB_NAME", Part::Database, false),
        ] {
            assert_eq!(connection_part(name), Some((part, postgres)), "{name}");
        }
        for name in [
            "DATABASE_URL",
            "HOST",
            "PORT",
            "SMTP_HOST",
            "REDIS_HOST",
            "REDIS_DB",
            "TEST_DB_NAME",
            "CACHE_DB_HOST",
            "MONGO_DB_HOST",
            "MYSQL_DB_USER",
            "DB_USER_ID",
            "POSTGRES_PASSWORD_FILE",
            "PGPASSFILE",
            "UPGRADE",
            "DB",
            "DB-HOST",
            "",
        ] {
            assert_eq!(connection_part(name), None, "{name}");
        }
    }

    /// Python import lines to top-level modules.
    #[test]
    fn python_import_lines() {
        assert_eq!(python_imports("import a.b as c, d"), ["a", "d"]);
        assert_eq!(
            python_imports("from sqlalchemy.orm import Session"),
            ["sqlalchemy"]
        );
        assert!(python_imports("from . import models").is_empty());
        assert!(python_imports("imports = 3").is_empty());
    }

    /// npm specifiers to packages.
    #[test]
    fn package_names() {
        assert_eq!(package_of("@prisma/client/runtime"), Some("@prisma/client"));
        assert_eq!(package_of("pg/lib/pool"), Some("pg"));
        assert_eq!(package_of("./db"), None);
        assert_eq!(package_of("node:fs"), None);
    }
}
