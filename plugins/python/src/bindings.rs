//! Which object each name holds, for plugins that track objects a project creates (apps,
//! routers, blueprints: indices into the plugin's own list) through the names they are bound
//! to and the factory functions that return them. Recording is the plugin's (it knows which
//! calls create what); looking an expression up is the same for every plugin.

use std::collections::HashMap;

use tree_sitter::Node;

use crate::source::{enclosing_function, strip_parentheses};
use crate::{FileId, Program, Symbol};

/// Where a name is bound: file, scope (the node id of the enclosing function, `None` at module
/// level) and name.
pub type Binding = (FileId, Option<usize>, String);

/// The objects bound to names and returned by factories.
#[derive(Default)]
pub struct Bindings {
    /// Which object each bound name holds.
    pub names: HashMap<Binding, usize>,
    /// The object each factory function returns, by file and function name.
    pub factories: HashMap<(FileId, String), usize>,
}

impl Bindings {
    /// The object an expression in `file` denotes: a local or module-level name, an imported
    /// one (`users.router`), or a call of a factory.
    pub fn object_of(&self, program: &Program, file: FileId, expr: Node<'_>) -> Option<usize> {
        let expr = strip_parentheses(expr);
        match expr.kind() {
            "identifier" => {
                let name = program.source(file).text_of(expr);
                let mut scope = enclosing_function(expr);
                while let Some(function) = scope {
                    let key = (file, Some(function.id()), name.to_string());
                    if let Some(&object) = self.names.get(&key) {
                        return Some(object);
                    }
                    scope = enclosing_function(function);
                }
                self.names
                    .get(&(file, None, name.to_string()))
                    .copied()
                    .or_else(|| self.object_at(program.resolve(file, expr)?))
            }
            "attribute" => self.object_at(program.resolve(file, expr)?),
            "call" => self.factory_called(program, file, expr.child_by_field_name("function")?),
            _ => None,
        }
    }

    /// The object a module-level name holds.
    fn object_at(&self, symbol: Symbol) -> Option<usize> {
        match symbol {
            Symbol::Name { file, name } => self.names.get(&(file, None, name)).copied(),
            Symbol::Module(_) => None,
        }
    }

    /// The object a call of a factory returns.
    pub fn factory_called(
        &self,
        program: &Program,
        file: FileId,
        callee: Node<'_>,
    ) -> Option<usize> {
        match program.resolve(file, callee)? {
            Symbol::Name { file, name } => self.factories.get(&(file, name)).copied(),
            Symbol::Module(_) => None,
        }
    }
}
