//! Python source analysis shared by previewd's Python framework plugins (FastAPI, Flask,
//! Django): everything about reading Python that is not about one framework.
//!
//! Plugins parse a project once into a [`Program`] and ask it what names refer to across
//! modules and which strings expressions evaluate to; the smaller modules are the building
//! blocks, usable on their own.
//!
//! # Layout
//! - [`source`]: one parsed file and node helpers (text, line, enclosing scope).
//! - [`query`]: tree-sitter queries kept as `.scm` files, compiled once, run to plain matches.
//! - [`modules`]: file ↔ module name mapping, relative imports, test files.
//! - [`imports`]: what each import statement binds.
//! - [`literals`]: decoding string literals (quotes, prefixes, escapes, concatenation).
//! - [`assignments`]: `name = callee(...)` statements, where code names what a call creates.
//! - [`bindings`]: which object (app, router, blueprint) each name and factory holds.
//! - [`calls`]: reading call arguments by position or keyword, dotted callee names.
//! - [`docstrings`]: finding docstrings and cleaning them like `inspect.cleandoc`.
//! - [`program`]: the whole project, with cross-module name resolution and string evaluation.
//! - [`import_root`]: the working dir and dotted module an entry file is launched as.
//! - [`dependency_manifests`]: requirements files and pyproject dependencies.
//! - [`migrations`]: the migration tool a project uses (Alembic).

pub mod assignments;
pub mod bindings;
pub mod calls;
pub mod dependency_manifests;
pub mod docstrings;
pub mod import_root;
pub mod imports;
pub mod literals;
pub mod migrations;
pub mod modules;
pub mod program;
pub mod query;
pub mod source;

pub use program::{FileId, Program, Symbol};
pub use source::SourceFile;

#[cfg(test)]
mod tests {
    /// Every query this crate ships compiles against the grammar.
    #[test]
    fn queries_compile() {
        crate::imports::IMPORTS_QUERY.get().unwrap();
        crate::assignments::ASSIGNMENTS_QUERY.get().unwrap();
    }
}
