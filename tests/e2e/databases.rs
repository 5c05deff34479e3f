//! A database per preview, against a real PostgreSQL (the harness's private cluster, see
//! `previewd_e2e::postgres`) and real apps: a Django app migrated by previewd and keeping its
//! rows in a database of its own, two generations walled off from each other, the database and
//! role dropped with their generation, a SQLAlchemy app on the embedded SQLite default whose
//! rows survive a relaunch, and the password nowhere in the logs or the API's answers.
//!
//! Fixtures: `tests/fixtures/db-django` (settings parse `DATABASE_URL`, model `Item(name)`, a
//! committed migration, `GET /items/`, `POST /items/new/`, and `GET /connection/`, which
//! answers with the credentials the app was given so a test can try them elsewhere) and
//! `tests/fixtures/db-sqlalchemy` (Flask + SQLAlchemy, `GET|POST /items`, `GET /database`),
//! `tests/fixtures/db-alembic` (Flask whose only table comes from its Alembic migration) and
//! `tests/fixtures/db-flask-migrate` (a Flask app factory whose only table comes from its
//! Flask-Migrate migration, `GET|POST /items`) and
//! `tests/fixtures/db-prisma` (Express + Prisma 7 on the pg driver adapter: the client
//! generated at install, `GET|POST /items`, `GET /database`) and
//! `tests/fixtures/db-split-settings` (FastAPI shaped like tiangolo/full-stack-fastapi-template:
//! split `POSTGRES_*` settings, a computed `PostgresDsn`, `GET|POST /items`, `GET /database`) and
//! `tests/fixtures/db-node-sqlite` (Express on better-sqlite3, whose native binding previewd
//! compiles at install, `GET|POST /items`, `GET /database`) and
//! `tests/fixtures/db-async-sqlalchemy` (FastAPI on an async SQLAlchemy engine written for
//! asyncpg, `GET|POST /items`, `GET /database`).
//!
//! MongoDB, on a real server when one can be had, is in [`mongo`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use previewd_e2e::fixture_runs::{app_json, envelope_answer};
use previewd_e2e::log_lines::{history, LogLine};
use previewd_e2e::postgres::{self, quote_literal, sql_as, Postgres};
use previewd_e2e::{Answer, Client, TestServer};
use serde_json::{json, Value};

use crate::LAUNCH_LIMIT;

/// A MongoDB database per preview.
mod mongo;

/// How long the core may take to drop a database after its generation is deleted.
const DROP_LIMIT: Duration = Duration::from_secs(30);

/// The process's PostgreSQL cluster (started, and installed, on first use; off the runtime's
/// threads, as it blocks).
async fn cluster() -> &'static Postgres {
    tokio::task::spawn_blocking(postgres::server)
        .await
        .expect("PostgreSQL cluster")
}

/// A test server given the cluster's admin URL as `--postgres-url`.
async fn server_with_postgres(pg: &Postgres) -> TestServer {
    let url = pg.url.clone();
    TestServer::start_with(move |c| c.postgres_url = Some(url)).await
}

/// The database, and role, of a generation: `previewd_<id without dashes>`.
fn database_of(generation: &str) -> String {
    format!("previewd_{}", generation.replace('-', ""))
}

/// A running preview: its launch answer and session token.
struct Launched {
    answer: Answer,
    session: String,
}

/// Launches `generation` with `{"migrate": migrate}` and waits until it runs.
async fn launch(client: &Client, generation: &str, migrate: bool) -> Launched {
    let answer = tokio::time::timeout(
        LAUNCH_LIMIT,
        client.post(
            &format!("/generations/{generation}/preview/launch?wait=true"),
            json!({"migrate": migrate}),
        ),
    )
    .await
    .expect("launch within the limit");
    if answer.status != 200 || answer.body["status"] != "running" {
        let log: Vec<String> = history(client, generation)
            .await
            .into_iter()
            .map(|l| format!("[{}] {}", l.stream, l.line))
            .collect();
        panic!(
            "launch of {generation}: {} {:?}\nlog:\n{}",
            answer.status,
            answer.body,
            log.join("\n")
        );
    }
    let session = answer.body["session_token"]
        .as_str()
        .expect("session token")
        .to_string();
    Launched { answer, session }
}

/// `POST path` with a JSON body through the envelope; the app must answer 201; its JSON.
async fn post_json(
    client: &Client,
    generation: &str,
    session: &str,
    path: &str,
    body: Value,
) -> Value {
    let request = json!({
        "method": "POST",
        "path": path,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    });
    let (code, answer) = envelope_answer(client, generation, session, request).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["status"], 201, "POST {path}: {answer}");
    serde_json::from_str(answer["body"].as_str().expect("text body")).expect("app JSON")
}

