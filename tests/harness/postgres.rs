//! A real PostgreSQL server for the tests: Debian's packages (installed with apt on first use
//! when missing), one private cluster per test process in a fresh temp dir, on 127.0.0.1 and a
//! port of its own, with an admin role `previewd_admin` (LOGIN CREATEDB CREATEROLE) whose URL
//! is what previewd's `--postgres-url` takes.
//!
//! The cluster starts on the first [`server`] call and is shared by every test of the process.
//! It is stopped (`pg_ctl stop -m immediate`) and its folder removed when the process exits: by
//! an `atexit` handler on a normal exit, and by a watchdog process (in a session of its own,
//! polling the test process) when the test process dies any other way, SIGKILL included.
//!
//! PostgreSQL refuses to run as root: as root, `initdb`, `pg_ctl` and `postgres` run as the
//! `postgres` system user (which Debian's package creates) through `runuser`, in a folder
//! owned by it. SQL from the tests goes through `psql` ([`Postgres::admin_sql`], [`sql_as`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::setup::{apt_install, clean_up_at_exit, free_port, random_hex, run};

/// The admin role previewd is given.
pub const ADMIN_ROLE: &str = "previewd_admin";
/// The cluster's bootstrap superuser (local socket, trust), used only to create the admin.
const SUPERUSER: &str = "postgres";
/// The system user PostgreSQL runs as when the tests run as root.
const SYSTEM_USER: &str = "postgres";
/// Where Debian installs each major version's programs: `/usr/lib/postgresql/<major>/bin`.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";
/// The ports the cluster may listen on: above the test servers' preview blocks (20000-31999),
/// the benches' and the load test's (32000-32767), and the client test's (19000-19059).
const PORTS: std::ops::Range<u16> = 33_000..34_000;
/// How many ports are tried before giving up (one may be taken between the check and the
/// server's own bind).
const PORT_ATTEMPTS: u16 = 20;

/// The running cluster of this process.
pub struct Postgres {
    /// `postgres://previewd_admin:PASSWORD@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// The port it listens on (127.0.0.1 only).
    pub port: u16,
    /// The admin role's password.
    pub admin_password: String,
    /// The folder of PostgreSQL's programs (`pg_ctl`, `psql`, ...).
    pub bin_dir: PathBuf,
    /// The temp folder holding the cluster (`data/`), its sockets and its log (`server.log`).
    pub root: PathBuf,
}

/// The cluster of this test process, started (and PostgreSQL installed) on first use. Blocks
/// while it starts: a few seconds, plus the apt install on a machine without PostgreSQL.
pub fn server() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(start)
}

impl Postgres {
    /// A `postgres://` URL of this cluster for `role`:`password` (percent-encoded here) and
    /// `database`.
    pub fn url_for(&self, role: &str, password: &str, database: &str) -> String {
        let password = utf8_percent_encode(password, NON_ALPHANUMERIC);
        format!(
            "postgres://{role}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Runs `sql` as the admin role on database `postgres`; psql's unaligned, tuples-only
    /// output, trimmed. Panics when psql fails.
    pub fn admin_sql(&self, sql: &str) -> String {
        self.admin_sql_in("postgres", sql)
    }

    /// Runs `sql` as the admin role on `database`, as [`Postgres::admin_sql`].
    pub fn admin_sql_in(&self, database: &str, sql: &str) -> String {
        let url = self.url_for(ADMIN_ROLE, &self.admin_password, database);
        sql_as(&url, sql).unwrap_or_else(|err| panic!("admin SQL {sql:?} on {database}: {err}"))
    }

    /// Whether a database of that name exists.
    pub fn database_exists(&self, name: &str) -> bool {
        self.admin_sql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            quote_literal(name)
        )) == "1"
    }

    /// Whether a role of that name exists.
    pub fn role_exists(&self, name: &str) -> bool {
        self.admin_sql(&format!(
            "SELECT count(*) FROM pg_roles WHERE rolname = {}",
            quote_literal(name)
        )) == "1"
    }

    /// The server's own log so far (for failure messages).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }
}

/// Runs `sql` with `psql` against `url` (any role, any database of any cluster); its output
/// (unaligned, tuples only, trimmed), or psql's error output when it fails (a refused
/// connection included).
pub fn sql_as(url: &str, sql: &str) -> Result<String, String> {
    let psql = bin_dir().join("psql");
    let output = Command::new(&psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", psql.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "psql failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `text` as an SQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// PostgreSQL's programs, installed from Debian's packages when missing; found once.
pub fn bin_dir() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(dir) = installed_bin_dir() {
            return dir;
        }
        install();
        installed_bin_dir().unwrap_or_else(|| {
            panic!(
                "apt-get installed postgresql, yet no {DEBIAN_PG_ROOT}/*/bin has pg_ctl and initdb"
            )
        })
    })
    .clone()
}

/// The `bin` folder of the newest major version under `/usr/lib/postgresql` that has
/// `pg_ctl`, `initdb`, `postgres` and `psql`.
fn installed_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_PG_ROOT)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            ["pg_ctl", "initdb", "postgres", "psql"]
                .iter()
                .all(|tool| bin.join(tool).is_file())
                .then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Installs Debian's `postgresql` if its programs are missing.
fn install() {
    apt_install("postgresql", || installed_bin_dir().is_some());
}

/// Whether this process runs as root.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { nix::libc::geteuid() == 0 }
}

