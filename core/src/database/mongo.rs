//! Per-generation databases on a MongoDB server previewd is given (`--mongodb-url`, an admin
//! connection allowed to manage users and drop databases: `root`, or `userAdminAnyDatabase`
//! with `dbAdminAnyDatabase`): for each generation that wants MongoDB, a database and a user of
//! the same name defined in it, the user `dbOwner` of that database and of nothing else, a
//! fresh random password at every launch. Apps get
//! `mongodb://<user>:<password>@<hosts>/<database>?authSource=<database>`, so the database their
//! driver picks by default is their own. MongoDB makes the database itself on the app's first
//! write.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::{Error, ErrorKind};
use mongodb::options::{ClientOptions, ConnectionString};
use mongodb::{Client, Database};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

/// How long previewd waits to reach the server (server selection, connecting), so a dead
/// server fails a launch with a clear error instead of holding it.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Options of the admin URL that say how to reach the server, kept in the URLs apps get; the
/// others (`authSource`, `appName`, timeouts, ...) concern the admin connection alone.
const KEPT_OPTIONS: &[&str] = &[
    "replicaSet",
    "directConnection",
    "tls",
    "ssl",
    "tlsCAFile",
    "tlsInsecure",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
];

/// A MongoDB server previewd may create databases and users on.
#[derive(Clone)]
pub struct Server {
    /// The admin URL as given (it holds credentials: never logged).
    admin_url: String,
    /// `mongodb`, or `mongodb+srv` for a server found through DNS.
    scheme: &'static str,
    /// The hosts as the admin URL writes them (`h1:27017,h2:27017`, `[::1]:27017`, or the SRV
    /// name), which is how apps reach them too.
    hosts: String,
    /// The admin URL's [`KEPT_OPTIONS`], `name=value` as written.
    options: Vec<String>,
    /// How long to wait for the server ([`TIMEOUT`]).
    timeout: Duration,
}

/// A database made for a generation.
pub struct Made {
    pub name: String,
    pub password: String,
}

impl Server {
    /// The server of `url` (`mongodb://admin:secret@host:27017/admin`, `mongodb+srv://...`).
    pub fn parse(url: &str) -> Result<Server, String> {
        ConnectionString::parse(url).map_err(|err| {
            format!(
                "--mongodb-url is not a MongoDB URL (mongodb://USER:PASSWORD@HOST:27017/admin): {}",
                parse_error(&err)
            )
        })?;
        let (scheme, rest) = match url.split_once("://") {
            Some(("mongodb+srv", rest)) => ("mongodb+srv", rest),
            Some((_, rest)) => ("mongodb", rest),
            None => ("mongodb", url),
        };
        // As the driver reads it: options after the first `?`, credentials before the last `@`.
        let (before_options, options) = rest.split_once('?').unwrap_or((rest, ""));
        let after_credentials = before_options
            .rsplit_once('@')
            .map_or(before_options, |(_, hosts)| hosts);
        let hosts = after_credentials
            .split_once('/')
            .map_or(after_credentials, |(hosts, _)| hosts);
        Ok(Server {
            admin_url: url.to_string(),
            scheme,
            hosts: hosts.to_string(),
            options: options
                .split('&')
                .filter(|option| is_kept(option))
                .map(String::from)
                .collect(),
            timeout: TIMEOUT,
        })
    }

    async fn connect(&self) -> Result<Client, String> {
        let mut options = ClientOptions::parse(self.admin_url.as_str())
            .await
            .map_err(|err| self.error(err))?;
        options.server_selection_timeout = Some(self.timeout);
        options.connect_timeout = Some(self.timeout);
        options.app_name = Some("previewd".into());
        Client::with_options(options).map_err(|err| self.error(err))
    }

    /// Makes (or keeps) user `name` in database `name`, `dbOwner` of it, with a new random
    /// password.
    pub async fn ensure(&self, name: &str) -> Result<Made, String> {
        let client = self.connect().await?;
        let made = self.ensure_user(&client.database(name)).await;
        client.shutdown().await;
        made
    }

