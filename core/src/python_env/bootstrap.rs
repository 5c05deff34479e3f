//! Installing uv into the cache on a machine that has none, because venv+pip takes about 9 s per
//! env where uv takes half a second.
//!
//! When neither `PREVIEWD_UV` nor `uv` on `PATH` is available (and `PREVIEWD_NO_UV_BOOTSTRAP`
//! is not set), the first [`super::PythonEnvs::ensure`] installs uv [`UV_VERSION`] once into
//! `<cache>/tools/uv-venv` (next to the `python-envs` dir) with `python -m venv` + pip. The tool
//! venv is built like an env ([`super::build_dir`]): in a `.partial-` dir, renamed into place
//! with a ready marker, so two processes sharing the cache each build at most one and the
//! loser of the rename uses the winner's. Later processes find it ready and only check that
//! it runs and is the pinned version (otherwise it is installed again).
//!
//! If installing fails (no network, pip broken), envs are built with venv+pip for the rest of
//! the process: the caller keeps the answer in a once-cell, so it is not retried per launch.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::{Mutex, MutexGuard};

use super::base_python::BasePython;
use super::build_dir::{
    self, discard_leftovers, has_ready_marker, is_ready, repoint_scripts, unix_time_now,
};
use super::installer::{probe_uv_version, Installer};
use super::{step, ProvisionError};
use crate::cache_build::{Finish, PartialDir};

/// The uv version installed into the cache.
pub(super) const UV_VERSION: &str = "0.13.9";

/// Why installing uv did not work; it only ever becomes a progress line and a log warning.
#[derive(Debug, thiserror::Error)]
enum BootstrapError {
    /// A step (creating the venv, running pip) or a file operation failed.
    #[error(transparent)]
    Step(#[from] ProvisionError),
    /// pip succeeded, but the `uv` it installed does not run or is not the pinned version.
    #[error("the installed {program} is not usable: {reason}")]
    Check {
        /// The `uv` executable.
        program: PathBuf,
        /// What `uv --version` said or why it failed.
        reason: String,
    },
}

impl BootstrapError {
    /// One line for the user; the installer's output lines were already shown.
    fn summary(&self) -> String {
        match self {
            BootstrapError::Step(ProvisionError::Failed { step, status, .. }) => {
                format!("{step} failed ({status})")
            }
            BootstrapError::Step(ProvisionError::Timeout { step, seconds, .. }) => {
                format!("{step} did not finish within {seconds} s")
            }
            other => other.to_string(),
        }
    }
}

/// Where uv is installed when the machine has none, and the lock its installation runs under.
pub(super) struct UvBootstrap {
    /// `<cache>/tools`.
    tools_dir: PathBuf,
    /// `<cache>/tools/uv-venv`.
    venv: PathBuf,
    /// Whether the tool venv looked finished when [`UvBootstrap::new`] ran: then `/config` can
    /// say uv is there before the first build has checked it.
    installed_earlier: bool,
    /// Held while uv is found or installed, so that a concurrent caller can say it is waiting.
    lock: Mutex<()>,
}

impl UvBootstrap {
    /// The bootstrap for the env cache `envs_cache_dir` (`<cache>/python-envs`): the tool venv
    /// goes to `<cache>/tools/uv-venv`. Nothing is created yet.
    pub(super) fn new(envs_cache_dir: &Path) -> UvBootstrap {
        let tools_dir = envs_cache_dir
            .parent()
            .unwrap_or(envs_cache_dir)
            .join("tools");
        let venv = tools_dir.join("uv-venv");
        UvBootstrap {
            installed_earlier: has_ready_marker(&venv),
            tools_dir,
            venv,
            lock: Mutex::new(()),
        }
    }

    /// What [`super::PythonEnvs::installer`] says before the first build has settled it.
    pub(super) fn pending_report(&self) -> &'static str {
        if self.installed_earlier {
            "uv (installed in the cache earlier; checked on first use)"
        } else {
            "uv (to be installed on first use)"
        }
    }

