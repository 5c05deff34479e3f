//! [`ProvisionError`]: every way providing a virtualenv can fail, as the rest of core sees it.
//!
//! Failures to bootstrap uv are not here: they never leave this module, because envs are then
//! built with venv+pip instead.

use std::path::PathBuf;

/// Why a virtualenv could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The cache directory could not be created or resolved.
    #[error("could not create the python env cache directory {path}: {source}")]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `PREVIEWD_UV` names a `uv` that does not run.
    #[error("PREVIEWD_UV is set to {path}, but `{path} --version` did not work: {reason}")]
    Uv {
        /// The configured path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The base python (`PREVIEWD_PYTHON`, else `python3`) does not run.
    #[error(
        "could not run the base python `{python}` ({reason}); install Python 3 or point \
         PREVIEWD_PYTHON at an interpreter"
    )]
    Python {
        /// The configured interpreter.
        python: String,
        /// What went wrong.
        reason: String,
    },
    /// A project manifest could not be read.
    #[error("could not read the requirements manifest {path}: {source}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An installer program could not be started.
    #[error("could not start {program} to {step}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// What it was meant to do.
        step: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An installer step exited unsuccessfully.
    #[error("{step} failed ({status}); its last output lines:\n{tail}")]
    Failed {
        /// What was being done, e.g. "installing requirements with uv 0.13.9".
        step: String,
        /// The exit status as text.
        status: String,
        /// The last output lines.
        tail: String,
    },
    /// An installer step ran past the timeout and was killed.
    #[error(
        "{step} did not finish within {seconds} s and was stopped; its last output lines:\n{tail}"
    )]
    Timeout {
        /// What was being done.
        step: String,
        /// The timeout in seconds.
        seconds: u64,
        /// The last output lines.
        tail: String,
    },
    /// A file or directory of the env could not be written, renamed or removed.
    #[error("could not prepare the virtualenv at {path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
