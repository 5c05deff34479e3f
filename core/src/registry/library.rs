//! A plugin loaded from a shared library, as a `RuntimePlugin` like any built-in.
//!
//! The adapter keeps the library loaded for as long as it lives (the calls point into it) and
//! turns what goes wrong on the other side into ordinary outcomes: a panic or an unreadable
//! answer in `detect` is logged and counts as "not mine", so the other plugins still get to
//! detect; in `launch_plan` and `routes` it is a [`PluginError::Failed`] naming the plugin, its
//! library and what it was doing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use previewd_plugin_api::abi::{CallError, Calls, Description};
use previewd_plugin_api::{Detection, Endpoint, LaunchPlan, PluginError, Project, RuntimePlugin};

/// A loaded plugin.
pub struct LibraryPlugin {
    calls: Calls,
    description: Description,
    path: PathBuf,
    /// `name version` of the Cargo package the library was built from.
    package: String,
    /// The `previewd-plugin-api` version it was built against.
    api_version: String,
    /// Keeps the library loaded while `calls` may be used; dropped last.
    _library: Arc<libloading::Library>,
}

impl LibraryPlugin {
    /// The adapter over `calls`, which point into `library`.
    pub(crate) fn new(
        library: Arc<libloading::Library>,
        calls: Calls,
        description: Description,
        path: PathBuf,
        package: String,
        api_version: String,
    ) -> LibraryPlugin {
        LibraryPlugin {
            calls,
            description,
            path,
            package,
            api_version,
            _library: library,
        }
    }

    /// The library's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name version` of the Cargo package the library was built from.
    pub fn package(&self) -> &str {
        &self.package
    }

    /// The `previewd-plugin-api` version the library was built against.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// A failure of the plugin while `doing`, as a `PluginError`: its own errors as they are,
    /// panics and unreadable answers as [`PluginError::Failed`] saying who and what.
    fn failure(&self, doing: &str, err: CallError) -> PluginError {
        let who = format!(
            "plugin `{}` (loaded from {})",
            self.description.name,
            self.path.display()
        );
        match err {
            CallError::Plugin(err) => err,
            CallError::Panicked(message) => PluginError::Failed {
                message: format!("{who} panicked while {doing}: {message}"),
            },
            CallError::Protocol(message) => PluginError::Failed {
                message: format!("{who} failed while {doing}: {message}"),
            },
        }
    }
}

impl RuntimePlugin for LibraryPlugin {
    fn name(&self) -> &str {
        &self.description.name
    }

    fn version(&self) -> &str {
        &self.description.version
    }

    fn looks_for(&self) -> &str {
        &self.description.looks_for
    }

    fn detect(&self, project: &Project) -> Option<Detection> {
        match self.calls.detect(project) {
            Ok(detection) => detection.map(|mut d| {
                d.confidence = d.confidence.clamp(0.0, 1.0);
                d
            }),
            Err(err) => {
                let err = self.failure("detecting the framework", err);
                tracing::warn!(
                    plugin = self.name(),
                    path = %self.path.display(),
                    "{err}; the plugin is passed over for this project"
                );
                None
            }
        }
    }

    fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError> {
        self.calls
            .launch_plan(project, port)
            .map_err(|err| self.failure("making the launch plan", err))
    }

    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        self.calls
            .routes(project)
            .map_err(|err| self.failure("extracting routes", err))
    }
}
