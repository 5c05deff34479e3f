//! A third-party plugin that panics on purpose, loaded by the end-to-end tests
//! (`tests/e2e/plugins.rs`) to show that a panic inside a plugin is caught at the library
//! boundary and reported, and that previewd and the other plugins carry on.
//!
//! - `detect` panics on every project, except one holding a file named [`CLAIM_FILE`], which
//!   it claims with full confidence.
//! - `launch_plan` and `routes` always panic.

use previewd_plugin_api::{
    export_plugin, Detection, Endpoint, LaunchPlan, PluginError, Project, RuntimePlugin,
};

/// The file that makes the plugin claim a project instead of panicking.
const CLAIM_FILE: &str = "panicky.claim";

/// The plugin.
pub struct PanickyPlugin;

impl RuntimePlugin for PanickyPlugin {
    fn name(&self) -> &str {
        "panicky"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn looks_for(&self) -> &str {
        "a file named panicky.claim (and panics on anything else)"
    }

    fn detect(&self, project: &Project) -> Option<Detection> {
        if project.has_file(CLAIM_FILE) {
            return Some(Detection {
                confidence: 1.0,
                reason: format!("{CLAIM_FILE} is there"),
            });
        }
        panic!("panicky panics in detect, on purpose");
    }

    fn launch_plan(&self, _project: &Project, _port: u16) -> Result<LaunchPlan, PluginError> {
        panic!("panicky panics in launch_plan, on purpose");
    }

    fn routes(&self, _project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        panic!("panicky panics in routes, on purpose");
    }
}

export_plugin!(PanickyPlugin);