/// A command running PostgreSQL's `tool` as the user the cluster belongs to: the `postgres`
/// system user when we are root, else ourselves; in `cwd` (which that user can enter: initdb
/// and pg_ctl fail in a folder they cannot read).
fn pg_command(bin: &Path, tool: &str, cwd: &Path) -> Command {
    let program = bin.join(tool);
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", SYSTEM_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.current_dir(cwd).stdin(Stdio::null());
    command
}

/// Initialises and starts the cluster, creates the admin role, and arranges its stop.
fn start() -> Postgres {
    let started = Instant::now();
    let bin = bin_dir();
    let root = tempfile::Builder::new()
        .prefix("previewd-test-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.arg(format!("{SYSTEM_USER}:")).arg(&root);
                c
            },
            "chown of the cluster folder",
        );
    }
    let data = root.join("data");
    let log = root.join("server.log");

    let mut initdb = pg_command(&bin, "initdb", &root);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C"])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .arg("--no-sync");
    run(initdb, "initdb");

    // Settings for a throwaway cluster: no durability, sockets in our own folder.
    let socket_dir = root.display().to_string();
    let options = |port: u16| {
        format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={socket_dir} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200"
        )
    };
    let mut port = None;
    let mut failures = Vec::new();
    for attempt in 0..PORT_ATTEMPTS {
        let candidate = free_port(PORTS, attempt);
        let mut pg_ctl = pg_command(&bin, "pg_ctl", &root);
        pg_ctl.arg("-D").arg(&data).arg("-l").arg(&log).args([
            "-w",
            "-t",
            "60",
            "-o",
            &options(candidate),
            "start",
        ]);
        let output = pg_ctl.output().expect("pg_ctl");
        if output.status.success() {
            port = Some(candidate);
            break;
        }
        failures.push(format!(
            "port {candidate}: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        ));
    }
    let Some(port) = port else {
        panic!("PostgreSQL did not start:\n{}", failures.join("\n"));
    };
    arrange_stop(&bin, &data, &root);

    let admin_password = random_hex(16);
    let mut psql = Command::new(bin.join("psql"));
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", &socket_dir, "-p", &port.to_string(), "-U", SUPERUSER])
        .args(["-d", "postgres", "-c"])
        .arg(format!(
            "CREATE ROLE {ADMIN_ROLE} LOGIN CREATEDB CREATEROLE PASSWORD {}",
            quote_literal(&admin_password)
        ));
    run(psql, "creating the admin role");

    let server = Postgres {
        url: format!("postgres://{ADMIN_ROLE}:{admin_password}@127.0.0.1:{port}/postgres"),
        port,
        admin_password,
        bin_dir: bin,
        root,
    };
    assert_eq!(
        server.admin_sql("SELECT 1"),
        "1",
        "admin over TCP:\n{}",
        server.server_log()
    );
    eprintln!(
        "PostgreSQL on 127.0.0.1:{port} in {} ({:.1?})",
        server.root.display(),
        started.elapsed()
    );
    server
}

/// Stops the cluster at once and removes its folder when this process ends.
fn arrange_stop(bin: &Path, data: &Path, root: &Path) {
    let as_owner = if is_root() {
        format!("runuser -u {SYSTEM_USER} -- ")
    } else {
        String::new()
    };
    let script = format!(
        "{as_owner}'{}' -D '{}' -m immediate -w -t 20 stop >/dev/null 2>&1; rm -rf '{}'",
        bin.join("pg_ctl").display(),
        data.display(),
        root.display()
    );
    clean_up_at_exit("the PostgreSQL cluster", root, script);
}

/// How long a test waits for something the core does in the background with the cluster
/// (dropping a database after a stop), polling `check` until it holds.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    /// The cluster starts, the admin role answers over TCP with its password and may create
    /// databases and roles.
    #[test]
    fn cluster_starts_and_admin_can_create() {
        let pg = super::server();
        assert_eq!(pg.admin_sql("SELECT 1"), "1");
        assert_eq!(
            pg.admin_sql(
                "SELECT rolcreatedb AND rolcreaterole AND NOT rolsuper FROM pg_roles \
                 WHERE rolname = current_user"
            ),
            "t"
        );
        assert!(pg.url.starts_with("postgres://previewd_admin:"));
        assert!((33_000..34_000).contains(&pg.port));
        // Same process, same cluster.
        assert!(std::ptr::eq(pg, super::server()));
        pg.admin_sql("CREATE ROLE harness_probe LOGIN PASSWORD 'probe'");
        // PostgreSQL 15 wants the creator in the owner's role (16 wants SET ROLE to it).
        pg.admin_sql("GRANT harness_probe TO previewd_admin");
        pg.admin_sql("CREATE DATABASE harness_probe OWNER harness_probe");
        assert!(pg.database_exists("harness_probe"));
        let as_probe = pg.url_for("harness_probe", "probe", "harness_probe");
        assert_eq!(
            super::sql_as(&as_probe, "SELECT current_user").as_deref(),
            Ok("harness_probe")
        );
        assert!(super::sql_as(
            &pg.url_for("harness_probe", "wrong", "harness_probe"),
            "SELECT 1"
        )
        .is_err());
        pg.admin_sql("DROP DATABASE harness_probe");
        pg.admin_sql("DROP ROLE harness_probe");
        assert!(!pg.role_exists("harness_probe"));
    }
}
