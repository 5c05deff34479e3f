//! The launch plan: everything the host needs to start a project, and nothing it must guess.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The interpreter family a project runs on. The host provisions it (a virtualenv with the
/// project's requirements, `node_modules`) and runs its launcher script from `runtimes/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// CPython; the launcher is `runtimes/python/launcher.py`.
    Python,
    /// Node.js; the launcher is `runtimes/node/launcher.js`.
    Node,
}

impl Runtime {
    /// The lowercase name used in API answers (`python`, `node`).
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Node => "node",
        }
    }
}

/// How the host decides that a started app is ready: it answers HTTP on its port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Readiness {
    /// The path requested; any HTTP answer (even a 404) counts as ready.
    pub path: String,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness { path: "/".into() }
    }
}

/// How to start a project on a port.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LaunchPlan {
    /// Which runtime runs the launcher.
    pub runtime: Runtime,
    /// Arguments for the runtime's launcher script (the host puts the interpreter and the script
    /// in front of them), e.g. `["--framework", "fastapi", "--app", "app.main:app", "--port", "3001"]`.
    pub args: Vec<String>,
    /// Extra environment for the app; the user's own `env` at launch goes on top.
    pub env: BTreeMap<String, String>,
    /// The directory the app starts in, relative to the project root (empty for the root).
    pub working_dir: PathBuf,
    /// Dependency manifests to install before launch, relative to the project root
    /// (e.g. `requirements.txt`); empty when the runtime's base packages suffice.
    pub requirements: Vec<PathBuf>,
    /// The readiness probe.
    pub readiness: Readiness,
    /// Modules a warm runtime imports before it is handed a project (Python module names,
    /// Node package names): the framework and its server, whose import is most of a cold
    /// start. Never the project's own modules. Missing ones are skipped, so a plugin may name
    /// optional extras. Empty: the launcher's own serving module only.
    #[serde(default)]
    pub preload: Vec<String>,
    /// Interpreter arguments that apply the project's database migrations (e.g. `-m django
    /// migrate --noinput`), run in the working dir with the app's environment and database
    /// before the app starts when a launch asks for it; empty when the plugin knows none.
    #[serde(default)]
    pub migrate: Vec<String>,
}