/// The names of the items an app lists at `path`, in order.
async fn item_names(client: &Client, generation: &str, session: &str, path: &str) -> Vec<String> {
    let listed = app_json(client, generation, session, path, json!({})).await;
    listed["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {listed}"))
        .iter()
        .map(|item| item["name"].as_str().expect("name").to_string())
        .collect()
}

/// Checks that `GET path` lists the items `expected`, in order.
async fn assert_items(
    client: &Client,
    generation: &str,
    session: &str,
    path: &str,
    expected: &[&str],
) {
    assert_eq!(
        item_names(client, generation, session, path).await,
        expected
    );
}

/// Creates the items `names` with `POST create_path`, then checks that `GET list_path` lists
/// just them, in order.
async fn create_and_list(
    client: &Client,
    generation: &str,
    session: &str,
    create_path: &str,
    list_path: &str,
    names: &[&str],
) {
    for name in names {
        create_item(client, generation, session, create_path, name).await;
    }
    assert_items(client, generation, session, list_path, names).await;
}

/// Creates item `name` with `POST path` and checks the app's answer names it.
async fn create_item(client: &Client, generation: &str, session: &str, path: &str, name: &str) {
    let created = post_json(client, generation, session, path, json!({"name": name})).await;
    assert_eq!(created["name"], name, "{created}");
}

/// What the Django app was given: `/connection/`.
async fn django_connection(client: &Client, generation: &str, session: &str) -> Value {
    app_json(client, generation, session, "/connection/", json!({})).await
}

/// The `database` object of a generation's `/config`.
async fn config_database(client: &Client, generation: &str) -> Value {
    let config = client
        .get(&format!("/generations/{generation}/preview/config"))
        .await;
    assert_eq!(config.status, 200, "{:?}", config.body);
    config.body["database"].clone()
}

/// The stored `system` lines of a generation.
fn system_lines(log: &[LogLine]) -> Vec<&LogLine> {
    log.iter().filter(|l| l.stream == "system").collect()
}

/// The first `system` line of `log` that `matches`; the test fails naming `what`, with the
/// log, when there is none.
fn system_line<'a>(log: &'a [LogLine], matches: impl Fn(&str) -> bool, what: &str) -> &'a LogLine {
    system_lines(log)
        .into_iter()
        .find(|l| matches(&l.line))
        .unwrap_or_else(|| panic!("no system line {what}:\n{}", log_text(log)))
}

/// Checks that `object` has each of `expected`'s fields, with its value.
fn assert_fields(object: &Value, expected: Value) {
    for (key, value) in expected.as_object().expect("expected fields") {
        assert_eq!(&object[key], value, "{key} in {object}");
    }
}

/// The log as text, for failure messages.
fn log_text(log: &[LogLine]) -> String {
    log.iter()
        .map(|l| format!("#{} [{}] {}", l.seq, l.stream, l.line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every file called `name` under `dir`.
fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if entry.file_name() == name {
                found.push(path);
            }
        }
    }
    found
}

/// The Django app launched with `"migrate": true` on a server with `--postgres-url`: the
/// migration's output is in the log as system lines (before the app is healthy), the database
/// line names the library and variable, and a row created through the app is in the
/// generation's own database `previewd_<id>`, owned by the role of the same name, which is
/// what the app connects as.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_migrates_and_keeps_rows_in_its_own_postgres_database() {
    let pg = cluster().await;
    let server = server_with_postgres(pg).await;
    let client = server.client("django-db");
    let generation = client.upload_fixture("db-django").await;
    let database = database_of(&generation);

    let launched = launch(&client, &generation, true).await;
    let log = history(&client, &generation).await;
    let migrated = system_line(
        &log,
        |l| l.contains("Applying items.0001_initial"),
        "with the migration's output",
    );
    system_line(
        &log,
        |l| l.contains("Running migrations"),
        "of Django's migrate",
    );
    assert!(
        !log.iter()
            .any(|l| l.stream != "system" && l.line.contains("Applying items.0001_initial")),
        "migration output only as system lines:\n{}",
        log_text(&log)
    );
    let started = system_line(
        &log,
        |l| l.starts_with("started process") || l.starts_with("warm start:"),
        "saying the app started",
    );
    assert!(
        migrated.seq < started.seq,
        "migrations run before the app starts:\n{}",
        log_text(&log)
    );
    let database_line = system_line(&log, |l| l.starts_with("database:"), "`database:`");
    for word in ["django", "DATABASE_URL"] {
        assert!(
            database_line.line.contains(word),
            "{word} in {:?}",
            database_line.line
        );
    }
    assert!(
        database_line.line.to_lowercase().contains("postgres"),
        "{:?}",
        database_line.line
    );

    // The app is connected to its own database, as its own role.
    let connection = django_connection(&client, &generation, &launched.session).await;
    assert_eq!(connection["vendor"], "postgresql", "{connection}");
    assert_eq!(
        connection["current_database"],
        database.as_str(),
        "{connection}"
    );
    assert_eq!(
        connection["current_user"],
        database.as_str(),
        "{connection}"
    );
    assert_eq!(connection["host"], "127.0.0.1", "{connection}");
    assert_eq!(connection["port"], pg.port.to_string(), "{connection}");

    create_and_list(
        &client,
        &generation,
        &launched.session,
        "/items/new/",
        "/items/",
        &["first item"],
    )
    .await;

    // The row is in previewd_<id>, seen by the admin.
    assert!(pg.database_exists(&database), "{database}");
    assert_eq!(
        pg.admin_sql_in(&database, "SELECT name FROM items_item ORDER BY id"),
        "first item"
    );
    assert_eq!(
        pg.admin_sql(&format!(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {}",
            quote_literal(&database)
        )),
        database,
        "the database is owned by the generation's role"
    );
    assert_eq!(
        pg.admin_sql(&format!(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles \
             WHERE rolname = {}",
            quote_literal(&database)
        )),
        "t|f|f|f",
        "the role logs in and nothing more"
    );

    server.stop().await;
}

