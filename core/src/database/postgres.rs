//! Per-generation databases on a PostgreSQL server previewd is given (`--postgres-url`, an
//! admin connection with `CREATEDB` and `CREATEROLE`): a role and a database of the same name
//! for each generation that wants one, the role owning the database and the only one allowed to
//! connect to it, a fresh random password at every launch.

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};
use tracing::warn;

/// A PostgreSQL server previewd may create databases and roles on.
#[derive(Clone)]
pub struct Server {
    config: Config,
    /// Where apps reach it.
    authority: Authority,
}

/// Where apps reach the server: a TCP host (an IPv6 address without brackets) or the folder of
/// its Unix socket, and the port (which names the socket file too).
#[derive(Clone)]
enum Authority {
    Tcp { host: String, port: u16 },
    Socket { dir: String, port: u16 },
}

/// A database made for a generation.
pub struct Made {
    pub name: String,
    pub password: String,
}

impl Server {
    /// The server of `url` (`postgres://admin:secret@host:5432/postgres`).
    pub fn parse(url: &str) -> Result<Server, String> {
        let config: Config = url
            .parse()
            .map_err(|err| format!("--postgres-url is not a PostgreSQL URL: {err}"))?;
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let authority = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => Authority::Tcp {
                host: host.clone(),
                port,
            },
            Some(Host::Unix(dir)) => Authority::Socket {
                dir: dir.to_string_lossy().into_owned(),
                port,
            },
            None => Authority::Tcp {
                host: "localhost".into(),
                port,
            },
        };
        Ok(Server { config, authority })
    }

    async fn connect(&self) -> Result<Client, String> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|err| format!("connecting to PostgreSQL: {err}"))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                warn!("PostgreSQL connection: {err}");
            }
        });
        Ok(client)
    }

    /// Makes (or keeps) role and database `name`, the role with a new random password; only
    /// the role may connect to the database.
    pub async fn ensure(&self, name: &str) -> Result<Made, String> {
        check_name(name)?;
        let client = self.connect().await?;
        let password = super::random_password();
        let role_exists = !client
            .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .map_err(sql_error)?
            .is_empty();
        // Only a superuser may name the superuser attribute on an existing role, and the role
        // was made without it: a relaunch changes its password alone.
        let statement = match role_exists {
            true => format!("ALTER ROLE \"{name}\" WITH LOGIN PASSWORD '{password}'"),
            false => format!(
                "CREATE ROLE \"{name}\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '{password}'"
            ),
        };
        client.batch_execute(&statement).await.map_err(sql_error)?;
        let database_exists = !client
            .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(sql_error)?
            .is_empty();
        if !database_exists {
            // Making a role's database needs membership of the role.
            client
                .batch_execute(&format!("GRANT \"{name}\" TO CURRENT_USER"))
                .await
                .map_err(sql_error)?;
            client
                .batch_execute(&format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""))
                .await
                .map_err(sql_error)?;
        }
        client
            .batch_execute(&format!(
                "REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC; GRANT CONNECT ON DATABASE \"{name}\" TO \"{name}\""
            ))
            .await
            .map_err(sql_error)?;
        Ok(Made {
            name: name.to_string(),
            password,
        })
    }

    /// Drops database and role `name`, closing its connections; whether there was a database.
    pub async fn drop(&self, name: &str) -> Result<bool, String> {
        check_name(name)?;
        let client = self.connect().await?;
        let existed = !client
            .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(sql_error)?
            .is_empty();
        // One statement at a time: DROP DATABASE cannot run in the transaction a batch is.
        for statement in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("DROP ROLE IF EXISTS \"{name}\""),
        ] {
            client.batch_execute(&statement).await.map_err(sql_error)?;
        }
        Ok(existed)
    }

    /// The URL of `made` with `scheme` (`postgresql`, `postgresql+asyncpg`, `postgres`).
    pub fn url(&self, scheme: &str, made: &Made) -> String {
        let Made { name, password } = made;
        match &self.authority {
            Authority::Tcp { .. } => {
                let authority = self.tcp_authority();
                format!("{scheme}://{name}:{password}@{authority}/{name}")
            }
            Authority::Socket { dir, port } => {
                format!("{scheme}://{name}:{password}@/{name}?host={dir}&port={port}")
            }
        }
    }

    /// The host apps connect to as libpq's `PGHOST` takes it: a name or address, or for a
    /// Unix socket the folder it is in.
    pub fn host(&self) -> &str {
        match &self.authority {
            Authority::Tcp { host, .. } => host,
            Authority::Socket { dir, .. } => dir,
        }
    }

    /// The port apps connect to.
    pub fn port(&self) -> u16 {
        match &self.authority {
            Authority::Tcp { port, .. } | Authority::Socket { port, .. } => *port,
        }
    }

    /// `host:port` for a URL (`[::1]:5432` for an IPv6 address).
    fn tcp_authority(&self) -> String {
        match self.host() {
            host if host.contains(':') => format!("[{host}]:{}", self.port()),
            host => format!("{host}:{}", self.port()),
        }
    }

    /// Where the server is, without credentials, for logs.
    pub fn describe(&self) -> String {
        match &self.authority {
            Authority::Tcp { .. } => self.tcp_authority(),
            Authority::Socket { dir, port } => format!("{dir} (port {port})"),
        }
    }
}

/// Only names previewd makes (letters, digits, `_`) are ever put in SQL.
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    match valid {
        true => Ok(()),
        false => Err(format!("`{name}` is not a database name previewd makes")),
    }
}

fn sql_error(err: tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("PostgreSQL: {}", db.message()),
        None => format!("PostgreSQL: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_role_its_password_and_the_server() {
        let server = Server::parse("postgres://admin:secret@127.0.0.1:5433/postgres").unwrap();
        let made = Made {
            name: "previewd_abc".into(),
            password: "pw".into(),
        };
        assert_eq!(
            server.url("postgresql+asyncpg", &made),
            "postgresql+asyncpg://previewd_abc:pw@127.0.0.1:5433/previewd_abc"
        );
        assert_eq!(server.describe(), "127.0.0.1:5433");
        assert!(!server.describe().contains("secret"));
        assert_eq!((server.host(), server.port()), ("127.0.0.1", 5433));
    }

    /// IPv6 hosts are bracketed in URLs only; a socket's host is its folder.
    #[test]
    fn hosts_as_urls_and_libpq_take_them() {
        let v6 = Server::parse("postgres://admin:secret@[::1]/postgres").unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 5432));
        assert_eq!(v6.describe(), "[::1]:5432");
        let socket =
            Server::parse("postgres://admin@%2Fvar%2Frun%2Fpostgresql:5433/postgres").unwrap();
        assert_eq!(
            (socket.host(), socket.port()),
            ("/var/run/postgresql", 5433)
        );
        let made = Made {
            name: "n".into(),
            password: "p".into(),
        };
        assert_eq!(
            socket.url("postgresql", &made),
            "postgresql://n:p@/n?host=/var/run/postgresql&port=5433"
        );
    }

    #[test]
    fn only_previewd_names_reach_sql() {
        assert!(check_name("previewd_0193ab").is_ok());
        assert!(check_name("x\"; DROP ROLE admin; --").is_err());
        assert!(check_name("").is_err());
    }
}
