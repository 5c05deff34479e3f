//! The `previewd` command line: `serve`, `token`, `openapi`, `routes` and `plugins`.
//!
//! It lives in the library rather than in `main.rs` so that another binary can run exactly the
//! same command: the end-to-end tests build one (`previewd-under-test`) and run the real server
//! out of process, to SIGKILL it, restart it and measure its memory, with the path Cargo gives
//! their tests and benches (`CARGO_BIN_EXE_<name>` exists only for binaries of the package that
//! owns the test). `main.rs` only calls [`main`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::registry::Registry;
use anyhow::Context;
use clap::{Parser, Subcommand};
use previewd_plugin_api::Project;

/// Live previews of generated web backends (FastAPI, Flask, Django, Express, and any framework a
/// plugin adds).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded storage in the data dir; nothing else needed).
    Serve(Box<Config>),
    /// Print a bearer token for a user, signed with the server's secret.
    Token {
        /// The user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// How long the token is valid (e.g. `24h`, `30m`, `7d`).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// The server's data dir (where its secret is kept).
        #[arg(long, env = "PREVIEWD_DATA_DIR", default_value = "./previewd-data")]
        data_dir: PathBuf,
        /// The server's secret, when it is configured rather than kept in the data dir.
        #[arg(long, env = "PREVIEWD_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
    },
    /// Print the OpenAPI spec (the document the server serves at /api/v1/openapi.json).
    Openapi,
    /// Extract a project's routes statically (tree-sitter), without a server.
    Routes {
        /// The project folder.
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Use this plugin instead of detecting one.
        #[arg(long)]
        framework: Option<String>,
        /// Folder of third-party plugin libraries to load too.
        #[arg(long, env = "PREVIEWD_PLUGINS_DIR")]
        plugins_dir: Option<PathBuf>,
    },
    /// List the plugins: built-in ones, those loaded from the plugins dir, and the libraries
    /// of the plugins dir that were refused, with the reason.
    Plugins {
        /// Folder scanned for plugin libraries (`.so`, `.dylib`).
        #[arg(long, env = "PREVIEWD_PLUGINS_DIR")]
        plugins_dir: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command named by the process's arguments. A failure is printed to stderr as
/// `Error: ` and its chain of causes, and the exit code is 1, as a `main` returning
/// `anyhow::Result` does; bad arguments exit with clap's message and code 2.
pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(config) => serve(*config),
        Command::Token {
            user,
            ttl,
            data_dir,
            jwt_secret,
        } => {
            let auth = crate::auth::Authenticator::load_or_create(jwt_secret.as_deref(), &data_dir)
                .with_context(|| format!("reading the secret in {}", data_dir.display()))?;
            println!("{}", auth.user_token(&user, ttl));
            Ok(())
        }
        Command::Openapi => {
            println!("{}", crate::api::service().spec());
            Ok(())
        }
        Command::Routes {
            dir,
            json,
            framework,
            plugins_dir,
        } => routes(&dir, json, framework.as_deref(), plugins_dir.as_deref()),
        Command::Plugins { plugins_dir, json } => plugins(plugins_dir.as_deref(), json),
    }
}

/// Prints the plugin listing: a table, or the registry's listing as JSON.
fn plugins(plugins_dir: Option<&std::path::Path>, json: bool) -> anyhow::Result<()> {
    let listing = Registry::load(plugins_dir)?.listing();
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    let rows: Vec<[String; 4]> = listing
        .plugins
        .iter()
        .map(|p| {
            let origin = match &p.path {
                Some(path) => path.display().to_string(),
                None => "built-in".to_string(),
            };
            [
                p.name.clone(),
                p.version.clone(),
                p.frameworks.join(","),
                origin,
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "FRAMEWORKS", "ORIGIN"].map(String::from);
    let width = |column: usize| {
        std::iter::once(&header)
            .chain(&rows)
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    for row in std::iter::once(&header).chain(&rows) {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    if !listing.refused.is_empty() {
        println!("\nrefused libraries:");
        for refused in &listing.refused {
            println!("  {}: {}", refused.path.display(), refused.reason);
        }
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "previewd=info,poem=warn".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let state = crate::state::AppState::open(config.clone())
            .await
            .with_context(|| format!("opening the data dir {}", config.data_dir.display()))?;
        let token = state.auth.user_token("dev", Duration::from_secs(24 * 3600));
        println!(
            "previewd {} listening on http://{addr}",
            env!("CARGO_PKG_VERSION")
        );
        println!("  Swagger UI:  http://{addr}/docs");
        println!("  data dir:    {}", config.data_dir.display());
        println!("  dev token (user `dev`, 24 h):\n    export TOKEN={token}");
        crate::server::serve(listener, state, shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn routes(
    dir: &std::path::Path,
    json: bool,
    framework: Option<&str>,
    plugins_dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let registry = Registry::load(plugins_dir)?;
    for refused in registry.refused() {
        eprintln!(
            "note: plugin library {} refused: {}",
            refused.path.display(),
            refused.reason
        );
    }
    let project = Project::open(dir).with_context(|| format!("reading {}", dir.display()))?;
    let plugin = match framework {
        Some(name) => registry.get(name).with_context(|| {
            format!(
                "unknown framework `{name}`; known: {}",
                registry.names().join(", ")
            )
        })?,
        None => match registry.detect(&project) {
            Some((plugin, detection)) => {
                eprintln!("{}: {}", plugin.name(), detection.reason);
                plugin
            }
            None => anyhow::bail!(
                "no plugin recognises {}. Looked for: {}",
                dir.display(),
                registry.looked_for()
            ),
        },
    };
    let routes = plugin.routes(&project)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&routes)?);
        return Ok(());
    }
    for route in &routes {
        let location = match (&route.file, route.line) {
            (Some(file), Some(line)) => format!("{file}:{line}"),
            (Some(file), None) => file.clone(),
            _ => String::new(),
        };
        println!("{:<7} {:<40} {}", route.method, route.path, location);
    }
    eprintln!("{} routes", routes.len());
    Ok(())
}
