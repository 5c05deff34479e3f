//! A database for every preview, matching what its project expects. Generated backends almost
//! always need one, and an app that reads `DATABASE_URL` and finds nothing fails at import.
//!
//! What a project expects comes from its files ([`detect`]). By default (nothing else running)
//! a project on a library that runs on SQLite gets a SQLite file in its working dir; a project
//! that wants PostgreSQL gets a database and role of its own on the server `--postgres-url`
//! names; a project that wants MongoDB gets a database and user of its own on the server
//! `--mongodb-url` names. Either way the variables the project reads (`DATABASE_URL`,
//! `MONGO_URL`, ... whichever it reads) are set to a URL in the form its library expects. A
//! PostgreSQL database is also given in split variables, for projects that build the URL
//! themselves: the ones the project reads (`POSTGRES_SERVER`, `DB_USER`, ...) and always
//! libpq's own `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE` (which libpq, psycopg
//! and node-postgres read when given nothing else). The SQLite file stands in for PostgreSQL
//! only where a SQLite URL can: not for a URL typed `PostgresDsn` nor for a project reading split
//! variables alone ([`DatabaseNeed::postgres_only`]). A generation keeps its database across
//! relaunches; it goes when the generation is deleted or its preview expires.
//!
//! # Layout
//! - [`detect`]: what a project expects, from its files.
//! - `postgres`: databases and roles on a PostgreSQL server.
//! - `mongo`: databases and users on a MongoDB server.

pub mod detect;
mod mongo;
mod postgres;

use std::collections::BTreeMap;
use std::path::Path;

pub use detect::{DatabaseNeed, Part, Wants};

/// The SQLite file of a preview, in its working dir.
pub const SQLITE_FILE: &str = "previewd.sqlite3";

/// libpq's own split variables, set for every PostgreSQL database: libpq, psycopg and
/// node-postgres (`new Pool()`) read them when the code names no server.
pub const LIBPQ_VARIABLES: [(&str, Part); 5] = [
    ("PGHOST", Part::Host),
    ("PGPORT", Part::Port),
    ("PGUSER", Part::User),
    ("PGPASSWORD", Part::Password),
    ("PGDATABASE", Part::Database),
];

/// The async SQLite driver of SQLAlchemy's async engines (a PyPI distribution and its module).
const AIOSQLITE: &str = "aiosqlite";
/// Length of the random passwords handed to previews.
const PASSWORD_LENGTH: usize = 32;

/// Where a preview's database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Sqlite,
    Postgresql,
    Mongodb,
    /// Nothing: the project wants what this previewd cannot give (said why).
    None,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Sqlite => "sqlite",
            Provider::Postgresql => "postgresql",
            Provider::Mongodb => "mongodb",
            Provider::None => "none",
        }
    }
}

/// A database handed to a preview.
pub struct Provided {
    /// Variables to set (they hold credentials: never logged).
    pub env: BTreeMap<String, String>,
    /// What it is, for the preview's log (no credentials).
    pub summary: String,
}

/// The database servers previewd may use.
#[derive(Clone, Default)]
pub struct Databases {
    postgres: Option<postgres::Server>,
    mongo: Option<mongo::Server>,
}

impl Databases {
    /// With a PostgreSQL server when `postgres_url` names one, a MongoDB server when
    /// `mongodb_url` does.
    pub fn new(postgres_url: Option<&str>, mongodb_url: Option<&str>) -> Result<Databases, String> {
        Ok(Databases {
            postgres: postgres_url.map(postgres::Server::parse).transpose()?,
            mongo: mongodb_url.map(mongo::Server::parse).transpose()?,
        })
    }

    /// Where a project with `need` gets its database, and why.
    pub fn provider(&self, need: &DatabaseNeed) -> (Provider, String) {
        match need.wants {
            Wants::Postgres => self.postgres_provider(need),
            Wants::Mongo => self.mongo_provider(need),
            Wants::Sql => (
                Provider::Sqlite,
                format!("a SQLite file ({SQLITE_FILE}) in its working dir"),
            ),
        }
    }

