//! The C ABI between previewd and a plugin built as a shared library (`cdylib`) and loaded at
//! run time.
//!
//! Rust has no stable ABI: a plugin and previewd may come from different compilers and from
//! different versions of this crate. What they share is only what this module fixes:
//!
//! - **One exported static**, named [`DECLARATION_SYMBOL`] (`PREVIEWD_PLUGIN`): a `#[repr(C)]`
//!   [`PluginDeclaration`]. Its first field, the [`Header`] (the ABI version and this crate's
//!   version), keeps its place and layout in every ABI version. The host reads the header
//!   first, refuses a library whose ABI version differs from its own [`ABI_VERSION`] with a
//!   message naming both versions ([`check`]), and reads nothing else of a library it refused.
//! - **JSON in byte buffers, with explicit ownership.** The host sends a [`Request`] as bytes
//!   it owns, valid for the duration of the call only. The plugin answers with a [`Reply`] in an
//!   [`Answer`] buffer it allocated; the host copies it and hands it back to the plugin's own
//!   `free` function (from the declaration). Neither side ever frees the other's memory, so
//!   each may use its own allocator.
//! - **No unwinding across the boundary.** Every function the plugin exports catches panics
//!   ([`std::panic::catch_unwind`]) and answers them as an error ([`WireError::Panic`]); the
//!   host turns that into a [`PluginError`]. A plugin must therefore be built with
//!   `panic = "unwind"`, Rust's default: with `panic = "abort"` a panic would abort the whole
//!   server. The declaration says how the library was built ([`PluginDeclaration::unwinds`])
//!   and the host refuses an aborting one.
//!
//! [`ABI_VERSION`] covers the C layout of the declaration and the JSON shapes of the requests,
//! replies and the types they carry ([`Project`], [`Detection`], [`LaunchPlan`],
//! [`Endpoint`]); it is bumped whenever either changes incompatibly.
//!
//! A plugin author writes none of this: [`export_plugin!`](crate::export_plugin) writes the
//! plugin's side. The host's side is [`check`] and [`Calls`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Detection, Endpoint, LaunchPlan, PluginError, Project, RuntimePlugin};

/// The version of this ABI. A host loads only libraries declaring the same one.
pub const ABI_VERSION: u32 = 1;

/// The version of this crate (`previewd-plugin-api`) a plugin or the host was built against;
/// shown in listings and in refusals.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The name of the static every plugin library exports.
pub const DECLARATION_SYMBOL: &str = "PREVIEWD_PLUGIN";

/// Longest version text read from a foreign header; anything longer is not a version.
const MAX_HEADER_TEXT: usize = 64;

/// A `'static` UTF-8 string as a pointer and a length.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StaticStr {
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `StaticStr` only ever points to immutable `'static` data.
unsafe impl Sync for StaticStr {}
// SAFETY: as above.
unsafe impl Send for StaticStr {}

impl StaticStr {
    /// Points to `text`.
    pub const fn new(text: &'static str) -> StaticStr {
        StaticStr {
            ptr: text.as_ptr(),
            len: text.len(),
        }
    }

    /// The text, or a placeholder when it is null, longer than `max` bytes or not UTF-8 (a
    /// foreign library may hold anything).
    ///
    /// # Safety
    /// When not null and at most `max` long, `ptr` points to `len` readable bytes.
    unsafe fn read(&self, max: usize) -> String {
        if self.ptr.is_null() || self.len > max {
            return "unknown".to_string();
        }
        // SAFETY: the caller's promise.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) => "unknown".to_string(),
        }
    }
}

/// The start of every declaration, the same in every ABI version.
#[repr(C)]
#[derive(Debug)]
pub struct Header {
    /// The ABI the library speaks: [`ABI_VERSION`] of the `previewd-plugin-api` it was built
    /// against.
    pub abi_version: u32,
    /// That crate's version ([`API_VERSION`]).
    pub api_version: StaticStr,
}

