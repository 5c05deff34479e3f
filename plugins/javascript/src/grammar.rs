//! The grammars sources are parsed with: JavaScript, and TypeScript, whose grammar extends
//! JavaScript's, so the same queries and the same reading serve both.

use std::path::Path;

use previewd_plugin_api::PluginError;
use tree_sitter::{Language, Parser, Tree};

/// Which grammar a source file is parsed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// `.js`, `.mjs`, `.cjs`.
    JavaScript,
    /// `.ts`, `.mts`, `.cts`.
    TypeScript,
}

impl Grammar {
    /// The grammar for `path`, or `None` when it is not a JavaScript or TypeScript source.
    /// `.tsx` is not one (JSX in TypeScript is frontend code), nor a declaration file (`.d.ts`),
    /// nor an extensionless file (an entry like `bin/www` is read as JavaScript only when a
    /// plugin asks for it by name).
    pub fn for_path(path: &Path) -> Option<Grammar> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".d.ts") {
            return None;
        }
        match path.extension()?.to_str()? {
            "js" | "mjs" | "cjs" => Some(Grammar::JavaScript),
            "ts" | "mts" | "cts" => Some(Grammar::TypeScript),
            _ => None,
        }
    }

    /// The tree-sitter language.
    pub fn language(self) -> Language {
        match self {
            Grammar::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Grammar::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        }
    }

    /// Parses `text`; `None` when tree-sitter gives up.
    pub fn parse(self, text: &str) -> Result<Option<Tree>, PluginError> {
        let mut parser = Parser::new();
        parser
            .set_language(&self.language())
            .map_err(|err| PluginError::Query {
                name: "grammar".into(),
                message: err.to_string(),
            })?;
        Ok(parser.parse(text, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grammars by extension; declaration files, TSX and extensionless files are not sources.
    #[test]
    fn grammar_by_extension() {
        assert_eq!(
            Grammar::for_path(Path::new("a/b.mjs")),
            Some(Grammar::JavaScript)
        );
        assert_eq!(
            Grammar::for_path(Path::new("a.cjs")),
            Some(Grammar::JavaScript)
        );
        assert_eq!(
            Grammar::for_path(Path::new("src/x.ts")),
            Some(Grammar::TypeScript)
        );
        assert_eq!(Grammar::for_path(Path::new("types.d.ts")), None);
        assert_eq!(Grammar::for_path(Path::new("App.tsx")), None);
        assert_eq!(Grammar::for_path(Path::new("bin/www")), None);
    }
}
