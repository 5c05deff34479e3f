//! The server's settings. One struct serves as both the `serve` command's flags (every flag
//! also reads a `PREVIEWD_*` environment variable) and the configuration the library takes, so
//! a setting is declared, documented and defaulted in exactly one place.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::supervisor::isolation::IsolationMode;
use crate::supervisor::limits::{ByteSize, LimitSettings, LimitsMode};
use crate::upload::UploadLimits;

/// Settings of a previewd server.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "PREVIEWD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Folder for the database, uploaded projects, logs and caches. Created if missing.
    #[arg(long, env = "PREVIEWD_DATA_DIR", default_value = "./previewd-data")]
    pub data_dir: PathBuf,

    /// Folder of shared caches (virtualenvs). Defaults to `<data-dir>/cache`; tests and several
    /// servers on one machine may share one.
    #[arg(long, env = "PREVIEWD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Folder scanned for third-party plugin libraries (`.so`, `.dylib`) at start-up; each is
    /// loaded or refused with the reason (`previewd plugins` lists both). A folder that cannot
    /// be read stops start-up. See plugins/README.md.
    #[arg(long, env = "PREVIEWD_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,

    /// Secret for signing tokens (HS256). Without it one is created in the data dir and kept.
    #[arg(long, env = "PREVIEWD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Ports handed to previews, as `FIRST-LAST`.
    #[arg(long, env = "PREVIEWD_PORT_RANGE", default_value = "3001-3100", value_parser = parse_port_range)]
    pub port_range: RangeInclusive<u16>,

    /// How long an app may take from process start to answering HTTP.
    #[arg(long, env = "PREVIEWD_STARTUP_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub startup_timeout: Duration,

    /// How long a stopping app gets between SIGTERM and SIGKILL.
    #[arg(long, env = "PREVIEWD_STOP_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub stop_grace: Duration,

    /// Lifetime of a preview's session token.
    #[arg(long, env = "PREVIEWD_SESSION_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub session_timeout: Duration,

    /// A preview is stopped this long after it started.
    #[arg(long, env = "PREVIEWD_MAX_UPTIME", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_uptime: Duration,

    /// A preview nobody used for this long is stopped: no request through the proxy or the
    /// envelope, no keepalive and no open log stream. `0s` turns it off.
    #[arg(long, env = "PREVIEWD_IDLE_TIMEOUT", default_value = "15m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Previews one user may have starting or running at once.
    #[arg(long, env = "PREVIEWD_MAX_PREVIEWS_PER_USER", default_value_t = 3)]
    pub max_previews_per_user: usize,

    /// Timeout of a request to a preview: the whole exchange for the envelope; through the
    /// proxy, how long the app may go without answering or reading more of the request body
    /// (504 then).
    #[arg(long, env = "PREVIEWD_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Most log lines kept per generation; past it the oldest are dropped (and the log says so).
    #[arg(long, env = "PREVIEWD_MAX_LOG_LINES", default_value_t = 100_000)]
    pub max_log_lines: u64,

    /// Most bytes of log kept per generation (as stored, JSON-encoded); past it the oldest lines
    /// are dropped (and the log says so).
    #[arg(long, env = "PREVIEWD_MAX_LOG_BYTES", default_value_t = 64 << 20)]
    pub max_log_bytes: u64,

    /// Most files one upload may hold.
    #[arg(long, env = "PREVIEWD_MAX_FILES", default_value_t = UploadLimits::default().max_files)]
    pub max_files: usize,

    /// Largest single file of an upload, in bytes.
    #[arg(long, env = "PREVIEWD_MAX_FILE_BYTES", default_value_t = UploadLimits::default().max_file_bytes)]
    pub max_file_bytes: u64,

    /// Largest upload in total (files unpacked), in bytes.
    #[arg(long, env = "PREVIEWD_MAX_TOTAL_BYTES", default_value_t = UploadLimits::default().max_total_bytes)]
    pub max_total_bytes: u64,

    /// How memory, process and CPU limits are applied: `auto` (cgroups where writable, else
    /// rlimits), `cgroup` (refuse to start without them), `rlimit` or `none`.
    #[arg(long, env = "PREVIEWD_LIMITS", value_enum, default_value = "auto")]
    pub limits: LimitsMode,

    /// Memory of all of a preview's processes together (`512MiB`, `1GiB`, `800MB`); past it the
    /// kernel kills the app and the preview fails as out of memory. `0`: no limit.
    #[arg(long, env = "PREVIEWD_MEMORY_LIMIT", default_value = "512MiB")]
    pub memory_limit: ByteSize,

    /// Processes (and threads) a preview may have at once; a fork past it fails. `0`: no limit.
    #[arg(long, env = "PREVIEWD_PIDS_LIMIT", default_value_t = 256)]
    pub pids_limit: u64,

    /// CPU a preview may use, in cores (`0.5`: half of one), once it is ready (its start-up
    /// runs at full speed); it is throttled past it. `0`: no limit.
    #[arg(long, env = "PREVIEWD_CPU_LIMIT", default_value = "0.5", value_parser = parse_cpu)]
    pub cpu_limit: f64,

    /// Disk a preview's project folder and scratch folder (its `TMPDIR`) may take, measured
    /// every 2 s; past it the preview is killed and fails. `0`: no limit.
    #[arg(long, env = "PREVIEWD_DISK_LIMIT", default_value = "1GiB")]
    pub disk_limit: ByteSize,

    /// How previews are isolated. `namespaces`: each in its own mount, PID and IPC namespaces,
    /// with the system read-only, a private `/tmp`, previewd's data and cache folders hidden
    /// (but its project, scratch folder and environment) and no capabilities. `none`: previews
    /// see what previewd sees. Unset: namespaces where the host allows them (root or
    /// CAP_SYS_ADMIN, Linux 5.12 or later), else none, as said at start-up.
    #[arg(long, env = "PREVIEWD_ISOLATION", value_enum)]
    pub isolation: Option<IsolationMode>,

    /// Warm processes kept ready per environment (a virtualenv or `node_modules` in use, with
    /// its framework): a launcher already started in its own sandbox and cgroup, with the
    /// framework imported, waiting to be handed a project, which makes a launch several times
    /// faster than a cold start. One is prepared after an environment's first launch and after
    /// each warm launch. `0` turns warm runtimes off.
    #[arg(long, env = "PREVIEWD_WARM_POOL", default_value_t = 1)]
    pub warm_pool: usize,

    /// Memory all idle warm processes may take together (`1GiB`, `512MiB`); no new one is
    /// started past it, and the least recently used environment's go first. `0`: no budget.
    #[arg(long, env = "PREVIEWD_WARM_MEMORY", default_value = "1GiB")]
    pub warm_memory: ByteSize,

    /// A PostgreSQL server for previews that want one (`postgres://admin:secret@host:5432/postgres`):
    /// an admin connection with CREATEDB and CREATEROLE. Each such generation gets a database and
    /// a role of its own, a new password at every launch, dropped with the generation or when
    /// its preview expires. Unset: projects get a SQLite file where their library runs on it.
    #[arg(long, env = "PREVIEWD_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,

    /// A MongoDB server for previews that want one (`mongodb://admin:secret@host:27017/admin`,
    /// or `mongodb+srv://`): an admin connection allowed to manage users and drop databases
    /// (`root`, or `userAdminAnyDatabase` with `dbAdminAnyDatabase`). Each such generation gets
    /// a database and a user of its own, a new password at every launch, dropped with the
    /// generation or when its preview expires. Unset: projects on MongoDB get no database.
    #[arg(long, env = "PREVIEWD_MONGODB_URL", hide_env_values = true)]
    pub mongodb_url: Option<String>,
}