/// What a plugin library exports as [`DECLARATION_SYMBOL`]. Written by
/// [`export_plugin!`](crate::export_plugin); the layout after [`Header`] is that of ABI 1.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDeclaration {
    /// The ABI version and the API crate's version: always first.
    pub header: Header,
    /// The Cargo package the library was built from (`CARGO_PKG_NAME`).
    pub package_name: StaticStr,
    /// Its version (`CARGO_PKG_VERSION`).
    pub package_version: StaticStr,
    /// Whether the library was built with `panic = "unwind"`, so that its panics can be caught.
    pub unwinds: bool,
    /// Answers one request (see [`CallFn`]).
    pub call: CallFn,
    /// Frees an answer of [`call`](Self::call) (see [`FreeFn`]).
    pub free: FreeFn,
}

/// Answers the JSON [`Request`] of `request_len` bytes at `request` (owned by the caller, valid
/// for the call only) with a JSON [`Reply`] the plugin allocated. Never unwinds.
pub type CallFn = unsafe extern "C" fn(request: *const u8, request_len: usize) -> Answer;

/// Frees an [`Answer`] of the same library's [`CallFn`]; the host calls it exactly once per
/// answer, after copying it. Never unwinds.
pub type FreeFn = unsafe extern "C" fn(answer: Answer);

/// A buffer the plugin allocated: `len` bytes at `ptr`, owned by the plugin until its
/// [`FreeFn`] is called on it.
#[repr(C)]
#[derive(Debug)]
pub struct Answer {
    ptr: *mut u8,
    len: usize,
}

impl Answer {
    /// Hands `bytes` over as a raw buffer, to be freed by [`free_answer`].
    fn from_vec(bytes: Vec<u8>) -> Answer {
        let bytes: Box<[u8]> = bytes.into_boxed_slice();
        let len = bytes.len();
        let ptr = Box::into_raw(bytes).cast::<u8>();
        Answer { ptr, len }
    }
}

/// The host's requests, tagged by `op`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The plugin's name, version and what it looks for: a [`Description`].
    Describe,
    /// [`RuntimePlugin::detect`]: an `Option<Detection>`.
    Detect { project: WireProject },
    /// [`RuntimePlugin::launch_plan`]: a [`LaunchPlan`].
    LaunchPlan { project: WireProject, port: u16 },
    /// [`RuntimePlugin::routes`]: a `Vec<Endpoint>`.
    Routes { project: WireProject },
}

/// A [`Project`] as sent: its root and its file list, both as UTF-8 text.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireProject {
    /// The project's root folder, absolute.
    pub root: String,
    /// Its files relative to the root, sorted; files whose path is not UTF-8 are left out.
    pub files: Vec<String>,
}

impl WireProject {
    /// `project` as sent, or why it cannot be.
    fn of(project: &Project) -> Result<WireProject, CallError> {
        let root = project.root().to_str().ok_or_else(|| {
            CallError::Protocol(format!(
                "the project folder {} is not UTF-8",
                project.root().display()
            ))
        })?;
        Ok(WireProject {
            root: root.to_string(),
            files: project
                .files()
                .iter()
                .filter_map(|p| p.to_str().map(str::to_string))
                .collect(),
        })
    }

    fn into_project(self) -> Project {
        Project::from_files(
            PathBuf::from(self.root),
            self.files.into_iter().map(PathBuf::from).collect(),
        )
    }
}

/// What a plugin says about itself when loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// [`RuntimePlugin::name`].
    pub name: String,
    /// [`RuntimePlugin::version`].
    pub version: String,
    /// [`RuntimePlugin::looks_for`].
    pub looks_for: String,
}

/// A plugin's answer: `{"ok": value}` or `{"error": {...}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(serde_json::Value),
    Error(WireError),
}

/// An error as sent, tagged by `kind`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireError {
    /// [`PluginError::NoEntrypoint`].
    NoEntrypoint { looked_for: String },
    /// [`PluginError::Io`], the I/O error as text.
    Io { path: String, message: String },
    /// [`PluginError::Query`].
    Query { name: String, message: String },
    /// [`PluginError::Failed`].
    Failed { message: String },
    /// The plugin panicked; `message` is the panic's.
    Panic { message: String },
    /// The plugin could not read the request (an operation it does not know, a bad shape).
    BadRequest { message: String },
}

impl From<PluginError> for WireError {
    fn from(err: PluginError) -> WireError {
        match err {
            PluginError::NoEntrypoint { looked_for } => WireError::NoEntrypoint { looked_for },
            PluginError::Io { path, source } => WireError::Io {
                path,
                message: source.to_string(),
            },
            PluginError::Query { name, message } => WireError::Query { name, message },
            PluginError::Failed { message } => WireError::Failed { message },
        }
    }
}

