//! Running one installer step (creating a virtualenv, `pip`/`uv` installs, `npm ci`): stdin
//! closed, previewd's own settings kept from it, every output line forwarded to the caller's
//! progress as it arrives, the last lines kept for the error, and the step killed when it runs
//! too long. The Python and Node environments both install through it.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// How many of an installer's last output lines an error carries.
const TAIL_LINES: usize = 20;

/// Why a step failed. `tail` is the step's last output lines, indented, or `(no output)`.
#[derive(Debug)]
pub enum StepError {
    /// The program could not be started.
    Spawn(std::io::Error),
    /// It ended unsuccessfully (or could not be waited for); `status` says how.
    Failed { status: String, tail: String },
    /// It ran past the timeout and was killed.
    Timeout { tail: String },
}

/// Runs `command` in `cwd`, forwarding its output lines to `progress`, killing it after
/// `timeout`. The caller sets the installer's own environment on `command` first.
pub async fn run(
    mut command: Command,
    cwd: &Path,
    timeout: Duration,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(), StepError> {
    // Installs can run code (sdist builds, package scripts): keep previewd's settings from it.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PREVIEWD_") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(StepError::Spawn)?;
    let (lines_tx, mut lines) = mpsc::unbounded_channel();
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, lines_tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_lines(stderr, lines_tx.clone()));
    }
    drop(lines_tx);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let run = async {
        while let Some(line) = lines.recv().await {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
            progress(line);
        }
        child.wait().await
    };
    let outcome = tokio::time::timeout(timeout, run).await;
    let tail_text = || {
        if tail.is_empty() {
            "  (no output)".to_string()
        } else {
            tail.iter()
                .map(|line| format!("  {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    match outcome {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(StepError::Failed {
            status: status.to_string(),
            tail: tail_text(),
        }),
        Ok(Err(error)) => Err(StepError::Failed {
            status: format!("could not wait for it: {error}"),
            tail: tail_text(),
        }),
        Err(_) => {
            // Kill it now rather than when `child` is dropped, so it is gone by the time the
            // error is reported.
            if let Err(error) = child.start_kill() {
                tracing::warn!(%error, "could not kill a timed-out installer");
            }
            Err(StepError::Timeout { tail: tail_text() })
        }
    }
}

/// Sends each non-blank line of `stream` (lossily decoded, without its line ending) down `lines`.
async fn forward_lines(stream: impl AsyncRead + Unpin, lines: mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                let line = line.trim_end_matches(['\n', '\r']);
                if !line.trim().is_empty() && lines.send(line.to_string()).is_err() {
                    return;
                }
            }
        }
    }
}
