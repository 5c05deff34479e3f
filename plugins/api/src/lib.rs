//! The plugin API of previewd: what a framework plugin must supply and the types it exchanges
//! with the host.
//!
//! A plugin teaches previewd one framework (or a family of them): how to recognise a project
//! ([`RuntimePlugin::detect`]), how to start it on a given port ([`RuntimePlugin::launch_plan`])
//! and which HTTP routes its source declares ([`RuntimePlugin::routes`]). Built-in plugins are
//! linked into previewd and used through this trait; third-party plugins, built as shared
//! libraries with [`export_plugin!`], go through the same trait behind the loader of previewd,
//! across the C ABI of [`abi`]. `plugins/README.md` is the plugin author's guide.
//!
//! # Layout
//! - [`abi`]: the versioned C ABI of plugins loaded at run time, and [`export_plugin!`].
//! - [`project`]: a read-only view of an uploaded project's files.
//! - [`plan`]: the launch plan (runtime, launcher arguments, env, working dir, readiness probe).
//! - [`routes`]: the endpoint records a route extractor produces.
//! - [`query`]: compiling tree-sitter queries kept as `.scm` files (once per process), and
//!   running them to plain matches.
//! - `testing` (feature `testing`): what the plugins' tests share (fixture snapshots,
//!   throwaway projects, mangled sources).

pub mod abi;
pub mod plan;
pub mod project;
pub mod query;
pub mod routes;
#[cfg(feature = "testing")]
pub mod testing;

pub use plan::{LaunchPlan, Readiness, Runtime};
pub use project::Project;
pub use routes::Endpoint;

/// How sure a plugin is that a project is its framework, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    /// 0.0 (a guess) to 1.0 (certain). When several plugins claim a project the highest wins.
    pub confidence: f32,
    /// A sentence a user can check, e.g. "app/main.py creates `app = FastAPI()`".
    pub reason: String,
}

/// What can go wrong inside a plugin. The host turns these into user-facing errors.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The project has no entrypoint this plugin can start; `looked_for` says what was searched.
    #[error("no entrypoint found: looked for {looked_for}")]
    NoEntrypoint { looked_for: String },
    /// A project file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A tree-sitter query shipped with the plugin does not compile against its grammar.
    #[error("query {name} does not compile: {message}")]
    Query { name: String, message: String },
    /// The plugin failed in a way none of the above describes: a plugin loaded from a library
    /// panicked (the panic was caught), or its answer could not be read. `message` says which
    /// plugin, doing what, and why.
    #[error("{message}")]
    Failed { message: String },
}

/// One framework plugin. Implementations are stateless and cheap to call; the host may call any
/// method from several threads at once.
pub trait RuntimePlugin: Send + Sync {
    /// The plugin's name, also the `framework` value users pass at launch (e.g. `fastapi`).
    fn name(&self) -> &str;

    /// The plugin's own version, shown in plugin listings.
    fn version(&self) -> &str;

    /// What [`detect`](Self::detect) looks for, in words, for the error shown when no plugin
    /// claims a project.
    fn looks_for(&self) -> &str;

    /// Does this project belong to the plugin's framework? `None` when it clearly does not.
    fn detect(&self, project: &Project) -> Option<Detection>;

    /// How to start the project so that it serves HTTP on `127.0.0.1:port`.
    fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError>;

    /// The routes the project's source declares, found without running it.
    fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError>;
}