/// Why a call into a plugin library failed, as the host sees it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin panicked; the panic was caught on its side.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The plugin answered with one of its own errors.
    #[error(transparent)]
    Plugin(PluginError),
    /// The exchange failed: a request that could not be sent, an answer that is not a reply,
    /// a request the plugin could not read.
    #[error("{0}")]
    Protocol(String),
}

impl From<WireError> for CallError {
    fn from(err: WireError) -> CallError {
        let plugin = |err| CallError::Plugin(err);
        match err {
            WireError::NoEntrypoint { looked_for } => {
                plugin(PluginError::NoEntrypoint { looked_for })
            }
            WireError::Io { path, message } => plugin(PluginError::Io {
                path,
                source: std::io::Error::other(message),
            }),
            WireError::Query { name, message } => plugin(PluginError::Query { name, message }),
            WireError::Failed { message } => plugin(PluginError::Failed { message }),
            WireError::Panic { message } => CallError::Panicked(message),
            WireError::BadRequest { message } => {
                CallError::Protocol(format!("the plugin could not read the request: {message}"))
            }
        }
    }
}

/// Why the host refuses a declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incompatible {
    /// Another ABI version.
    #[error(
        "it was built for plugin ABI {plugin_abi} (previewd-plugin-api {plugin_api}), but this \
         previewd speaks plugin ABI {host_abi} (previewd-plugin-api {host_api}); rebuild it \
         against previewd-plugin-api {host_api}"
    )]
    Abi {
        plugin_abi: u32,
        plugin_api: String,
        host_abi: u32,
        host_api: String,
    },
    /// Built with `panic = "abort"`.
    #[error(
        "it was built with panic=abort, so a panic in it would abort previewd; build it with \
         panic=unwind (Rust's default)"
    )]
    PanicAbort,
}

/// Checks the declaration a library exports: its ABI version first (read from the [`Header`]
/// alone), then, only when it matches, the rest.
///
/// # Safety
/// `header` points to a readable [`Header`] (what a library's [`DECLARATION_SYMBOL`] names,
/// whatever its ABI version) that stays valid for `'a`; when its ABI version is
/// [`ABI_VERSION`], to a whole [`PluginDeclaration`].
pub unsafe fn check<'a>(header: *const Header) -> Result<&'a PluginDeclaration, Incompatible> {
    // SAFETY: the caller's promise.
    let found = unsafe { &*header };
    if found.abi_version != ABI_VERSION {
        return Err(Incompatible::Abi {
            plugin_abi: found.abi_version,
            // SAFETY: the header's layout is the same in every ABI version.
            plugin_api: unsafe { found.api_version.read(MAX_HEADER_TEXT) },
            host_abi: ABI_VERSION,
            host_api: API_VERSION.to_string(),
        });
    }
    // SAFETY: same ABI version, so a whole declaration (the caller's promise).
    let declaration = unsafe { &*header.cast::<PluginDeclaration>() };
    if !declaration.unwinds {
        return Err(Incompatible::PanicAbort);
    }
    Ok(declaration)
}

impl PluginDeclaration {
    /// The package the library was built from, as `name version`.
    pub fn package(&self) -> String {
        // SAFETY: a checked declaration of this ABI holds `'static` strings.
        let (name, version) = unsafe {
            (
                self.package_name.read(usize::MAX),
                self.package_version.read(usize::MAX),
            )
        };
        format!("{name} {version}")
    }

    /// The `previewd-plugin-api` version the library was built against.
    pub fn api_version(&self) -> String {
        // SAFETY: as above.
        unsafe { self.header.api_version.read(MAX_HEADER_TEXT) }
    }
}

/// The host's side of a checked declaration: its two functions, and one method per request.
#[derive(Debug, Clone, Copy)]
pub struct Calls {
    call: CallFn,
    free: FreeFn,
}

impl Calls {
    /// The functions of `declaration`.
    ///
    /// # Safety
    /// `declaration` passed [`check`], and the library holding it stays loaded for as long as
    /// these `Calls` (or a copy) exist.
    pub unsafe fn new(declaration: &PluginDeclaration) -> Calls {
        Calls {
            call: declaration.call,
            free: declaration.free,
        }
    }

