//! Finding the plugin libraries of the plugins dir and opening each one with every check made
//! before any of its functions is called: the declaration symbol is there, its ABI version is
//! previewd's (read from the stable header alone), it was built to unwind, and it describes
//! itself with a usable name. See `previewd_plugin_api::abi` for the ABI.
//!
//! Opening a library runs its initialisers: only libraries you trust belong in the plugins dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use previewd_plugin_api::abi::{self, CallError, Calls, Header, Incompatible};

use super::library::LibraryPlugin;

/// File name endings of plugin libraries.
const LIBRARY_EXTENSIONS: &[&str] = &["so", "dylib"];
/// Longest plugin name.
const MAX_NAME_CHARS: usize = 64;

/// Why the plugins dir could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading the plugins dir {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why one library is not used. Each reads as a sentence about the library.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The dynamic loader refused it (not a shared library, another architecture, a missing
    /// dependency).
    #[error("it cannot be loaded: {0}")]
    Open(String),
    /// No declaration.
    #[error(
        "it has no `{symbol}` symbol, so it is not a previewd plugin (a plugin exports one with \
         `previewd_plugin_api::export_plugin!`)",
        symbol = abi::DECLARATION_SYMBOL
    )]
    NoDeclaration,
    /// Another ABI, or built with panic=abort.
    #[error(transparent)]
    Incompatible(#[from] Incompatible),
    /// Its answer to the first call, the one asking its name, was an error or a panic.
    #[error("it failed to describe itself: {0}")]
    Describe(CallError),
    /// A name that cannot be a `framework` value.
    #[error(
        "its name {0:?} cannot be a framework name (1 to {MAX_NAME_CHARS} letters, digits, `-`, \
         `_` or `.`)"
    )]
    BadName(String),
    /// Another plugin has the name.
    #[error("its name `{name}` is already taken by {by}")]
    NameTaken { name: String, by: String },
}

/// The plugin libraries of `dir`: its files ending in `.so` or `.dylib`, sorted by file name.
pub fn libraries(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let failed = |source| LoadError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let path = entry.map_err(failed)?.path();
        let is_library = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| LIBRARY_EXTENSIONS.contains(&e));
        if is_library && path.is_file() {
            found.push(path);
        }
    }
    found.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(found)
}

/// Opens the library at `path` and checks it (see the module docs).
pub fn open(path: &Path) -> Result<LibraryPlugin, Refusal> {
    let library = open_library(path).map_err(|err| Refusal::Open(with_causes(&err)))?;
    let (calls, package, api_version) = {
        // SAFETY: the symbol is read as the address of a `Header`, the one part of the
        // declaration whose layout every ABI version shares; the rest is read only after
        // `check` found the ABI version to be ours. The pointer is used while `library` lives.
        let header: *const Header = unsafe {
            match library.get::<*const Header>(abi::DECLARATION_SYMBOL) {
                Ok(symbol) => *symbol,
                Err(_) => return Err(Refusal::NoDeclaration),
            }
        };
        if header.is_null() {
            return Err(Refusal::NoDeclaration);
        }
        // SAFETY: as above.
        let declaration = unsafe { abi::check(header) }?;
        // SAFETY: checked; the library is kept loaded by the adapter holding these calls.
        let calls = unsafe { Calls::new(declaration) };
        (calls, declaration.package(), declaration.api_version())
    };
    let description = calls.describe().map_err(Refusal::Describe)?;
    if !usable_name(&description.name) {
        return Err(Refusal::BadName(description.name));
    }
    Ok(LibraryPlugin::new(
        Arc::new(library),
        calls,
        description,
        path.to_path_buf(),
        package,
        api_version,
    ))
}

/// Opens with every symbol resolved now (a missing one is a refusal here, not a crash on first
/// use) and kept local (two plugins never see each other's symbols).
#[cfg(unix)]
fn open_library(path: &Path) -> Result<libloading::Library, libloading::Error> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading runs the library's initialisers; the plugins dir holds trusted libraries
    // only (see the module docs).
    unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Into::into)
}

#[cfg(not(unix))]
fn open_library(path: &Path) -> Result<libloading::Library, libloading::Error> {
    // SAFETY: as above.
    unsafe { libloading::Library::new(path) }
}

/// An error and its causes in one line: the loader's own words (`invalid ELF header`) are in
/// the cause of libloading's `dlopen failed`.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

/// Whether `name` can be a `framework` value.
fn usable_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are short words usable in a URL and a command line.
    #[test]
    fn plugin_names() {
        assert!(usable_name("koa"));
        assert!(usable_name("nest.js-v2_x"));
        assert!(!usable_name(""));
        assert!(!usable_name("two words"));
        assert!(!usable_name("../x"));
        assert!(!usable_name(&"a".repeat(65)));
    }

    /// Only `.so` and `.dylib` files are libraries, sorted by file name; folders are skipped.
    #[test]
    fn libraries_by_file_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.so", "a.dylib", "c.txt", "libx.so.1"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.so")).unwrap();
        let names: Vec<String> = libraries(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.dylib", "b.so"]);
    }
}
