//! The source files of an app, each read into a [`FileModel`], and what needs them all: which
//! file a relative module specifier names, and which app or router (an [`Owner`]) a name or an
//! import refers to across files. The plugins walk their routes on top of it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use previewd_plugin_api::project::normalize;
use previewd_plugin_api::{Endpoint, PluginError, Project};

use crate::module::{Export, Value};
use crate::reader::{FileModel, Framework};
use crate::Grammar;

/// How long an import chain may be.
const MAX_DEPTH: usize = 16;
/// Extensions tried when a relative import leaves its extension out.
const RESOLVE_EXTENSIONS: &[&str] = &["js", "ts", "mjs", "cjs", "mts", "cts"];
/// Extensions a specifier may give for a TypeScript source (`./users.js` names `users.ts`, as
/// TypeScript resolves it).
const COMPILED_EXTENSIONS: &[&str] = &["js", "mjs", "cjs"];
/// Folders holding build output, tests or frontend assets: never read as the app's source.
const SKIPPED_DIRS: &[&str] = &[
    "dist",
    "build",
    "out",
    "coverage",
    "public",
    "test",
    "tests",
    "__tests__",
    "e2e",
];

/// Which files of a project are the app's source.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The app's folder, relative to the root (empty for the root): files outside it are not
    /// read.
    pub base: &'a Path,
    /// The grammars the plugin reads: files of other grammars are passed over.
    pub grammars: &'a [Grammar],
    /// An extensionless entry read as JavaScript (`bin/www`), relative to the root.
    pub extra: Option<&'a Path>,
}

/// An app or router: the index of the file declaring it, and its name there.
pub type Owner = (usize, String);

/// The source files of an app, each with its model, in path order.
pub struct Program<F: Framework> {
    files: Vec<(PathBuf, FileModel<F>)>,
}

impl<F: Framework> Program<F> {
    /// Reads every source of `sources`, except tests (`*.test.*`, `*.spec.*`) and what lies in
    /// [`SKIPPED_DIRS`].
    pub fn load(project: &Project, sources: &Sources) -> Result<Program<F>, PluginError> {
        let mut files = Vec::new();
        for path in project.files() {
            let Ok(inside) = path.strip_prefix(sources.base) else {
                continue;
            };
            let skipped = inside.components().any(|c| {
                c.as_os_str()
                    .to_str()
                    .is_some_and(|c| SKIPPED_DIRS.contains(&c))
            });
            let name = path.to_string_lossy();
            if skipped || name.contains(".test.") || name.contains(".spec.") {
                continue;
            }
            let grammar = match Grammar::for_path(path) {
                Some(grammar) if sources.grammars.contains(&grammar) => grammar,
                None if Some(path.as_path()) == sources.extra => Grammar::JavaScript,
                _ => continue,
            };
            let text = project
                .read_to_string(path)
                .map_err(|source| PluginError::Io {
                    path: name.into_owned(),
                    source,
                })?;
            files.push((path.clone(), FileModel::read(&text, grammar)?));
        }
        Ok(Program { files })
    }

    /// The files (path relative to the root, model), in path order.
    pub fn files(&self) -> &[(PathBuf, FileModel<F>)] {
        &self.files
    }

    /// What an owner's name holds.
    pub fn holds(&self, (index, name): &Owner) -> Option<&F::Kind> {
        match self.files[*index].1.module.names.get(name)? {
            Value::Framework(kind) => Some(kind),
            _ => None,
        }
    }

    /// The calls of every file made on `owner`, with the index of the file making them:
    /// `calls` picks a kind of call from a file's, `receiver` names the receiver of one.
    pub fn calls_on<'a, C: 'a>(
        &'a self,
        owner: &'a Owner,
        calls: impl Fn(&'a F) -> &'a [C] + 'a,
        receiver: impl Fn(&C) -> &str + 'a,
    ) -> impl Iterator<Item = (usize, &'a C)> + 'a {
        self.files
            .iter()
            .enumerate()
            .flat_map(move |(index, (_, model))| {
                calls(&model.calls).iter().map(move |c| (index, c))
            })
            .filter(move |(index, call)| {
                self.receiver(*index, receiver(call)).as_ref() == Some(owner)
            })
    }

    /// The owner the name `receiver` of file `index` refers to.
    pub fn receiver(&self, index: usize, receiver: &str) -> Option<Owner> {
        self.resolve(index, &Value::Alias(receiver.to_string()))
    }

    /// The owner a value of file `index` refers to, across imports: the name of the file that
    /// holds one of the framework's objects.
    pub fn resolve(&self, index: usize, value: &Value<F::Kind>) -> Option<Owner> {
        let (mut index, mut value) = (index, value.clone());
        for _ in 0..MAX_DEPTH {
            let module = &self.files[index].1.module;
            match value {
                Value::Alias(ref name) => match module.names.get(name)? {
                    Value::Framework(_) => return Some((index, name.clone())),
                    other => value = other.clone(),
                },
                Value::Import {
                    ref module,
                    ref export,
                } => {
                    index = self.module(index, module)?;
                    let exports = &self.files[index].1.module.exports;
                    let exported = match export {
                        Export::Whole | Export::Default => exports.get("default"),
                        Export::Named(name) => exports.get(name),
                    };
                    value = exported?.clone();
                }
                Value::Framework(_) | Value::Text(_) => return None,
            }
        }
        None
    }

    /// The file a relative module specifier of file `from` names.
    fn module(&self, from: usize, specifier: &str) -> Option<usize> {
        if !specifier.starts_with('.') {
            return None;
        }
        let dir = self.files[from].0.parent().unwrap_or(Path::new(""));
        let target = normalize(&dir.join(specifier))?;
        let compiled = target
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| COMPILED_EXTENSIONS.contains(&e));
        let stem = target.with_extension("");
        let mut candidates = vec![target.clone()];
        for ext in RESOLVE_EXTENSIONS {
            if compiled && !COMPILED_EXTENSIONS.contains(ext) {
                candidates.push(stem.with_extension(ext));
            }
            let mut with_ext = target.clone().into_os_string();
            with_ext.push(format!(".{ext}"));
            candidates.push(with_ext.into());
            candidates.push(target.join(format!("index.{ext}")));
        }
        candidates
            .iter()
            .find_map(|c| self.files.iter().position(|(p, _)| p == c))
    }
}

/// An endpoint declared at `line` of `file`, with no summary, description or tags.
pub fn endpoint(method: &str, path: String, file: &Path, line: u32) -> Endpoint {
    Endpoint {
        method: method.to_string(),
        path_params: Endpoint::params_of(&path),
        path,
        summary: None,
        description: None,
        tags: Vec::new(),
        file: Some(file.to_string_lossy().into_owned()),
        line: Some(line),
    }
}

/// `found` with the first of each (method, path) kept, sorted by path then method.
pub fn unique_sorted(mut found: Vec<Endpoint>) -> Vec<Endpoint> {
    let mut seen = BTreeSet::new();
    found.retain(|e| seen.insert((e.method.clone(), e.path.clone())));
    found.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    found
}

#[cfg(test)]
mod tests {
    use previewd_plugin_api::testing::temp_project;