    /// The plugin's name, version and what it looks for.
    pub fn describe(&self) -> Result<Description, CallError> {
        self.request(&Request::Describe)
    }

    /// [`RuntimePlugin::detect`] in the plugin.
    pub fn detect(&self, project: &Project) -> Result<Option<Detection>, CallError> {
        self.request(&Request::Detect {
            project: WireProject::of(project)?,
        })
    }

    /// [`RuntimePlugin::launch_plan`] in the plugin.
    pub fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, CallError> {
        self.request(&Request::LaunchPlan {
            project: WireProject::of(project)?,
            port,
        })
    }

    /// [`RuntimePlugin::routes`] in the plugin.
    pub fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, CallError> {
        self.request(&Request::Routes {
            project: WireProject::of(project)?,
        })
    }

    /// Sends `request` and reads the reply as a `T`.
    fn request<T: DeserializeOwned>(&self, request: &Request) -> Result<T, CallError> {
        let bytes = serde_json::to_vec(request)
            .map_err(|err| CallError::Protocol(format!("encoding the request: {err}")))?;
        let answer = self.exchange(&bytes);
        let reply: Reply = serde_json::from_slice(&answer).map_err(|err| {
            CallError::Protocol(format!(
                "its answer is not a reply ({err}): {}",
                excerpt(&answer)
            ))
        })?;
        match reply {
            Reply::Ok(value) => serde_json::from_value(value).map_err(|err| {
                CallError::Protocol(format!(
                    "its answer does not have the expected shape: {err}"
                ))
            }),
            Reply::Error(err) => Err(err.into()),
        }
    }

    /// One call: `bytes` in, a copy of the answer out, the plugin's buffer freed.
    fn exchange(&self, bytes: &[u8]) -> Vec<u8> {
        // SAFETY: `call` comes from a checked declaration whose library is loaded (`new`'s
        // contract); `bytes` stays valid for the call.
        let answer = unsafe { (self.call)(bytes.as_ptr(), bytes.len()) };
        let copy = if answer.ptr.is_null() {
            Vec::new()
        } else {
            // SAFETY: the plugin owns `len` bytes at `ptr` until `free` is called.
            unsafe { std::slice::from_raw_parts(answer.ptr, answer.len) }.to_vec()
        };
        // SAFETY: an answer of this library's `call`, freed once, after the copy.
        unsafe { (self.free)(answer) };
        copy
    }
}

/// The start of a text that should have been JSON, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    if text.is_empty() {
        "(empty)".to_string()
    } else {
        text
    }
}

/// Runs `f`, catching a panic as its message. The panic's payload is dropped under a guard of
/// its own: a payload whose `Drop` panics must not unwind either.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
        message
    })
}

/// The plugin's side of one call: reads the request, asks `plugin`, encodes the reply. Never
/// unwinds. What [`export_plugin!`](crate::export_plugin) calls; not for direct use.
///
/// `plugin` gives the plugin instance (built on first use, so a panic while building it is
/// caught like any other).
///
/// # Safety
/// When `request` is not null, it points to `request_len` readable bytes for the duration of
/// the call.
pub unsafe fn serve(
    request: *const u8,
    request_len: usize,
    plugin: impl FnOnce() -> &'static dyn RuntimePlugin,
) -> Answer {
    let reply = guarded(|| {
        let bytes: &[u8] = if request.is_null() {
            &[]
        } else {
            // SAFETY: the caller's promise.
            unsafe { std::slice::from_raw_parts(request, request_len) }
        };
        answer(plugin(), bytes)
    })
    .unwrap_or_else(|message| Reply::Error(WireError::Panic { message }));
    let bytes = guarded(|| serde_json::to_vec(&reply))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| {
            br#"{"error":{"kind":"failed","message":"the plugin could not encode its answer"}}"#
                .to_vec()
        });
    Answer::from_vec(bytes)
}

/// The reply of `plugin` to the request in `bytes`.
fn answer(plugin: &dyn RuntimePlugin, bytes: &[u8]) -> Reply {
    let request: Request = match serde_json::from_slice(bytes) {
        Ok(request) => request,
        Err(err) => {
            return Reply::Error(WireError::BadRequest {
                message: err.to_string(),
            })
        }
    };
    match request {
        Request::Describe => ok(&Description {
            name: plugin.name().to_string(),
            version: plugin.version().to_string(),
            looks_for: plugin.looks_for().to_string(),
        }),
        Request::Detect { project } => ok(&plugin.detect(&project.into_project())),
        Request::LaunchPlan { project, port } => {
            outcome(plugin.launch_plan(&project.into_project(), port))
        }
        Request::Routes { project } => outcome(plugin.routes(&project.into_project())),
    }
}

