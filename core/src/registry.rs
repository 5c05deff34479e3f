//! The plugins previewd knows, and the choice among them for a project.
//!
//! Built-in plugins are listed once, in [`Registry::builtin`]. When several plugins claim a
//! project the most confident wins; ties go to the one listed first.

use std::sync::Arc;

use previewd_plugin_api::{Detection, Project, RuntimePlugin};

/// A plugin and whether it came with previewd.
#[derive(Clone)]
pub struct Registered {
    pub plugin: Arc<dyn RuntimePlugin>,
    /// `None` for a built-in plugin; the library path for a loaded one.
    pub origin: Option<std::path::PathBuf>,
}

/// The plugin list.
#[derive(Clone)]
pub struct Registry {
    plugins: Vec<Registered>,
}

impl Registry {
    /// The plugins built into previewd, in tie-breaking order.
    pub fn builtin() -> Registry {
        let builtins: Vec<Arc<dyn RuntimePlugin>> = vec![
            Arc::new(previewd_plugin_fastapi::FastApiPlugin),
            Arc::new(previewd_plugin_flask::FlaskPlugin),
            Arc::new(previewd_plugin_django::DjangoPlugin),
            Arc::new(previewd_plugin_express::ExpressPlugin),
        ];
        Registry {
            plugins: builtins
                .into_iter()
                .map(|plugin| Registered {
                    plugin,
                    origin: None,
                })
                .collect(),
        }
    }

    /// Every plugin, in order.
    pub fn plugins(&self) -> &[Registered] {
        &self.plugins
    }

    /// The plugin named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn RuntimePlugin>> {
        self.plugins
            .iter()
            .find(|r| r.plugin.name().eq_ignore_ascii_case(name))
            .map(|r| r.plugin.clone())
    }

    /// The names of every plugin, for error messages.
    pub fn names(&self) -> Vec<String> {
        self.plugins
            .iter()
            .map(|r| r.plugin.name().to_string())
            .collect()
    }

    /// The plugin that claims `project` most confidently.
    pub fn detect(&self, project: &Project) -> Option<(Arc<dyn RuntimePlugin>, Detection)> {
        let mut best: Option<(Arc<dyn RuntimePlugin>, Detection)> = None;
        for registered in &self.plugins {
            let Some(detection) = registered.plugin.detect(project) else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|(_, b)| detection.confidence > b.confidence)
            {
                best = Some((registered.plugin.clone(), detection));
            }
        }
        best
    }

    /// What every plugin looked for, for the answer to a project none claims.
    pub fn looked_for(&self) -> String {
        self.plugins
            .iter()
            .map(|r| format!("{}: {}", r.plugin.name(), r.plugin.looks_for()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