    async fn ensure_user(&self, database: &Database) -> Result<Made, String> {
        let name = database.name();
        let password = super::random_password();
        let exists = self.user_exists(database).await?;
        self.run(database, user_command(exists, name, &password))
            .await?;
        Ok(Made {
            name: name.to_string(),
            password,
        })
    }

    /// Drops user and database `name`; whether either existed.
    pub async fn drop(&self, name: &str) -> Result<bool, String> {
        let client = self.connect().await?;
        let dropped = self.drop_user_and_database(&client, name).await;
        client.shutdown().await;
        dropped
    }

    async fn drop_user_and_database(&self, client: &Client, name: &str) -> Result<bool, String> {
        let database = client.database(name);
        let had_user = self.user_exists(&database).await?;
        if had_user {
            self.run(&database, doc! {"dropUser": name}).await?;
        }
        let had_database = client
            .list_database_names()
            .filter(doc! {"name": name})
            .await
            .map_err(|err| self.error(err))?
            .iter()
            .any(|listed| listed == name);
        database.drop().await.map_err(|err| self.error(err))?;
        Ok(had_user || had_database)
    }

    /// Whether `database` defines a user of its own name.
    async fn user_exists(&self, database: &Database) -> Result<bool, String> {
        let answer = self
            .run(database, doc! {"usersInfo": database.name()})
            .await?;
        let users = answer
            .get_array("users")
            .map_err(|_| "MongoDB answered usersInfo without `users`".to_string())?;
        Ok(!users.is_empty())
    }

    async fn run(&self, database: &Database, command: Document) -> Result<Document, String> {
        database
            .run_command(command)
            .await
            .map_err(|err| self.error(err))
    }

    /// The URL of `made`, for the app.
    pub fn url(&self, made: &Made) -> String {
        let Made { name, password } = made;
        let options: Vec<String> = std::iter::once(format!("authSource={name}"))
            .chain(self.options.iter().cloned())
            .collect();
        format!(
            "{}://{name}:{}@{}/{name}?{}",
            self.scheme,
            utf8_percent_encode(password, NON_ALPHANUMERIC),
            self.hosts,
            options.join("&")
        )
    }

    /// Where the server is, without credentials, for logs.
    pub fn describe(&self) -> String {
        match self.scheme {
            "mongodb+srv" => format!("{} (DNS SRV)", self.hosts),
            _ => self.hosts.clone(),
        }
    }

    /// A driver error in words, without credentials (the driver's messages hold none).
    fn error(&self, err: Error) -> String {
        match err.kind.as_ref() {
            ErrorKind::Command(command) => {
                format!("MongoDB: {} ({})", command.message, command.code_name)
            }
            ErrorKind::ServerSelection { message, .. } => format!(
                "MongoDB at {} did not answer within {:?}: {message}",
                self.describe(),
                self.timeout
            ),
            kind => format!("MongoDB at {}: {kind}", self.describe()),
        }
    }
}

/// The command making user `name` (or, when it `exists`, updating it: a relaunch sets the
/// roles again along with the password), `dbOwner` of database `name` and nothing else.
fn user_command(exists: bool, name: &str, password: &str) -> Document {
    let verb = match exists {
        true => "updateUser",
        false => "createUser",
    };
    // The command's name must be the document's first key.
    doc! {
        verb: name,
        "pwd": password,
        "roles": [{"role": "dbOwner", "db": name}],
    }
}

/// Whether an admin URL's `name=value` option is one apps keep.
fn is_kept(option: &str) -> bool {
    let name = option.split_once('=').map_or(option, |(name, _)| name);
    KEPT_OPTIONS
        .iter()
        .any(|kept| kept.eq_ignore_ascii_case(name))
}