fn ok<T: Serialize>(value: &T) -> Reply {
    match serde_json::to_value(value) {
        Ok(value) => Reply::Ok(value),
        Err(err) => Reply::Error(WireError::Failed {
            message: format!("encoding the answer: {err}"),
        }),
    }
}

fn outcome<T: Serialize>(result: Result<T, PluginError>) -> Reply {
    match result {
        Ok(value) => ok(&value),
        Err(err) => Reply::Error(err.into()),
    }
}

/// Frees an [`Answer`] of [`serve`]. The `free` of every declaration
/// [`export_plugin!`](crate::export_plugin) writes; not for direct use.
///
/// # Safety
/// `answer` came from [`serve`] in this same library and was not freed before.
pub unsafe extern "C" fn free_answer(answer: Answer) {
    if answer.ptr.is_null() {
        return;
    }
    let _ = guarded(|| {
        let slice = std::ptr::slice_from_raw_parts_mut(answer.ptr, answer.len);
        // SAFETY: made by `Answer::from_vec` from a boxed slice of this length.
        drop(unsafe { Box::from_raw(slice) });
    });
}

/// The declaration of a plugin, without exporting it: a [`PluginDeclaration`] whose `call`
/// serves the plugin built by `$plugin` (an expression evaluated once, on first use). What
/// [`export_plugin!`](crate::export_plugin) exports; tests use it to build several in one
/// crate.
#[macro_export]
macro_rules! plugin_declaration {
    ($plugin:expr) => {{
        unsafe extern "C" fn call(request: *const u8, request_len: usize) -> $crate::abi::Answer {
            static PLUGIN: ::std::sync::OnceLock<::std::boxed::Box<dyn $crate::RuntimePlugin>> =
                ::std::sync::OnceLock::new();
            // SAFETY: the host passes `request_len` readable bytes at `request` for the call.
            unsafe {
                $crate::abi::serve(request, request_len, || {
                    &**PLUGIN.get_or_init(|| ::std::boxed::Box::new($plugin))
                })
            }
        }
        $crate::abi::PluginDeclaration {
            header: $crate::abi::Header {
                abi_version: $crate::abi::ABI_VERSION,
                api_version: $crate::abi::StaticStr::new($crate::abi::API_VERSION),
            },
            package_name: $crate::abi::StaticStr::new(::core::env!("CARGO_PKG_NAME")),
            package_version: $crate::abi::StaticStr::new(::core::env!("CARGO_PKG_VERSION")),
            unwinds: ::core::cfg!(panic = "unwind"),
            call,
            free: $crate::abi::free_answer,
        }
    }};
}

