//! A real MongoDB server for the tests, when one can be had. Debian has no MongoDB package and
//! MongoDB's downloads are not reachable from every machine, so unlike PostgreSQL it is never
//! installed; [`server`] finds one, in this order:
//!
//! 1. the server `PREVIEWD_TEST_MONGODB_URL` names: an admin URL as previewd's `--mongodb-url`
//!    takes, allowed to read any database as well (`root`), as the tests look inside;
//! 2. a private `mongod` from `PATH`, one per test process in a fresh temp dir, on 127.0.0.1
//!    and a port of its own, with `--auth`: a `root` user for the tests' own checks (made
//!    through the localhost exception) and an admin `previewd_admin` with only
//!    `userAdminAnyDatabase` and `dbAdminAnyDatabase`, whose URL previewd is given. It is
//!    killed and its folder removed when the process ends, as the PostgreSQL cluster is;
//! 3. none: the tests that need it say they are skipped, and why, and pass.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;
use mongodb::Client;

use crate::setup::{clean_up_at_exit, free_port, random_hex};

/// The variable naming an existing server to test against.
pub const URL_VARIABLE: &str = "PREVIEWD_TEST_MONGODB_URL";
/// The admin user previewd is given on a private server.
pub const ADMIN_USER: &str = "previewd_admin";
/// The private server's `root` user, for the tests' own checks.
const ROOT_USER: &str = "harness_root";
/// The ports a private server may listen on: above PostgreSQL's (33000-33999).
const PORTS: std::ops::Range<u16> = 34_000..35_000;
/// How many ports are tried before giving up.
const PORT_ATTEMPTS: u16 = 10;
/// How long a private server may take to answer, and the tests' checks to reach it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The MongoDB server of this test process.
pub struct Mongo {
    /// The admin URL previewd is given (`--mongodb-url`).
    pub url: String,
    /// A URL allowed to read every database, for the tests' checks.
    pub inspect_url: String,
    /// Where it comes from, for messages.
    pub origin: String,
    /// The private `mongod`, when it is one (killed when the process ends).
    process: Option<Child>,
}

/// The server of this test process, or why there is none. Blocks while a private one starts
/// (a few seconds): call it off the runtime's threads.
pub fn server() -> Result<&'static Mongo, String> {
    static SERVER: OnceLock<Result<Mongo, String>> = OnceLock::new();
    SERVER.get_or_init(find).as_ref().map_err(Clone::clone)
}

fn find() -> Result<Mongo, String> {
    if let Some(url) = std::env::var(URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Ok(Mongo {
            inspect_url: url.clone(),
            url,
            origin: format!("the server {URL_VARIABLE} names"),
            process: None,
        });
    }
    match on_path("mongod") {
        Some(mongod) => Ok(start(&mongod)),
        None => Err(format!(
            "no MongoDB server: {URL_VARIABLE} is unset and no mongod is on PATH \
             (Debian has no package for it)"
        )),
    }
}

/// `program` in one of `PATH`'s folders.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

impl Mongo {
    /// Whether a database of that name exists.
    pub async fn database_exists(&self, name: &str) -> bool {
        let names = inspector(self)
            .await
            .list_database_names()
            .await
            .expect("listDatabases");
        names.iter().any(|listed| listed == name)
    }

    /// The roles (`role@db`) of user `name` defined in database `name`; none when there is
    /// no such user.
    pub async fn user_roles(&self, name: &str) -> Option<Vec<String>> {
        let answer = inspector(self)
            .await
            .database(name)
            .run_command(doc! {"usersInfo": name})
            .await
            .expect("usersInfo");
        let user = answer.get_array("users").expect("users").first()?.clone();
        let roles = user.as_document()?.get_array("roles").ok()?;
        Some(
            roles
                .iter()
                .filter_map(|role| {
                    let role = role.as_document()?;
                    Some(format!(
                        "{}@{}",
                        role.get_str("role").ok()?,
                        role.get_str("db").ok()?
                    ))
                })
                .collect(),
        )
    }

    /// The `name` field of every document of `collection` in `database`, in insertion order.
    pub async fn names(&self, database: &str, collection: &str) -> Vec<String> {
        let client = inspector(self).await;
        let mut cursor = client
            .database(database)
            .collection::<Document>(collection)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .expect("find");
        let mut names = Vec::new();
        while cursor.advance().await.expect("cursor") {
            let document = cursor.deserialize_current().expect("document");
            names.push(document.get_str("name").unwrap_or_default().to_string());
        }
        names
    }
}

