//! Cached Python virtualenvs, keyed by what they install.
//!
//! Every Python preview runs `runtimes/python/launcher.py` with a virtualenv's own interpreter.
//! Building a virtualenv is the slowest step of a launch, so this module builds each distinct
//! one once and reuses it: the key is a sha256 of everything that decides its contents (the
//! base python, the installer, the launcher's requirements and the text of each project
//! manifest). Projects without manifests all share the one base env.
//!
//! Builds go into `<cache>/<key>.partial-<random>` and are renamed to `<cache>/<key>` only once
//! complete, with a ready marker inside, so a crash never leaves a half-built env in use and a
//! restarted server reuses finished ones. Within the process a tokio mutex per key makes
//! concurrent requests for the same env wait for a single build.
//!
//! The installer is `uv` when available (`PREVIEWD_UV`, else `uv` on `PATH`, else a pinned uv
//! that the first build installs into the cache): a warm build takes well under a second.
//! Without it, `python3 -m venv` + pip does the same, much slower.
//!
//! Manifests: `requirements*.txt` files are passed with `-r`. For `pyproject.toml`, only PEP 621
//! `[project].dependencies` are installed (uv reads the file with `-r`; with pip the dependency
//! strings are read out of the file here and passed as arguments); Poetry's
//! `[tool.poetry.dependencies]` and dynamic dependencies are not installed, which the progress
//! lines say. When a project has manifests, the launcher's base requirements are installed in the
//! same resolver run with their pins removed, so the project's own pins win.
//!
//! # Layout
//!
//! - this file: [`PythonEnvs`] (the cache, [`PythonEnvs::ensure`], building one env).
//! - `error`: [`ProvisionError`].
//! - `installer`: uv or venv+pip: finding a configured uv, describing it, its commands.
//! - `bootstrap`: installing uv into the cache when the machine has none.
//! - `step`: running one installer step (output forwarding, tail, timeout).
//! - `build_dir`: building a directory atomically (`.partial-` dir, ready marker, rename).
//! - `base_python`: the interpreter envs are made from, probed once.
//! - `manifest`: reading requirement manifests; requirement lines and pins.
//! - `pyproject`: the dependencies a `pyproject.toml` declares.
//! - `plan`: what one env installs and how, before anything runs.
//! - `key`: the env key.

mod base_python;
mod bootstrap;
mod build_dir;
mod error;
mod installer;
mod key;
mod manifest;
mod plan;
mod pyproject;
mod step;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::cache_build::{BuildLocks, Finish, PartialDir};
use base_python::BasePython;
use bootstrap::UvBootstrap;
use build_dir::{discard_leftovers, is_ready, repoint_scripts, unix_time_now, write_file};
pub use error::ProvisionError;
use installer::{configured_uv, non_empty_env, Installer};
use key::{env_key, short};
use manifest::Manifest;
use plan::{InstallPlan, Source};

/// The launcher's requirements as installed into an env, kept inside it for reference.
const BASE_REQUIREMENTS_FILE: &str = "previewd-requirements.txt";
/// How long one installer step may run unless [`PythonEnvs::install_timeout`] says otherwise.
const DEFAULT_INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long asking a program (the base python, uv) for its version may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// A ready virtualenv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// The env's interpreter, `<venv>/bin/python`, absolute; run it directly.
    pub python: PathBuf,
    /// The env's cache key (hex).
    pub key: String,
    /// Whether the env existed already (true) or was built by this call (false).
    pub reused: bool,
}

/// Where virtualenvs live and how they are built.
pub struct PythonEnvs {
    cache_dir: PathBuf,
    /// The installer envs are built with. Set by [`PythonEnvs::new`] when it is known then
    /// (a configured uv, or venv+pip with the bootstrap off); otherwise by the first
    /// [`PythonEnvs::ensure`], which installs uv into the cache, once for the process.
    installer: OnceCell<Installer>,
    /// Where uv goes when the installer is not known at start-up.
    uv_bootstrap: UvBootstrap,
    base_python: String,
    base_python_info: OnceCell<BasePython>,
    uv_cache_dir: Option<OsString>,
    locks: BuildLocks,
    /// How long one installer step (creating the env, installing into it) may run before it is
    /// killed and the build fails. Default: 10 minutes.
    pub install_timeout: Duration,
}