/// Exports a plugin from a `cdylib` crate: `export_plugin!(MyPlugin);` once, at the crate's
/// root, where `MyPlugin` implements [`RuntimePlugin`]. The argument is an expression that
/// builds the plugin (a unit struct's name, `MyPlugin::new()`), evaluated once, on first use.
///
/// It defines the `PREVIEWD_PLUGIN` static previewd looks for (see the [`abi`](crate::abi)
/// module). Build the crate with `panic = "unwind"` (the default): previewd refuses a library
/// built with `panic = "abort"`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:expr) => {
        /// The plugin's declaration, which previewd reads when it loads this library.
        #[unsafe(no_mangle)]
        pub static PREVIEWD_PLUGIN: $crate::abi::PluginDeclaration =
            $crate::plugin_declaration!($plugin);
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Readiness, Runtime};
    use std::collections::BTreeMap;

    /// A plugin that claims projects holding `claim.txt`, fails without `main.js` and panics
    /// on a project holding `panic.txt`.
    struct Echo;

    impl RuntimePlugin for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn version(&self) -> &str {
            "1.2.3"
        }
        fn looks_for(&self) -> &str {
            "claim.txt"
        }
        fn detect(&self, project: &Project) -> Option<Detection> {
            if project.has_file("panic.txt") {
                panic!("detect blew up on purpose");
            }
            project.has_file("claim.txt").then(|| Detection {
                confidence: 0.9,
                reason: format!("{} files", project.files().len()),
            })
        }
        fn launch_plan(&self, project: &Project, port: u16) -> Result<LaunchPlan, PluginError> {
            if !project.has_file("main.js") {
                return Err(PluginError::NoEntrypoint {
                    looked_for: "main.js".into(),
                });
            }
            Ok(LaunchPlan {
                runtime: Runtime::Node,
                args: vec![
                    "--entry".into(),
                    "main.js".into(),
                    "--port".into(),
                    port.to_string(),
                ],
                env: BTreeMap::from([("A".into(), "b".into())]),
                working_dir: PathBuf::new(),
                requirements: vec![PathBuf::from("package.json")],
                readiness: Readiness::default(),
                preload: Vec::new(),
                migrate: Vec::new(),
            })
        }
        fn routes(&self, project: &Project) -> Result<Vec<Endpoint>, PluginError> {
            if project.has_file("panic.txt") {
                let index: Vec<u8> = Vec::new();
                let _ = index[project.files().len()];
            }
            project
                .read_to_string("missing.js")
                .map_err(|source| PluginError::Io {
                    path: "missing.js".into(),
                    source,
                })?;
            Ok(Vec::new())
        }
    }

    /// Panics as soon as it is built.
    struct Unbuildable;

    impl Unbuildable {
        fn new() -> Unbuildable {
            panic!("the plugin could not be built");
        }
    }

    impl RuntimePlugin for Unbuildable {
        fn name(&self) -> &str {
            "unbuildable"
        }
        fn version(&self) -> &str {
            "0"
        }
        fn looks_for(&self) -> &str {
            ""
        }
        fn detect(&self, _: &Project) -> Option<Detection> {
            None
        }
        fn launch_plan(&self, _: &Project, _: u16) -> Result<LaunchPlan, PluginError> {
            Err(PluginError::Failed {
                message: "never".into(),
            })
        }
        fn routes(&self, _: &Project) -> Result<Vec<Endpoint>, PluginError> {
            Ok(Vec::new())
        }
    }

    static ECHO: PluginDeclaration = crate::plugin_declaration!(Echo);
    static UNBUILDABLE: PluginDeclaration = crate::plugin_declaration!(Unbuildable::new());

    mod exported {
        crate::export_plugin!(super::Echo);
    }

    fn calls(declaration: &'static PluginDeclaration) -> Calls {
        // SAFETY: a static of this crate is a whole declaration, alive for the whole run.
        let checked = unsafe { check(&declaration.header) }.unwrap();
        // SAFETY: checked, and never unloaded.
        unsafe { Calls::new(checked) }
    }

    fn project(files: &[&str]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        let project = Project::open(dir.path()).unwrap();
        (dir, project)
    }

    /// Every request crosses and comes back as what the plugin returned.
    #[test]
    fn round_trip() {
        let echo = calls(&ECHO);
        assert_eq!(
            echo.describe().unwrap(),
            Description {
                name: "echo".into(),
                version: "1.2.3".into(),
                looks_for: "claim.txt".into(),
            }
        );
        let (_dir, claimed) = project(&["claim.txt", "main.js"]);
        assert_eq!(
            echo.detect(&claimed).unwrap(),
            Some(Detection {
                confidence: 0.9,
                reason: "2 files".into(),
            })
        );
        assert_eq!(
            echo.launch_plan(&claimed, 3005).unwrap(),
            Echo.launch_plan(&claimed, 3005).unwrap()
        );
        let (_dir, other) = project(&["other.txt"]);
        assert_eq!(echo.detect(&other).unwrap(), None);
    }

    /// The plugin's own errors arrive as the same `PluginError`s.
    #[test]
    fn plugin_errors_cross() {
        let echo = calls(&ECHO);
        let (_dir, project) = project(&["claim.txt"]);
        match echo.launch_plan(&project, 3001) {
            Err(CallError::Plugin(PluginError::NoEntrypoint { looked_for })) => {
                assert_eq!(looked_for, "main.js")
            }
            other => panic!("{other:?}"),
        }
        match echo.routes(&project) {
            Err(CallError::Plugin(PluginError::Io { path, source })) => {
                assert_eq!(path, "missing.js");
                assert!(source.to_string().contains("No such file"), "{source}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A panic in the plugin is caught on its side and answered as an error; the plugin keeps
    /// answering afterwards.
    #[test]
    fn panics_become_errors() {
        let echo = calls(&ECHO);
        let (_dir, project) = self::project(&["panic.txt", "claim.txt"]);
        match echo.detect(&project) {
            Err(CallError::Panicked(message)) => {
                assert_eq!(message, "detect blew up on purpose")
            }
            other => panic!("{other:?}"),
        }
        match echo.routes(&project) {
            Err(CallError::Panicked(message)) => {
                assert!(message.contains("index out of bounds"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(echo.describe().unwrap().name, "echo");
    }

    /// A plugin that panics while being built answers every call with that panic.
    #[test]
    fn a_panicking_constructor_is_an_error() {
        let unbuildable = calls(&UNBUILDABLE);
        for _ in 0..2 {
            match unbuildable.describe() {
                Err(CallError::Panicked(message)) => {
                    assert_eq!(message, "the plugin could not be built")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Bytes that are not a request are answered with an error, not a panic.
    #[test]
    fn malformed_requests_are_refused() {
        let echo = calls(&ECHO);
        for bytes in [&b""[..], b"{", br#"{"op":"fly"}"#] {
            let answer = echo.exchange(bytes);
            let reply: Reply = serde_json::from_slice(&answer).unwrap();
            assert!(
                matches!(reply, Reply::Error(WireError::BadRequest { .. })),
                "{reply:?}"
            );
        }
        // SAFETY: a null request is allowed; the answer is freed by its own `free`.
        let answer = unsafe { (ECHO.call)(std::ptr::null(), 0) };
        // SAFETY: an answer of that call, freed once.
        unsafe { (ECHO.free)(answer) };
    }

    /// The exported static is a whole declaration of this ABI, naming this package.
    #[test]
    fn export_plugin_declares_this_abi() {
        let declaration = &exported::PREVIEWD_PLUGIN;
        assert_eq!(declaration.header.abi_version, ABI_VERSION);
        assert_eq!(declaration.api_version(), API_VERSION);
        assert_eq!(
            declaration.package(),
            format!("previewd-plugin-api {API_VERSION}")
        );
        assert!(declaration.unwinds);
        // SAFETY: a static of this crate.
        assert!(unsafe { check(&declaration.header) }.is_ok());
    }

    /// Another ABI version is refused from the header alone, naming both versions.
    #[test]
    fn another_abi_is_refused() {
        static FUTURE: Header = Header {
            abi_version: 7,
            api_version: StaticStr::new("3.0.0"),
        };
        // SAFETY: a header of another ABI: only the header is read.
        let refused = unsafe { check(&FUTURE) }.unwrap_err();
        assert_eq!(
            refused,
            Incompatible::Abi {
                plugin_abi: 7,
                plugin_api: "3.0.0".into(),
                host_abi: ABI_VERSION,
                host_api: API_VERSION.into(),
            }
        );
        let message = refused.to_string();
        assert!(
            message.contains("plugin ABI 7 (previewd-plugin-api 3.0.0)"),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "speaks plugin ABI {ABI_VERSION} (previewd-plugin-api {API_VERSION})"
            )),
            "{message}"
        );
    }

    /// A header whose version text is not a version is still refused, without reading it.
    #[test]
    fn garbage_header_text_is_not_read() {
        static GARBAGE: Header = Header {
            abi_version: 0,
            api_version: StaticStr {
                ptr: std::ptr::null(),
                len: 5,
            },
        };
        // SAFETY: only the header is read, and its null text is not.
        let refused = unsafe { check(&GARBAGE) }.unwrap_err();
        assert!(refused.to_string().contains("previewd-plugin-api unknown"));
    }

    /// A library built with panic=abort is refused.
    #[test]
    fn panic_abort_is_refused() {
        static ABORTING: PluginDeclaration = PluginDeclaration {
            unwinds: false,
            ..crate::plugin_declaration!(Echo)
        };
        // SAFETY: a static of this crate.
        let refused = unsafe { check(&ABORTING.header) }.unwrap_err();
        assert_eq!(refused, Incompatible::PanicAbort);
        assert!(refused.to_string().contains("panic=abort"));
    }
}
