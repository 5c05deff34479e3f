//! The program that creates envs and installs into them: `uv` (`PREVIEWD_UV`, else `uv` on
//! `PATH`, else the copy [`super::bootstrap`] installs into the cache) or `python -m venv` +
//! pip. This file finds a configured uv, says which installer is in use, and builds the two
//! commands of an env build; [`super::step`] runs them.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use tokio::process::Command;

use super::{ProvisionError, PROBE_TIMEOUT};

/// The program that creates envs and installs into them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Installer {
    /// `uv venv` + `uv pip install`.
    Uv {
        /// The `uv` executable.
        program: PathBuf,
        /// As `uv --version` says it, e.g. `uv 0.13.9`.
        version: String,
        /// Whether previewd installed this uv into its cache.
        bootstrapped: bool,
    },
    /// `python -m venv` + `<venv>/bin/python -m pip install`.
    Pip {
        /// Whether uv was meant to be installed into the cache but could not be.
        uv_failed: bool,
    },
}

impl Installer {
    /// The name that goes into env keys: envs built by different installers are not shared.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Installer::Uv { .. } => "uv",
            Installer::Pip { .. } => "pip",
        }
    }

    /// For progress lines and ready markers: `uv 0.13.9` or `venv+pip`.
    pub(super) fn describe(&self) -> String {
        match self {
            Installer::Uv { version, .. } => version.clone(),
            Installer::Pip { .. } => "venv+pip".into(),
        }
    }

    /// For `/config` and logs: [`Installer::describe`] plus where it came from, e.g.
    /// `uv 0.13.9 (bootstrapped)` or `venv+pip (installing uv failed)`.
    pub(super) fn report(&self) -> String {
        match self {
            Installer::Uv {
                bootstrapped: true, ..
            } => format!("{} (bootstrapped)", self.describe()),
            Installer::Pip { uv_failed: true } => {
                format!("{} (installing uv failed)", self.describe())
            }
            _ => self.describe(),
        }
    }

    /// Whether the installer takes a `pyproject.toml` with `-r` (uv does; pip gets the
    /// dependency strings read out of the file instead).
    pub(super) fn reads_pyproject(&self) -> bool {
        matches!(self, Installer::Uv { .. })
    }

    /// Whether the envs it builds have the build path written into their scripts (pip's
    /// shebangs), which must be repointed after the rename. uv builds relocatable envs.
    pub(super) fn writes_build_path(&self) -> bool {
        matches!(self, Installer::Pip { .. })
    }

    /// The command creating a venv at `venv` from the interpreter `python`.
    pub(super) fn venv_command(
        &self,
        python: &Path,
        venv: &Path,
        uv_cache_dir: Option<&OsStr>,
    ) -> Command {
        match self {
            Installer::Uv { program, .. } => {
                let mut command = uv_command(program, uv_cache_dir);
                command
                    .arg("venv")
                    .arg("--quiet")
                    .arg("--relocatable")
                    .arg("--prompt")
                    .arg("previewd")
                    .arg("--python")
                    .arg(python)
                    .arg(venv);
                command
            }
            Installer::Pip { .. } => {
                let mut command = Command::new(python);
                command
                    .args(["-m", "venv", "--prompt", "previewd"])
                    .arg(venv);
                command
            }
        }
    }

    /// The command installing into the venv of `venv_python`; the caller adds what to install.
    pub(super) fn install_command(
        &self,
        venv_python: &Path,
        uv_cache_dir: Option<&OsStr>,
    ) -> Command {
        match self {
            Installer::Uv { program, .. } => {
                let mut command = uv_command(program, uv_cache_dir);
                command
                    .arg("pip")
                    .arg("install")
                    .arg("--python")
                    .arg(venv_python);
                command
            }
            Installer::Pip { .. } => {
                let mut command = Command::new(venv_python);
                command.args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--progress-bar",
                    "off",
                ]);
                command
            }
        }
    }
}

/// `uv` with the settings every uv step gets: no Python downloads, no progress bars or colours,
/// `uv_cache_dir` (from `PREVIEWD_UV_CACHE_DIR`) as its cache.
fn uv_command(program: &Path, uv_cache_dir: Option<&OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_NO_PROGRESS", "1")
        .env("NO_COLOR", "1");
    if let Some(cache) = uv_cache_dir {
        command.env("UV_CACHE_DIR", cache);
    }
    command
}

/// The uv the operator provides: `PREVIEWD_UV` (must work), else `uv` on `PATH` (skipped with a
/// warning if it does not run). `None` when there is neither.
///
/// Runs `uv --version` synchronously: this is for [`super::PythonEnvs::new`], at start-up.
pub(super) fn configured_uv() -> Result<Option<Installer>, ProvisionError> {
    let installer = |program, version| Installer::Uv {
        program,
        version,
        bootstrapped: false,
    };
    if let Some(path) = non_empty_env("PREVIEWD_UV") {
        let program = PathBuf::from(path);
        return match uv_version(&program) {
            Ok(version) => Ok(Some(installer(program, version))),
            Err(reason) => Err(ProvisionError::Uv {
                path: program,
                reason,
            }),
        };
    }
    let Some(program) = find_on_path("uv") else {
        return Ok(None);
    };
    match uv_version(&program) {
        Ok(version) => Ok(Some(installer(program, version))),
        Err(reason) => {
            tracing::warn!(uv = %program.display(), %reason, "uv on PATH does not run; not using it");
            Ok(None)
        }
    }
}

/// `uv 0.13.9` from `uv --version`, run synchronously.
fn uv_version(program: &Path) -> Result<String, String> {
    let output = std::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| error.to_string())?;
    parse_uv_version(&output)
}

/// `uv 0.13.9` from `uv --version`, for async callers; it may take [`PROBE_TIMEOUT`].
pub(super) async fn probe_uv_version(program: &Path) -> Result<String, String> {
    let mut command = Command::new(program);
    command
        .arg("--version")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(|_| format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))?
        .map_err(|error| error.to_string())?;
    parse_uv_version(&output)
}

/// `uv 0.13.9` from the output of `uv --version` (`uv 0.13.9 (x86_64-unknown-linux-gnu)`).
fn parse_uv_version(output: &Output) -> Result<String, String> {
    if !output.status.success() {
        return Err(format!("it exited with {}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let version: Vec<&str> = stdout.split_whitespace().take(2).collect();
    if version.is_empty() {
        return Err("it printed no version".into());
    }
    Ok(version.join(" "))
}

/// An environment variable's value, unless unset or empty.
pub(super) fn non_empty_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

/// The first executable file called `name` in a `PATH` directory.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `/config` shows says where the installer came from.
    #[test]
    fn reports() {
        let uv = |bootstrapped| Installer::Uv {
            program: "/x/uv".into(),
            version: "uv 0.13.9".into(),
            bootstrapped,
        };
        assert_eq!(uv(false).report(), "uv 0.13.9");
        assert_eq!(uv(true).report(), "uv 0.13.9 (bootstrapped)");
        assert_eq!(uv(true).describe(), "uv 0.13.9");
        assert_eq!(Installer::Pip { uv_failed: false }.report(), "venv+pip");
        assert_eq!(
            Installer::Pip { uv_failed: true }.report(),
            "venv+pip (installing uv failed)"
        );
        assert_eq!(
            uv(true).kind(),
            uv(false).kind(),
            "same envs whatever the uv"
        );
    }
}