/// Two generations of the same app: each creates a row and lists only its own; neither role
/// may connect to the other's database (CONNECT granted neither to PUBLIC nor to it), and the
/// app's own credentials are refused there for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_generations_cannot_see_each_others_data() {
    let pg = cluster().await;
    let server = server_with_postgres(pg).await;
    let client = server.client("two-dbs");
    let a = client.upload_fixture("db-django").await;
    let b = client.upload_fixture("db-django").await;
    let (db_a, db_b) = (database_of(&a), database_of(&b));
    assert_ne!(db_a, db_b);

    let launched_a = launch(&client, &a, true).await;
    let launched_b = launch(&client, &b, true).await;
    create_item(&client, &a, &launched_a.session, "/items/new/", "from a").await;
    create_item(&client, &b, &launched_b.session, "/items/new/", "from b").await;
    assert_items(&client, &a, &launched_a.session, "/items/", &["from a"]).await;
    assert_items(&client, &b, &launched_b.session, "/items/", &["from b"]).await;
    assert_eq!(
        pg.admin_sql_in(&db_a, "SELECT name FROM items_item"),
        "from a"
    );
    assert_eq!(
        pg.admin_sql_in(&db_b, "SELECT name FROM items_item"),
        "from b"
    );

    for (role, other) in [(&db_a, &db_b), (&db_b, &db_a)] {
        assert_eq!(
            pg.admin_sql(&format!(
                "SELECT has_database_privilege({}, {}, 'CONNECT')",
                quote_literal(role),
                quote_literal(other)
            )),
            "f",
            "{role} may connect to {other}"
        );
        assert_eq!(
            pg.admin_sql(&format!(
                "SELECT has_database_privilege({}, {}, 'CONNECT')",
                quote_literal(role),
                quote_literal(role)
            )),
            "t",
            "{role} may connect to its own database"
        );
        // PUBLIC (grantee 0) holds no CONNECT, the default ACL counted when none was set.
        assert_eq!(
            pg.admin_sql(&format!(
                "SELECT count(*) FROM pg_database, \
                 aclexplode(coalesce(datacl, acldefault('d', datdba))) AS acl \
                 WHERE datname = {} AND acl.grantee = 0 AND acl.privilege_type = 'CONNECT'",
                quote_literal(other)
            )),
            "0",
            "CONNECT on {other} is revoked from PUBLIC"
        );
    }

    // For real: A's credentials (as the app was given them) work on A's database only.
    let connection_a = django_connection(&client, &a, &launched_a.session).await;
    let password_a = connection_a["password"]
        .as_str()
        .unwrap_or_else(|| panic!("no password in {connection_a}"));
    let own = sql_as(
        &pg.url_for(&db_a, password_a, &db_a),
        "SELECT count(*) FROM items_item",
    );
    assert_eq!(own.as_deref(), Ok("1"), "A on its own database");
    let trespass = sql_as(&pg.url_for(&db_a, password_a, &db_b), "SELECT 1");
    let refusal = trespass.expect_err("A's role connected to B's database");
    assert!(
        refusal.contains("permission denied for database"),
        "refused for want of CONNECT: {refusal}"
    );

    server.stop().await;
}