impl PythonEnvs {
    /// Prepares the cache at `cache_dir` (e.g. `<data-dir>/cache/python-envs`, created if
    /// missing) and looks for an installer: `uv` from env `PREVIEWD_UV` (a path; an error if it
    /// does not run), else `uv` on `PATH`. Without either, the first [`PythonEnvs::ensure`]
    /// installs uv once into `<cache_dir>/../tools/uv-venv` (with the base python's venv and
    /// pip; a few seconds, shared by every process using the cache) and falls back to
    /// `python3 -m venv` + pip if that fails. Env `PREVIEWD_NO_UV_BOOTSTRAP=1` turns that
    /// installation off: then venv+pip is used straight away.
    ///
    /// The base python is env `PREVIEWD_PYTHON`, else `python3`; it is first run by
    /// [`PythonEnvs::ensure`]. `PREVIEWD_UV_CACHE_DIR`, when set, becomes uv's `UV_CACHE_DIR`.
    pub fn new(cache_dir: PathBuf) -> Result<PythonEnvs, ProvisionError> {
        std::fs::create_dir_all(&cache_dir).map_err(|source| ProvisionError::CacheDir {
            path: cache_dir.clone(),
            source,
        })?;
        let cache_dir =
            std::fs::canonicalize(&cache_dir).map_err(|source| ProvisionError::CacheDir {
                path: cache_dir,
                source,
            })?;
        let bootstrap_disabled =
            non_empty_env("PREVIEWD_NO_UV_BOOTSTRAP").is_some_and(|value| value != "0");
        let installer = match configured_uv()? {
            Some(uv) => Some(uv),
            None if bootstrap_disabled => Some(Installer::Pip { uv_failed: false }),
            None => None,
        };
        let base_python = non_empty_env("PREVIEWD_PYTHON")
            .and_then(|value| value.into_string().ok())
            .unwrap_or_else(|| "python3".into());
        let envs = PythonEnvs {
            uv_bootstrap: UvBootstrap::new(&cache_dir),
            cache_dir,
            installer: OnceCell::new_with(installer),
            base_python,
            base_python_info: OnceCell::new(),
            uv_cache_dir: non_empty_env("PREVIEWD_UV_CACHE_DIR"),
            locks: BuildLocks::default(),
            install_timeout: DEFAULT_INSTALL_TIMEOUT,
        };
        tracing::info!(
            cache_dir = %envs.cache_dir.display(),
            installer = %envs.installer(),
            base_python = %envs.base_python,
            "python envs ready"
        );
        Ok(envs)
    }

    /// Which installer is in use, for the `/config` answer and logs: `"uv 0.13.9"`,
    /// `"uv 0.13.9 (bootstrapped)"` or `"venv+pip"` (`"venv+pip (installing uv failed)"`);
    /// before the first [`PythonEnvs::ensure`] has settled on uv from the cache,
    /// `"uv (to be installed on first use)"` or
    /// `"uv (installed in the cache earlier; checked on first use)"`.
    pub fn installer(&self) -> String {
        match self.installer.get() {
            Some(installer) => installer.report(),
            None => self.uv_bootstrap.pending_report().to_string(),
        }
    }

