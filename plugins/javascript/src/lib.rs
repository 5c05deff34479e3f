//! JavaScript and TypeScript source analysis shared by previewd's Node framework plugins
//! (Express built in, Koa loaded at run time): everything about reading a Node app that is not
//! about one framework.
//!
//! A plugin finds its [`Package`] and entry, loads the app's sources into a [`Program`] (each
//! file read into a [`FileModel`]: the module facts by the rules of JavaScript, the framework's
//! objects and calls by the plugin's [`Framework`]), then walks its routes across files, asking
//! the program which app or router a name or an import refers to.
//!
//! # Layout
//! - [`package`]: the `package.json` depending on the framework, the entry, the TypeScript loader.
//! - [`launch`]: the detection reason and the launch plan of a [`NodeApp`].
//! - [`prisma`]: a package's Prisma schema and the `prisma migrate deploy` of its plan.
//! - [`grammar`]: the JavaScript and TypeScript grammars, by file extension.
//! - [`query`]: tree-sitter queries kept as `.scm` files, compiled once per grammar.
//! - [`module`]: what one file binds and exports ([`Value`], [`Export`]).
//! - [`reader`]: reading one file with the plugin's [`Framework`].
//! - [`program`]: the app's source files, module resolution and owners across files, and the
//!   endpoint records routes become.

pub mod grammar;
pub mod launch;
pub mod module;
pub mod package;
pub mod prisma;
pub mod program;
pub mod query;
pub mod reader;
#[cfg(test)]
mod test_framework;

pub use grammar::Grammar;
pub use launch::NodeApp;
pub use module::{Export, Module, Value};
pub use package::{Entry, EntryRules, Package};
pub use prisma::PrismaSchema;
pub use program::{Owner, Program, Sources};
pub use reader::{Creation, FileModel, Framework, Reader};
