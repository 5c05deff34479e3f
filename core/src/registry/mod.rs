//! The plugins previewd knows, and the choice among them for a project.
//!
//! Built-in plugins are listed once, in [`Registry::builtin`]. Third-party plugins are shared
//! libraries in the plugins dir (`--plugins-dir`), loaded at start-up by [`Registry::load`]
//! and used through the same trait; a library that cannot be used is kept in the refused list
//! with the reason, for listings.
//!
//! When several plugins claim a project the most confident wins; ties go to the one listed
//! first: the built-ins in their order, then the loaded plugins by file name.
//!
//! # Layout
//! - this file: the registry, detection across plugins and the listing.
//! - [`loader`]: finding the libraries of the plugins dir and checking each before use.
//! - [`library`]: the adapter that makes a loaded library a `RuntimePlugin`.

pub mod library;
pub mod loader;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use previewd_plugin_api::{Detection, Project, RuntimePlugin};

pub use loader::LoadError;

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Linked into previewd.
    Builtin,
    /// Loaded from this library.
    Library(PathBuf),
}

/// A plugin and where it comes from.
#[derive(Clone)]
pub struct Registered {
    pub plugin: Arc<dyn RuntimePlugin>,
    pub origin: Origin,
}

/// A library of the plugins dir that is not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    /// The library.
    pub path: PathBuf,
    /// Why it was refused, as a sentence about the library ("it has no ... symbol").
    pub reason: String,
}

/// The plugin list.
#[derive(Clone)]
pub struct Registry {
    plugins: Vec<Registered>,
    refused: Vec<Refused>,
}

/// One plugin, as listings show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PluginInfo {
    /// The plugin's name (a `framework` value at launch).
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The framework names it answers to at launch.
    pub frameworks: Vec<String>,
    /// What its detection looks for.
    pub looks_for: String,
    /// Whether it is built into previewd.
    pub builtin: bool,
    /// The library it was loaded from, for a loaded plugin.
    pub path: Option<PathBuf>,
}

