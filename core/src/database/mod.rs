//! A database for every preview, matching what its project expects. Generated backends almost
//! always need one, and an app that reads `DATABASE_URL` and finds nothing fails at import.
//!
//! What a project expects comes from its files ([`detect`]). By default (nothing else running)
//! a project on a library that runs on SQLite gets a SQLite file in its working dir; a project
//! that wants PostgreSQL gets a database and role of its own on the server `--postgres-url`
//! names. Either way the variables the project reads (`DATABASE_URL` unless it reads another)
//! are set to a URL in the form its library expects. A generation keeps its database across
//! relaunches; it goes when the generation is deleted or its preview expires.
//!
//! # Layout
//! - [`detect`]: what a project expects, from its files.
//! - `postgres`: databases and roles on a PostgreSQL server.

pub mod detect;
mod postgres;

use std::collections::BTreeMap;
use std::path::Path;

pub use detect::{DatabaseNeed, Wants};

/// The SQLite file of a preview, in its working dir.
pub const SQLITE_FILE: &str = "previewd.sqlite3";

/// Where a preview's database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Sqlite,
    Postgresql,
    /// Nothing: the project wants what this previewd cannot give (said why).
    None,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Sqlite => "sqlite",
            Provider::Postgresql => "postgresql",
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
}

impl Databases {
    /// With a PostgreSQL server when `postgres_url` names one.
    pub fn new(postgres_url: Option<&str>) -> Result<Databases, String> {
        Ok(Databases {
            postgres: postgres_url.map(postgres::Server::parse).transpose()?,
        })
    }

    /// Where a project with `need` gets its database, and why.
    pub fn provider(&self, need: &DatabaseNeed) -> (Provider, String) {
        match (need.wants, &self.postgres) {
            (Wants::Postgres, Some(server)) => (
                Provider::Postgresql,
                format!(
                    "a PostgreSQL database of its own on {}",
                    server.describe()
                ),
            ),
            (Wants::Postgres, None) if runs_on_sqlite(&need.library) => (
                Provider::Sqlite,
                format!(
                    "a SQLite file ({SQLITE_FILE}) in its working dir: it wants PostgreSQL, which previewd gets with --postgres-url, and {} runs on SQLite too",
                    need.library
                ),
            ),
            (Wants::Postgres, None) => (
                Provider::None,
                format!(
                    "none: {} needs PostgreSQL; start previewd with --postgres-url to give it one",
                    need.library
                ),
            ),
            (Wants::Sql, _) => (
                Provider::Sqlite,
                format!("a SQLite file ({SQLITE_FILE}) in its working dir"),
            ),
            (Wants::Mongo, _) => (
                Provider::None,
                format!(
                    "none: {} needs MongoDB, which previewd does not provide yet",
                    need.library
                ),
            ),
        }
    }

    /// Prepares the database of `generation_id` for a launch in `work_dir`.
    pub async fn provide(
        &self,
        generation_id: &str,
        need: &DatabaseNeed,
        work_dir: &Path,
    ) -> Result<Option<Provided>, String> {
        let (provider, what) = self.provider(need);
        let url = match (provider, &self.postgres) {
            (Provider::Postgresql, Some(server)) => {
                let made = server.ensure(&database_name(generation_id)).await?;
                server.url(postgres_scheme(need), &made)
            }
            (Provider::Sqlite, _) => sqlite_url(need, &work_dir.join(SQLITE_FILE)),
            _ => return Ok(None),
        };
        Ok(Some(Provided {
            env: need
                .variables
                .iter()
                .map(|name| (name.clone(), url.clone()))
                .collect(),
            summary: format!(
                "database: {what}, for {} in {} ({})",
                need.library,
                need.variables.join(", "),
                need.reason
            ),
        }))
    }

    /// Drops the PostgreSQL database and role of `generation_id`, if there are any (a SQLite
    /// file goes with the generation's folder); whether it had one.
    pub async fn drop_generation(&self, generation_id: &str) -> Result<bool, String> {
        match &self.postgres {
            Some(server) => server.drop(&database_name(generation_id)).await,
            None => Ok(false),
        }
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

/// Libraries that run on SQLite as well.
fn runs_on_sqlite(library: &str) -> bool {
    matches!(
        library,
        "sqlalchemy"
            | "sqlmodel"
            | "django"
            | "prisma"
            | "sequelize"
            | "knex"
            | "typeorm"
            | "tortoise"
            | "peewee"
    )
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
        // An async engine needs an async driver on SQLite too.
        (_, Some("aiosqlite" | "asyncpg")) => format!("sqlite+aiosqlite:///{file}"),
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
            variables: vec!["DATABASE_URL".into()],
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
        assert_eq!(url("prisma", None), "file:/data/g/previewd.sqlite3");
        assert_eq!(url("sequelize", None), "sqlite:/data/g/previewd.sqlite3");
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
        let with_server = Databases::new(Some("postgres://a:b@127.0.0.1/postgres")).unwrap();
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

    #[test]
    fn names_come_from_the_generation_id() {
        assert_eq!(
            database_name("0193AB-cd-ef"),
            "previewd_0193abcdef".to_string()
        );
    }
}
