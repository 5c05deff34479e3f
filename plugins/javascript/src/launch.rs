//! What detection and the launch plan of a Node framework plugin share: the package depending on
//! the framework, the entry and the first file creating an app ([`NodeApp`]), the reason and
//! confidence of the detection they make, and the plan running the entry with previewd's Node
//! launcher (`runtimes/node/launcher.js`), which forces the first `listen` of an HTTP server
//! onto the preview's port. Dependencies are installed by the host from `package.json` and its
//! lockfile. A package using Prisma migrations gets `prisma migrate deploy` as the plan's
//! `migrate` ([`crate::prisma`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use previewd_plugin_api::{Detection, LaunchPlan, PluginError, Project, Readiness, Runtime};

use crate::package::{Entry, Package};
use crate::prisma;

/// A Node app as detection found it.
#[derive(Debug, Clone)]
pub struct NodeApp {
    /// The `package.json` depending on the framework.
    pub package: Package,
    /// The file that starts the app, relative to the package folder.
    pub entry: Option<Entry>,
    /// The first file creating an app, relative to the project root.
    pub app_file: Option<PathBuf>,
}

impl NodeApp {
    /// The detection: sure with an app file and an entry, less without the app file, weak
    /// without an entry. `creates` says what the app file does (``creates `new Koa()` ``).
    pub fn detection(&self, creates: &str) -> Detection {
        let package = &self.package;
        let mut reason = format!(
            "{} depends on {}",
            package.manifest.display(),
            package.dependency
        );
        if let Some(file) = &self.app_file {
            reason.push_str(&format!("; {} {creates}", file.display()));
        }
        if let Some(entry) = &self.entry {
            let path = package.dir.join(&entry.path);
            if self.app_file.as_ref() != Some(&path) {
                reason.push_str(&format!(
                    "; {} starts it ({})",
                    path.display(),
                    entry.source
                ));
            }
        }
        let confidence = match (&self.app_file, &self.entry) {
            (Some(_), Some(_)) => 0.95,
            (None, Some(_)) => 0.7,
            _ => 0.5,
        };
        Detection { confidence, reason }
    }

    /// The plan running the entry of `project` on `port` in the package folder, a warm
    /// runtime having loaded the `preload` packages, with the package's Prisma migrations as
    /// `migrate`; without an entry, the error saying what the plugin `looks_for`.
    pub fn launch_plan(
        &self,
        project: &Project,
        port: u16,
        looks_for: &str,
        preload: &[&str],
    ) -> Result<LaunchPlan, PluginError> {
        let entry = self
            .entry
            .as_ref()
            .ok_or_else(|| no_entrypoint(looks_for))?;
        Ok(LaunchPlan {
            runtime: Runtime::Node,
            args: vec![
                "--entry".to_string(),
                entry.path.to_string_lossy().into_owned(),
                "--port".to_string(),
                port.to_string(),
            ],
            env: BTreeMap::new(),
            working_dir: self.package.dir.clone(),
            requirements: vec![self.package.manifest.clone()],
            readiness: Readiness::default(),
            preload: preload.iter().map(|p| p.to_string()).collect(),
            migrate: prisma::migrate_args(project, &self.package),
        })
    }
}

/// The error of a project with nothing to launch; `looks_for` says what the plugin looked for.
pub fn no_entrypoint(looks_for: &str) -> PluginError {
    PluginError::NoEntrypoint {
        looked_for: looks_for.to_string(),
    }
}
