//! A MongoDB database per preview, against a real MongoDB server when one can be had
//! (`previewd_e2e::mongo`: `PREVIEWD_TEST_MONGODB_URL`, else a private `mongod` from `PATH`);
//! without one, the tests that need it print that they are skipped, and why, and pass.
//!
//! Fixture: `tests/fixtures/db-mongo` (Flask + pymongo reading `MONGO_URL`, `GET|POST /items`,
//! and `GET /connection`, which answers with the URL the app was given, its database and the
//! user it is authenticated as, so a test can try the credentials elsewhere).

use std::time::Duration;

use previewd_e2e::fixture_runs::app_json;
use previewd_e2e::log_lines::history;
use previewd_e2e::mongo::{self, collections_as, Mongo};
use previewd_e2e::{Client, TestServer};
use serde_json::{json, Value};

use super::{
    assert_fields, config_database, create_item, database_of, item_names, launch, log_text,
    system_lines, DROP_LIMIT,
};

/// The process's MongoDB server, or `None` after saying why `test` is skipped.
async fn mongo_or_skip(test: &str) -> Option<&'static Mongo> {
    match tokio::task::spawn_blocking(mongo::server)
        .await
        .expect("MongoDB server")
    {
        Ok(server) => Some(server),
        Err(why) => {
            eprintln!("skipped {test}: {why}");
            None
        }
    }
}

/// A test server given the MongoDB admin URL as `--mongodb-url`.
async fn server_with_mongo(mongo: &Mongo) -> TestServer {
    let url = mongo.url.clone();
    TestServer::start_with(move |c| c.mongodb_url = Some(url)).await
}

/// What the app was given: `/connection`.
async fn connection(client: &Client, generation: &str, session: &str) -> Value {
    app_json(client, generation, session, "/connection", json!({})).await
}

/// The URL in a `/connection` answer.
fn url_of(connection: &Value) -> String {
    connection["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url in {connection}"))
        .to_string()
}

/// Two generations of the pymongo app on a server with `--mongodb-url`: `/config` says
/// MongoDB, each app is in a database of its own as a user of its own (`dbOwner` of that
/// database and nothing else), each lists only its own items, one's credentials are refused
/// on the other's database, and no log line shows a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_apps_get_a_database_and_user_of_their_own() {
    let Some(mongo) = mongo_or_skip("mongo_apps_get_a_database_and_user_of_their_own").await else {
        return;
    };
    let server = server_with_mongo(mongo).await;
    let client = server.client("mongo-dbs");
    let a = client.upload_fixture("db-mongo").await;
    let b = client.upload_fixture("db-mongo").await;
    let (db_a, db_b) = (database_of(&a), database_of(&b));

    let database = config_database(&client, &a).await;
    assert_fields(
        &database,
        json!({"wants": "mongo", "library": "pymongo", "provider": "mongodb"}),
    );
    assert!(
        database["variables"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == "MONGO_URL")),
        "{database}"
    );

    let launched_a = launch(&client, &a, false).await;
    let launched_b = launch(&client, &b, false).await;
    create_item(&client, &a, &launched_a.session, "/items", "from a").await;
    create_item(&client, &b, &launched_b.session, "/items", "from b").await;
    assert_eq!(
        item_names(&client, &a, &launched_a.session, "/items").await,
        ["from a"]
    );
    assert_eq!(
        item_names(&client, &b, &launched_b.session, "/items").await,
        ["from b"]
    );
    assert_eq!(mongo.names(&db_a, "items").await, ["from a"]);
    assert_eq!(mongo.names(&db_b, "items").await, ["from b"]);

    let connection_a = connection(&client, &a, &launched_a.session).await;
    assert_eq!(connection_a["database"], db_a.as_str(), "{connection_a}");
    assert_eq!(
        connection_a["users"],
        json!([format!("{db_a}@{db_a}")]),
        "{connection_a}"
    );
    for name in [&db_a, &db_b] {
        assert_eq!(
            mongo.user_roles(name).await,
            Some(vec![format!("dbOwner@{name}")]),
            "{name}"
        );
    }
    let url_a = url_of(&connection_a);
    assert!(
        collections_as(&url_a, &db_a).await.is_ok(),
        "A on its own database"
    );
    let trespass = collections_as(&url_a, &db_b).await;
    assert!(trespass.is_err(), "A's user listed B's collections");

    let log = history(&client, &a).await;
    let database_line = system_lines(&log)
        .into_iter()
        .find(|l| l.line.starts_with("database:"))
        .unwrap_or_else(|| panic!("no `database:` system line:\n{}", log_text(&log)));
    for word in ["MongoDB", "pymongo", "MONGO_URL"] {
        assert!(
            database_line.line.contains(word),
            "{word} in {:?}",
            database_line.line
        );
    }
    let userinfo = format!("://{db_a}:");
    assert!(
        !log.iter().any(|l| l.line.contains(&userinfo)),
        "credentials in the log:\n{}",
        log_text(&log)
    );

    server.stop().await;
}