    fn postgres_provider(&self, need: &DatabaseNeed) -> (Provider, String) {
        match &self.postgres {
            Some(server) => (
                Provider::Postgresql,
                format!(
                    "a PostgreSQL database of its own on {}",
                    server.describe()
                ),
            ),
            None if need.postgres_only.is_none() && runs_on_sqlite(&need.library) => (
                Provider::Sqlite,
                format!(
                    "a SQLite file ({SQLITE_FILE}) in its working dir: it wants PostgreSQL, which previewd gets with --postgres-url, and {} runs on SQLite too",
                    need.library
                ),
            ),
            None => {
                let why = match &need.postgres_only {
                    Some(only) => format!("it needs PostgreSQL ({only})"),
                    None => format!("{} needs PostgreSQL", need.library),
                };
                (
                    Provider::None,
                    format!("none: {why}; start previewd with --postgres-url to give it one"),
                )
            }
        }
    }

    fn mongo_provider(&self, need: &DatabaseNeed) -> (Provider, String) {
        match &self.mongo {
            Some(server) => (
                Provider::Mongodb,
                format!("a MongoDB database of its own on {}", server.describe()),
            ),
            None => (
                Provider::None,
                format!(
                    "none: {} needs MongoDB; start previewd with --mongodb-url to give it one",
                    need.library
                ),
            ),
        }
    }

    /// The Python packages a launch of a project with `need` installs beside its own for the
    /// database it gets: aiosqlite for an async SQLAlchemy engine on the SQLite file, which a
    /// project written for asyncpg seldom lists.
    pub fn python_packages(&self, need: &DatabaseNeed) -> &'static [&'static str] {
        match self.provider(need).0 == Provider::Sqlite && needs_aiosqlite(need) {
            true => &[AIOSQLITE],
            false => &[],
        }
    }

    /// The variables a launch of a project with `need` gets, in the order the log names them:
    /// its URL variables, then for PostgreSQL its split variables and libpq's; empty when it
    /// gets no database.
    pub fn variables(&self, need: &DatabaseNeed) -> Vec<String> {
        let (provider, _) = self.provider(need);
        if provider == Provider::None {
            return Vec::new();
        }
        let mut names = need.variables.clone();
        if provider == Provider::Postgresql {
            let parts = need.parts.iter().map(|(name, _)| name.as_str());
            let libpq = LIBPQ_VARIABLES.iter().map(|(name, _)| *name);
            for name in parts.chain(libpq) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        names
    }

    /// Prepares the database of `generation_id` for a launch in `work_dir`.
    pub async fn provide(
        &self,
        generation_id: &str,
        need: &DatabaseNeed,
        work_dir: &Path,
    ) -> Result<Option<Provided>, String> {
        let (provider, what) = self.provider(need);
        let name = database_name(generation_id);
        let mut env = BTreeMap::new();
        let url = match (provider, &self.postgres, &self.mongo) {
            (Provider::Postgresql, Some(server), _) => {
                let made = server.ensure(&name).await?;
                env = split_variables(need, server, &made);
                server.url(postgres_scheme(need), &made)
            }
            (Provider::Mongodb, _, Some(server)) => server.url(&server.ensure(&name).await?),
            (Provider::Sqlite, _, _) => sqlite_url(need, &work_dir.join(SQLITE_FILE)),
            _ => return Ok(None),
        };
        for variable in &need.variables {
            env.insert(variable.clone(), url.clone());
        }
        Ok(Some(Provided {
            env,
            summary: format!(
                "database: {what}, for {} in {} ({})",
                need.library,
                self.variables(need).join(", "),
                need.reason
            ),
        }))
    }

    /// Drops the PostgreSQL database and role and the MongoDB database and user of
    /// `generation_id`, if there are any (a SQLite file goes with the generation's folder);
    /// whether it had one. Both servers are tried even when one fails.
    pub async fn drop_generation(&self, generation_id: &str) -> Result<bool, String> {
        let name = database_name(generation_id);
        let (postgres, mongo) = tokio::join!(
            async {
                match &self.postgres {
                    Some(server) => server.drop(&name).await,
                    None => Ok(false),
                }
            },
            async {
                match &self.mongo {
                    Some(server) => server.drop(&name).await,
                    None => Ok(false),
                }
            },
        );
        Ok(postgres? | mongo?)
    }
}