/// A stop keeps the database (a relaunch finds its rows, under a fresh password); deleting
/// the generation drops its database and its role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_generation_drops_its_database_and_role() {
    let pg = cluster().await;
    let server = server_with_postgres(pg).await;
    let client = server.client("drop-db");
    let generation = client.upload_fixture("db-django").await;
    let database = database_of(&generation);

    let first = launch(&client, &generation, true).await;
    create_item(&client, &generation, &first.session, "/items/new/", "kept").await;
    let first_password = django_connection(&client, &generation, &first.session).await["password"]
        .as_str()
        .expect("password")
        .to_string();
    assert!(pg.database_exists(&database) && pg.role_exists(&database));

    let stopped = client.stop_preview(&generation).await;
    assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    assert!(
        pg.database_exists(&database),
        "a stopped preview keeps its database"
    );

    let second = launch(&client, &generation, true).await;
    assert_eq!(
        item_names(&client, &generation, &second.session, "/items/").await,
        ["kept"],
        "rows survive a relaunch"
    );
    let second_password = django_connection(&client, &generation, &second.session).await
        ["password"]
        .as_str()
        .expect("password")
        .to_string();
    assert_ne!(
        first_password, second_password,
        "a fresh password per launch"
    );
    let old = sql_as(
        &pg.url_for(&database, &first_password, &database),
        "SELECT 1",
    );
    assert!(old.is_err(), "the previous launch's password still works");

    let deleted = client.delete(&format!("/generations/{generation}")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let gone = postgres::eventually(DROP_LIMIT, || {
        !pg.database_exists(&database) && !pg.role_exists(&database)
    })
    .await;
    assert!(
        gone,
        "after deletion: database {database} exists: {}, role exists: {}",
        pg.database_exists(&database),
        pg.role_exists(&database)
    );

    server.stop().await;
}

/// A preview stopped by its idle timeout drops its database and role: unlike a user's stop,
/// nobody is coming back for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_drops_the_database() {
    let pg = cluster().await;
    let url = pg.url.clone();
    let server = TestServer::start_with(move |c| {
        c.postgres_url = Some(url);
        c.idle_timeout = Duration::from_secs(5);
    })
    .await;
    let client = server.client("idle-db");
    let generation = client.upload_fixture("db-django").await;
    let database = database_of(&generation);

    let launched = launch(&client, &generation, true).await;
    create_item(
        &client,
        &generation,
        &launched.session,
        "/items/new/",
        "short-lived",
    )
    .await;
    assert!(pg.database_exists(&database) && pg.role_exists(&database));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = client
            .get(&format!("/generations/{generation}/preview/status"))
            .await;
        if status.body["status"] == "stopped" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not stopped by the idle timeout: {:?}",
            status.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let gone = postgres::eventually(DROP_LIMIT, || {
        !pg.database_exists(&database) && !pg.role_exists(&database)
    })
    .await;
    let log = history(&client, &generation).await;
    assert!(
        gone,
        "after the idle timeout: database {database} exists: {}, role exists: {}\n{}",
        pg.database_exists(&database),
        pg.role_exists(&database),
        log_text(&log)
    );

    server.stop().await;
}

/// Without `--postgres-url`, a SQLAlchemy app (which cannot even import without
/// `DATABASE_URL`) runs on the SQLite file `previewd.sqlite3` of its working dir, and its rows
/// persist across a stop and a relaunch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_app_runs_on_embedded_sqlite_and_keeps_rows() {
    let server = TestServer::start().await;
    assert!(server.config.postgres_url.is_none());
    let client = server.client("sqlite-db");
    let generation = client.upload_fixture("db-sqlalchemy").await;

    let database = config_database(&client, &generation).await;
    assert_fields(
        &database,
        json!({"wants": "sql", "library": "sqlalchemy", "provider": "sqlite"}),
    );
    assert!(
        database["variables"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == "DATABASE_URL")),
        "{database}"
    );

    let first = launch(&client, &generation, false).await;
    let given = app_json(&client, &generation, &first.session, "/database", json!({})).await;
    assert_eq!(given["dialect"], "sqlite", "{given}");
    let cwd = given["cwd"].as_str().expect("cwd");
    assert_eq!(
        given["url"].as_str().expect("url"),
        format!("sqlite:///{cwd}/previewd.sqlite3"),
        "an absolute sqlite://// URL to previewd.sqlite3 in the working dir"
    );
    create_and_list(
        &client,
        &generation,
        &first.session,
        "/items",
        "/items",
        &["one", "two"],
    )
    .await;
    let log = history(&client, &generation).await;
    let database_line = system_line(&log, |l| l.starts_with("database:"), "`database:`");
    for word in ["sqlalchemy", "DATABASE_URL"] {
        assert!(
            database_line.line.contains(word),
            "{word} in {:?}",
            database_line.line
        );
    }
    assert!(
        database_line.line.to_lowercase().contains("sqlite"),
        "{:?}",
        database_line.line
    );

    let stopped = client.stop_preview(&generation).await;
    assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    let files = find_files(server.data_dir(), "previewd.sqlite3");
    assert_eq!(files.len(), 1, "one SQLite file in the data dir: {files:?}");
    assert!(
        std::fs::metadata(&files[0]).is_ok_and(|m| m.len() > 0),
        "{files:?}"
    );

    let second = launch(&client, &generation, false).await;
    assert_eq!(
        item_names(&client, &generation, &second.session, "/items").await,
        ["one", "two"],
        "rows survive a stop and relaunch"
    );

    server.stop().await;
}