impl Config {
    /// Settings with every default, on `data_dir`; what tests and embedders start from.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let mut config = <Defaults as clap::Parser>::parse_from(["previewd"]).config;
        config.data_dir = data_dir.into();
        config
    }

    /// The shared cache folder.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cache"))
    }

    /// The upload limits.
    pub fn upload_limits(&self) -> UploadLimits {
        UploadLimits {
            max_files: self.max_files,
            max_file_bytes: self.max_file_bytes,
            max_total_bytes: self.max_total_bytes,
        }
    }

    /// The resource limits every preview gets.
    pub fn limit_settings(&self) -> LimitSettings {
        LimitSettings {
            memory: self.memory_limit,
            pids: self.pids_limit,
            cpu: self.cpu_limit,
            disk: self.disk_limit,
            max_uptime: self.max_uptime,
        }
    }
}

/// Parses a number of CPU cores, `0` or more.
fn parse_cpu(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(cores) if cores.is_finite() && cores >= 0.0 => Ok(cores),
        _ => Err(format!(
            "`{text}` is not a number of CPU cores (0.5, 2, 0 for no limit)"
        )),
    }
}

/// Parses `3001-3100` (or a single port).
fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let parse = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port number"))
    };
    let (first, last) = (parse(first)?, parse(last)?);
    if first == 0 || first > last {
        return Err(format!(
            "`{text}` is not a range FIRST-LAST of ports above 0"
        ));
    }
    Ok(first..=last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges parse in both forms and nonsense is refused with the reason.
    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("3001-3100"), Ok(3001..=3100));
        assert_eq!(parse_port_range("4000"), Ok(4000..=4000));
        assert!(parse_port_range("3100-3001").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("a-b").unwrap_err().contains("not a port"));
    }

    /// The defaults are those of the documentation.
    #[test]
    fn defaults() {
        let config = Config::with_data_dir("/tmp/x");
        assert_eq!(config.port_range, 3001..=3100);
        assert_eq!(config.session_timeout, Duration::from_secs(1800));
        assert_eq!(config.stop_grace, Duration::from_secs(5));
        assert_eq!(config.max_previews_per_user, 3);
        assert_eq!(config.cache_dir(), PathBuf::from("/tmp/x/cache"));
        assert_eq!(config.limits, LimitsMode::Auto);
        assert_eq!(config.memory_limit, ByteSize::mib(512));
        assert_eq!(config.pids_limit, 256);
        assert_eq!(config.cpu_limit, 0.5);
        assert_eq!(config.disk_limit, ByteSize::gib(1));
    }

    /// CPU limits are non-negative numbers.
    #[test]
    fn cpu_limits() {
        assert_eq!(parse_cpu("0.5"), Ok(0.5));
        assert_eq!(parse_cpu("2"), Ok(2.0));
        assert_eq!(parse_cpu("0"), Ok(0.0));
        assert!(parse_cpu("-1").is_err());
        assert!(parse_cpu("NaN").is_err());
        assert!(parse_cpu("half").is_err());
    }
}