/// The collections of `database` as the user of `url` sees them, or why it may not.
pub async fn collections_as(url: &str, database: &str) -> Result<Vec<String>, String> {
    let client = client(url).await?;
    client
        .database(database)
        .list_collection_names()
        .await
        .map_err(|err| err.to_string())
}

async fn inspector(mongo: &Mongo) -> Client {
    client(&mongo.inspect_url)
        .await
        .unwrap_or_else(|err| panic!("MongoDB ({}): {err}", mongo.origin))
}

/// A client of `url`, failing within [`TIMEOUT`] rather than waiting on a dead server.
async fn client(url: &str) -> Result<Client, String> {
    let mut options = ClientOptions::parse(url)
        .await
        .map_err(|err| err.to_string())?;
    options.server_selection_timeout = Some(TIMEOUT);
    options.connect_timeout = Some(TIMEOUT);
    Client::with_options(options).map_err(|err| err.to_string())
}

/// Starts a private `mongod` on a free port, makes its users, and arranges its stop.
fn start(mongod: &Path) -> Mongo {
    let started = Instant::now();
    let root = tempfile::Builder::new()
        .prefix("previewd-test-mongo-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let data = root.join("data");
    std::fs::create_dir_all(&data).expect("dbpath");
    let log = root.join("mongod.log");
    let pid_file = root.join("mongod.pid");
    clean_up_at_exit(
        "the private mongod",
        &root,
        format!(
            "kill -9 $(cat '{}') 2>/dev/null; rm -rf '{}'",
            pid_file.display(),
            root.display()
        ),
    );
    let mut failures = Vec::new();
    for attempt in 0..PORT_ATTEMPTS {
        let port = free_port(PORTS, attempt);
        let mut child = Command::new(mongod)
            .arg("--dbpath")
            .arg(&data)
            .arg("--logpath")
            .arg(&log)
            .arg("--pidfilepath")
            .arg(&pid_file)
            .args(["--port", &port.to_string(), "--bind_ip", "127.0.0.1"])
            .args([
                "--auth",
                "--nounixsocket",
                "--wiredTigerCacheSizeGB",
                "0.25",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", mongod.display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        match runtime.block_on(make_users(port)) {
            Ok(mut mongo) => {
                mongo.process = Some(child);
                eprintln!(
                    "mongod on 127.0.0.1:{port} in {} ({:.1?})",
                    root.display(),
                    started.elapsed()
                );
                return mongo;
            }
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                failures.push(format!("port {port}: {err}"));
            }
        }
    }
    panic!(
        "mongod did not start:\n{}\n{}",
        failures.join("\n"),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Makes the `root` user through the localhost exception, then, as it, previewd's admin.
async fn make_users(port: u16) -> Result<Mongo, String> {
    let at = |user: &str, password: &str| {
        format!("mongodb://{user}:{password}@127.0.0.1:{port}/admin?directConnection=true")
    };
    let anonymous = client(&format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true"
    ))
    .await?;
    let root_password = random_hex(16);
    create_user(&anonymous, ROOT_USER, &root_password, &["root"]).await?;
    let inspect_url = at(ROOT_USER, &root_password);
    let as_root = client(&inspect_url).await?;
    let admin_password = random_hex(16);
    let roles = ["userAdminAnyDatabase", "dbAdminAnyDatabase"];
    create_user(&as_root, ADMIN_USER, &admin_password, &roles).await?;
    Ok(Mongo {
        url: at(ADMIN_USER, &admin_password),
        inspect_url,
        origin: format!("a private mongod on 127.0.0.1:{port}"),
        process: None,
    })
}

async fn create_user(
    client: &Client,
    user: &str,
    password: &str,
    roles: &[&str],
) -> Result<(), String> {
    let roles: Vec<Document> = roles
        .iter()
        .map(|role| doc! {"role": *role, "db": "admin"})
        .collect();
    client
        .database("admin")
        .run_command(doc! {"createUser": user, "pwd": password, "roles": roles})
        .await
        .map(drop)
        .map_err(|err| format!("creating {user}: {err}"))
}

#[cfg(test)]
mod tests {
    /// With a server, previewd's admin is not root and the checks see inside; without one the
    /// reason names both ways to get one.
    #[tokio::test]
    async fn a_server_or_a_reason() {
        let found = tokio::task::spawn_blocking(super::server)
            .await
            .expect("server");
        match found {
            Ok(mongo) => {
                assert!(!mongo.database_exists("harness_never_made").await);
                assert_eq!(mongo.user_roles("harness_never_made").await, None);
            }
            Err(why) => {
                assert!(why.contains(super::URL_VARIABLE), "{why}");
                assert!(why.contains("mongod"), "{why}");
                eprintln!("skipped: {why}");
            }
        }
    }
}