/// A FastAPI app written for asyncpg (an async SQLAlchemy engine, no SQLite driver listed) on a
/// server without `--postgres-url`: previewd installs aiosqlite with its dependencies, gives it
/// a `sqlite+aiosqlite` URL, and the app keeps rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_sqlalchemy_app_gets_aiosqlite_for_the_sqlite_file() {
    let server = TestServer::start().await;
    let client = server.client("async-sqlite");
    let generation = client.upload_fixture("db-async-sqlalchemy").await;
    let database = config_database(&client, &generation).await;
    assert_fields(
        &database,
        json!({"wants": "postgres", "provider": "sqlite"}),
    );

    let launched = launch(&client, &generation, false).await;
    let given = app_json(
        &client,
        &generation,
        &launched.session,
        "/database",
        json!({}),
    )
    .await;
    assert_eq!(given["driver"], "aiosqlite", "{given}");
    assert!(
        given["url"]
            .as_str()
            .is_some_and(|url| url.starts_with("sqlite+aiosqlite:////")),
        "{given}"
    );
    create_and_list(
        &client,
        &generation,
        &launched.session,
        "/items",
        "/items",
        &["async"],
    )
    .await;
    let log = history(&client, &generation).await;
    system_line(
        &log,
        |l| l.starts_with("database: installing aiosqlite"),
        "saying why aiosqlite is installed",
    );
    server.stop().await;
}

/// A project that wants PostgreSQL (Django with psycopg2) on a server without
/// `--postgres-url`: Django runs on SQLite, so it gets the SQLite file, and migrations work on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_without_a_postgres_server_falls_back_to_sqlite() {
    let server = TestServer::start().await;
    let client = server.client("django-sqlite");
    let generation = client.upload_fixture("db-django").await;

    let database = config_database(&client, &generation).await;
    assert_fields(
        &database,
        json!({"library": "django", "provider": "sqlite"}),
    );

    let launched = launch(&client, &generation, true).await;
    let connection = django_connection(&client, &generation, &launched.session).await;
    assert_eq!(connection["vendor"], "sqlite", "{connection}");
    assert!(
        connection["name"]
            .as_str()
            .is_some_and(|n| n.starts_with('/') && n.ends_with("/previewd.sqlite3")),
        "{connection}"
    );
    create_and_list(
        &client,
        &generation,
        &launched.session,
        "/items/new/",
        "/items/",
        &["on sqlite"],
    )
    .await;
    let log = history(&client, &generation).await;
    system_line(
        &log,
        |l| l.contains("Applying items.0001_initial"),
        "with the migration's output",
    );

    server.stop().await;
}

