//! What one file binds and exports, as far as route extraction cares: which names hold the
//! framework's objects (apps, routers, their classes: the plugin's `K`), another module's
//! exports, other names of the file, or string constants; and which of those it exports.
//!
//! Scopes are not tracked: a name means the same thing everywhere in its file, which is how
//! Node servers are written (one `app`, one `router` per file).

use std::collections::HashMap;

/// How deep an alias chain is followed.
pub(crate) const MAX_DEPTH: usize = 32;

/// Which export of a module a name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    /// The module itself: `require('./m')` (its `module.exports`) or `import * as m`.
    Whole,
    /// `import x from './m'`, `import { default as x } from './m'`.
    Default,
    /// `import { x }`, `const { x } = require('./m')`, `require('./m').x`.
    Named(String),
}

/// What a name (or an expression) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<K> {
    /// One of the framework's objects: an app, a router, the class or function making them.
    Framework(K),
    /// Something another module exports.
    Import { module: String, export: Export },
    /// Another name of this file.
    Alias(String),
    /// A string constant.
    Text(String),
}

/// The names and exports of one file.
#[derive(Debug)]
pub struct Module<K> {
    /// Name → what it holds.
    pub names: HashMap<String, Value<K>>,
    /// Export name (`default` for `module.exports = x` / `export default x`) → value.
    pub exports: HashMap<String, Value<K>>,
}

impl<K> Default for Module<K> {
    fn default() -> Self {
        Module {
            names: HashMap::new(),
            exports: HashMap::new(),
        }
    }
}

impl<K: Clone> Module<K> {
    /// `value` with this file's aliases followed (not across files); `None` for a name the file
    /// does not bind.
    pub fn local(&self, value: &Value<K>) -> Option<Value<K>> {
        let mut value = value.clone();
        for _ in 0..MAX_DEPTH {
            match value {
                Value::Alias(name) => value = self.names.get(&name)?.clone(),
                other => return Some(other),
            }
        }
        None
    }
}