/// A stop keeps the database (a relaunch finds its items, under a fresh password, the old one
/// refused); deleting the generation drops its database and its user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_generation_drops_its_mongo_database_and_user() {
    let Some(mongo) =
        mongo_or_skip("deleting_the_generation_drops_its_mongo_database_and_user").await
    else {
        return;
    };
    let server = server_with_mongo(mongo).await;
    let client = server.client("mongo-drop");
    let generation = client.upload_fixture("db-mongo").await;
    let database = database_of(&generation);

    let first = launch(&client, &generation, false).await;
    create_item(&client, &generation, &first.session, "/items", "kept").await;
    let first_url = url_of(&connection(&client, &generation, &first.session).await);
    assert!(mongo.database_exists(&database).await);

    let stopped = client.stop_preview(&generation).await;
    assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    assert!(
        mongo.database_exists(&database).await,
        "a stopped preview keeps its database"
    );

    let second = launch(&client, &generation, false).await;
    assert_eq!(
        item_names(&client, &generation, &second.session, "/items").await,
        ["kept"],
        "documents survive a relaunch"
    );
    let second_url = url_of(&connection(&client, &generation, &second.session).await);
    assert_ne!(first_url, second_url, "a fresh password per launch");
    assert!(
        collections_as(&first_url, &database).await.is_err(),
        "the previous launch's password still works"
    );

    let deleted = client.delete(&format!("/generations/{generation}")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let deadline = tokio::time::Instant::now() + DROP_LIMIT;
    loop {
        let database_left = mongo.database_exists(&database).await;
        let user_left = mongo.user_roles(&database).await.is_some();
        if !database_left && !user_left {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after deletion: database {database} exists: {database_left}, user exists: {user_left}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    server.stop().await;
}

/// Without `--mongodb-url`, `/config` of a pymongo project says it wants MongoDB, gets none,
/// and how previewd would give it one; so does the launch's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mongodb_server_config_says_how_to_get_one() {
    let server = TestServer::start().await;
    assert!(server.config.mongodb_url.is_none());
    let client = server.client("mongo-none");
    let generation = client.upload_fixture("db-mongo").await;

    let database = config_database(&client, &generation).await;
    assert_fields(
        &database,
        json!({"wants": "mongo", "library": "pymongo", "provider": "none"}),
    );
    assert!(
        database["variables"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == "MONGO_URL")),
        "{database}"
    );
    let detail = database["provider_detail"].as_str().unwrap_or_default();
    assert!(detail.contains("--mongodb-url"), "{database}");

    // The app dies at import without MONGO_URL; the failure says what it was missing.
    let launched = client.launch_wait(&generation).await;
    assert_eq!(
        launched.body["code"], "launch_failed",
        "{:?}",
        launched.body
    );
    let error = launched.body["message"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "It got no database, which its project wants: none: pymongo needs MongoDB; \
             start previewd with --mongodb-url to give it one."
        ) && error.contains("KeyError: 'MONGO_URL'"),
        "{error}"
    );

    server.stop().await;
}