/// Why the driver refused a URL (its message names no credentials).
fn parse_error(err: &Error) -> String {
    match err.kind.as_ref() {
        ErrorKind::InvalidArgument { message, .. } => message.clone(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(password: &str) -> Made {
        Made {
            name: "previewd_abc".into(),
            password: password.into(),
        }
    }

    fn url_of(admin: &str, password: &str) -> String {
        Server::parse(admin).unwrap().url(&made(password))
    }

    #[test]
    fn urls_carry_the_user_its_database_and_the_server() {
        let server = Server::parse("mongodb://admin:secret@127.0.0.1:27018/admin").unwrap();
        assert_eq!(
            server.url(&made("pw")),
            "mongodb://previewd_abc:pw@127.0.0.1:27018/previewd_abc?authSource=previewd_abc"
        );
        assert_eq!(server.describe(), "127.0.0.1:27018");
    }

    #[test]
    fn passwords_are_percent_encoded() {
        assert_eq!(
            url_of("mongodb://a:b@db", "p@ss:w/rd?%"),
            "mongodb://previewd_abc:p%40ss%3Aw%2Frd%3F%25@db/previewd_abc?authSource=previewd_abc"
        );
    }

    #[test]
    fn reachability_options_are_kept_and_the_admins_own_are_not() {
        assert_eq!(
            url_of(
                "mongodb://root:x@h1:27017,h2:27017/?replicaSet=rs0&authSource=admin&tls=true&appName=ops&tlsCAFile=/etc/ca.pem",
                "pw"
            ),
            "mongodb://previewd_abc:pw@h1:27017,h2:27017/previewd_abc?authSource=previewd_abc&replicaSet=rs0&tls=true&tlsCAFile=/etc/ca.pem"
        );
    }

    #[test]
    fn srv_urls_keep_their_scheme_and_name() {
        let server =
            Server::parse("mongodb+srv://admin:s%40cret@cluster0.example.net/?retryWrites=true")
                .unwrap();
        assert_eq!(
            server.url(&made("pw")),
            "mongodb+srv://previewd_abc:pw@cluster0.example.net/previewd_abc?authSource=previewd_abc"
        );
        assert_eq!(server.describe(), "cluster0.example.net (DNS SRV)");
    }

    #[test]
    fn ipv6_hosts_stay_bracketed() {
        let server = Server::parse("mongodb://admin:secret@[::1]:27017").unwrap();
        assert_eq!(
            server.url(&made("pw")),
            "mongodb://previewd_abc:pw@[::1]:27017/previewd_abc?authSource=previewd_abc"
        );
        assert_eq!(server.describe(), "[::1]:27017");
    }

    #[test]
    fn a_url_without_credentials_names_hosts_only() {
        assert_eq!(
            url_of("mongodb://localhost", "pw"),
            "mongodb://previewd_abc:pw@localhost/previewd_abc?authSource=previewd_abc"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for bad in [
            "postgres://admin:secret@host/db",
            "admin:secret@host",
            "mongodb+srv://admin:secret@a.example.net:27017",
            "mongodb://admin:secret@host:notaport",
            "mongodb://admin:secret@host/?replicaSet=rs0&tls=maybe",
        ] {
            let err = Server::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} parsed"));
            assert!(
                err.starts_with("--mongodb-url is not a MongoDB URL"),
                "{err}"
            );
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn users_are_made_or_updated_as_owners_of_their_database_only() {
        for (exists, verb) in [(false, "createUser"), (true, "updateUser")] {
            let command = user_command(exists, "previewd_abc", "pw");
            assert_eq!(command.keys().next().map(String::as_str), Some(verb));
            assert_eq!(
                command,
                doc! {
                    verb: "previewd_abc",
                    "pwd": "pw",
                    "roles": [{"role": "dbOwner", "db": "previewd_abc"}],
                }
            );
        }
    }

    /// A server nobody answers at fails within the timeout, saying where, without credentials.
    #[tokio::test]
    async fn a_dead_server_fails_fast_and_clearly() {
        let mut server = Server::parse("mongodb://admin:secret@127.0.0.1:1/admin").unwrap();
        server.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = server.ensure("previewd_abc").await.err().expect("an error");
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
