//! The interpreter envs are created from (`PREVIEWD_PYTHON`, else `python3`): asked once for its
//! version (part of every env key) and for the real executable behind it, which later steps
//! run directly so that a pyenv shim's own lookup does not apply.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

use super::{ProvisionError, PROBE_TIMEOUT};

/// The interpreter envs are created from, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BasePython {
    /// e.g. `3.11.7`.
    pub(super) version: String,
    /// The real interpreter behind a shim, e.g. `/root/.pyenv/versions/3.11.7/bin/python3`.
    pub(super) executable: PathBuf,
}

/// Asks `python` for its version and real executable (a pyenv shim resolves to the
/// interpreter behind it, which later steps run directly).
pub(super) async fn probe(python: &str) -> Result<BasePython, ProvisionError> {
    let failed = |reason: String| ProvisionError::Python {
        python: python.to_string(),
        reason,
    };
    let mut command = Command::new(python);
    command
        .args([
            "-c",
            "import sys; print(sys.version.split()[0]); print(sys.executable)",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(|_| failed(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())))?
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!("{}: {}", output.status, stderr.trim())));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines().map(str::trim);
    let version = lines.next().unwrap_or_default().to_string();
    if version.is_empty() {
        return Err(failed("it printed no version".into()));
    }
    let executable = match lines.next() {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(python),
    };
    tracing::info!(%version, executable = %executable.display(), "base python");
    Ok(BasePython {
        version,
        executable,
    })
}