/// Everything a plugin listing shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Listing {
    /// Built-in plugins first, then loaded ones, in detection tie-breaking order.
    pub plugins: Vec<PluginInfo>,
    /// Libraries of the plugins dir that are not used, by file name.
    pub refused: Vec<Refused>,
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
                    origin: Origin::Builtin,
                })
                .collect(),
            refused: Vec::new(),
        }
    }

    /// The built-in plugins, then those of `plugins_dir` (every `.so` and `.dylib` in it, by
    /// file name). Each library's outcome is logged: loaded (name, version, path), or refused
    /// with the reason, which the registry keeps. Only an unreadable folder is an error.
    pub fn load(plugins_dir: Option<&Path>) -> Result<Registry, LoadError> {
        let mut registry = Registry::builtin();
        let Some(dir) = plugins_dir else {
            return Ok(registry);
        };
        for path in loader::libraries(dir)? {
            let outcome =
                loader::open(&path).and_then(|plugin| match registry.registered(plugin.name()) {
                    Some(taken) => Err(loader::Refusal::NameTaken {
                        name: plugin.name().to_string(),
                        by: match &taken.origin {
                            Origin::Builtin => "a built-in plugin".to_string(),
                            Origin::Library(path) => path.display().to_string(),
                        },
                    }),
                    None => Ok(plugin),
                });
            match outcome {
                Ok(plugin) => {
                    tracing::info!(
                        plugin = plugin.name(),
                        version = plugin.version(),
                        package = plugin.package(),
                        path = %path.display(),
                        "loaded plugin `{}` {} from {}",
                        plugin.name(),
                        plugin.version(),
                        path.display()
                    );
                    registry.plugins.push(Registered {
                        plugin: Arc::new(plugin),
                        origin: Origin::Library(path),
                    });
                }
                Err(refusal) => {
                    let reason = refusal.to_string();
                    tracing::warn!(
                        path = %path.display(),
                        "refused plugin library {}: {reason}",
                        path.display()
                    );
                    registry.refused.push(Refused { path, reason });
                }
            }
        }
        Ok(registry)
    }

    /// Every plugin, in order.
    pub fn plugins(&self) -> &[Registered] {
        &self.plugins
    }

    /// The libraries of the plugins dir that were refused.
    pub fn refused(&self) -> &[Refused] {
        &self.refused
    }

    /// The plugin named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn RuntimePlugin>> {
        self.registered(name).map(|r| r.plugin.clone())
    }

    /// The plugin named `name`, with where it comes from.
    pub fn registered(&self, name: &str) -> Option<&Registered> {
        self.plugins
            .iter()
            .find(|r| r.plugin.name().eq_ignore_ascii_case(name))
    }

    /// The names of every plugin, for error messages.
    pub fn names(&self) -> Vec<String> {
        self.plugins
            .iter()
            .map(|r| r.plugin.name().to_string())
            .collect()
    }

    /// The plugin that claims `project` most confidently; on a tie, the first listed.
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

    /// What a plugin listing shows: every plugin in order, and the refused libraries.
    pub fn listing(&self) -> Listing {
        Listing {
            plugins: self
                .plugins
                .iter()
                .map(|r| PluginInfo {
                    name: r.plugin.name().to_string(),
                    version: r.plugin.version().to_string(),
                    frameworks: vec![r.plugin.name().to_string()],
                    looks_for: r.plugin.looks_for().to_string(),
                    builtin: r.origin == Origin::Builtin,
                    path: match &r.origin {
                        Origin::Builtin => None,
                        Origin::Library(path) => Some(path.clone()),
                    },
                })
                .collect(),
            refused: self.refused.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a plugins dir, the built-ins alone, in their order, nothing refused.
    #[test]
    fn builtins_only() {
        let registry = Registry::load(None).unwrap();
        assert_eq!(registry.names(), ["fastapi", "flask", "django", "express"]);
        let listing = registry.listing();
        assert!(listing
            .plugins
            .iter()
            .all(|p| p.builtin && p.path.is_none()));
        assert_eq!(listing.plugins[3].frameworks, ["express"]);
        assert!(listing.refused.is_empty());
    }

    /// Files that are not libraries are refused with the loader's reason; other files are
    /// not looked at; the built-ins are all there.
    #[test]
    fn unusable_libraries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b-garbage.so"), b"not an ELF file").unwrap();
        std::fs::write(dir.path().join("a-notes.txt"), b"ignored").unwrap();
        let registry = Registry::load(Some(dir.path())).unwrap();
        assert_eq!(registry.plugins().len(), 4);
        let refused = registry.refused();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].path.ends_with("b-garbage.so"));
        assert!(
            refused[0]
                .reason
                .starts_with("it cannot be loaded: dlopen failed: ")
                && refused[0].reason.contains("b-garbage.so"),
            "{}",
            refused[0].reason
        );
    }

    /// A stub plugin claiming every project with a fixed confidence.
    struct Claims(&'static str, f32);

    impl RuntimePlugin for Claims {
        fn name(&self) -> &str {
            self.0
        }
        fn version(&self) -> &str {
            "0"
        }
        fn looks_for(&self) -> &str {
            "anything"
        }
        fn detect(&self, _: &Project) -> Option<Detection> {
            Some(Detection {
                confidence: self.1,
                reason: String::new(),
            })
        }
        fn launch_plan(
            &self,
            _: &Project,
            _: u16,
        ) -> Result<previewd_plugin_api::LaunchPlan, previewd_plugin_api::PluginError> {
            Err(previewd_plugin_api::PluginError::Failed {
                message: "stub".into(),
            })
        }
        fn routes(
            &self,
            _: &Project,
        ) -> Result<Vec<previewd_plugin_api::Endpoint>, previewd_plugin_api::PluginError> {
            Ok(Vec::new())
        }
    }

    /// The most confident plugin wins wherever it is listed; a tie goes to the first listed.
    #[test]
    fn detection_order() {
        let registry = |claims: Vec<Claims>| Registry {
            plugins: claims
                .into_iter()
                .map(|c| Registered {
                    plugin: Arc::new(c),
                    origin: Origin::Builtin,
                })
                .collect(),
            refused: Vec::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let project = Project::open(dir.path()).unwrap();
        let winner = |r: Registry| r.detect(&project).unwrap().0.name().to_string();
        assert_eq!(
            winner(registry(vec![Claims("a", 0.5), Claims("b", 0.9)])),
            "b"
        );
        assert_eq!(
            winner(registry(vec![Claims("a", 0.9), Claims("b", 0.9)])),
            "a"
        );
    }

    /// A plugins dir that does not exist is an error naming it.
    #[test]
    fn missing_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let Err(err) = Registry::load(Some(&missing)) else {
            panic!("a missing dir is an error");
        };
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