    use super::*;
    use crate::test_framework::{Routes, Server};

    /// Loads `files` as the sources of an app at the root, JavaScript and TypeScript.
    fn program(files: &[(&str, &[u8])]) -> Program<Routes> {
        let (_dir, project) = temp_project(files);
        let sources = Sources {
            base: Path::new(""),
            grammars: &[Grammar::JavaScript, Grammar::TypeScript],
            extra: Some(Path::new("bin/www")),
        };
        Program::load(&project, &sources).unwrap()
    }

    fn index_of(program: &Program<Routes>, path: &str) -> usize {
        program
            .files()
            .iter()
            .position(|(p, _)| p == Path::new(path))
            .unwrap()
    }

    /// Sources by grammar, the extensionless entry asked for; tests, builds and declaration
    /// files left out.
    #[test]
    fn sources() {
        let program = program(&[
            ("app.js", b""),
            ("src/x.ts", b""),
            ("bin/www", b""),
            ("bin/other", b""),
            ("app.test.js", b""),
            ("dist/app.js", b""),
            ("e2e/a.js", b""),
            ("types.d.ts", b""),
            ("App.tsx", b""),
        ]);
        let paths: Vec<_> = program.files().iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(paths, ["app.js", "bin/www", "src/x.ts"].map(PathBuf::from));
    }

    /// Specifiers with and without extensions, folders, `.js` naming a TypeScript file, and
    /// dotted names that are not extensions; names, imports and exports followed to the owner.
    #[test]
    fn resolving() {
        let program = program(&[
            (
                "app.js",
                b"import server from 'server';\nimport a from './a';\nimport b from './lib';\n\
                  import c from './c.js';\nconst d = require('./user.routes');\nconst e = d.e;\n\
                  const app = server();\nconst alias = app;\n",
            ),
            (
                "a.js",
                b"import server from 'server';\nexport default server();\n",
            ),
            (
                "lib/index.js",
                b"import server from 'server';\nmodule.exports = server();\n",
            ),
            (
                "c.ts",
                b"import server from 'server';\nconst c = server();\nexport default c;\n",
            ),
            (
                "user.js",
                b"import server from 'server';\nexports.e = server();\n",
            ),
            (
                "user.routes.js",
                b"import server from 'server';\nconst e = server();\nexports.e = e;\n",
            ),
        ]);
        let app = index_of(&program, "app.js");
        let owner = |name: &str| program.receiver(app, name);
        assert_eq!(owner("app"), Some((app, "app".to_string())));
        assert_eq!(owner("alias"), Some((app, "app".to_string())));
        assert_eq!(owner("a"), None, "a default export with no name");
        assert_eq!(owner("b"), None, "module.exports with no name");
        let c = index_of(&program, "c.ts");
        assert_eq!(owner("c"), Some((c, "c".to_string())));
        let routes = index_of(&program, "user.routes.js");
        assert_eq!(owner("e"), Some((routes, "e".to_string())));
        assert_eq!(program.holds(&(c, "c".into())), Some(&Server));
        // Any framework object is an owner; which are apps or routers is the plugin's to say.
        assert_eq!(owner("server"), Some((app, "server".to_string())));
        assert_eq!(owner("unbound"), None);
    }

    /// Calls on an owner, from every file; endpoints deduplicated and sorted.
    #[test]
    fn calls_and_endpoints() {
        let program = program(&[
            (
                "a.js",
                b"import server from 'server';\nconst s = server();\ns.route('/b');\n\
                  module.exports = s;\nother.route('/x');\n",
            ),
            (
                "b.js",
                b"const s = require('./a');\ns.route('/a');\ns.route('/b');\n",
            ),
        ]);
        let a = index_of(&program, "a.js");
        let owner = (a, "s".to_string());
        let found: Vec<_> = program
            .calls_on(&owner, |c| &c.0, |(receiver, _)| receiver)
            .map(|(index, (_, path))| endpoint("GET", path.clone(), &program.files()[index].0, 1))
            .collect();
        let listed: Vec<_> = unique_sorted(found)
            .into_iter()
            .map(|e| (e.path, e.file.unwrap()))
            .collect();
        assert_eq!(
            listed,
            [("/a".into(), "b.js".into()), ("/b".into(), "a.js".into())] as [(String, String); 2]
        );
    }
}
