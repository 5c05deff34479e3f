//! A read-only view of a project's files, as plugins see it.
//!
//! The file list is taken once, sorted, with the folders no plugin should look into (virtual
//! environments, `node_modules`, caches, VCS metadata) left out, so detection and extraction do
//! not walk the disk again and again.

use std::io;
use std::path::{Path, PathBuf};

/// Folder names never listed: dependencies, caches and tool metadata, not project source.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "site-packages",
    ".idea",
    ".vscode",
];

/// Files larger than this are not read as source (generated bundles, data dumps).
pub const MAX_SOURCE_BYTES: u64 = 2 * 1024 * 1024;

/// A project on disk: its root and the relative paths of its files.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
    files: Vec<PathBuf>,
}

impl Project {
    /// Lists the files under `root`. Symbolic links are not followed.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Project> {
        let root = root.into();
        let mut files = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel_dir) = stack.pop() {
            for entry in std::fs::read_dir(root.join(&rel_dir))? {
                let entry = entry?;
                let kind = entry.file_type()?;
                let name = entry.file_name();
                let rel = rel_dir.join(&name);
                if kind.is_dir() {
                    let skipped = name
                        .to_str()
                        .is_none_or(|n| SKIPPED_DIRS.contains(&n) || n.ends_with(".egg-info"));
                    if !skipped {
                        stack.push(rel);
                    }
                } else if kind.is_file() {
                    files.push(rel);
                }
            }
        }
        files.sort();
        Ok(Project { root, files })
    }

    /// A project from a file list taken elsewhere: `files` are relative to `root` and are
    /// sorted here. A plugin loaded from a library gets the host's listing this way (see
    /// [`abi`](crate::abi)), so every plugin sees the same files.
    pub fn from_files(root: impl Into<PathBuf>, mut files: Vec<PathBuf>) -> Project {
        files.sort();
        files.dedup();
        Project {
            root: root.into(),
            files,
        }
    }

    /// The project's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every file, relative to the root, sorted.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether `rel` (relative to the root) is one of the project's files.
    pub fn has_file(&self, rel: impl AsRef<Path>) -> bool {
        self.files
            .binary_search(&rel.as_ref().to_path_buf())
            .is_ok()
    }

    /// The files whose name ends in `.{ext}`.
    pub fn files_with_extension<'a>(&'a self, ext: &'a str) -> impl Iterator<Item = &'a Path> + 'a {
        self.files
            .iter()
            .filter(move |p| p.extension().is_some_and(|e| e == ext))
            .map(PathBuf::as_path)
    }

    /// Reads a file as text (invalid UTF-8 replaced). Files over [`MAX_SOURCE_BYTES`] read as
    /// empty: they are not hand-written source.
    pub fn read_to_string(&self, rel: impl AsRef<Path>) -> io::Result<String> {
        let path = self.root.join(rel.as_ref());
        if std::fs::metadata(&path)?.len() > MAX_SOURCE_BYTES {
            return Ok(String::new());
        }
        let bytes = std::fs::read(path)?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// `a/./b/../c` → `a/c`, without touching the disk (for relative imports between a project's
/// files); `None` when the path climbs out of where it starts.
pub fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{normalize, Project};
    use std::path::{Path, PathBuf};

    /// `.` and `..` are resolved; climbing out of the start is refused.
    #[test]
    fn normalizing() {
        assert_eq!(
            normalize(Path::new("a/./b/../c")),
            Some(PathBuf::from("a/c"))
        );
        assert_eq!(normalize(Path::new("../x")), None);
    }
    use std::fs;

    /// Dependency and cache folders are left out; the rest is listed sorted and relative.
    #[test]
    fn lists_source_files_only() {
        let dir = tempfile::tempdir().unwrap();
        for path in [
            "app/main.py",
            "app/__pycache__/x.pyc",
            ".venv/lib/y.py",
            "README.md",
            "node_modules/a/index.js",
        ] {
            let full = dir.path().join(path);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, "x").unwrap();
        }
        let project = Project::open(dir.path()).unwrap();
        let files: Vec<_> = project
            .files()
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(files, ["README.md", "app/main.py"]);
        assert!(project.has_file("app/main.py"));
        assert_eq!(project.files_with_extension("py").count(), 1);
    }
}