/// `/config` shows the detected need and the provider, and the PostgreSQL password the app
/// was given appears in no log line and no API answer (launch, status, config, generation,
/// generations list, stop), across two launches (two passwords).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_shows_the_database_and_nothing_shows_the_password() {
    let pg = cluster().await;
    let server = server_with_postgres(pg).await;
    let client = server.client("no-secrets");
    let generation = client.upload_fixture("db-django").await;
    let role = database_of(&generation);

    let before = config_database(&client, &generation).await;
    assert_eq!(before["wants"], "postgres", "{before}");
    assert_eq!(before["library"], "django", "{before}");
    assert_eq!(before["provider"], "postgresql", "{before}");
    assert!(
        before["variables"]
            .as_array()
            .is_some_and(|v| v.first().is_some_and(|v| v == "DATABASE_URL")),
        "{before}"
    );
    assert!(
        before["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{before}"
    );

    let mut answers: Vec<(String, Value)> = Vec::new();
    let mut passwords = Vec::new();
    for round in 0..2 {
        let launched = launch(&client, &generation, true).await;
        answers.push((format!("launch {round}"), launched.answer.body.clone()));
        let connection = django_connection(&client, &generation, &launched.session).await;
        let password = connection["password"]
            .as_str()
            .unwrap_or_else(|| panic!("no password in {connection}"))
            .to_string();
        assert!(password.len() >= 12, "a real password: {password:?}");
        passwords.push(password);
        for path in [
            format!("/generations/{generation}/preview/status"),
            format!("/generations/{generation}/preview/config"),
            format!("/generations/{generation}/preview/endpoints"),
            format!("/generations/{generation}"),
            "/generations".to_string(),
        ] {
            let answer = client.get(&path).await;
            assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
            answers.push((format!("GET {path} ({round})"), answer.body));
        }
        let stopped = client.stop_preview(&generation).await;
        answers.push((format!("stop {round}"), stopped.body));
    }
    assert_ne!(passwords[0], passwords[1], "a fresh password per launch");

    let after = config_database(&client, &generation).await;
    assert_eq!(after["provider"], "postgresql", "{after}");

    let userinfo = format!("://{role}:");
    let log = history(&client, &generation).await;
    for line in &log {
        for password in &passwords {
            assert!(
                !line.line.contains(password.as_str()),
                "the password in log line #{} [{}]: {}",
                line.seq,
                line.stream,
                line.line
            );
        }
        assert!(
            !line.line.contains(&userinfo),
            "a URL with credentials in log line #{}: {}",
            line.seq,
            line.line
        );
    }
    for (what, answer) in &answers {
        let text = answer.to_string();
        for password in &passwords {
            assert!(
                !text.contains(password.as_str()),
                "the password in {what}: {text}"
            );
        }
        assert!(!text.contains(&userinfo), "credentials in {what}: {text}");
    }

    server.stop().await;
}

/// Flask projects with Alembic migrations: `"migrate": true` applies them on the embedded
/// SQLite database before the app starts, their output in the log; the table only the
/// migration makes then serves rows. A plain `alembic.ini` gets `alembic upgrade head`;
/// Flask-Migrate's `migrations/` folder, whose `env.py` needs the app's context, gets `flask db
/// upgrade` with FLASK_APP calling the app factory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alembic_migrations_run_before_the_app() {
    let server = TestServer::start().await;
    let client = server.client("alembic");
    for (fixture, command) in [
        ("db-alembic", "-m alembic upgrade head"),
        (
            "db-flask-migrate",
            "-m flask db upgrade --directory migrations",
        ),
    ] {
        let generation = client.upload_fixture(fixture).await;
        let launched = launch(&client, &generation, true).await;
        let log = history(&client, &generation).await;
        let text = log_text(&log);
        let position = |needle: &str| {
            log.iter()
                .position(|l| l.line.contains(needle))
                .unwrap_or_else(|| panic!("{fixture}: no line with {needle:?}:\n{text}"))
        };
        let migrating = position("migrating: ");
        assert!(log[migrating].line.ends_with(command), "{text}");
        let upgrade = position("Running upgrade  -> 0001");
        let applied = position("migrations applied");
        let started = position("started process");
        assert!(
            migrating < upgrade && upgrade < applied && applied < started,
            "{text}"
        );
        assert_eq!(log[upgrade].stream, "system", "{text}");
        create_and_list(
            &client,
            &generation,
            &launched.session,
            "/items",
            "/items",
            &["one"],
        )
        .await;
        let stopped = client.stop_preview(&generation).await;
        assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    }
    server.stop().await;
}

