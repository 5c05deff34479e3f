//! What the server shares between requests: settings, storage, tokens and the supervisor, opened
//! once from the data dir.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use previewd_plugin_api::Endpoint;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::database::Databases;
use crate::envelope::Envelope;
use crate::log_store::{LogLimits, LogStore};
use crate::node_env::NodeEnvs;
use crate::python_env::PythonEnvs;
use crate::registry::{LoadError, Registry};
use crate::runtimes::Runtimes;
use crate::store::{Store, StoreError};
use crate::supervisor::isolation::{Folders, Isolation, IsolationError};
use crate::supervisor::limits::{Limits, LimitsError};
use crate::supervisor::{Supervisor, SupervisorParts};

/// Largest envelope request body.
const MAX_ENVELOPE_REQUEST: usize = 10 * 1024 * 1024;
/// Largest envelope response body.
const MAX_ENVELOPE_RESPONSE: usize = 10 * 1024 * 1024;

/// Why the server could not open its data dir.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("preparing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("setting up Python environments: {0}")]
    Python(#[from] crate::python_env::ProvisionError),
    #[error(transparent)]
    Limits(#[from] LimitsError),
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    #[error("{0}")]
    Databases(String),
    #[error(transparent)]
    Plugins(#[from] LoadError),
}

/// The shared state.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub logs: LogStore,
    pub auth: Authenticator,
    pub supervisor: Supervisor,
    pub envelope: Envelope,
    /// Where uploads are staged before they are moved into place.
    pub staging_dir: PathBuf,
    /// Static routes per generation; files never change after upload, so neither do these.
    static_routes: Mutex<HashMap<String, Arc<Vec<Endpoint>>>>,
}

impl AppState {
    /// Opens (creating as needed) everything under the configured data dir.
    pub async fn open(mut config: Config) -> Result<Arc<AppState>, OpenError> {
        // Apps run in their own working dirs, so every path handed to them must be absolute.
        let absolute = |path: &PathBuf| {
            std::path::absolute(path).map_err(|source| OpenError::Io {
                path: path.clone(),
                source,
            })
        };
        config.data_dir = absolute(&config.data_dir)?;
        config.cache_dir = Some(absolute(&config.cache_dir())?);
        let data_dir = config.data_dir.clone();
        let dir = |name: &str| -> Result<PathBuf, OpenError> {
            let path = data_dir.join(name);
            std::fs::create_dir_all(&path).map_err(|source| OpenError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        };
        let generations_dir = dir("generations")?;
        let previews_dir = dir("previews")?;
        let staging_dir = dir("staging")?;
        // Leftovers of uploads cut short by a crash.
        if let Ok(entries) = std::fs::read_dir(&staging_dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let runtimes_dir = dir("runtimes")?;
        let runtimes = Runtimes::install(&runtimes_dir).map_err(|source| OpenError::Io {
            path: data_dir.join("runtimes"),
            source,
        })?;
        let auth = Authenticator::load_or_create(config.jwt_secret.as_deref(), &data_dir).map_err(
            |source| OpenError::Io {
                path: data_dir.join("jwt-secret"),
                source,
            },
        )?;
        let store = Store::open(&dir("db")?)?;
        let logs = LogStore::open(
            store.db(),
            LogLimits {
                max_lines: config.max_log_lines,
                max_bytes: config.max_log_bytes,
            },
        )?;
        let envs = PythonEnvs::new(config.cache_dir().join("python-envs"))?;
        let node_envs_dir = config.cache_dir().join("node-envs");
        let node_envs = NodeEnvs::new(node_envs_dir.clone()).map_err(|source| OpenError::Io {
            path: node_envs_dir,
            source,
        })?;
        let limits = Limits::detect(config.limits, config.limit_settings())?;
        tracing::info!("resource limits: {}", limits.summary());
        let isolation = Isolation::detect(
            config.isolation,
            Folders {
                data_dir: data_dir.clone(),
                cache_dir: config.cache_dir(),
                runtimes_dir,
            },
            config.disk_limit.limit(),
        )?;
        tracing::info!("isolation: {}", isolation.summary());
        let registry = Registry::load(config.plugins_dir.as_deref())?;
        tracing::info!(
            "plugins: {} ({} refused)",
            registry.names().join(", "),
            registry.refused().len()
        );
        let databases = Databases::new(
            config.postgres_url.as_deref(),
            config.mongodb_url.as_deref(),
        )
        .map_err(OpenError::Databases)?;
        let supervisor = Supervisor::start(SupervisorParts {
            databases,
            limits,
            isolation,
            config: config.clone(),
            store: store.clone(),
            logs: logs.clone(),
            registry,
            envs,
            node_envs,
            runtimes,
            generations_dir,
            previews_dir,
        })
        .await?;
        Ok(Arc::new(AppState {
            envelope: Envelope::new(
                config.request_timeout,
                MAX_ENVELOPE_REQUEST,
                MAX_ENVELOPE_RESPONSE,
            ),
            config,
            store,
            logs,
            auth,
            supervisor,
            staging_dir,
            static_routes: Mutex::default(),
        }))
    }

    /// The cached static routes of a generation.
    pub fn cached_static_routes(&self, generation_id: &str) -> Option<Arc<Vec<Endpoint>>> {
        self.static_routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(generation_id)
            .cloned()
    }

    /// Remembers the static routes of a generation (or forgets them, with `None`).
    pub fn cache_static_routes(&self, generation_id: &str, routes: Option<Arc<Vec<Endpoint>>>) {
        let mut cache = self
            .static_routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match routes {
            Some(routes) => cache.insert(generation_id.to_string(), routes),
            None => cache.remove(generation_id),
        };
    }
}