    /// Returns a ready virtualenv holding `base_requirements` (the text of
    /// `runtimes/python/requirements.txt`) plus the project's own requirement manifests
    /// (absolute paths of `requirements*.txt` or `pyproject.toml` files), building it unless an
    /// identical one is cached. With manifests, the base requirements are installed unpinned in
    /// the same resolver run, so the project's pins win. The first call may install uv into the
    /// cache first (see [`PythonEnvs::new`]).
    ///
    /// Every step is reported through `progress` as a line for the user, including each line the
    /// installer prints. `project_dir` is the installer's cwd, so relative references inside
    /// requirement files resolve against the project.
    pub async fn ensure(
        &self,
        base_requirements: &str,
        project_manifests: &[PathBuf],
        project_dir: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<PythonEnv, ProvisionError> {
        let started = Instant::now();
        let python = self.base_python().await?;
        let mut manifests = Vec::with_capacity(project_manifests.len());
        for path in project_manifests {
            manifests.push(Manifest::read(path).await?);
        }
        let installer = self.resolve_installer(python, progress).await;
        let plan = InstallPlan::new(base_requirements, &manifests, installer.reads_pyproject());
        let key = env_key(installer.kind(), python, &plan, &manifests, project_dir);
        let span = tracing::info_span!("python_env", key = %short(&key));
        async {
            let waiting = || {
                format!(
                    "python env {}: waiting for the build of the same env already under way",
                    short(&key)
                )
            };
            let _build = self.locks.hold(&key, waiting, progress).await;
            let dir = self.cache_dir.join(&key);
            let env = PythonEnv {
                python: dir.join("bin").join("python"),
                key: key.clone(),
                reused: true,
            };
            if is_ready(&dir).await {
                tracing::debug!("reusing cached python env");
                progress(format!(
                    "python env {}: reusing cached virtualenv",
                    short(&key)
                ));
                return Ok(env);
            }
            progress(format!(
                "python env {}: not cached yet, building it",
                short(&key)
            ));
            tracing::info!(installer = %installer.describe(), "building python env");
            let started_build = Instant::now();
            let result = self
                .build(installer, &key, python, &plan, project_dir, progress)
                .await;
            match result {
                Ok(Finish::Renamed) => {
                    let seconds = started_build.elapsed().as_secs_f64();
                    tracing::info!(
                        seconds,
                        total_seconds = started.elapsed().as_secs_f64(),
                        "python env built"
                    );
                    progress(format!("virtualenv ready in {seconds:.1} s"));
                    Ok(PythonEnv {
                        reused: false,
                        ..env
                    })
                }
                Ok(Finish::AlreadyThere) => Ok(env),
                Err(error) => {
                    tracing::warn!(%error, "python env build failed");
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The installer for this build: the one known since [`PythonEnvs::new`], else uv installed
    /// into the cache now (or venv+pip when that fails), settled once for the process.
    async fn resolve_installer(
        &self,
        python: &BasePython,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> &Installer {
        if let Some(installer) = self.installer.get() {
            return installer;
        }
        let _turn = self.uv_bootstrap.turn(progress).await;
        self.installer
            .get_or_init(|| {
                self.uv_bootstrap
                    .install(python, self.install_timeout, progress)
            })
            .await
    }

    /// Builds the env `key` into a `.partial-` dir and renames it to `<cache>/<key>`;
    /// [`Finish::AlreadyThere`] when another process finished the same env first and that one is
    /// used instead.
    async fn build(
        &self,
        installer: &Installer,
        key: &str,
        python: &BasePython,
        plan: &InstallPlan,
        project_dir: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Finish, ProvisionError> {
        let dir = self.cache_dir.join(key);
        discard_leftovers(&dir, self.install_timeout).await?;
        let partial = PartialDir::new(&dir);
        let venv = partial.path();
        let venv_python = venv.join("bin").join("python");
        let uv_cache_dir = self.uv_cache_dir.as_deref();

        progress(format!(
            "creating virtualenv ({}, Python {})",
            installer.describe(),
            python.version
        ));
        let create = installer.venv_command(&python.executable, venv, uv_cache_dir);
        step::run(
            "creating the virtualenv",
            create,
            &self.cache_dir,
            self.install_timeout,
            progress,
        )
        .await?;

        let base_file = venv.join(BASE_REQUIREMENTS_FILE);
        write_file(&base_file, plan.base.as_bytes()).await?;
        for note in &plan.notes {
            progress(note.clone());
        }
        progress(format!("installing {}…", plan.summary));
        let mut install = installer.install_command(&venv_python, uv_cache_dir);
        install.arg("-r").arg(&base_file);
        for source in &plan.sources {
            match source {
                Source::File(path) => {
                    install.arg("-r").arg(path);
                }
                Source::Requirements(requirements) => {
                    install.args(requirements);
                }
            }
        }
        let step = format!("installing requirements with {}", installer.describe());
        step::run(&step, install, project_dir, self.install_timeout, progress).await?;

        if installer.writes_build_path() {
            // pip writes the build path into script shebangs; point them at the final path.
            repoint_scripts(&venv.join("bin"), venv, &dir).await?;
        }
        let marker = serde_json::json!({
            "key": key,
            "installer": installer.describe(),
            "python": python.version,
            "manifests": plan.manifest_names,
            "built_at_unix": unix_time_now(),
        });
        build_dir::finish(partial, &marker).await
    }

    /// The base python's version and real executable, asked once.
    async fn base_python(&self) -> Result<&BasePython, ProvisionError> {
        self.base_python_info
            .get_or_try_init(|| base_python::probe(&self.base_python))
            .await
    }
}