    /// Waits until no other caller is finding or installing uv, saying so through `progress`
    /// when it has to wait.
    pub(super) async fn turn(
        &self,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> MutexGuard<'_, ()> {
        match self.lock.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                progress("waiting for the uv set-up already under way".into());
                self.lock.lock().await
            }
        }
    }

    /// The installer for the rest of the process: the cached uv (installed now if missing or
    /// unusable, using `python`, each step limited to `step_timeout`), else venv+pip, with a
    /// progress line saying why.
    pub(super) async fn install(
        &self,
        python: &BasePython,
        step_timeout: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Installer {
        let program = self.venv.join("bin").join("uv");
        if is_ready(&self.venv).await {
            match check(&program).await {
                Ok(version) => {
                    tracing::info!(uv = %program.display(), %version, "using the uv installed in the cache");
                    return Installer::Uv {
                        program,
                        version,
                        bootstrapped: true,
                    };
                }
                Err(reason) => progress(format!(
                    "the uv installed in the cache ({}) is not usable ({reason}); installing it again",
                    program.display()
                )),
            }
        }
        let started = Instant::now();
        match self.build(python, step_timeout, progress).await {
            Ok(version) => {
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(uv = %program.display(), %version, seconds, "uv installed in the cache");
                progress(format!("uv ready in {seconds:.1} s"));
                Installer::Uv {
                    program,
                    version,
                    bootstrapped: true,
                }
            }
            Err(error) => {
                tracing::warn!(%error, "could not install uv; building python envs with venv+pip");
                progress(format!(
                    "could not install uv: {}; building virtualenvs with venv+pip instead (slower)",
                    error.summary()
                ));
                Installer::Pip { uv_failed: true }
            }
        }
    }

    /// Installs uv into a partial dir and renames it into place; returns the version of the
    /// uv now at the final path (another process's when it finished first).
    async fn build(
        &self,
        python: &BasePython,
        step_timeout: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<String, BootstrapError> {
        tokio::fs::create_dir_all(&self.tools_dir)
            .await
            .map_err(|source| ProvisionError::Io {
                path: self.tools_dir.clone(),
                source,
            })?;
        discard_leftovers(&self.venv, step_timeout).await?;
        progress(format!(
            "installing uv {UV_VERSION} into the cache (one time)…"
        ));
        let partial = PartialDir::new(&self.venv);
        let bin = partial.path().join("bin");

        let mut create = Command::new(&python.executable);
        create.args(["-m", "venv"]).arg(partial.path());
        step::run(
            "creating the virtualenv for uv",
            create,
            &self.tools_dir,
            step_timeout,
            progress,
        )
        .await?;
        let mut install = Command::new(bin.join("pip"));
        install
            .args([
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
            ])
            .arg(format!("uv=={UV_VERSION}"));
        step::run(
            &format!("installing uv {UV_VERSION} with pip"),
            install,
            &self.tools_dir,
            step_timeout,
            progress,
        )
        .await?;
        let built = bin.join("uv");
        let version = check(&built)
            .await
            .map_err(|reason| BootstrapError::Check {
                program: built,
                reason,
            })?;
        // pip wrote the partial path into its scripts' shebangs; `uv` itself is a binary.
        repoint_scripts(&bin, partial.path(), &self.venv).await?;
        let marker = serde_json::json!({
            "tool": "uv",
            "version": version,
            "python": python.version,
            "built_at_unix": unix_time_now(),
        });
        match build_dir::finish(partial, &marker).await? {
            Finish::Renamed => Ok(version),
            Finish::AlreadyThere => {
                tracing::info!("another process installed uv into the cache first; using its copy");
                let program = self.venv.join("bin").join("uv");
                check(&program)
                    .await
                    .map_err(|reason| BootstrapError::Check { program, reason })
            }
        }
    }
}

/// `uv 0.13.9` when `program` runs and is the pinned version; else why not.
async fn check(program: &Path) -> Result<String, String> {
    let version = probe_uv_version(program).await?;
    if version == format!("uv {UV_VERSION}") {
        Ok(version)
    } else {
        Err(format!("it is {version}, not uv {UV_VERSION}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tool venv is a sibling of the env cache, under `tools/`.
    #[test]
    fn tool_venv_next_to_the_env_cache() {
        let bootstrap = UvBootstrap::new(Path::new("/data/cache/python-envs"));
        assert_eq!(bootstrap.venv, Path::new("/data/cache/tools/uv-venv"));
        assert_eq!(bootstrap.tools_dir, Path::new("/data/cache/tools"));
        assert_eq!(
            bootstrap.pending_report(),
            "uv (to be installed on first use)"
        );
    }

    /// A failed step is summed up in one line; the output was already shown.
    #[test]
    fn summaries() {
        let failed = BootstrapError::Step(ProvisionError::Failed {
            step: "installing uv 0.13.9 with pip".into(),
            status: "exit status: 1".into(),
            tail: "  ERROR: no network".into(),
        });
        assert_eq!(
            failed.summary(),
            "installing uv 0.13.9 with pip failed (exit status: 1)"
        );
        let check = BootstrapError::Check {
            program: "/c/tools/uv-venv/bin/uv".into(),
            reason: "it is uv 0.1.0, not uv 0.13.9".into(),
        };
        assert_eq!(
            check.summary(),
            "the installed /c/tools/uv-venv/bin/uv is not usable: it is uv 0.1.0, not uv 0.13.9"
        );
    }

    /// A uv that is not the pinned version, or does not run, is not used.
    #[tokio::test]
    async fn checks_the_version() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = |name: &str, script: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let pinned = fake(
            "pinned",
            &format!("#!/bin/sh\necho 'uv {UV_VERSION} (x86_64-unknown-linux-gnu)'\n"),
        );
        assert_eq!(check(&pinned).await, Ok(format!("uv {UV_VERSION}")));
        let older = fake("older", "#!/bin/sh\necho 'uv 0.1.0'\n");
        assert_eq!(
            check(&older).await,
            Err(format!("it is uv 0.1.0, not uv {UV_VERSION}"))
        );
        let broken = fake("broken", "#!/bin/sh\nexit 3\n");
        assert!(check(&broken).await.is_err());
        assert!(check(&dir.path().join("missing")).await.is_err());
    }
}