/// What the project in `project_dir` expects ([`detect`]); blocking: it reads the files.
pub fn need_of(project_dir: &Path) -> Option<DatabaseNeed> {
    let project = previewd_plugin_api::Project::open(project_dir).ok()?;
    detect::detect(&project)
}

/// The database and role name of a generation.
pub fn database_name(generation_id: &str) -> String {
    let id: String = generation_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("previewd_{id}")
}

/// A random password of [`PASSWORD_LENGTH`] letters and digits (nothing a URL must encode).
fn random_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LENGTH)
}

/// Whether `need`'s app opens a SQLite file through aiosqlite: an async SQLAlchemy engine needs
/// an async driver on SQLite too, whatever it uses on PostgreSQL.
fn needs_aiosqlite(need: &DatabaseNeed) -> bool {
    need.async_engine || need.driver.as_deref() == Some(AIOSQLITE)
}

/// Libraries that run on SQLite as well when the URL says so (not Prisma: its schema names one
/// provider).
fn runs_on_sqlite(library: &str) -> bool {
    matches!(
        library,
        "sqlalchemy"
            | "sqlmodel"
            | "django"
            | "sequelize"
            | "knex"
            | "typeorm"
            | "tortoise"
            | "peewee"
    )
}

/// The split variables of PostgreSQL database `made` on `server`: those `need` reads and
/// libpq's, each set to its part (the role's name is the database's too).
fn split_variables(
    need: &DatabaseNeed,
    server: &postgres::Server,
    made: &postgres::Made,
) -> BTreeMap<String, String> {
    let parts = need.parts.iter().map(|(name, part)| (name.as_str(), *part));
    parts
        .chain(LIBPQ_VARIABLES)
        .map(|(variable, part)| {
            let value = match part {
                Part::Host => server.host().to_string(),
                Part::Port => server.port().to_string(),
                Part::User | Part::Database => made.name.clone(),
                Part::Password => made.password.clone(),
            };
            (variable.to_string(), value)
        })
        .collect()
}

/// The URL scheme `need`'s library expects for PostgreSQL.
fn postgres_scheme(need: &DatabaseNeed) -> &'static str {
    match (need.library.as_str(), need.driver.as_deref()) {
        ("sqlalchemy" | "sqlmodel", Some("asyncpg")) => "postgresql+asyncpg",
        ("sqlalchemy" | "sqlmodel", Some("psycopg")) => "postgresql+psycopg",
        ("django", _) => "postgres",
        _ => "postgresql",
    }
}

