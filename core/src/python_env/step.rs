//! One installer step of a Python environment (creating a venv, installing into it), run by the
//! shared [`install_step`](crate::install_step) with pip kept from prompting, and its failure
//! told as a [`ProvisionError`] naming the step.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::ProvisionError;
use crate::install_step::{self, StepError};

/// Runs `command` in `cwd` as the step described by `step` ("creating the virtualenv"),
/// forwarding its output lines to `progress`, killing it after `timeout`.
pub(super) async fn run(
    step: &str,
    mut command: Command,
    cwd: &Path,
    timeout: Duration,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(), ProvisionError> {
    command.env("PIP_NO_INPUT", "1");
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    tracing::debug!(%program, step, "running installer step");
    install_step::run(command, cwd, timeout, progress)
        .await
        .map_err(|error| match error {
            StepError::Spawn(source) => ProvisionError::Spawn {
                program,
                step: step.to_string(),
                source,
            },
            StepError::Failed { status, tail } => ProvisionError::Failed {
                step: step.to_string(),
                status,
                tail,
            },
            StepError::Timeout { tail } => ProvisionError::Timeout {
                step: step.to_string(),
                seconds: timeout.as_secs(),
                tail,
            },
        })
}