/// Express + Prisma 7 on PostgreSQL (`tests/fixtures/db-prisma`: the `prisma-client-js`
/// generator, the pg driver adapter, a table the app makes at start-up), on the real binary
/// started with `PRISMA_SCHEMA_ENGINE_BINARY=/bin/false` in its environment, as an operator
/// runs Prisma on an offline host: `/config` says prisma on PostgreSQL, the install (into a
/// fresh cache) runs `prisma generate` after `npm ci --ignore-scripts`, its output in the log
/// before the app starts, and the generated client serves the app's rows from the
/// generation's own database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prisma_client_is_generated_at_install_and_serves_rows_from_postgres() {
    let pg = cluster().await;
    let cache = tempfile::tempdir().expect("cache dir");
    let cache_dir = cache.path().display().to_string();
    let server = previewd_e2e::external::ExternalServer::start_with_env(
        previewd_e2e::previewd_under_test!(),
        &["--postgres-url", &pg.url, "--cache-dir", &cache_dir],
        &[("PRISMA_SCHEMA_ENGINE_BINARY", "/bin/false")],
    )
    .await;
    let client = server.client("prisma");
    let generation = client.upload_fixture("db-prisma").await;
    let database = database_of(&generation);

    let detected = config_database(&client, &generation).await;
    assert_fields(
        &detected,
        json!({"wants": "postgres", "library": "prisma", "provider": "postgresql"}),
    );

    let launched = launch(&client, &generation, false).await;
    let log = history(&client, &generation).await;
    let text = log_text(&log);
    let position = |needle: &str| {
        log.iter()
            .position(|l| l.line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{text}"))
    };
    let installing = position("npm ci, from package-lock.json");
    let generating = position("prisma: generating the client from prisma/schema.prisma");
    let generated = position("Generated Prisma Client");
    let done = position("prisma: client generated in ");
    let started = position("started process");
    assert!(
        installing < generating && generating < generated && generated < done && done < started,
        "{text}"
    );
    // Not asked to migrate, the log says how.
    let hint = position(
        "migrate: not asked at this launch; \"migrate\": true applies the project's migrations \
         (node_modules/prisma/build/index.js migrate deploy)",
    );
    for at in [generating, generated, done, hint] {
        assert_eq!(log[at].stream, "system", "{text}");
    }
    eprintln!("generate: {}", log[done].line);

    create_and_list(
        &client,
        &generation,
        &launched.session,
        "/items",
        "/items",
        &["one", "two"],
    )
    .await;
    let connected = app_json(
        &client,
        &generation,
        &launched.session,
        "/database",
        json!({}),
    )
    .await;
    assert_eq!(connected["database"], database.as_str(), "{connected}");
    assert_eq!(connected["user"], database.as_str(), "{connected}");
    assert_eq!(
        pg.admin_sql_in(
            &database,
            "SELECT string_agg(name, ',' ORDER BY id) FROM \"Item\""
        ),
        "one,two",
        "the rows are in the generation's own database"
    );
    drop(server);
}

/// The same fixture launched with `"migrate": true` runs `prisma migrate deploy` with the
/// Prisma CLI the install linked, in the app's sandbox, before the app. Whether it applies
/// depends on the host (Prisma's schema engine is a download this test does not count on: the
/// server runs with `PRISMA_SCHEMA_ENGINE_BINARY=/bin/false`), so only the command is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prisma_migrate_deploy_runs_on_migrate() {
    let pg = cluster().await;
    let server = previewd_e2e::external::ExternalServer::start_with_env(
        previewd_e2e::previewd_under_test!(),
        &["--postgres-url", &pg.url],
        &[("PRISMA_SCHEMA_ENGINE_BINARY", "/bin/false")],
    )
    .await;
    let client = server.client("prisma-migrate");
    let generation = client.upload_fixture("db-prisma").await;
    let answer = tokio::time::timeout(
        LAUNCH_LIMIT,
        client.post(
            &format!("/generations/{generation}/preview/launch?wait=true"),
            json!({"migrate": true}),
        ),
    )
    .await
    .expect("launch within the limit");
    let log = history(&client, &generation).await;
    let migrating = log
        .iter()
        .find(|l| l.line.starts_with("migrating: "))
        .unwrap_or_else(|| panic!("no `migrating:` line:\n{}", log_text(&log)));
    assert!(
        migrating
            .line
            .ends_with("node_modules/prisma/build/index.js migrate deploy"),
        "{}",
        migrating.line
    );
    eprintln!(
        "migrate deploy on this host: {} {}\n{}",
        answer.status,
        answer.body,
        log_text(&log)
    );
    drop(server);
}