/// The URL of the SQLite file `file` in the form `need`'s library expects.
fn sqlite_url(need: &DatabaseNeed, file: &Path) -> String {
    let file = file.display();
    match (need.library.as_str(), need.driver.as_deref()) {
        ("prisma", _) => format!("file:{file}"),
        ("sequelize" | "knex" | "typeorm", _) => format!("sqlite:{file}"),
        ("tortoise", _) => format!("sqlite://{file}"),
        // The bare drivers open a file path (`new Database(path)`); no URL form is theirs.
        ("better-sqlite3" | "sqlite3", _) => file.to_string(),
        _ if needs_aiosqlite(need) => format!("sqlite+aiosqlite:///{file}"),
        _ => format!("sqlite:///{file}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(wants: Wants, library: &str, driver: Option<&str>) -> DatabaseNeed {
        DatabaseNeed {
            wants,
            library: library.into(),
            driver: driver.map(String::from),
            async_engine: false,
            variables: vec!["DATABASE_URL".into()],
            parts: Vec::new(),
            postgres_only: None,
            reason: "test".into(),
        }
    }

    #[test]
    fn sqlite_urls_take_each_library_form() {
        let file = Path::new("/data/g/previewd.sqlite3");
        let url = |library, driver| sqlite_url(&need(Wants::Sql, library, driver), file);
        assert_eq!(
            url("sqlalchemy", None),
            "sqlite:////data/g/previewd.sqlite3"
        );
        assert_eq!(
            url("sqlalchemy", Some("aiosqlite")),
            "sqlite+aiosqlite:////data/g/previewd.sqlite3"
        );
        // An async engine on psycopg 3 needs aiosqlite on SQLite too.
        let mut async_psycopg = need(Wants::Postgres, "sqlalchemy", Some("psycopg"));
        async_psycopg.async_engine = true;
        assert_eq!(
            sqlite_url(&async_psycopg, file),
            "sqlite+aiosqlite:////data/g/previewd.sqlite3"
        );
        assert_eq!(url("prisma", None), "file:/data/g/previewd.sqlite3");
        assert_eq!(url("sequelize", None), "sqlite:/data/g/previewd.sqlite3");
        assert_eq!(url("better-sqlite3", None), "/data/g/previewd.sqlite3");
        assert_eq!(url("sqlite3", None), "/data/g/previewd.sqlite3");
    }

    #[tokio::test]
    async fn embedded_default_is_a_sqlite_file_in_every_variable() {
        let mut wanted = need(Wants::Sql, "sqlalchemy", None);
        wanted.variables.push("SQLALCHEMY_DATABASE_URI".into());
        let provided = Databases::default()
            .provide("g1", &wanted, Path::new("/p"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            provided.env["DATABASE_URL"],
            "sqlite:////p/previewd.sqlite3"
        );
        assert_eq!(
            provided.env["SQLALCHEMY_DATABASE_URI"],
            "sqlite:////p/previewd.sqlite3"
        );
        assert!(provided.summary.starts_with("database: a SQLite file"));
    }

    #[test]
    fn postgres_without_a_server_falls_back_or_says_why() {
        let databases = Databases::default();
        let (provider, _) = databases.provider(&need(Wants::Postgres, "sqlalchemy", None));
        assert_eq!(provider, Provider::Sqlite);
        let (provider, why) = databases.provider(&need(Wants::Postgres, "asyncpg", None));
        assert_eq!(provider, Provider::None);
        assert!(why.contains("--postgres-url"), "{why}");
        let with_server = Databases::new(Some("postgres://a:b@127.0.0.1/postgres"), None).unwrap();
        let (provider, why) = with_server.provider(&need(Wants::Postgres, "django", None));
        assert_eq!(provider, Provider::Postgresql);
        assert!(!why.contains(":b@"), "{why}");
        assert_eq!(
            postgres_scheme(&need(Wants::Postgres, "django", None)),
            "postgres"
        );
        assert_eq!(
            postgres_scheme(&need(Wants::Postgres, "sqlalchemy", Some("asyncpg"))),
            "postgresql+asyncpg"
        );
    }

    /// aiosqlite is installed for an async engine on the SQLite file only: not on PostgreSQL,
    /// not for a sync engine.
    #[test]
    fn aiosqlite_is_installed_for_async_engines_on_sqlite() {
        let mut async_pg = need(Wants::Postgres, "sqlalchemy", Some("asyncpg"));
        async_pg.async_engine = true;
        assert_eq!(
            Databases::default().python_packages(&async_pg),
            ["aiosqlite"]
        );
        let with_server = Databases::new(Some("postgres://a:b@127.0.0.1/postgres"), None).unwrap();
        assert!(with_server.python_packages(&async_pg).is_empty());
        let sync = need(Wants::Sql, "sqlalchemy", None);
        assert!(Databases::default().python_packages(&sync).is_empty());
    }

    /// A URL typed `PostgresDsn`, or split variables and no URL, take no SQLite stand-in: no
    /// database, and the reason says why and how to get one.
    #[test]
    fn postgres_only_projects_get_no_sqlite_file() {
        let mut wanted = need(Wants::Postgres, "sqlalchemy", Some("psycopg"));
        wanted.postgres_only =
            Some("app/core/config.py uses PostgresDsn, which takes no SQLite URL".into());
        let databases = Databases::default();
        let (provider, why) = databases.provider(&wanted);
        assert_eq!(provider, Provider::None);
        assert_eq!(
            why,
            "none: it needs PostgreSQL (app/core/config.py uses PostgresDsn, which takes no SQLite URL); \
             start previewd with --postgres-url to give it one"
        );
        assert!(databases.variables(&wanted).is_empty());
        let with_server = Databases::new(Some("postgres://a:b@127.0.0.1/postgres"), None).unwrap();
        assert_eq!(with_server.provider(&wanted).0, Provider::Postgresql);
    }

    /// On PostgreSQL, the split variables the project reads and libpq's get the host, port,
    /// role, password and database; the URL variables the URL; the log names them all.
    #[test]
    fn postgres_split_variables_get_their_parts() {
        let mut wanted = need(Wants::Postgres, "sqlalchemy", None);
        wanted.parts = vec![
            ("POSTGRES_SERVER".into(), Part::Host),
            ("POSTGRES_PORT".into(), Part::Port),
            ("POSTGRES_USER".into(), Part::User),
            ("POSTGRES_PASSWORD".into(), Part::Password),
            ("POSTGRES_DB".into(), Part::Database),
            ("PGHOST".into(), Part::Host),
        ];
        let databases =
            Databases::new(Some("postgres://a:b@10.0.0.7:5433/postgres"), None).unwrap();
        let server = databases.postgres.as_ref().unwrap();
        let made = postgres::Made {
            name: "previewd_g1".into(),
            password: "pw".into(),
        };
        let env = split_variables(&wanted, server, &made);
        let expected = [
            ("PGDATABASE", "previewd_g1"),
            ("PGHOST", "10.0.0.7"),
            ("PGPASSWORD", "pw"),
            ("PGPORT", "5433"),
            ("PGUSER", "previewd_g1"),
            ("POSTGRES_DB", "previewd_g1"),
            ("POSTGRES_PASSWORD", "pw"),
            ("POSTGRES_PORT", "5433"),
            ("POSTGRES_SERVER", "10.0.0.7"),
            ("POSTGRES_USER", "previewd_g1"),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env, expected);
        assert_eq!(
            databases.variables(&wanted).join(", "),
            "DATABASE_URL, POSTGRES_SERVER, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, \
             POSTGRES_DB, PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE"
        );
        // On the SQLite file, the URL variables alone.
        let mut on_sqlite = wanted.clone();
        on_sqlite.wants = Wants::Sql;
        assert_eq!(Databases::default().variables(&on_sqlite), ["DATABASE_URL"]);
    }

    #[test]
    fn mongo_goes_to_the_mongodb_server_or_says_how_to_get_one() {
        let mut wanted = need(Wants::Mongo, "pymongo", None);
        wanted.variables = vec!["MONGO_URL".into()];
        let (provider, why) = Databases::default().provider(&wanted);
        assert_eq!(provider, Provider::None);
        assert!(why.contains("--mongodb-url"), "{why}");
        assert!(why.contains("pymongo"), "{why}");

        let with_mongo =
            Databases::new(None, Some("mongodb://root:secret@127.0.0.1:27017/admin")).unwrap();
        let (provider, why) = with_mongo.provider(&wanted);
        assert_eq!(provider, Provider::Mongodb);
        assert_eq!(provider.as_str(), "mongodb");
        assert_eq!(why, "a MongoDB database of its own on 127.0.0.1:27017");
        // The MongoDB server changes nothing for relational projects.
        let (provider, _) = with_mongo.provider(&need(Wants::Postgres, "asyncpg", None));
        assert_eq!(provider, Provider::None);
        let (provider, _) = with_mongo.provider(&need(Wants::Sql, "sqlalchemy", None));
        assert_eq!(provider, Provider::Sqlite);
    }

    #[test]
    fn a_bad_mongodb_url_stops_start_up_with_the_flag_named() {
        let err = Databases::new(None, Some("mongo://root:secret@db"))
            .err()
            .unwrap();
        assert!(err.contains("--mongodb-url"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    /// Without a server for it, nothing is provided and nothing is contacted.
    #[tokio::test]
    async fn mongo_without_a_server_provides_nothing() {
        let provided = Databases::default()
            .provide("g1", &need(Wants::Mongo, "mongoose", None), Path::new("/p"))
            .await
            .unwrap();
        assert!(provided.is_none());
        assert!(!Databases::default().drop_generation("g1").await.unwrap());
    }

    #[test]
    fn passwords_are_long_and_plain() {
        let password = random_password();
        assert_eq!(password.len(), PASSWORD_LENGTH);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(password, random_password());
    }

    #[test]
    fn names_come_from_the_generation_id() {
        assert_eq!(
            database_name("0193AB-cd-ef"),
            "previewd_0193abcdef".to_string()
        );
    }
}
