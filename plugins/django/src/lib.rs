//! previewd's Django plugin (being written): recognises nothing yet.

use previewd_plugin_api::{Detection, Endpoint, LaunchPlan, PluginError, Project, RuntimePlugin};

/// The Django plugin.
pub struct DjangoPlugin;

impl RuntimePlugin for DjangoPlugin {
    fn name(&self) -> &str {
        "django"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn looks_for(&self) -> &str {
        "a Django project"
    }

    fn detect(&self, _project: &Project) -> Option<Detection> {
        None
    }

    fn launch_plan(&self, _project: &Project, _port: u16) -> Result<LaunchPlan, PluginError> {
        Err(PluginError::NoEntrypoint {
            looked_for: self.looks_for().to_string(),
        })
    }

    fn routes(&self, _project: &Project) -> Result<Vec<Endpoint>, PluginError> {
        Ok(Vec::new())
    }
}