/// A project shaped like tiangolo/full-stack-fastapi-template (`tests/fixtures/db-split-settings`:
/// pydantic-settings reading `POSTGRES_SERVER`, `POSTGRES_PORT`, `POSTGRES_USER`,
/// `POSTGRES_PASSWORD`, `POSTGRES_DB` and computing a `PostgresDsn` for SQLAlchemy on psycopg 3;
/// no URL variable at all) on a server with `--postgres-url`: `/config` lists the split
/// variables, the launch sets them (and libpq's `PG*`) to the generation's own database and
/// role, the database line names them, and the rows the app creates are in that database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_settings_app_gets_postgres_in_its_split_variables() {
    let pg = cluster().await;
    let server = server_with_postgres(pg).await;
    let client = server.client("split-settings");
    let generation = client.upload_fixture("db-split-settings").await;
    let database = database_of(&generation);

    let detected = config_database(&client, &generation).await;
    assert_fields(
        &detected,
        json!({"wants": "postgres", "library": "sqlalchemy", "provider": "postgresql"}),
    );
    assert_eq!(
        detected["parts"],
        json!([
            {"variable": "POSTGRES_SERVER", "part": "host"},
            {"variable": "POSTGRES_PORT", "part": "port"},
            {"variable": "POSTGRES_USER", "part": "user"},
            {"variable": "POSTGRES_PASSWORD", "part": "password"},
            {"variable": "POSTGRES_DB", "part": "database"},
        ]),
        "{detected}"
    );
    assert!(
        detected["reason"]
            .as_str()
            .is_some_and(|r| r.contains("app/core/config.py reads POSTGRES_SERVER, POSTGRES_PORT")),
        "{detected}"
    );

    let launched = launch(&client, &generation, false).await;
    let connected = app_json(
        &client,
        &generation,
        &launched.session,
        "/database",
        json!({}),
    )
    .await;
    assert_eq!(connected["database"], database.as_str(), "{connected}");
    assert_eq!(connected["user"], database.as_str(), "{connected}");
    assert_eq!(connected["driver"], "psycopg", "{connected}");
    assert_eq!(connected["server"], "127.0.0.1", "{connected}");
    assert_eq!(connected["port"], pg.port, "{connected}");
    assert_eq!(
        connected["libpq"],
        json!({
            "PGHOST": "127.0.0.1",
            "PGPORT": pg.port.to_string(),
            "PGUSER": database,
            "PGDATABASE": database,
        }),
        "{connected}"
    );
    assert_eq!(connected["libpq_password_set"], true, "{connected}");

    create_and_list(
        &client,
        &generation,
        &launched.session,
        "/items",
        "/items",
        &["one", "two"],
    )
    .await;
    assert_eq!(
        pg.admin_sql_in(
            &database,
            "SELECT string_agg(name, ',' ORDER BY id) FROM items"
        ),
        "one,two",
        "the rows are in the generation's own database"
    );

    let log = history(&client, &generation).await;
    let database_line = system_line(&log, |l| l.starts_with("database:"), "`database:`");
    for word in [
        "POSTGRES_SERVER",
        "POSTGRES_PASSWORD",
        "PGHOST",
        "PGPASSWORD",
    ] {
        assert!(
            database_line.line.contains(word),
            "{word} in {:?}",
            database_line.line
        );
    }
    let userinfo = format!("://{database}:");
    assert!(
        !log.iter().any(|l| l.line.contains(&userinfo)),
        "no URL with credentials in the log:\n{}",
        log_text(&log)
    );

    server.stop().await;
}

/// The same project on a server without `--postgres-url`: a SQLite URL cannot stand in for its
/// `PostgresDsn` and split variables, so `/config` says it gets none, why, and how to give it one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_settings_app_without_postgres_gets_no_sqlite_file() {
    let server = TestServer::start().await;
    assert!(server.config.postgres_url.is_none());
    let client = server.client("split-settings-none");
    let generation = client.upload_fixture("db-split-settings").await;

    let database = config_database(&client, &generation).await;
    assert_fields(&database, json!({"wants": "postgres", "provider": "none"}));
    let detail = database["provider_detail"]
        .as_str()
        .expect("provider_detail");
    for word in ["--postgres-url", "PostgresDsn", "app/core/config.py"] {
        assert!(detail.contains(word), "{word} in {detail:?}");
    }

    server.stop().await;
}

/// Express on better-sqlite3 (`tests/fixtures/db-node-sqlite`), on a server without
/// `--postgres-url`, into an empty cache: `npm ci --ignore-scripts` skips the driver's build
/// script, so previewd compiles the registry's better-sqlite3 itself (said in the log) and
/// copies its binding into the install; the app opens the SQLite file previewd hands it as a
/// plain path, creates its table at start, and rows round-trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn better_sqlite3_app_gets_its_native_binding_and_keeps_rows() {
    let cache = tempfile::tempdir().expect("cache dir");
    let cache_dir = cache.path().to_path_buf();
    let server = TestServer::start_with(move |c| c.cache_dir = Some(cache_dir)).await;
    assert!(server.config.postgres_url.is_none());
    let client = server.client("node-sqlite");
    let generation = client.upload_fixture("db-node-sqlite").await;

    let database = config_database(&client, &generation).await;
    assert_fields(
        &database,
        json!({"wants": "sql", "library": "better-sqlite3", "provider": "sqlite"}),
    );

    let launched = launch(&client, &generation, false).await;
    let log = history(&client, &generation).await;
    for expected in [
        "native: compiling better-sqlite3 11.10.0 for Node ",
        "native: better-sqlite3 ready (compiled in ",
    ] {
        system_line(&log, |l| l.starts_with(expected), expected);
    }

    let given = app_json(
        &client,
        &generation,
        &launched.session,
        "/database",
        json!({}),
    )
    .await;
    let file = given["file"].as_str().expect("file");
    assert!(
        file.starts_with('/') && file.ends_with("/previewd.sqlite3"),
        "the plain path of previewd.sqlite3: {given}"
    );
    create_and_list(
        &client,
        &generation,
        &launched.session,
        "/items",
        "/items",
        &["one", "two"],
    )
    .await;

    server.stop().await;
}
